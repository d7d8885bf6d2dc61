//! The ALS trainer (implicit feedback; Hu, Koren, Volinsky), which stage 5
//! ([`crate::train`], the `als_train` function) drives: pairs, weighting,
//! the fit of a [`FactorModel`]; its one function is the `interactions`
//! macro (the pairs as a table), and it declares no aggregate.
//!
//! `ecoreco.interactions(events)` turns events into weighted (user, product)
//! pairs in SQL (view 1, cart 3, purchase 5, summed, capped at 10: DuckDB's
//! group-by does this best). `ecoreco.als_train(source)` normalises the rows
//! of any interaction source (`sql/macros/source_rows.sql`), groups them into
//! pairs together with the pairs of the validation split inside them
//! ([`pairs_sql`]), and feeds both to the `ecoreco_als_train` aggregate, which
//! reads them ([`read_pairs`]); [`crate::train`] chooses the parameters
//! (its `tune`, with [`weighting`]), and the trainer maps ids to dense
//! indices, builds the CSR matrices, trains with [`solver`] and returns the
//! model as rows ([`crate::model::table`]).

mod pairs;
pub mod solver;
pub mod validation;
pub mod weighting;

pub(crate) use pairs::{
    attribute_inputs, pair_inputs, plain_pair_inputs, read_pairs, read_plain_pairs,
    ATTRIBUTE_INPUTS, PAIR_INPUTS,
};
pub use pairs::{LatestAttributes, TrainingData};

use crate::binding::{Args, Check, Param, SqlMacro, SqlType, Value};
use crate::budget::{self, Budget};
use crate::model::csr::Csr;
use crate::model::{top_categories, FactorModel, ModelParts};
use crate::progress::Progress;
use crate::rng::{FastMap, FastSet};
use crate::tables;
use rayon::prelude::*;
use solver::AlsParams;

/// One (user, product) pair as the macro aggregated it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    pub user: i64,
    pub product: i64,
    pub weight: f32,
    pub purchases: u32,
    pub interactions: u32,
    pub category: i64,
}

/// The training parameters, declared once for every function that trains
/// (`als_train`, `evaluate_recommendations`): type, default and limits.
pub fn train_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named("factors", BigInt, Value::Int(50), "the latent dimension, e.g. factors := 50")
            .check(Check::IntRange(1, 1024)),
        Param::named("iterations", BigInt, Value::Int(15), "the number of ALS iterations, e.g. iterations := 15")
            .check(Check::IntRange(1, 1000)),
        Param::named("regularization", Double, Value::Null, "the L2 penalty, e.g. regularization := 0.1 (NULL: chosen on your data, else 0.1)")
            .check(Check::Range(0.0, 1e6))
            .nullable(),
        Param::named("alpha", Double, Value::Null, "the confidence slope, e.g. alpha := 1.0 (NULL: chosen on your data, else 1.0)")
            .check(Check::Range(0.0, 1e6))
            .nullable(),
        Param::named("cg_steps", BigInt, Value::Int(3), "conjugate-gradient steps per row, e.g. cg_steps := 3")
            .check(Check::IntRange(1, 100)),
        Param::named("seed", BigInt, Value::Int(42), "any integer seed, e.g. seed := 42"),
        Param::named("confidence", Varchar, Value::Null, "the confidence weighting: 'raw', 'log' or 'bm25' (NULL: chosen on your data, else 'raw')")
            .check(Check::OneOf(&["raw", "log", "bm25"]))
            .nullable(),
        Param::named("half_life", Double, Value::Null, "the recency half-life in days, 0 for none (NULL: chosen on your data, else 0)")
            .check(Check::Range(0.0, 1e6))
            .nullable(),
        Param::named("search", Boolean, Value::Bool(true), "true to choose alpha, regularization, confidence, half-life and blend on a time split of your data, false for the fixed parameters"),
    ]
}

/// The columns an interaction source is read by (macro parameters only:
/// the SQL of `source_rows.sql` uses them).
pub fn source_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "user_col",
            Varchar,
            Value::Text("user_id".into()),
            "the user column, e.g. user_col := 'user_id'",
        ),
        Param::named(
            "item_col",
            Varchar,
            Value::Text("product_id".into()),
            "the product column, e.g. item_col := 'product_id'",
        ),
        Param::named(
            "weight_col",
            Varchar,
            Value::Text("weight".into()),
            "the weight column of a table without event_type, e.g. weight_col := 'weight'",
        ),
        Param::named(
            "time_col",
            Varchar,
            Value::Null,
            "the time column (TIMESTAMP, DATE or seconds), e.g. time_col := 'eventdate'",
        )
        .nullable(),
    ]
}

/// The interaction weights of event types, used by the SQL that builds
/// the (user, product) pairs.
pub fn weight_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "view",
            Double,
            Value::Int(1),
            "the weight of a view, e.g. view := 1",
        ),
        Param::named(
            "cart",
            Double,
            Value::Int(3),
            "the weight of a cart event, e.g. cart := 3",
        ),
        Param::named(
            "purchase",
            Double,
            Value::Int(5),
            "the weight of a purchase, e.g. purchase := 5",
        ),
        Param::named(
            "cap",
            Double,
            Value::Int(10),
            "the largest summed weight of a pair, e.g. cap := 10",
        ),
    ]
}

/// The seed's alpha and regularization, used when the caller leaves them
/// NULL and nothing is chosen.
pub const SEED_ALPHA: f64 = 1.0;
pub const SEED_REGULARIZATION: f64 = 0.1;

/// The training parameters of a call, checked (by their declarations);
/// NULL alpha / regularization are the seed's.
pub(crate) fn als_params(call: &Args) -> anyhow::Result<AlsParams> {
    Ok(AlsParams {
        factors: call.int("factors")? as usize,
        iterations: call.int("iterations")? as usize,
        regularization: call
            .opt_double("regularization")?
            .unwrap_or(SEED_REGULARIZATION) as f32,
        alpha: call.opt_double("alpha")?.unwrap_or(SEED_ALPHA) as f32,
        cg_steps: call.int("cg_steps")? as usize,
        seed: call.int("seed")? as u64,
    })
}

/// What training holds per interaction while the pairs are still held
/// (sorted in place) next to the user × product CSR built from them (a
/// `u32` column and an `f32` value per entry): the first of the trainer's
/// two peaks.
pub const PAIRS_PEAK_BYTES: usize = std::mem::size_of::<Pair>() + 8;
/// What training holds per interaction once the pairs are gone: the CSR and
/// its transpose (8 bytes each).
pub const MATRICES_PEAK_BYTES: usize = 16;
/// Per user during both peaks: its id, its CSR and purchase-matrix row
/// offsets, and its top categories (a small vector: header, 3 × 16 bytes and
/// the allocator's overhead).
pub const BYTES_PER_USER: usize = 8 + 8 + 8 + 88;
/// Per product: its id and position (hash map), row offsets, category,
/// popularity and the purchase and weight totals.
pub const BYTES_PER_PRODUCT: usize = 8 + 32 + 16 + 8 + 4 + 4 + 4;

/// Bytes training holds at its peak: the larger of the pairs phase (the
/// pairs with the CSR) and the solver phase (CSR, transpose and the padded
/// factors, which become the model's unpadded factors in place), plus the
/// per-user and per-product bookkeeping held through both.
pub fn training_bytes(users: usize, products: usize, pairs: usize, factors: usize) -> u64 {
    let padded = factors.div_ceil(8) * 8;
    let pairs_phase = pairs as u64 * PAIRS_PEAK_BYTES as u64;
    let solver_phase =
        pairs as u64 * MATRICES_PEAK_BYTES as u64 + ((users + products) * padded * 4) as u64;
    pairs_phase.max(solver_phase) + (users * BYTES_PER_USER + products * BYTES_PER_PRODUCT) as u64
}

/// [`training_bytes`]' recipe, for the budget's message.
pub fn training_formula(factors: usize) -> String {
    format!(
        "the larger of {PAIRS_PEAK_BYTES} bytes per interaction and {MATRICES_PEAK_BYTES} bytes per \
         interaction + 4 × {} bytes per user and per product, + {BYTES_PER_USER} bytes per user \
         and {BYTES_PER_PRODUCT} per product",
        factors.div_ceil(8) * 8
    )
}

/// The trained model plus the bookkeeping that goes into its rows.
pub struct Trained {
    pub model: FactorModel,
    pub params: AlsParams,
    pub loss: Vec<f64>,
    pub interactions: usize,
    /// The param rows of the search that chose the parameters, if one
    /// ran (written by the layer that searched, `crate::train`).
    pub search: Option<Vec<(&'static str, f64)>>,
}

impl Trained {
    /// The `param` rows of the model table.
    pub fn param_rows(&self) -> Vec<(String, f64)> {
        let p = &self.params;
        [
            ("factors", p.factors as f64),
            ("iterations", p.iterations as f64),
            (
                "regularization",
                crate::model::f32_decimal(p.regularization),
            ),
            ("alpha", crate::model::f32_decimal(p.alpha)),
            ("cg_steps", p.cg_steps as f64),
            ("seed", p.seed as f64),
            ("users", self.model.user_ids.len() as f64),
            ("products", self.model.product_ids.len() as f64),
            ("interactions", self.interactions as f64),
        ]
        .into_iter()
        // How the weights were transformed (the model's own record of it).
        .chain(self.model.weighting.param_rows())
        .chain([("search", self.search.is_some() as i64 as f64)])
        .chain(self.search.iter().flatten().copied())
        .map(|(n, v)| (n.to_string(), v))
        .collect()
    }
}

/// Trains on (user, product, weight, purchases, interactions, category)
/// pairs; ids are mapped to dense indices in sorted order, so the result
/// does not depend on the order the pairs arrived in.
/// The pair weights pass through `confidence` ([`weighting::apply`])
/// before ALS sees them (popularity and interest keep the raw weights and
/// counts); `blend` is the serving blend stored with the model. Without
/// `record_loss` (the search's short fits) the loss is not computed.
/// From drawn factors: the tests' entry point ([`train_pairs_from`] is the
/// one the layers above call).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_pairs(
    pairs: Vec<Pair>,
    params: &AlsParams,
    confidence: weighting::Confidence,
    blend: f32,
    record_loss: bool,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    train_pairs_from(
        pairs,
        params,
        confidence,
        blend,
        record_loss,
        None,
        budget,
        progress,
    )
}

/// Factors to start training from instead of drawn ones: a model of the
/// same users and products (the search's fit of a neighbouring candidate on
/// the same pairs). Used only when its ids are exactly the pairs' ids.
pub(crate) struct WarmStart<'a> {
    pub user_ids: &'a [i64],
    pub product_ids: &'a [i64],
    pub user_factors: &'a [f32],
    pub item_factors: &'a [f32],
}

/// [`train_pairs`], starting from `warm`'s factors when given and its ids
/// match.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_pairs_from(
    mut pairs: Vec<Pair>,
    params: &AlsParams,
    confidence: weighting::Confidence,
    blend: f32,
    record_loss: bool,
    warm: Option<WarmStart>,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    anyhow::ensure!(!pairs.is_empty(), "no interactions to train on: the events table has no view, cart or purchase rows with a user_id and product_id");
    pairs.par_sort_unstable_by_key(|p| (p.user, p.product));
    if let Some(w) = pairs
        .windows(2)
        .find(|w| (w[0].user, w[0].product) == (w[1].user, w[1].product))
    {
        anyhow::bail!(
            "user {} and product {} appear in more than one interaction row; pass one row per pair",
            w[0].user,
            w[0].product
        );
    }
    if let Some(p) = pairs
        .iter()
        .find(|p| !p.weight.is_finite() || p.weight < 0.0)
    {
        anyhow::bail!(
            "interaction weight {} of user {} and product {} is not a finite number >= 0; pass weights >= 0",
            p.weight,
            p.user,
            p.product
        );
    }
    // Ids in sorted order without a per-pair copy: users as their runs in
    // the sorted pairs, products as each thread's distinct set, merged.
    let mut user_ids: Vec<i64> = Vec::new();
    for run in pairs.chunk_by(|a, b| a.user == b.user) {
        budget::reserve(&mut user_ids, 1, "user ids")?;
        user_ids.push(run[0].user);
    }
    let mut product_ids: Vec<i64> = pairs
        .par_chunks(1 << 20)
        .map(|chunk| chunk.iter().map(|p| p.product).collect::<FastSet<i64>>())
        .reduce(FastSet::default, |mut a, b| {
            a.extend(b);
            a
        })
        .into_iter()
        .collect();
    product_ids.par_sort_unstable();
    let product_pos: FastMap<i64, u32> = product_ids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as u32))
        .collect();
    budget.check(
        "ALS training",
        training_bytes(
            user_ids.len(),
            product_ids.len(),
            pairs.len(),
            params.factors,
        ),
        &training_formula(params.factors),
    )?;
    progress.say(format!(
        "{} interactions, {} users x {} products; training {} iterations of {} factors",
        pairs.len(),
        user_ids.len(),
        product_ids.len(),
        params.iterations,
        params.factors
    ));

    // The pairs are sorted by (user, product) and unique: their user runs
    // are the CSR's rows, in order, with nothing to sum.
    let mut indptr = budget::filled(user_ids.len() + 1, 0usize, "the interaction matrix")?;
    for (u, run) in pairs.chunk_by(|a, b| a.user == b.user).enumerate() {
        indptr[u + 1] = indptr[u] + run.len();
    }
    let mut indices = budget::filled(pairs.len(), 0u32, "the interaction matrix")?;
    let mut values = budget::filled(pairs.len(), 0f32, "the interaction matrix")?;
    indices
        .par_iter_mut()
        .zip(values.par_iter_mut())
        .zip(pairs.par_iter())
        .for_each(|((i, v), p)| {
            *i = product_pos[&p.product];
            *v = p.weight;
        });
    let mut user_items =
        Csr::from_sorted_parts(user_ids.len(), product_ids.len(), indptr, indices, values)?;
    let weighting = weighting::apply(&mut user_items, confidence);
    // The product totals and interests before the solver: the pairs (most
    // of the memory) are gone before the transpose and the factors are made.
    let stats = event_stats(&pairs, &user_ids, &product_pos)?;
    drop(pairs);
    drop(product_pos);
    let mut trainer = solver::AlsTrainer::new(&user_items, params)?;
    if let Some(warm) = warm.filter(|w| w.user_ids == user_ids && w.product_ids == product_ids) {
        trainer.start_from(warm.user_factors, warm.item_factors)?;
    }
    let trained = if record_loss {
        trainer.train(params.iterations, |i, loss| {
            progress.say(format!(
                "iteration {}/{}, loss {loss:.6}",
                i + 1,
                params.iterations
            ))
        })
    } else {
        for _ in 0..params.iterations {
            trainer.step();
        }
        trainer.into_model(Vec::new())
    };
    let n_products = product_ids.len();
    // The blend is part of what is served, so part of the model's identity.
    let model = FactorModel::new(ModelParts {
        factors: params.factors,
        user_ids,
        product_ids,
        user_factors: trained.user_factors,
        item_factors: trained.item_factors,
        product_category: stats.product_category,
        popularity: stats.popularity,
        purchased: stats.purchased,
        interest: stats.interest,
        blend,
        attributes: crate::model::ProductAttributes::unknown(n_products),
        weighting,
    })?;
    Ok(Trained {
        model,
        params: params.clone(),
        loss: trained.loss_per_iteration,
        interactions: user_items.nnz(),
        search: None,
    })
}

/// What the events say about a model's users and products, beyond the
/// factors: shared by the trainer and the Spark import, so both write the
/// same rows for the same events.
pub(crate) struct EventStats {
    /// category_id per product (-1 for a product with no pair).
    pub product_category: Vec<i64>,
    /// Purchases, ties broken by total interaction weight (< 1).
    pub popularity: Vec<f32>,
    /// Products each user bought.
    pub purchased: Csr,
    /// Each user's top-3 categories with their share of the user's interactions.
    pub interest: Vec<Vec<(i64, f32)>>,
    /// Pairs of a known user and a known product.
    pub interactions: usize,
}

/// Users per chunk of [`event_stats`]' parallel interests.
const INTEREST_CHUNK: usize = 65_536;

/// `pairs` sorted by (user, product); `user_ids` sorted, `product_pos`
/// maps product_id to its position. Pairs of unknown products count only
/// for their user's interest; pairs of unknown users only for the product.
pub(crate) fn event_stats(
    pairs: &[Pair],
    user_ids: &[i64],
    product_pos: &FastMap<i64, u32>,
) -> anyhow::Result<EventStats> {
    let n_products = product_pos.len();
    let mut purchase_rows = Vec::new();
    let mut purchase_cols = Vec::new();
    let mut product_category = budget::filled(n_products, i64::MIN, "product categories")?;
    let mut purchases = budget::filled(n_products, 0f32, "product purchases")?;
    let mut weight_sum = budget::filled(n_products, 0f32, "product weights")?;
    let mut interest = budget::filled(user_ids.len(), Vec::new(), "user interests")?;
    let mut interactions = 0;
    // Users a chunk at a time: the product totals in pair order on this
    // thread, then the chunk's interests in parallel (each depends on its
    // user's pairs only), with buffers of one chunk, not of every user.
    let mut runs = pairs.chunk_by(|a, b| a.user == b.user);
    let mut chunk: Vec<(&[Pair], Option<usize>)> = Vec::with_capacity(INTEREST_CHUNK);
    loop {
        chunk.clear();
        chunk.extend(
            runs.by_ref()
                .take(INTEREST_CHUNK)
                .map(|run| (run, user_ids.binary_search(&run[0].user).ok())),
        );
        if chunk.is_empty() {
            break;
        }
        for &(run, user) in &chunk {
            for p in run {
                if let Some(&i) = product_pos.get(&p.product) {
                    // Pairs are in (user, product) order: the smallest user's
                    // category wins, deterministically.
                    if product_category[i as usize] == i64::MIN {
                        product_category[i as usize] = p.category;
                    }
                    purchases[i as usize] += p.purchases as f32;
                    weight_sum[i as usize] += p.weight;
                    if let Some(u) = user {
                        interactions += 1;
                        if p.purchases > 0 {
                            purchase_rows.push(u as u32);
                            purchase_cols.push(i);
                        }
                    }
                }
            }
        }
        let tops: Vec<Vec<(i64, f32)>> = chunk
            .par_iter()
            .map_init(FastMap::<i64, f32>::default, |counts, &(run, user)| {
                if user.is_none() {
                    return Vec::new();
                }
                counts.clear();
                for p in run {
                    *counts.entry(p.category).or_default() += p.interactions as f32;
                }
                top_categories(counts)
            })
            .collect();
        for (&(_, user), top) in chunk.iter().zip(tops) {
            if let Some(u) = user {
                interest[u] = top;
            }
        }
    }
    for c in &mut product_category {
        if *c == i64::MIN {
            *c = -1;
        }
    }
    // Popularity: purchases, ties broken by total interaction weight (< 1).
    let max_weight = weight_sum.iter().copied().fold(0.0f32, f32::max);
    let popularity: Vec<f32> = purchases
        .iter()
        .zip(&weight_sum)
        .map(|(p, w)| p + w / (1.0 + max_weight))
        .collect();
    let purchased = Csr::from_triplets(
        user_ids.len(),
        n_products,
        &purchase_rows,
        &purchase_cols,
        &vec![1.0; purchase_rows.len()],
    )?;
    Ok(EventStats {
        product_category,
        popularity,
        purchased,
        interest,
        interactions,
    })
}

/// Per (user, product): the summed weight (capped) and counts, from the
/// events in `source` (a FROM item). Shared by `interactions`, `als_train`
/// and the evaluation.
pub fn interactions_sql(source: &str) -> String {
    format!(
        "SELECT user_id, product_id, \
         least(sum(CASE event_type WHEN 'view' THEN view WHEN 'cart' THEN cart WHEN 'purchase' THEN purchase END), cap)::DOUBLE AS weight, \
         count(*) AS interactions, count(*) FILTER (event_type = 'view') AS views, count(*) FILTER (event_type = 'cart') AS carts, \
         count(*) FILTER (event_type = 'purchase') AS purchases, min(category_id) AS category_id, max(event_time) AS last_event \
         FROM {source} \
         WHERE user_id IS NOT NULL AND product_id IS NOT NULL AND event_type IN ('view', 'cart', 'purchase') \
         GROUP BY user_id, product_id"
    )
}

/// The rows of the macro's `events` source, normalised
/// (`sql/macros/source_rows.sql`), as CTEs; `function` names the caller
/// in errors.
pub fn source_rows_sql(function: &str) -> String {
    include_str!("../../sql/macros/source_rows.sql").replace(
        "ecoreco_function",
        &crate::binding::sql::quote_literal(function),
    )
}

/// The training pairs ([`PAIR_INPUTS`], then [`ATTRIBUTE_INPUTS`]) of the
/// normalised rows `rows` (a CTE name): per (user, product) the weight
/// (capped at `cap` for events), counts and last time, the pair's last
/// brand and last finite price with their times, and the same over the rows before the validation
/// cut (the last [`validation::VALIDATION_SHARE`] of the rows' time span held
/// out), with whether the pair is a validation target: a pair carted or
/// bought after the cut, or, in a source where no row is a cart or a
/// purchase (a views-only log), any pair touched after the cut, so that
/// the next viewed products judge the search there. Without the search
/// (the calling macro's `search` parameter false) the split columns are
/// NULL (no cut, no split built or held).
pub fn pairs_sql(rows: &str) -> String {
    // Two branches under constant filters on `search`, of which DuckDB
    // plans only the true one: without the search the group-by has six
    // aggregates instead of sixteen, and no time span to compute first, so
    // the rows stream through once instead of being materialised for two
    // readers (at 42M events: most of the pairs' time, and their spill).
    let pair = "user_id, product_id, \
           least(sum(w), CASE WHEN any_value(is_events) THEN cap ELSE 'infinity'::DOUBLE END)::DOUBLE AS weight, \
           sum(bought)::BIGINT AS purchases, sum(n)::BIGINT AS interactions, min(category_id) AS category_id, max(t) AS last_time, \
           struct_extract(max(struct_pack(t := coalesce(t, 0), v := brand)) FILTER (brand IS NOT NULL), 'v') AS brand, \
           struct_extract(max(struct_pack(t := coalesce(t, 0), v := brand)) FILTER (brand IS NOT NULL), 't') AS brand_time, \
           struct_extract(max(struct_pack(t := coalesce(t, 0), v := price)) FILTER (isfinite(price)), 'v') AS price, \
           struct_extract(max(struct_pack(t := coalesce(t, 0), v := price)) FILTER (isfinite(price)), 't') AS price_time";
    format!(
        "WITH ecoreco_span AS (SELECT min(t) AS lo, max(t) AS hi, coalesce(bool_or(wanted), false) AS any_wanted FROM {rows} WHERE search), \
         ecoreco_vcut AS (SELECT lo AS first_time, lo + (hi - lo) * {keep} AS v_cut, any_wanted FROM ecoreco_span) \
         SELECT {pair}, \
           CASE WHEN count(*) FILTER (t < v_cut) > 0 THEN \
             least(sum(w) FILTER (t < v_cut), CASE WHEN any_value(is_events) THEN cap ELSE 'infinity'::DOUBLE END) END::DOUBLE AS v_weight, \
           coalesce(sum(bought) FILTER (t < v_cut), 0)::BIGINT AS v_purchases, \
           coalesce(sum(n) FILTER (t < v_cut), 0)::BIGINT AS v_interactions, \
           max(t) FILTER (t < v_cut) AS v_time, \
           coalesce(bool_or(wanted OR NOT any_wanted) FILTER (t >= v_cut), false) AS v_target, \
           any_value(v_cut) AS v_cut, any_value(first_time) AS first_time \
         FROM {rows}, ecoreco_vcut WHERE search GROUP BY user_id, product_id \
         UNION ALL \
         SELECT {pair}, \
           NULL::DOUBLE AS v_weight, 0::BIGINT AS v_purchases, 0::BIGINT AS v_interactions, NULL::DOUBLE AS v_time, \
           false AS v_target, NULL::DOUBLE AS v_cut, NULL::DOUBLE AS first_time \
         FROM {rows} WHERE NOT search GROUP BY user_id, product_id",
        keep = 1.0 - validation::VALIDATION_SHARE,
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let interactions: Vec<String> = std::iter::once("events".to_string())
        .chain(weight_params().iter().map(Param::macro_signature))
        .collect();
    let interactions: Vec<&str> = interactions.iter().map(String::as_str).collect();
    vec![SqlMacro::table(
        "interactions",
        &interactions,
        format!(
            "SELECT * FROM ({}) ORDER BY user_id, product_id",
            interactions_sql("query_table(events)")
        ),
    )
    .checking("events", &tables::events(&tables::INTERACTION_COLUMNS))]
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn training_bytes_is_the_larger_peak_plus_the_bookkeeping() {
        assert_eq!(std::mem::size_of::<Pair>(), 40);
        // 100 pairs, 10 users, 5 products, 50 factors (56 padded): the pairs
        // phase 100 · 48 = 4,800 against the solver phase 100 · 16 +
        // 15 · 56 · 4 = 4,960; plus 10 · 112 + 5 · 76.
        assert_eq!(training_bytes(10, 5, 100, 50), 4_960 + 1_120 + 380);
        // With few factors the pairs phase is the larger.
        assert_eq!(training_bytes(10, 5, 100, 8), 4_800 + 1_120 + 380);
        let text = training_formula(50);
        assert!(
            text.contains("48 bytes per interaction")
                && text.contains("16 bytes per interaction + 4 × 56 bytes")
                && text.contains("112 bytes per user and 76 per product"),
            "{text}"
        );
    }
}
