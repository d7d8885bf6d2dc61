//! Stage 5: implicit-feedback ALS (Hu, Koren, Volinsky), trained in Rust.
//!
//! `ecoreco.interactions(events)` turns events into weighted (user, product)
//! pairs in SQL (view 1, cart 3, purchase 5, summed, capped at 10: DuckDB's
//! group-by does this best). `ecoreco.als_train(events)` feeds those pairs to
//! the `ecoreco_als_train` aggregate, which maps ids to dense indices, builds
//! the CSR matrices, trains with [`solver`] and returns the model as rows
//! ([`crate::recommend::model`]).


pub mod solver;

use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::BlockSource;
use crate::binding::rows::InputChunk;
use crate::binding::{Args, Check, Column, Param, SqlMacro, SqlType, Value};
use crate::budget::{self, Budget, Progress};
use crate::model::csr::Csr;
use crate::model::table::ModelTable;
use crate::model::{top_categories, FactorModel};
use solver::AlsParams;
use std::collections::HashMap;
use std::sync::Arc;

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
        Param::named("regularization", Double, Value::Double(0.1), "the L2 penalty, e.g. regularization := 0.1")
            .check(Check::Range(0.0, 1e6)),
        Param::named("alpha", Double, Value::Double(1.0), "the confidence slope, e.g. alpha := 1.0")
            .check(Check::Range(0.0, 1e6)),
        Param::named("cg_steps", BigInt, Value::Int(3), "conjugate-gradient steps per row, e.g. cg_steps := 3")
            .check(Check::IntRange(1, 100)),
        Param::named("seed", BigInt, Value::Int(42), "any integer seed, e.g. seed := 42"),
    ]
}

/// The interaction weights of event types, used by the SQL that builds
/// the (user, product) pairs.
pub fn weight_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named("view", Double, Value::Int(1), "the weight of a view, e.g. view := 1"),
        Param::named("cart", Double, Value::Int(3), "the weight of a cart event, e.g. cart := 3"),
        Param::named("purchase", Double, Value::Int(5), "the weight of a purchase, e.g. purchase := 5"),
        Param::named("cap", Double, Value::Int(10), "the largest summed weight of a pair, e.g. cap := 10"),
    ]
}

/// The training parameters of a call, checked (by their declarations).
pub(crate) fn als_params(call: &Args) -> anyhow::Result<AlsParams> {
    Ok(AlsParams {
        factors: call.int("factors")? as usize,
        iterations: call.int("iterations")? as usize,
        regularization: call.double("regularization")? as f32,
        alpha: call.double("alpha")? as f32,
        cg_steps: call.int("cg_steps")? as usize,
        seed: call.int("seed")? as u64,
    })
}

/// The per-row inputs of a training aggregate.
pub(crate) fn pair_inputs() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("user_id", BigInt),
        Column::new("product_id", BigInt),
        Column::new("weight", Double),
        Column::new("purchases", BigInt),
        Column::new("interactions", BigInt),
        Column::new("category_id", BigInt),
    ]
}

/// The SQL expressions the macros pass for [`pair_inputs`].
pub(crate) const PAIR_INPUTS: [&str; 6] = ["user_id", "product_id", "weight", "purchases", "interactions", "category_id"];

/// Reads the pairs of `rows` (in the [`pair_inputs`] layout starting at
/// column `first`) into `pairs`; pairs without a user, product or weight
/// are skipped.
pub(crate) fn read_pairs(
    pairs: &mut Vec<Pair>,
    budget: &Budget,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let (u, p, w) = (input.col("user_id")?, input.col("product_id")?, input.col("weight")?);
    let (b, n, c) = (input.col("purchases")?, input.col("interactions")?, input.col("category_id")?);
    budget::reserve(pairs, rows.len(), "interaction pairs")?;
    budget.check(
        "holding the interaction pairs",
        ((pairs.len() + rows.len()) * std::mem::size_of::<Pair>()) as u64,
        "40 bytes per (user, product) pair",
    )?;
    for row in rows {
        let (Some(user), Some(product), Some(weight)) = (input.i64(u, row), input.i64(p, row), input.f64(w, row)) else {
            continue;
        };
        pairs.push(Pair {
            user,
            product,
            weight: weight as f32,
            purchases: input.i64(b, row).unwrap_or(0).max(0).min(u32::MAX as i64) as u32,
            interactions: input.i64(n, row).unwrap_or(1).max(0).min(u32::MAX as i64) as u32,
            category: input.i64(c, row).unwrap_or(-1),
        });
    }
    Ok(())
}

/// Bytes training needs beyond the pairs: both CSR orientations, the
/// purchase matrix, and the factors with the solver's per-row buffers.
pub fn training_bytes(users: usize, products: usize, pairs: usize, factors: usize) -> u64 {
    let padded = factors.div_ceil(8) * 8;
    let csr = 2 * pairs * (4 + 4) + 2 * (users + products + 2) * 8;
    let factors = 2 * (users + products) * padded * 4;
    let index = (users + products) * 24;
    (csr + factors + index) as u64
}

/// The trained model plus the bookkeeping that goes into its rows.
pub struct Trained {
    pub model: FactorModel,
    pub params: AlsParams,
    pub loss: Vec<f64>,
    pub interactions: usize,
}

impl Trained {
    /// The `param` rows of the model table.
    pub fn param_rows(&self) -> Vec<(String, f64)> {
        let p = &self.params;
        [
            ("factors", p.factors as f64),
            ("iterations", p.iterations as f64),
            ("regularization", p.regularization as f64),
            ("alpha", p.alpha as f64),
            ("cg_steps", p.cg_steps as f64),
            ("seed", p.seed as f64),
            ("users", self.model.user_ids.len() as f64),
            ("products", self.model.product_ids.len() as f64),
            ("interactions", self.interactions as f64),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
    }
}

/// Trains on (user, product, weight, purchases, interactions, category)
/// pairs; ids are mapped to dense indices in sorted order, so the result
/// does not depend on the order the pairs arrived in.
pub(crate) fn train_pairs(
    mut pairs: Vec<Pair>,
    params: &AlsParams,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    anyhow::ensure!(!pairs.is_empty(), "no interactions to train on: the events table has no view, cart or purchase rows with a user_id and product_id");
    pairs.sort_unstable_by_key(|p| (p.user, p.product));
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
    let mut user_ids: Vec<i64> = pairs.iter().map(|p| p.user).collect();
    user_ids.dedup();
    let mut product_ids: Vec<i64> = pairs.iter().map(|p| p.product).collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let product_pos: HashMap<i64, u32> = product_ids
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i as u32))
        .collect();
    budget.check(
        "ALS training",
        (pairs.len() * std::mem::size_of::<Pair>()) as u64
            + training_bytes(user_ids.len(), product_ids.len(), pairs.len(), params.factors),
        "56 bytes per interaction + 8 × factors bytes per user and per product",
    )?;
    progress.say(format!(
        "{} interactions, {} users x {} products; training {} iterations of {} factors",
        pairs.len(),
        user_ids.len(),
        product_ids.len(),
        params.iterations,
        params.factors
    ));

    let mut rows = Vec::with_capacity(pairs.len());
    let mut cols = Vec::with_capacity(pairs.len());
    let mut weights = Vec::with_capacity(pairs.len());
    let mut purchase_rows = Vec::new();
    let mut purchase_cols = Vec::new();
    let mut product_category = vec![i64::MIN; product_ids.len()];
    let mut purchases = vec![0f32; product_ids.len()];
    let mut weight_sum = vec![0f32; product_ids.len()];
    let mut interest = Vec::with_capacity(user_ids.len());
    let mut counts: HashMap<i64, f32> = HashMap::new();
    let mut user = 0u32;
    for (n, p) in pairs.iter().enumerate() {
        if n > 0 && p.user != pairs[n - 1].user {
            interest.push(top_categories(&counts));
            counts.clear();
            user += 1;
        }
        let i = product_pos[&p.product];
        rows.push(user);
        cols.push(i);
        weights.push(p.weight);
        if p.purchases > 0 {
            purchase_rows.push(user);
            purchase_cols.push(i);
        }
        // Pairs are in (user, product) order: the smallest user's category
        // wins, deterministically.
        if product_category[i as usize] == i64::MIN {
            product_category[i as usize] = p.category;
        }
        purchases[i as usize] += p.purchases as f32;
        weight_sum[i as usize] += p.weight;
        *counts.entry(p.category).or_default() += p.interactions as f32;
    }
    interest.push(top_categories(&counts));
    // Popularity: purchases, ties broken by total interaction weight (< 1).
    let max_weight = weight_sum.iter().copied().fold(0.0f32, f32::max);
    let popularity: Vec<f32> = purchases
        .iter()
        .zip(&weight_sum)
        .map(|(p, w)| p + w / (1.0 + max_weight))
        .collect();

    let user_items = Csr::from_triplets(user_ids.len(), product_ids.len(), &rows, &cols, &weights)?;
    let purchased = Csr::from_triplets(
        user_ids.len(),
        product_ids.len(),
        &purchase_rows,
        &purchase_cols,
        &vec![1.0; purchase_rows.len()],
    )?;
    drop(pairs);
    let trained = solver::train_with_callback(&user_items, params, |i, loss| {
        progress.say(format!("iteration {}/{}, loss {loss:.6}", i + 1, params.iterations))
    })?;
    let model_id = crate::model::model_id(
        &[&trained.user_factors, &trained.item_factors],
        &[&user_ids, &product_ids],
    );
    let model = FactorModel {
        model_id,
        factors: params.factors,
        user_ids,
        product_ids,
        user_factors: trained.user_factors,
        item_factors: trained.item_factors,
        product_category,
        popularity,
        purchased,
        interest,
    };
    model.validate()?;
    Ok(Trained {
        model,
        params: params.clone(),
        loss: trained.loss_per_iteration,
        interactions: user_items.nnz(),
    })
}

#[derive(Default)]
pub struct TrainState {
    pairs: Vec<Pair>,
}

/// `ecoreco_als_train`: the model as rows (see [`crate::model::table`]).
pub struct AlsTrain;

impl AggregateFunction for AlsTrain {
    const NAME: &'static str = "ecoreco_als_train";
    const FUNCTION: &'static str = "ecoreco.als_train";
    const EMPTY: &'static str = "the events table is empty: nothing to train on; pass a table with view, cart or purchase events";
    type State = TrainState;
    fn inputs() -> Vec<Column> {
        pair_inputs()
    }
    fn params() -> Vec<Param> {
        let mut params = train_params();
        params.extend(budget::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        crate::model::table::columns()
    }
    fn update(state: &mut TrainState, call: &Args, input: &InputChunk, rows: std::ops::Range<usize>) -> anyhow::Result<()> {
        read_pairs(&mut state.pairs, &Budget::from_setting(call.text("memory_limit")?), input, rows)
    }
    fn combine(target: &mut TrainState, source: TrainState) -> anyhow::Result<()> {
        if target.pairs.len() < source.pairs.len() {
            let small = std::mem::replace(&mut target.pairs, source.pairs);
            budget::reserve(&mut target.pairs, small.len(), "interaction pairs")?;
            target.pairs.extend(small);
        } else {
            budget::reserve(&mut target.pairs, source.pairs.len(), "interaction pairs")?;
            target.pairs.extend(source.pairs);
        }
        Ok(())
    }
    fn finalize(state: TrainState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let params = als_params(call)?;
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        let trained = crate::binding::thread_pool(call.int("threads")?)?
            .install(|| train_pairs(state.pairs, &params, &budget, &progress))?;
        progress.say("trained; writing the model rows");
        let rows = trained.param_rows();
        Ok(Arc::new(ModelTable::new(trained.model, rows, trained.loss)))
    }
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

/// The training call over the pairs of `pairs_sql`, as model rows.
pub fn train_rows(pairs_sql: &str) -> String {
    aggregate::rows_sql::<AlsTrain>("ecoreco.als_train", &PAIR_INPUTS, &[], &format!("({pairs_sql})"))
}

pub fn macros() -> Vec<SqlMacro> {
    let interactions: Vec<String> = std::iter::once("events".to_string())
        .chain(weight_params().iter().map(Param::macro_signature))
        .collect();
    let interactions: Vec<&str> = interactions.iter().map(String::as_str).collect();
    let train = aggregate::signature::<AlsTrain>(&["events"], &weight_params());
    let train: Vec<&str> = train.iter().map(String::as_str).collect();
    vec![
        SqlMacro::table(
            "interactions",
            &interactions,
            format!("SELECT * FROM ({}) ORDER BY user_id, product_id", interactions_sql("query_table(events)")),
        ),
        SqlMacro::table("als_train", &train, train_rows(&interactions_sql("query_table(events)"))),
        SqlMacro::table("als_loss", &["model"], include_str!("../../sql/macros/als_loss.sql")),
        SqlMacro::table("als_params", &["model"], include_str!("../../sql/macros/als_params.sql")),
    ]
}
