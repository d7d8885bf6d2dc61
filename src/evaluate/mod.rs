//! Stage 7: offline evaluation of recommendations on a time split.
//!
//! `ecoreco.evaluate_recommendations(events, split := 0.8, k := 10, ...)`
//! splits the events in time (a fraction of the span, or a timestamp),
//! trains ALS on the earlier part exactly as `als_train` would, and scores
//! three recommenders on the SAME split: `als` (collaborative only),
//! `hybrid` (the blend `recommend` serves) and `popularity` (most purchased
//! products). Relevant items are the products a user carted or bought after
//! the split; users evaluated are those seen in training with at least one
//! such product. Products the user bought before the split are excluded from
//! every recommender's list (as `recommend` does by default); products they
//! only viewed or carted before remain eligible and count as hits. A relevant
//! product the model never saw in training cannot be recommended but still
//! counts in recall's denominator.

pub mod metrics;

use crate::als::{als_params, pair_inputs, read_pairs, train_params, train_pairs, weight_params, Pair, PAIR_INPUTS};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Column, Param, SqlMacro, SqlType};
use crate::budget::{Budget, Progress};
use crate::recommend::serving::ServingModel;
use metrics::{ranking_metrics, rmse};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Default)]
pub struct EvalState {
    train: Vec<Pair>,
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
        inputs
    }
    fn params() -> Vec<Param> {
        let mut params = train_params();
        params.extend(
            crate::recommend::serving_params()
                .into_iter()
                .filter(|p| p.name != "exclude_purchased"),
        );
        params.extend(crate::budget::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        metric_columns()
    }
    fn update(state: &mut EvalState, call: &Args, input: &InputChunk, rows: std::ops::Range<usize>) -> anyhow::Result<()> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let (part, user, product, weight, relevant) = (
            input.col("part")?,
            input.col("user_id")?,
            input.col("product_id")?,
            input.col("weight")?,
            input.col("relevant")?,
        );
        // Training rows and test rows come in runs; each run goes to its list.
        let mut start = rows.start;
        while start < rows.end {
            let is_train = input.str(part, start) == Some("train");
            let mut end = start + 1;
            while end < rows.end && (input.str(part, end) == Some("train")) == is_train {
                end += 1;
            }
            if is_train {
                read_pairs(&mut state.train, &budget, input, start..end)?;
            } else {
                crate::budget::reserve(&mut state.test, end - start, "the test pairs")?;
                for row in start..end {
                    let (Some(u), Some(p)) = (input.i64(user, row), input.i64(product, row)) else {
                        continue;
                    };
                    let w = input.f64(weight, row).unwrap_or(0.0) as f32;
                    state.test.push((u, p, w, input.bool(relevant, row).unwrap_or(false)));
                }
            }
            start = end;
        }
        Ok(())
    }
    fn combine(target: &mut EvalState, source: EvalState) -> anyhow::Result<()> {
        crate::budget::reserve(&mut target.train, source.train.len(), "the training pairs")?;
        crate::budget::reserve(&mut target.test, source.test.len(), "the test pairs")?;
        target.train.extend(source.train);
        target.test.extend(source.test);
        Ok(())
    }
    fn finalize(mut state: EvalState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let k = call.int("k")?;
        let blend = call.double("blend")?;
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        anyhow::ensure!(
            !state.train.is_empty(),
            "no events before the split: move the split later"
        );
        anyhow::ensure!(
            !state.test.is_empty(),
            "no events after the split: move the split earlier"
        );
        let params = als_params(call)?;
        let k = k as usize;
        crate::binding::thread_pool(call.int("threads")?)?.install(|| {
            let trained = train_pairs(std::mem::take(&mut state.train), &params, &budget, &progress)?;
            let model = &ServingModel::new(trained.model)?;
            // Held-out sets per evaluated user (model index), sorted by user id.
            state.test.sort_unstable_by_key(|t| (t.0, t.1));
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
            let lists =
                |recs: Vec<Vec<crate::recommend::serving::Recommendation>>| -> Vec<Vec<u32>> {
                    recs.into_iter()
                        .map(|r| r.into_iter().map(|x| x.product).collect())
                        .collect()
                };
            let als = lists(model.recommend_users(&users, k, 0.0, true));
            let hybrid = lists(model.recommend_users(&users, k, blend as f32, true));
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
            for (name, lists, blend, rmse) in [
                ("als", &als, 0.0, Some(error)),
                ("hybrid", &hybrid, blend, None),
                ("popularity", &popular, 1.0, None),
            ] {
                push_metrics(&mut rows, name, k, &ranking_metrics(lists, &held_out, k, n_items), blend, rmse)?;
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
    m: &metrics::RankingMetrics,
    blend: f64,
    rmse: Option<f64>,
) -> anyhow::Result<()> {
    let c = rows.col::<String>("model")?;
    rows.put_str(c, Some(model));
    let c = rows.col("k")?;
    rows.put(c, Some(k as i32));
    for (name, value) in [
        ("precision", m.precision),
        ("recall", m.recall),
        ("ndcg", m.ndcg),
        ("map", m.map),
        ("coverage", m.coverage),
    ] {
        let c = rows.col::<f64>(name)?;
        rows.put(c, Some(value));
    }
    let c = rows.col("users_evaluated")?;
    rows.put(c, Some(m.users_evaluated as i64));
    let c = rows.col("blend")?;
    rows.put(c, Some(blend));
    let c = rows.col("rmse_vs_weight")?;
    rows.put(c, rmse.filter(|r| r.is_finite()));
    Ok(())
}

pub fn macros() -> Vec<SqlMacro> {
    let params = aggregate::signature::<Evaluate>(&["events", "split := 0.8"], &weight_params());
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let split_source = |side: &str| {
        crate::als::interactions_sql(&format!(
            "(SELECT e.* FROM query_table(events) e, cut WHERE e.event_time {side} cut.at)"
        ))
    };
    let mut inputs = vec!["part"];
    inputs.extend(PAIR_INPUTS);
    inputs.push("relevant");
    // The split (a timestamp, or a fraction of the events' time span) and
    // the train / test pairs, then the evaluation over both.
    let body = format!(
        "WITH {split}, train AS ({train}), test AS ({test}) {rows}",
        split = include_str!("../../sql/macros/evaluate_split.sql"),
        train = split_source("<"),
        test = split_source(">="),
        rows = aggregate::rows_sql::<Evaluate>(
            "ecoreco.evaluate_recommendations",
            &inputs,
            &[],
            "(SELECT 'train' AS part, user_id, product_id, weight, purchases, interactions, category_id, false AS relevant FROM train \
             UNION ALL SELECT 'test', user_id, product_id, weight, purchases, interactions, category_id, carts + purchases > 0 FROM test)"
        ),
    );
    vec![SqlMacro::table("evaluate_recommendations", &params, body)]
}
