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

use crate::als::{train_pairs, Pair, TrainSettings};
use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::{Column, SqlMacro, SqlType};
use metrics::{ranking_metrics, rmse};
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct EvalState {
    train: Vec<Pair>,
    /// (user, product, weight, relevant: carted or bought after the split).
    test: Vec<(i64, i64, f32, bool)>,
    settings: Option<(TrainSettings, i64, f64)>,
}

/// Argument layout: part, user_id, product_id, weight, purchases,
/// interactions, category_id, relevant, then the training parameters
/// (factors, iterations, regularization, alpha, cg_steps, seed, threads),
/// then k and blend.
fn eval_params() -> Vec<SqlType> {
    use SqlType::*;
    vec![
        Varchar, BigInt, BigInt, Double, BigInt, BigInt, BigInt, Boolean, BigInt, BigInt, Double,
        Double, BigInt, BigInt, BigInt, BigInt, Double,
    ]
}

pub struct Evaluate;

impl AggregateFunction for Evaluate {
    const NAME: &'static str = "ecoreco_evaluate";
    type State = EvalState;
    fn params() -> Vec<SqlType> {
        eval_params()
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("model", SqlType::Varchar),
            Column::new("k", SqlType::Integer),
            Column::new("precision", SqlType::Double),
            Column::new("recall", SqlType::Double),
            Column::new("ndcg", SqlType::Double),
            Column::new("map", SqlType::Double),
            Column::new("coverage", SqlType::Double),
            Column::new("users_evaluated", SqlType::BigInt),
            Column::new("blend", SqlType::Double),
            Column::new("rmse_vs_weight", SqlType::Double),
        ]
    }
    fn update(
        state: &mut EvalState,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        for row in rows {
            if state.settings.is_none() {
                let k = input
                    .i64(15, row)
                    .ok_or_else(|| anyhow::anyhow!("parameter `k` is NULL; pass e.g. k := 10"))?;
                let blend = input.f64(16, row).ok_or_else(|| {
                    anyhow::anyhow!("parameter `blend` is NULL; pass a number in [0, 1]")
                })?;
                state.settings = Some((TrainSettings::read(input, row, 8)?, k, blend));
            }
            let (Some(user), Some(product)) = (input.i64(1, row), input.i64(2, row)) else {
                continue;
            };
            let weight = input.f64(3, row).unwrap_or(0.0) as f32;
            match input.str(0, row) {
                Some("train") => state.train.push(Pair {
                    user,
                    product,
                    weight,
                    purchases: input.i64(4, row).unwrap_or(0).max(0) as u32,
                    interactions: input.i64(5, row).unwrap_or(1).max(0) as u32,
                    category: input.i64(6, row).unwrap_or(-1),
                }),
                _ => state
                    .test
                    .push((user, product, weight, input.bool(7, row).unwrap_or(false))),
            }
        }
        Ok(())
    }
    fn combine(target: &mut EvalState, source: EvalState) -> anyhow::Result<()> {
        if target.settings.is_none() {
            target.settings = source.settings;
        }
        target.train.extend(source.train);
        target.test.extend(source.test);
        Ok(())
    }
    fn finalize(mut state: EvalState) -> anyhow::Result<RowSet> {
        let (settings, k, blend) = state
            .settings
            .ok_or_else(|| anyhow::anyhow!("the events table is empty: nothing to evaluate"))?;
        if !(1..=1_000).contains(&k) {
            anyhow::bail!("parameter `k` is {k}; it must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&blend) {
            anyhow::bail!("parameter `blend` is {blend}; it must be between 0 and 1");
        }
        anyhow::ensure!(
            !state.train.is_empty(),
            "no events before the split: move the split later"
        );
        anyhow::ensure!(
            !state.test.is_empty(),
            "no events after the split: move the split earlier"
        );
        let params = settings.params()?;
        let k = k as usize;
        crate::binding::thread_pool(settings.threads)?.install(|| {
            let trained = train_pairs(std::mem::take(&mut state.train), &params)?;
            let model = &trained.serving;
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
            let mut out = MetricRows::default();
            let error = rmse(&predicted, &actual);
            out.push(
                "als",
                k,
                &ranking_metrics(&als, &held_out, k, n_items),
                0.0,
                Some(error),
            );
            out.push(
                "hybrid",
                k,
                &ranking_metrics(&hybrid, &held_out, k, n_items),
                blend,
                None,
            );
            out.push(
                "popularity",
                k,
                &ranking_metrics(&popular, &held_out, k, n_items),
                1.0,
                None,
            );
            Ok(out.into_rowset())
        })
    }
}

#[derive(Default)]
struct MetricRows {
    model: Vec<Option<String>>,
    k: Vec<Option<i32>>,
    precision: Vec<Option<f64>>,
    recall: Vec<Option<f64>>,
    ndcg: Vec<Option<f64>>,
    map: Vec<Option<f64>>,
    coverage: Vec<Option<f64>>,
    users: Vec<Option<i64>>,
    blend: Vec<Option<f64>>,
    rmse: Vec<Option<f64>>,
}

impl MetricRows {
    fn push(
        &mut self,
        model: &str,
        k: usize,
        m: &metrics::RankingMetrics,
        blend: f64,
        rmse: Option<f64>,
    ) {
        self.model.push(Some(model.to_string()));
        self.k.push(Some(k as i32));
        self.precision.push(m.precision);
        self.recall.push(m.recall);
        self.ndcg.push(m.ndcg);
        self.map.push(m.map);
        self.coverage.push(Some(m.coverage));
        self.users.push(Some(m.users_evaluated as i64));
        self.blend.push(Some(blend));
        self.rmse.push(rmse.filter(|r| r.is_finite()));
    }
    fn into_rowset(self) -> RowSet {
        RowSet::new()
            .with("model", Values::Text(self.model))
            .with("k", Values::Integer(self.k))
            .with("precision", Values::Double(self.precision))
            .with("recall", Values::Double(self.recall))
            .with("ndcg", Values::Double(self.ndcg))
            .with("map", Values::Double(self.map))
            .with("coverage", Values::Double(self.coverage))
            .with("users_evaluated", Values::BigInt(self.users))
            .with("blend", Values::Double(self.blend))
            .with("rmse_vs_weight", Values::Double(self.rmse))
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let mut params = vec!["events", "split := 0.8", "k := 10"];
    let blend = format!("blend := {}", crate::recommend::DEFAULT_BLEND);
    params.push(&blend);
    params.extend(crate::als::WEIGHT_PARAMS);
    params.extend(crate::als::TRAIN_PARAMS);
    // The split: a timestamp, or a fraction of the events' time span.
    let body = format!(
        "WITH bounds AS (SELECT min(event_time) AS lo, max(event_time) AS hi FROM query_table(events)), \
         cut AS (SELECT coalesce(try_cast(split::VARCHAR AS TIMESTAMP), \
                 make_timestamp((epoch_us(lo) + (epoch_us(hi) - epoch_us(lo)) * \
                 CASE WHEN try_cast(split::VARCHAR AS DOUBLE) > 0 AND try_cast(split::VARCHAR AS DOUBLE) < 1 \
                 THEN try_cast(split::VARCHAR AS DOUBLE) \
                 ELSE error('evaluate_recommendations: split must be a fraction strictly between 0 and 1 or a timestamp, got ' || split::VARCHAR) END)::BIGINT)) AS at \
                 FROM bounds), \
         train AS ({train}), \
         test AS ({test}) \
         SELECT unnest(ecoreco_evaluate(part, user_id, product_id, weight, purchases, interactions, category_id, relevant, \
         factors::BIGINT, iterations::BIGINT, regularization::DOUBLE, alpha::DOUBLE, cg_steps::BIGINT, seed::BIGINT, \
         current_setting('threads')::BIGINT, k::BIGINT, blend::DOUBLE), recursive := true) FROM ( \
         SELECT 'train' AS part, user_id, product_id, weight, purchases, interactions, category_id, false AS relevant FROM train \
         UNION ALL SELECT 'test', user_id, product_id, weight, purchases, interactions, category_id, carts + purchases > 0 FROM test)",
        train = crate::als::interactions_sql("(SELECT e.* FROM query_table(events) e, cut WHERE e.event_time < cut.at)"),
        test = crate::als::interactions_sql("(SELECT e.* FROM query_table(events) e, cut WHERE e.event_time >= cut.at)"),
    );
    vec![SqlMacro::table("evaluate_recommendations", &params, body)]
}
