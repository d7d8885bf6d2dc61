//! Stage 7: offline evaluation of recommendations on a time split.
//!
//! `ecoreco.evaluate_recommendations(events, split := 0.8, k := 10, ...)`
//! splits the rows of any interaction source in time (a fraction of the
//! span, or a timestamp), trains on the earlier part, and scores four
//! recommenders on the SAME split: `als` (plain ALS with the caller's or
//! the seed's parameters, blend 0), `tuned` (the parameters `als_train`
//! chooses on the earlier part, blend 0), `default` (that model at the
//! blend `recommend` would serve: the chosen one, or the caller's) and
//! `popularity` (most purchased products). Relevant items are the products
//! a user carted or bought after the split (for a source without event
//! types: every product after the split); users evaluated are those seen in
//! training with at least one such product. Products the user bought before the split are excluded from
//! every recommender's list (as `recommend` does by default); products they
//! only viewed or carted before remain eligible and count as hits. A relevant
//! product the model never saw in training cannot be recommended but still
//! counts in recall's denominator.

pub mod baselines;
pub mod sessions;

use crate::als::{
    als_params, pair_inputs, read_pairs, source_params, train_params, weight_params, TrainingData,
    PAIR_INPUTS,
};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Column, Param, SqlMacro, SqlType};
use crate::budget::Budget;
use crate::metrics::{ranking_metrics, rmse};
use crate::model::neighbours::PARAMS;
use crate::model::recent;
use crate::progress::Progress;
use crate::recommend::items;
use crate::recommend::rules::Rules;
use crate::recommend::serving::ServingModel;
use crate::tables;
use crate::train::plain_choice;
use crate::train::tune::{self, Candidate};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Default)]
pub struct EvalState {
    train: TrainingData,
    /// The training part's session steps (fed only with the search on).
    events: Vec<crate::covisit::Event>,
    /// (user, product, weight, relevant: carted or bought after the split).
    test: Vec<(i64, i64, f32, bool)>,
}

pub struct Evaluate;

fn metric_columns() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("model", Varchar),
        Column::new("k", Integer),
        Column::new("precision", Double),
        Column::new("recall", Double),
        Column::new("ndcg", Double),
        Column::new("map", Double),
        Column::new("coverage", Double),
        Column::new("users_evaluated", BigInt),
        Column::new("blend", Double),
        Column::new("alpha", Double),
        Column::new("regularization", Double),
        Column::new("confidence", Varchar),
        Column::new("half_life_days", Double),
        Column::new("rmse_vs_weight", Double),
    ]
}

impl AggregateFunction for Evaluate {
    const NAME: &'static str = "ecoreco_evaluate";
    const FUNCTION: &'static str = "ecoreco.evaluate_recommendations";
    const EMPTY: &'static str = "the events table is empty: nothing to evaluate; pass a table with view, cart or purchase events";
    type State = EvalState;
    fn inputs() -> Vec<Column> {
        let mut inputs = vec![Column::new("part", SqlType::Varchar)];
        inputs.extend(pair_inputs());
        inputs.push(Column::new("relevant", SqlType::Boolean));
        inputs.extend(crate::train::session_inputs());
        inputs
    }
    fn params() -> Vec<Param> {
        let mut params = train_params();
        params.extend(
            crate::recommend::serving_params()
                .into_iter()
                .filter(|p| p.name != "exclude_purchased")
                .map(|p| if p.name == "blend" { p.nullable() } else { p }),
        );
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        metric_columns()
    }
    fn update(
        state: &mut EvalState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let (part, user, product, weight, relevant) = (
            input.col("part")?,
            input.col("user_id")?,
            input.col("product_id")?,
            input.col("weight")?,
            input.col("relevant")?,
        );
        for (is_train, run) in part_runs(input, part, rows) {
            if is_train {
                read_pairs(&mut state.train, &budget, input, run.clone(), true)?;
                crate::train::read_steps(&mut state.events, input, run, &budget)?;
            } else {
                crate::budget::reserve(&mut state.test, run.len(), "the test pairs")?;
                for row in run {
                    let (Some(u), Some(p)) = (input.i64(user, row), input.i64(product, row)) else {
                        continue;
                    };
                    let w = input.f64(weight, row).unwrap_or(0.0) as f32;
                    state
                        .test
                        .push((u, p, w, input.bool(relevant, row).unwrap_or(false)));
                }
            }
        }
        Ok(())
    }
    fn combine(target: &mut EvalState, source: EvalState) -> anyhow::Result<()> {
        crate::budget::reserve(&mut target.test, source.test.len(), "the test pairs")?;
        crate::budget::reserve(
            &mut target.events,
            source.events.len(),
            "the session events",
        )?;
        target.events.extend(source.events);
        target.train.extend(source.train)?;
        target.test.extend(source.test);
        Ok(())
    }
    fn finalize(mut state: EvalState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let k = call.int("k")? as usize;
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        anyhow::ensure!(
            !state.train.pairs.is_empty(),
            "no events before the split: move the split later"
        );
        anyhow::ensure!(
            !state.test.is_empty(),
            "no events after the split: move the split earlier"
        );
        let base = als_params(call)?;
        let (plain, _) = plain_choice(call)?;
        crate::threads::pool(call.int("threads")?)?.install(|| {
            let data = std::mem::take(&mut state.train);
            let events = std::mem::take(&mut state.events);
            let plain_model = ServingModel::new(
                tune::fit_all(
                    data.pairs.clone(),
                    &data.times,
                    &base,
                    &plain,
                    base.iterations,
                    0.0,
                    false,
                    &budget,
                    &progress,
                )?
                .model,
            )?;
            // The model `als_train` makes of the training part, with its
            // item-to-item signal (in known users' lists when it chose a
            // user_item_weight); without the search, plain ALS.
            let (tuned_model, chosen) = if call.boolean("search")? {
                let defaults = crate::train::train_default(data, events, call, &budget, &progress)?;
                let choice_rows = defaults.choice.map_or_else(Vec::new, |c| c.param_rows());
                let param =
                    |name: &str| choice_rows.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                let params: Vec<Option<f64>> = PARAMS.iter().map(|n| param(n)).collect();
                let mut served = ServingModel::new(defaults.trained.model)?;
                items::with_signal(
                    &mut served,
                    defaults.neighbours,
                    &params,
                    defaults.recent,
                    [recent::PARAM, recent::NEW_PARAM].map(param),
                )?;
                (Some(served), defaults.candidate)
            } else {
                (None, plain)
            };
            let tuned = tuned_model.as_ref().unwrap_or(&plain_model);
            let blend = call
                .opt_double("blend")?
                .unwrap_or(crate::model::f32_decimal(tuned.blend));
            // Held-out sets per evaluated user (model index: both models
            // index the same users), sorted by user id.
            state.test.sort_unstable_by_key(|t| (t.0, t.1));
            let model = &plain_model;
            let mut relevant: HashMap<u32, Vec<u32>> = HashMap::new();
            let mut unseen = model.n_products() as u32;
            let (mut predicted, mut actual) = (Vec::new(), Vec::new());
            for &(user, product, weight, is_relevant) in &state.test {
                let Some(u) = model.user(user) else { continue };
                let item = model.product(product);
                if let Some(i) = item {
                    let f = model.factors;
                    let x = &model.user_factors[u as usize * f..(u as usize + 1) * f];
                    let y = &model.item_factors()[i as usize * f..(i as usize + 1) * f];
                    predicted.push(x.iter().zip(y).map(|(a, b)| (a * b) as f64).sum::<f64>());
                    actual.push(weight as f64);
                }
                if is_relevant {
                    // Unseen products get ids past the catalogue: never hit.
                    let id = item.unwrap_or_else(|| {
                        unseen += 1;
                        unseen
                    });
                    relevant.entry(u).or_default().push(id);
                }
            }
            let mut users: Vec<u32> = relevant.keys().copied().collect();
            users.sort_unstable();
            let held_out: Vec<Vec<u32>> = users.iter().map(|u| relevant[u].clone()).collect();
            let n_items = model.n_products();
            let lists = |m: &ServingModel, blend: f64| -> Vec<Vec<u32>> {
                m.recommend_users(&users, k, blend as f32, true)
                    .into_iter()
                    .map(|r| r.into_iter().map(|x| x.product).collect())
                    .collect()
            };
            // As recommend_all serves them: with the item-to-item signal
            // in known users' lists when the model keeps it.
            let default_lists: Vec<Vec<u32>> = items::known_users_lists(
                tuned,
                &users,
                &[],
                k,
                blend as f32,
                true,
                &Rules::default(),
                None,
            )
            .into_iter()
            .map(|r| r.into_iter().map(|x| x.product).collect())
            .collect();
            let popular: Vec<Vec<u32>> = users
                .iter()
                .map(|&u| {
                    let bought: HashSet<u32> =
                        model.purchased.row(u as usize).0.iter().copied().collect();
                    model
                        .popular(k, &bought)
                        .into_iter()
                        .map(|r| r.product)
                        .collect()
                })
                .collect();
            let error = rmse(&predicted, &actual);
            let mut rows = RowSet::for_columns(&metric_columns());
            for (name, lists, blend, candidate, rmse) in [
                (
                    "als",
                    lists(&plain_model, 0.0),
                    0.0,
                    Some(plain),
                    Some(error),
                ),
                ("tuned", lists(tuned, 0.0), 0.0, Some(chosen), None),
                ("default", default_lists, blend, Some(chosen), None),
                ("popularity", popular, 1.0, None, None),
            ] {
                push_metrics(
                    &mut rows,
                    name,
                    k,
                    &ranking_metrics(&lists, &held_out, k, n_items),
                    blend,
                    candidate,
                    rmse,
                )?;
            }
            Ok(Arc::new(Computed::new(rows)) as Arc<dyn BlockSource>)
        })
    }
}

/// One metrics row.
fn push_metrics(
    rows: &mut RowSet,
    model: &str,
    k: usize,
    m: &crate::metrics::RankingMetrics,
    blend: f64,
    candidate: Option<Candidate>,
    rmse: Option<f64>,
) -> anyhow::Result<()> {
    let c = rows.col::<String>("model")?;
    rows.put_str(c, Some(model));
    let c = rows.col("k")?;
    rows.put(c, Some(k as i32));
    // No user to evaluate: NULL averages, not 0.
    for (name, value) in [
        ("precision", m.precision),
        ("recall", m.recall),
        ("ndcg", m.ndcg),
        ("map", m.map),
        ("coverage", Some(m.coverage)),
    ] {
        let c = rows.col::<f64>(name)?;
        rows.put(c, value);
    }
    let c = rows.col("users_evaluated")?;
    rows.put(c, Some(m.users_evaluated as i64));
    let c = rows.col("blend")?;
    rows.put(c, Some(blend));
    let c = rows.col("alpha")?;
    rows.put(c, candidate.map(|c| crate::model::f32_decimal(c.alpha)));
    let c = rows.col("regularization")?;
    rows.put(
        c,
        candidate.map(|c| crate::model::f32_decimal(c.regularization)),
    );
    let c = rows.col::<String>("confidence")?;
    rows.put_str(c, candidate.map(|c| c.confidence.name()));
    let c = rows.col("half_life_days")?;
    rows.put(c, candidate.map(|c| c.half_life / 86_400.0));
    let c = rows.col("rmse_vs_weight")?;
    rows.put(c, rmse.filter(|r| r.is_finite()));
    Ok(())
}

pub fn macros() -> Vec<SqlMacro> {
    let mut extra = weight_params();
    extra.extend(source_params());
    let params = aggregate::signature::<Evaluate>(&["events", "split := 0.8"], &extra);
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let mut inputs = vec!["part"];
    inputs.extend(PAIR_INPUTS);
    inputs.push("relevant");
    inputs.extend(crate::train::SESSION_INPUTS);
    let train_columns = PAIR_INPUTS.join(", ");
    let test_columns = PAIR_INPUTS
        .iter()
        .map(|c| match *c {
            "user_id" | "product_id" | "weight" => c.to_string(),
            _ => format!("NULL AS {c}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    // The split (a timestamp, or a fraction of the rows' time span), the
    // training pairs (with the validation split inside them) and the test
    // pairs, then the evaluation over both.
    let body = format!(
        "WITH {rows}, {split}, \
         ecoreco_train_rows AS (SELECT r.* FROM ecoreco_rows r, ecoreco_cut c WHERE r.t < c.at), \
         ecoreco_pairs AS ({pairs}), \
         ecoreco_test AS (SELECT user_id, product_id, \
           least(sum(w), CASE WHEN any_value(is_events) THEN cap ELSE 'infinity'::DOUBLE END)::DOUBLE AS weight, bool_or(wanted) AS relevant \
           FROM ecoreco_rows r, ecoreco_cut c WHERE r.t >= c.at GROUP BY user_id, product_id) {call}",
        rows = crate::als::source_rows_sql("evaluate_recommendations"),
        split = include_str!("../../sql/macros/evaluate_split.sql"),
        pairs = crate::als::pairs_sql("ecoreco_train_rows"),
        call = aggregate::rows_sql::<Evaluate>(
            "ecoreco.evaluate_recommendations",
            &inputs,
            &[],
            &format!(
                "(SELECT 'train' AS part, {train_columns}, NULL::BOOLEAN AS relevant, \
                 NULL::BIGINT AS session_key, NULL::DOUBLE AS step_order FROM ecoreco_pairs \
                 UNION ALL SELECT 'test', {test_columns}, relevant, NULL, NULL FROM ecoreco_test \
                 UNION ALL BY NAME SELECT 'train' AS part, product_id, session_key, t AS step_order \
                 FROM ecoreco_train_rows WHERE search AND session_key IS NOT NULL AND t IS NOT NULL)"
            )
        ),
    );
    let mut macros = vec![SqlMacro::table("evaluate_recommendations", &params, body)
        .checking("events", &tables::interactions_source())];
    macros.extend(sessions::macros());
    macros
}

/// The runs of `rows` by their `part` column (`input` column `part`):
/// `(true, run)` for training rows, `(false, run)` for test rows, in order.
/// Training and test rows come in runs; each run goes to its own list.
pub(crate) fn part_runs<'a>(
    input: &'a InputChunk,
    part: usize,
    rows: std::ops::Range<usize>,
) -> impl Iterator<Item = (bool, std::ops::Range<usize>)> + 'a {
    let is_train = move |row: usize| input.str(part, row) == Some("train");
    let mut start = rows.start;
    std::iter::from_fn(move || {
        if start >= rows.end {
            return None;
        }
        let train = is_train(start);
        let mut end = start + 1;
        while end < rows.end && is_train(end) == train {
            end += 1;
        }
        let run = start..end;
        start = end;
        Some((train, run))
    })
}
