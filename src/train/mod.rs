//! Stage 5, the `als_train` function: training with parameters chosen on
//! the user's own data.
//!
//! This layer sits above the trainer (`crate::als`: pairs, weighting, the
//! ALS kernel) and the server (`crate::recommend`: scoring users), which
//! never import each other: choosing parameters means fitting candidates
//! with one and scoring them with the other ([`tune`]). The `als_train`
//! aggregate reads the pairs the macro builds, runs the search (unless
//! `search := false`), fits once on all the data and returns the model as
//! rows ([`crate::model::table`]).

pub mod tune;

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
use crate::budget::Budget;
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

/// The model `als_train` makes of a call's data: parameters chosen by the
/// search on the validation split inside the data (when `search` is on and
/// some user can be evaluated), else the caller's (or the seed's) with blend
/// 0, then one fit on all the data.
pub(crate) fn train_default(
    data: TrainingData,
    call: &Args,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    let base = als_params(call)?;
    let (plain, searched) = plain_choice(call)?;
    let TrainingData {
        pairs,
        times,
        validation,
    } = data;
    let outcome = if call.boolean("search")? {
        tune::choose(&validation, &base, plain, searched, budget, progress)?
    } else {
        None
    };
    // The split is a second copy of most pairs: gone before the final fit.
    drop(validation);
    let (candidate, blend) = outcome
        .as_ref()
        .map_or((plain, 0.0), |o| (o.choice.candidate, o.choice.blend));
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
    Ok(trained)
}

#[derive(Default)]
pub struct TrainState {
    data: TrainingData,
    attributes: LatestAttributes,
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
        read_pairs(
            &mut state.data,
            &Budget::from_setting(call.text("memory_limit")?),
            input,
            rows,
        )
    }
    fn combine(target: &mut TrainState, source: TrainState) -> anyhow::Result<()> {
        // Pair order does not matter: training sorts them.
        target.attributes.extend(source.attributes);
        target.data.extend(source.data)
    }
    fn finalize(state: TrainState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        let mut trained = crate::threads::pool(call.int("threads")?)?
            .install(|| train_default(state.data, call, &budget, &progress))?;
        let attributes = state.attributes.of_products(&trained.model.product_ids);
        trained.model = trained.model.with_attributes(attributes)?;
        progress.say("trained; writing the model rows");
        let rows = trained.param_rows();
        let table = ModelTable::new(trained.model, rows, trained.loss);
        // The pairs, matrices and solver buffers are gone by now.
        crate::pages::release_free_heap();
        Ok(Arc::new(table))
    }
}

/// The training call over the pairs of `pairs_sql`, as model rows.
pub fn train_rows(pairs_sql: &str) -> String {
    let inputs: Vec<&str> = PAIR_INPUTS
        .iter()
        .chain(&ATTRIBUTE_INPUTS)
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
                train_rows("FROM ecoreco_pairs")
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
