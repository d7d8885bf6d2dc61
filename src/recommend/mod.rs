//! Stage 6: serving recommendations from a model table.
//!
//! `ecoreco.recommend(user_id, model := 'model', ...)` reads the model's
//! `model_id`, loads the model into the in-process cache only when it is not
//! there yet (the load scan is skipped entirely once cached), looks up the
//! user's own events only when the model does not know the user, and asks
//! the Rust scorer ([`serving`]) for the top k.

pub mod model;
pub mod serving;
pub mod topk;

use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::scalar::ScalarFunction;
use crate::binding::{Column, ColumnWriter, SqlMacro, SqlType};
use model::ModelRow;
use serving::Recommendation;
use std::collections::HashSet;

/// The blend of collaborative and category-interest scores used when the
/// caller does not choose one; chosen by `ecoreco.evaluate_recommendations`
/// on generated data (see the README's evaluation table).
pub const DEFAULT_BLEND: f64 = 0.8;

fn cached_model(model_id: Option<i64>) -> anyhow::Result<std::sync::Arc<serving::ServingModel>> {
    let id = model_id.ok_or_else(|| anyhow::anyhow!("the model table has a NULL model_id; retrain it with ecoreco.als_train"))?;
    model::cached(id).ok_or_else(|| anyhow::anyhow!("model {id} could not be loaded; is the model table complete?"))
}

fn check_k(k: Option<i64>) -> anyhow::Result<usize> {
    match k {
        Some(k) if (1..=10_000).contains(&k) => Ok(k as usize),
        Some(k) => anyhow::bail!("parameter `k` is {k}; it must be between 1 and 10000"),
        None => anyhow::bail!("parameter `k` is NULL; pass e.g. k := 10"),
    }
}

fn check_blend(blend: Option<f64>) -> anyhow::Result<f32> {
    match blend {
        Some(b) if (0.0..=1.0).contains(&b) => Ok(b as f32),
        Some(b) => anyhow::bail!("parameter `blend` is {b}; it must be between 0 (collaborative only) and 1 (category interest only)"),
        None => anyhow::bail!("parameter `blend` is NULL; leave it out for the default {DEFAULT_BLEND}"),
    }
}

fn rec_columns(with_user: bool) -> Vec<Column> {
    let mut columns = Vec::new();
    if with_user {
        columns.push(Column::new("user_id", SqlType::BigInt));
    }
    columns.extend([
        Column::new("rank", SqlType::Integer),
        Column::new("product_id", SqlType::BigInt),
        Column::new("score", SqlType::Double),
        Column::new("source", SqlType::Varchar),
    ]);
    columns
}

fn list_of(columns: Vec<Column>) -> SqlType {
    SqlType::List(Box::new(SqlType::Struct(columns.into_iter().map(|c| (c.name, c.ty)).collect())))
}

fn rec_rows(model: &serving::ServingModel, lists: &[(Option<i64>, Vec<Recommendation>)], with_user: bool) -> RowSet {
    let mut user = Vec::new();
    let (mut rank, mut product, mut score, mut source) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (u, recs) in lists {
        for (r, rec) in recs.iter().enumerate() {
            user.push(*u);
            rank.push(Some(r as i32 + 1));
            product.push(Some(model.product_ids[rec.product as usize]));
            score.push(Some(rec.score as f64));
            source.push(Some(rec.source.as_str().to_string()));
        }
    }
    let mut rows = RowSet::new();
    if with_user {
        rows = rows.with("user_id", Values::BigInt(user));
    }
    rows.with("rank", Values::Integer(rank))
        .with("product_id", Values::BigInt(product))
        .with("score", Values::Double(score))
        .with("source", Values::Text(source))
}

/// `ecoreco_model_cached(model_id)`: is the model in the cache?
pub struct ModelCached;
impl ScalarFunction for ModelCached {
    const NAME: &'static str = "ecoreco_model_cached";
    fn params() -> Vec<SqlType> {
        vec![SqlType::BigInt]
    }
    fn returns() -> SqlType {
        SqlType::Boolean
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            out.set_bool(row, input.i64(0, row).is_some_and(|id| model::cached(id).is_some()));
        }
        Ok(())
    }
}

/// `ecoreco_model_cache_clear()`: frees the served models (they reload from
/// their tables on next use); returns how many were cached.
pub struct ModelCacheClear;
impl ScalarFunction for ModelCacheClear {
    const NAME: &'static str = "ecoreco_model_cache_clear";
    fn params() -> Vec<SqlType> {
        vec![]
    }
    fn returns() -> SqlType {
        SqlType::BigInt
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        let cleared = model::forget_all() as i64;
        for row in 0..input.rows().max(1) {
            unsafe { out.values::<i64>()[row] = cleared };
        }
        Ok(())
    }
}

/// `ecoreco_model_knows_user(model_id, user_id)`.
pub struct ModelKnowsUser;
impl ScalarFunction for ModelKnowsUser {
    const NAME: &'static str = "ecoreco_model_knows_user";
    fn params() -> Vec<SqlType> {
        vec![SqlType::BigInt, SqlType::BigInt]
    }
    fn returns() -> SqlType {
        SqlType::Boolean
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let known = match (input.i64(0, row).and_then(model::cached), input.i64(1, row)) {
                (Some(m), Some(user)) => m.user(user).is_some(),
                _ => false,
            };
            out.set_bool(row, known);
        }
        Ok(())
    }
}

/// `ecoreco_model_load(side, id, item, name, value, factors)`: reads a model
/// table into the cache; returns how many rows it read.
pub struct ModelLoad;
impl AggregateFunction for ModelLoad {
    const NAME: &'static str = "ecoreco_model_load";
    type State = Vec<ModelRow>;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![Varchar, BigInt, BigInt, Varchar, Double, List(Box::new(Float))]
    }
    fn columns() -> Vec<Column> {
        vec![Column::new("rows", SqlType::BigInt)]
    }
    fn update(state: &mut Vec<ModelRow>, input: &InputChunk, rows: std::ops::Range<usize>) -> anyhow::Result<()> {
        for row in rows {
            let factors = match input.list::<f32>(5, row) {
                None => None,
                Some(Ok(values)) => Some(values.to_vec()),
                Some(Err(at)) => anyhow::bail!("a factors list has a NULL at position {}; the model table is damaged", at + 1),
            };
            state.push(ModelRow {
                side: input.str(0, row).unwrap_or("").to_string(),
                id: input.i64(1, row),
                item: input.i64(2, row),
                name: input.str(3, row).map(str::to_string),
                value: input.f64(4, row),
                factors,
            });
        }
        Ok(())
    }
    fn combine(target: &mut Vec<ModelRow>, source: Vec<ModelRow>) -> anyhow::Result<()> {
        target.extend(source);
        Ok(())
    }
    fn finalize(state: Vec<ModelRow>) -> anyhow::Result<RowSet> {
        let n = state.len() as i64;
        if n > 0 {
            model::remember(model::from_rows(state)?);
        }
        Ok(RowSet::new().with("rows", Values::BigInt(vec![Some(n)])))
    }
}

/// `ecoreco_recommend(model_id, user_id, k, blend, exclude_purchased, loaded,
/// cold_categories, cold_purchased)`: the categories of the user's events
/// (one entry per event) and their purchases, for users the model lacks.
pub struct Recommend;
impl ScalarFunction for Recommend {
    const NAME: &'static str = "ecoreco_recommend";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![BigInt, BigInt, BigInt, Double, Boolean, BigInt, List(Box::new(BigInt)), List(Box::new(BigInt))]
    }
    fn returns() -> SqlType {
        list_of(rec_columns(false))
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let model = cached_model(input.i64(0, row))?;
            let user_id = input.i64(1, row).ok_or_else(|| anyhow::anyhow!("user_id is NULL; pass the id of a user"))?;
            let k = check_k(input.i64(2, row))?;
            let blend = check_blend(input.f64(3, row))?;
            let exclude = input.bool(4, row).ok_or_else(|| anyhow::anyhow!("parameter `exclude_purchased` is NULL; pass true or false"))?;
            let ints = |col: usize| -> Vec<i64> {
                match input.list::<i64>(col, row) {
                    Some(Ok(v)) => v.to_vec(),
                    _ => Vec::new(),
                }
            };
            // The user's own events, passed only when the model does not know them.
            let mut counts: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
            for c in ints(6) {
                *counts.entry(c).or_default() += 1.0;
            }
            let purchased: Vec<u32> = ints(7).into_iter().filter_map(|p| model.product(p)).collect();
            let interest = serving::top_categories(&counts);
            let recs = model.recommend(model.user(user_id), &interest, &purchased, k, blend, exclude);
            out.set_rows(row, &rec_rows(&model, &[(None, recs)], false));
        }
        Ok(())
    }
}

/// `ecoreco_recommend_all(model_id, k, blend, exclude_purchased, loaded)`.
pub struct RecommendAll;
impl ScalarFunction for RecommendAll {
    const NAME: &'static str = "ecoreco_recommend_all";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![BigInt, BigInt, Double, Boolean, BigInt, BigInt]
    }
    fn returns() -> SqlType {
        list_of(rec_columns(true))
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let model = cached_model(input.i64(0, row))?;
            let k = check_k(input.i64(1, row))?;
            let blend = check_blend(input.f64(2, row))?;
            let exclude = input.bool(3, row).ok_or_else(|| anyhow::anyhow!("parameter `exclude_purchased` is NULL; pass true or false"))?;
            let threads = input.i64(5, row).unwrap_or(1);
            let lists = crate::binding::thread_pool(threads)?.install(|| model.recommend_all(k, blend, exclude));
            let lists: Vec<(Option<i64>, Vec<Recommendation>)> =
                lists.into_iter().enumerate().map(|(u, r)| (Some(model.user_ids[u]), r)).collect();
            out.set_rows(row, &rec_rows(&model, &lists, true));
        }
        Ok(())
    }
}

/// `ecoreco_similar_products(model_id, product_id, k, loaded)`.
pub struct SimilarProducts;
impl ScalarFunction for SimilarProducts {
    const NAME: &'static str = "ecoreco_similar_products";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![BigInt, BigInt, BigInt, BigInt]
    }
    fn returns() -> SqlType {
        list_of(vec![
            Column::new("rank", SqlType::Integer),
            Column::new("product_id", SqlType::BigInt),
            Column::new("similarity", SqlType::Double),
        ])
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let model = cached_model(input.i64(0, row))?;
            let product_id = input.i64(1, row).ok_or_else(|| anyhow::anyhow!("product_id is NULL; pass the id of a product"))?;
            let k = check_k(input.i64(2, row))?;
            let item = model
                .product(product_id)
                .ok_or_else(|| anyhow::anyhow!("product {product_id} is not in the model (it had no interactions in the training data)"))?;
            let similar = topk::similar_items(&model.item_factors, model.factors, item, k);
            let rows = RowSet::new()
                .with("rank", Values::Integer((1..=similar.len() as i32).map(Some).collect()))
                .with("product_id", Values::BigInt(similar.iter().map(|s| Some(model.product_ids[s.0 as usize])).collect()))
                .with("similarity", Values::Double(similar.iter().map(|s| Some(s.1 as f64)).collect()));
            out.set_rows(row, &rows);
        }
        Ok(())
    }
}

/// The model's id (with a clear error for a table that is not a model), and
/// the load step that runs only when the model is not cached.
fn model_ctes(fn_name: &str) -> String {
    format!(
        "fp AS (SELECT coalesce((SELECT max(value)::BIGINT FROM query_table(model) WHERE side = 'param' AND name = 'model_id'), \
         error('{fn_name}: the model table has no model_id row; pass a table made by ecoreco.als_train')) AS model_id), \
         loaded AS (SELECT ecoreco_model_load(m.side::VARCHAR, m.id::BIGINT, m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[]) AS r \
         FROM query_table(model) m, fp WHERE NOT ecoreco_model_cached(fp.model_id))"
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let blend = format!("blend := {DEFAULT_BLEND}");
    vec![
        SqlMacro::table(
            "recommend",
            &["uid", "model := 'model'", "events := 'events'", "k := 10", &blend, "exclude_purchased := true"],
            // Few pipelines on purpose: each subquery costs DuckDB about a
            // millisecond, and recommend must answer in a few.
            format!(
                "WITH {ctes}, \
                 cold AS (SELECT list(e.category_id) FILTER (e.event_type IN ('view', 'cart', 'purchase')) AS categories, \
                          list(DISTINCT e.product_id) FILTER (e.event_type = 'purchase') AS bought \
                          FROM query_table(events) e, fp WHERE e.user_id = uid AND NOT ecoreco_model_knows_user(fp.model_id, uid::BIGINT)) \
                 SELECT uid::BIGINT AS user_id, unnest(ecoreco_recommend(fp.model_id, uid::BIGINT, k::BIGINT, blend::DOUBLE, \
                 exclude_purchased::BOOLEAN, (SELECT len(r)::BIGINT FROM loaded), cold.categories, cold.bought), recursive := true) FROM fp, cold",
                ctes = model_ctes("recommend")
            ),
        ),
        SqlMacro::table(
            "recommend_all",
            &["model", "k := 10", &blend, "exclude_purchased := true"],
            format!(
                "WITH {ctes} SELECT unnest(ecoreco_recommend_all(fp.model_id, k::BIGINT, blend::DOUBLE, exclude_purchased::BOOLEAN, \
                 (SELECT len(r)::BIGINT FROM loaded), current_setting('threads')::BIGINT), recursive := true) FROM fp",
                ctes = model_ctes("recommend_all")
            ),
        ),
        SqlMacro::table(
            "similar_products",
            &["pid", "model := 'model'", "k := 10"],
            format!(
                "WITH {ctes} SELECT pid::BIGINT AS of_product_id, r.rank, r.product_id, r.similarity FROM \
                 (SELECT unnest(ecoreco_similar_products(fp.model_id, pid::BIGINT, k::BIGINT, (SELECT len(r)::BIGINT FROM loaded))) AS r FROM fp) ORDER BY r.rank",
                ctes = model_ctes("similar_products")
            ),
        ),
    ]
}

/// Products never to recommend to a user: what they bought.
pub fn purchased_set(model: &serving::ServingModel, user: u32) -> HashSet<u32> {
    model.purchased.row(user as usize).0.iter().copied().collect()
}
