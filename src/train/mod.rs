//! Stage 5, the `als_train` function: training with parameters chosen on
//! the user's own data.
//!
//! This layer sits above the trainer (`crate::als`: pairs, weighting, the
//! ALS kernel) and the server (`crate::recommend`: scoring users), which
//! never import each other: choosing parameters means fitting candidates
//! with one and scoring them with the other ([`tune`]). The `als_train`
//! aggregate reads the pairs the macro builds, runs the search (unless
//! `search := false`), fits once on all the data and returns the model as
//! rows ([`crate::model::table`]). With the search, it also reads the
//! session steps and keeps the item-to-item signal where the validation
//! shows it helps: in sessions' lists ([`items`]) and in known users'
//! lists, with each user's latest products as model rows
//! ([`user_items`]).

pub mod items;
pub mod tune;
pub mod update;
pub mod update_sql;
pub mod user_items;

use crate::als::{
    als_params, pair_inputs, pairs_sql, read_pairs, source_params, source_rows_sql, train_params,
    weight_params,
};
use crate::als::{
    attribute_inputs, weighting, LatestAttributes, Trained, TrainingData, ATTRIBUTE_INPUTS,
    PAIR_INPUTS,
};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::BlockSource;
use crate::binding::rows::InputChunk;
use crate::binding::{Args, Column, Param, SqlMacro};
use crate::budget::{self, Budget};
use crate::covisit::Event;
use crate::model::neighbours::NeighbourRow;
use crate::model::recent::RecentRow;
use crate::model::table::ModelTable;
use crate::progress::Progress;
use crate::tables;
use std::sync::Arc;

/// Plain ALS as the caller asked for it (NULLs: the seed's choices), and
/// which choices the search may change (those left NULL).
pub(crate) fn plain_choice(call: &Args) -> anyhow::Result<(tune::Candidate, tune::Searched)> {
    let params = als_params(call)?;
    let confidence = match call.opt_text("confidence")? {
        Some(text) => weighting::Confidence::parse(text).ok_or_else(|| {
            crate::error::param(format!(
                "parameter `confidence` is '{text}'; pass 'raw', 'log' or 'bm25'"
            ))
        })?,
        None => weighting::Confidence::Raw,
    };
    let candidate = tune::Candidate {
        alpha: params.alpha,
        regularization: params.regularization,
        confidence,
        half_life: call.opt_double("half_life")?.unwrap_or(0.0) * 86_400.0,
    };
    let searched = tune::Searched {
        alpha: call.is_null("alpha")?,
        regularization: call.is_null("regularization")?,
        confidence: call.is_null("confidence")?,
        half_life: call.is_null("half_life")?,
    };
    Ok((candidate, searched))
}

/// What [`train_default`] makes.
pub(crate) struct DefaultModel {
    pub(crate) trained: Trained,
    /// The parameters the fit used (the search's choice, or the caller's).
    pub(crate) candidate: tune::Candidate,
    /// The item-to-item choice, when the search ran.
    pub(crate) choice: Option<items::Choice>,
    /// The neighbours of all the sessions, when the choice keeps the signal.
    pub(crate) neighbours: Vec<NeighbourRow>,
    /// The users' latest products, when it blends the signal into known
    /// users' lists.
    pub(crate) recent: Vec<RecentRow>,
}

/// The model `als_train` makes of a call's data: parameters chosen by the
/// search on the validation split inside the data (when `search` is on and
/// some user can be evaluated), else the caller's (or the seed's) with blend
/// 0, then one fit on all the data. The item-to-item choice on the session
/// steps `events` comes along when the search ran ([`items::choose`]), with
/// the neighbours of all the sessions, and the users' latest products when
/// it blends the signal into known users' lists.
pub(crate) fn train_default(
    data: TrainingData,
    events: Vec<Event>,
    call: &Args,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<DefaultModel> {
    let base = als_params(call)?;
    let (plain, searched) = plain_choice(call)?;
    let TrainingData {
        pairs,
        times,
        validation,
    } = data;
    let (outcome, best_fit) = if call.boolean("search")? {
        tune::choose_fit(&validation, &base, plain, searched, budget, progress)?
            .map_or((None, None), |(o, f)| (Some(o), Some(f)))
    } else {
        (None, None)
    };
    // The sessions judge the signal even where no user could judge the
    // ALS parameters (a log whose users never span the cut, such as one
    // whose sessions are its users): then with the plain candidate.
    let chosen_items = match outcome
        .as_ref()
        .map(|o| (o.choice.candidate, o.choice.blend))
    {
        chosen if call.boolean("search")? && !events.is_empty() => {
            let (candidate, blend) = chosen.unwrap_or((plain, 0.0));
            progress.say("choosing the item-to-item weight on the held-out sessions");
            items::choose(
                events,
                &validation,
                &base,
                &candidate,
                best_fit,
                blend,
                // The serving functions' default event weights (the
                // macro's own weights are not passed to the aggregate).
                crate::stream::state::Weights::default(),
                call.int("threads")? as usize,
                budget,
                progress,
            )?
        }
        _ => None,
    };
    // The split is a second copy of most pairs: gone before the final fit.
    drop(validation);
    let (item_choice, neighbours) = match chosen_items {
        Some((c, rows)) if c.keeps_signal() => (Some(c), rows),
        other => (other.map(|(c, _)| c), Vec::new()),
    };
    let recent = match item_choice {
        Some(c) if c.user_weight > 0.0 => user_items::recent_rows(&pairs, &times, |_| true),
        _ => Vec::new(),
    };
    let (candidate, blend) = outcome
        .as_ref()
        .map_or((plain, 0.0), |o| (o.choice.candidate, o.choice.blend));
    // Without a decay the times are not read: gone before the fit too.
    let times = if candidate.half_life > 0.0 {
        times
    } else {
        Vec::new()
    };
    let mut trained = tune::fit_all(
        pairs,
        &times,
        &base,
        &candidate,
        base.iterations,
        blend,
        true,
        budget,
        progress,
    )?;
    trained.search = outcome.as_ref().map(tune::Outcome::param_rows);
    Ok(DefaultModel {
        trained,
        candidate,
        choice: item_choice,
        neighbours,
        recent,
    })
}

#[derive(Default)]
pub struct TrainState {
    data: TrainingData,
    attributes: LatestAttributes,
    /// The session steps (fed only with the search on).
    events: Vec<Event>,
}

/// `ecoreco_als_train`: the model as rows (see [`crate::model::table`]).
pub struct AlsTrain;

impl AggregateFunction for AlsTrain {
    const NAME: &'static str = "ecoreco_als_train";
    const FUNCTION: &'static str = "ecoreco.als_train";
    const EMPTY: &'static str = "the events table is empty: nothing to train on; pass a table with view, cart or purchase events";
    type State = TrainState;
    fn inputs() -> Vec<Column> {
        let mut inputs = pair_inputs();
        inputs.extend(attribute_inputs());
        inputs.extend(session_inputs());
        inputs
    }
    fn params() -> Vec<Param> {
        let mut params = train_params();
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        crate::binding::model_table::columns()
    }
    fn update(
        state: &mut TrainState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        state.attributes.read(input, rows.clone())?;
        let budget = Budget::from_setting(call.text("memory_limit")?);
        // Times serve only a recency decay: the search's candidates, or a
        // half-life the caller gave.
        let keep_times =
            call.boolean("search")? || call.opt_double("half_life")?.unwrap_or(0.0) > 0.0;
        read_pairs(&mut state.data, &budget, input, rows.clone(), keep_times)?;
        read_steps(&mut state.events, input, rows, &budget)
    }
    fn combine(target: &mut TrainState, source: TrainState) -> anyhow::Result<()> {
        // Pair order does not matter: training sorts them.
        target.attributes.extend(source.attributes);
        budget::reserve(
            &mut target.events,
            source.events.len(),
            "the session events",
        )?;
        target.events.extend(source.events);
        target.data.extend(source.data)
    }
    fn finalize(state: TrainState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        let TrainState {
            data,
            attributes,
            events,
        } = state;
        let threads = call.int("threads")? as usize;
        let DefaultModel {
            mut trained,
            choice,
            neighbours,
            recent,
            ..
        } = crate::threads::pool(threads as i64)?
            .install(|| train_default(data, events, call, &budget, &progress))?;
        let attributes = attributes.of_products(&trained.model.product_ids);
        trained.model = trained.model.with_attributes(attributes)?;
        trained.model = trained
            .model
            .with_id_mixed(|id| items::hash_into(&neighbours, choice.as_ref(), id))
            .with_id_mixed(|id| {
                let (weight, new_weight) =
                    choice.map_or((0.0, 0.0), |c| (c.user_weight, c.user_new_weight));
                user_items::hash_into(&recent, weight, new_weight, id)
            });
        progress.say("trained; writing the model rows");
        let mut rows = trained.param_rows();
        rows.extend(choice.iter().flat_map(items::Choice::param_rows));
        let table = ModelTable::new(trained.model, rows, trained.loss)
            .with_neighbours(neighbours)
            .with_recent(recent);
        // The pairs, matrices and solver buffers are gone by now.
        crate::pages::release_free_heap();
        Ok(Arc::new(table))
    }
}

/// The session-step inputs after the pairs and attributes: a step's
/// session (a 63-bit hash) and time, its product in `product_id`, on rows
/// whose pair columns are NULL.
pub(crate) fn session_inputs() -> Vec<Column> {
    vec![
        Column::new("session_key", crate::binding::SqlType::BigInt),
        Column::new("step_order", crate::binding::SqlType::Double),
    ]
}

/// The SQL expressions for [`session_inputs`].
pub(crate) const SESSION_INPUTS: [&str; 2] = ["session_key", "step_order"];

/// Appends the session steps of rows `rows` (those with a session key).
pub(crate) fn read_steps(
    events: &mut Vec<Event>,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
    budget: &Budget,
) -> anyhow::Result<()> {
    let (s, o, p) = (
        input.col("session_key")?,
        input.col("step_order")?,
        input.col("product_id")?,
    );
    for row in rows {
        if let (Some(session), Some(order), Some(product)) =
            (input.i64(s, row), input.f64(o, row), input.i64(p, row))
        {
            if events.len() == events.capacity() {
                budget.check(
                    "holding the session steps",
                    (events.len() as u64 * 2 + 1024) * crate::covisit::EVENT_BYTES,
                    "24 bytes per step",
                )?;
                budget::reserve(events, events.len().max(1024), "the session steps")?;
            }
            events.push(Event {
                session,
                order,
                product,
            });
        }
    }
    Ok(())
}

/// The training call over the pairs of `pairs_sql`, as model rows.
pub fn train_rows(pairs_sql: &str) -> String {
    let inputs: Vec<&str> = PAIR_INPUTS
        .iter()
        .chain(&ATTRIBUTE_INPUTS)
        .chain(&SESSION_INPUTS)
        .copied()
        .collect();
    aggregate::rows_sql::<AlsTrain>("ecoreco.als_train", &inputs, &[], &format!("({pairs_sql})"))
}

pub fn macros() -> Vec<SqlMacro> {
    let mut extra = weight_params();
    extra.extend(source_params());
    let train = aggregate::signature::<AlsTrain>(&["events"], &extra);
    let train: Vec<&str> = train.iter().map(String::as_str).collect();
    vec![
        SqlMacro::table(
            "als_train",
            &train,
            format!(
                "WITH {}, ecoreco_pairs AS ({}) {}",
                source_rows_sql("als_train"),
                pairs_sql("ecoreco_rows"),
                train_rows(
                    "FROM ecoreco_pairs UNION ALL BY NAME \
                     SELECT product_id, session_key, t AS step_order FROM ecoreco_rows \
                     WHERE search AND session_key IS NOT NULL AND t IS NOT NULL"
                )
            ),
        )
        .checking("events", &tables::interactions_source()),
        SqlMacro::table(
            "als_loss",
            &["model"],
            include_str!("../../sql/macros/als_loss.sql"),
        )
        .checking("model", &tables::model(&["side", "id", "value"])),
        SqlMacro::table(
            "als_params",
            &["model"],
            include_str!("../../sql/macros/als_params.sql"),
        )
        .checking("model", &tables::model(&["side", "name", "value"])),
    ]
}
