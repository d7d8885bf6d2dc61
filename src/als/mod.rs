//! Stage 5: implicit-feedback ALS (Hu, Koren, Volinsky), trained in Rust.
//!
//! `ecoreco.interactions(events)` turns events into weighted (user, product)
//! pairs in SQL (view 1, cart 3, purchase 5, summed, capped at 10: DuckDB's
//! group-by does this best). `ecoreco.als_train(events)` feeds those pairs to
//! the `ecoreco_als_train` aggregate, which maps ids to dense indices, builds
//! the CSR matrices, trains with [`solver`] and returns the model as rows
//! ([`crate::recommend::model`]).


pub mod solver;

use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Column, SqlMacro, SqlType};
use crate::recommend::model::{self, to_rows};
use crate::recommend::serving::{top_categories, ServingModel};
use crate::model::csr::Csr;
use solver::AlsParams;
use std::collections::HashMap;

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

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TrainSettings {
    factors: i64,
    iterations: i64,
    regularization: f64,
    alpha: f64,
    cg_steps: i64,
    seed: i64,
    pub(crate) threads: i64,
}

#[derive(Default)]
pub struct TrainState {
    pairs: Vec<Pair>,
    settings: Option<TrainSettings>,
}

impl TrainSettings {
    /// Reads the training parameters from argument columns starting at `first`.
    pub(crate) fn read(input: &InputChunk, row: usize, first: usize) -> anyhow::Result<Self> {
        let int = |col: usize, name: &str| {
            input.i64(col, row).ok_or_else(|| {
                anyhow::anyhow!(
                    "parameter `{name}` is NULL; leave it out for the default or pass a number"
                )
            })
        };
        let real = |col: usize, name: &str| {
            input.f64(col, row).ok_or_else(|| {
                anyhow::anyhow!(
                    "parameter `{name}` is NULL; leave it out for the default or pass a number"
                )
            })
        };
        Ok(TrainSettings {
            factors: int(first, "factors")?,
            iterations: int(first + 1, "iterations")?,
            regularization: real(first + 2, "regularization")?,
            alpha: real(first + 3, "alpha")?,
            cg_steps: int(first + 4, "cg_steps")?,
            seed: int(first + 5, "seed")?,
            threads: int(first + 6, "threads")?,
        })
    }

    pub(crate) fn params(&self) -> anyhow::Result<AlsParams> {
        let check = |name: &str, v: i64, max: i64| {
            if v < 1 || v > max {
                anyhow::bail!("parameter `{name}` is {v}; it must be between 1 and {max}")
            }
            Ok(v as usize)
        };
        let finite = |name: &str, v: f64| {
            if !v.is_finite() || v < 0.0 {
                anyhow::bail!("parameter `{name}` is {v}; it must be a finite number >= 0")
            }
            Ok(v as f32)
        };
        Ok(AlsParams {
            factors: check("factors", self.factors, 1024)?,
            iterations: check("iterations", self.iterations, 1000)?,
            regularization: finite("regularization", self.regularization)?,
            alpha: finite("alpha", self.alpha)?,
            cg_steps: check("cg_steps", self.cg_steps, 100)?,
            seed: self.seed as u64,
        })
    }
}

/// The trained model plus the bookkeeping that goes into its rows.
pub struct Trained {
    pub serving: ServingModel,
    pub params: AlsParams,
    pub loss: Vec<f64>,
    pub interactions: usize,
}

/// Trains on (user, product, weight, purchases, interactions, category)
/// pairs; ids are mapped to dense indices in sorted order, so the result
/// does not depend on the order the pairs arrived in.
pub(crate) fn train_pairs(mut pairs: Vec<Pair>, params: &AlsParams) -> anyhow::Result<Trained> {
    anyhow::ensure!(!pairs.is_empty(), "no interactions to train on: the events table has no view, cart or purchase rows with a user_id and product_id");
    pairs.sort_unstable_by_key(|p| (p.user, p.product));
    if let Some(w) = pairs
        .windows(2)
        .find(|w| (w[0].user, w[0].product) == (w[1].user, w[1].product))
    {
        anyhow::bail!(
            "user {} and product {} appear in more than one interaction row",
            w[0].user,
            w[0].product
        );
    }
    if let Some(p) = pairs
        .iter()
        .find(|p| !p.weight.is_finite() || p.weight < 0.0)
    {
        anyhow::bail!(
            "interaction weight {} of user {} and product {} is not a finite number >= 0",
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

    let mut rows = Vec::with_capacity(pairs.len());
    let mut cols = Vec::with_capacity(pairs.len());
    let mut weights = Vec::with_capacity(pairs.len());
    let mut user = 0u32;
    for (n, p) in pairs.iter().enumerate() {
        if n > 0 && p.user != pairs[n - 1].user {
            user += 1;
        }
        rows.push(user);
        cols.push(product_pos[&p.product]);
        weights.push(p.weight);
    }
    let user_items = Csr::from_triplets(user_ids.len(), product_ids.len(), &rows, &cols, &weights)?;
    let stats = event_stats(&pairs, &user_ids, &product_pos)?;
    let model = solver::train(&user_items, params)?;
    let id = model::model_id(
        &[&model.user_factors, &model.item_factors],
        &[&user_ids, &product_ids],
    );
    let serving = ServingModel::new(
        id,
        params.factors,
        user_ids,
        product_ids,
        model.user_factors,
        model.item_factors,
        stats.product_category,
        stats.popularity,
        stats.purchased,
        stats.interest,
    )?;
    Ok(Trained {
        serving,
        params: params.clone(),
        loss: model.loss_per_iteration,
        interactions: pairs.len(),
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

/// `pairs` sorted by (user, product); `user_ids` sorted, `product_pos`
/// maps product_id to its position. Pairs of unknown products count only
/// for their user's interest; pairs of unknown users only for the product.
pub(crate) fn event_stats(
    pairs: &[Pair],
    user_ids: &[i64],
    product_pos: &HashMap<i64, u32>,
) -> anyhow::Result<EventStats> {
    let n_products = product_pos.len();
    let mut purchase_rows = Vec::new();
    let mut purchase_cols = Vec::new();
    let mut product_category = vec![i64::MIN; n_products];
    let mut purchases = vec![0f32; n_products];
    let mut weight_sum = vec![0f32; n_products];
    let mut interest = vec![Vec::new(); user_ids.len()];
    let mut counts: HashMap<i64, f32> = HashMap::new();
    let mut interactions = 0;
    for run in pairs.chunk_by(|a, b| a.user == b.user) {
        let user = user_ids.binary_search(&run[0].user).ok();
        counts.clear();
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
            *counts.entry(p.category).or_default() += p.interactions as f32;
        }
        if let Some(u) = user {
            interest[u] = top_categories(&counts);
        }
    }
    for c in &mut product_category {
        if *c == i64::MIN {
            *c = -1;
        }
    }
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

/// Reads pairs in the argument layout the macros use.
fn collect(
    state: &mut TrainState,
    input: &InputChunk,
    rows: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    for row in rows {
        if state.settings.is_none() {
            state.settings = Some(TrainSettings::read(input, row, 6)?);
        }
        let (Some(user), Some(product)) = (input.i64(0, row), input.i64(1, row)) else {
            continue;
        };
        let Some(weight) = input.f64(2, row) else {
            continue;
        };
        state.pairs.push(Pair {
            user,
            product,
            weight: weight as f32,
            purchases: input.i64(3, row).unwrap_or(0).max(0) as u32,
            interactions: input.i64(4, row).unwrap_or(1).max(0) as u32,
            category: input.i64(5, row).unwrap_or(-1),
        });
    }
    Ok(())
}

pub fn train_params() -> Vec<SqlType> {
    use SqlType::*;
    vec![
        BigInt, BigInt, Double, BigInt, BigInt, BigInt, BigInt, BigInt, Double, Double, BigInt,
        BigInt, BigInt,
    ]
}

/// `ecoreco_als_train`: the model as rows.
pub struct AlsTrain;

impl AggregateFunction for AlsTrain {
    const NAME: &'static str = "ecoreco_als_train";
    type State = TrainState;
    fn params() -> Vec<SqlType> {
        train_params()
    }
    fn columns() -> Vec<Column> {
        model::model_columns()
    }
    fn update(
        state: &mut TrainState,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        collect(state, input, rows)
    }
    fn combine(target: &mut TrainState, source: TrainState) -> anyhow::Result<()> {
        if target.settings.is_none() {
            target.settings = source.settings;
        }
        target.pairs.extend(source.pairs);
        Ok(())
    }
    fn finalize(state: TrainState) -> anyhow::Result<RowSet> {
        let settings = state
            .settings
            .ok_or_else(|| anyhow::anyhow!("the events table is empty: nothing to train on"))?;
        let params = settings.params()?;
        let trained = crate::binding::thread_pool(settings.threads)?
            .install(|| train_pairs(state.pairs, &params))?;
        let p = &trained.params;
        let rows = to_rows(
            &trained.serving,
            &[
                ("factors", p.factors as f64),
                ("iterations", p.iterations as f64),
                ("regularization", p.regularization as f64),
                ("alpha", p.alpha as f64),
                ("cg_steps", p.cg_steps as f64),
                ("seed", p.seed as f64),
                ("users", trained.serving.user_ids.len() as f64),
                ("products", trained.serving.product_ids.len() as f64),
                ("interactions", trained.interactions as f64),
            ],
            &trained.loss,
        );
        // Served straight from memory until evicted: no reload on first use.
        model::remember(trained.serving);
        Ok(rows.into_rowset())
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

/// The training call over the pairs of `pairs_sql`.
pub fn train_call(pairs_sql: &str) -> String {
    format!(
        "SELECT unnest(ecoreco_als_train(user_id, product_id, weight, purchases, interactions, category_id, \
         factors::BIGINT, iterations::BIGINT, regularization::DOUBLE, alpha::DOUBLE, cg_steps::BIGINT, seed::BIGINT, \
         current_setting('threads')::BIGINT), recursive := true) FROM ({pairs_sql})"
    )
}

pub const WEIGHT_PARAMS: [&str; 4] = ["view := 1", "cart := 3", "purchase := 5", "cap := 10"];
pub const TRAIN_PARAMS: [&str; 6] = [
    "factors := 50",
    "iterations := 15",
    "regularization := 0.1",
    "alpha := 1.0",
    "cg_steps := 3",
    "seed := 42",
];

pub fn macros() -> Vec<SqlMacro> {
    let mut interactions_params = vec!["events"];
    interactions_params.extend(WEIGHT_PARAMS);
    let mut train_params = interactions_params.clone();
    train_params.extend(TRAIN_PARAMS);
    vec![
        SqlMacro::table(
            "interactions",
            &interactions_params,
            format!("SELECT * FROM ({}) ORDER BY user_id, product_id", interactions_sql("query_table(events)")),
        ),
        SqlMacro::table("als_train", &train_params, train_call(&interactions_sql("query_table(events)"))),
        SqlMacro::table(
            "als_loss",
            &["model"],
            "SELECT id AS iteration, value AS loss FROM query_table(model) WHERE side = 'loss' ORDER BY id",
        ),
        SqlMacro::table(
            "als_params",
            &["model"],
            "SELECT name, value FROM query_table(model) WHERE side = 'param' ORDER BY name",
        ),
    ]
}
