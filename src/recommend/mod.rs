//! Stage 6: serving recommendations from a model table.
//!
//! `ecoreco.recommend(user_id, model := 'model', ...)` reads the model's
//! `model_id`, loads the model into the in-process cache only when it is not
//! there yet (the load scan is skipped entirely once cached), looks up the
//! user's own events only when the model does not know the user (both
//! settled while DuckDB binds the call: [`RecommendSql`]), and asks the Rust
//! scorer ([`serving`]) for the top k.

pub mod model;
pub mod serving;
pub mod topk;

use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::scalar::ScalarFunction;
use crate::binding::{Column, ColumnWriter, SqlMacro, SqlType};
use model::ModelRow;
use serving::Recommendation;

/// The blend of collaborative and category-interest scores used when the
/// caller does not choose one; chosen by `ecoreco.evaluate_recommendations`
/// on generated data (see the README's evaluation table).
pub const DEFAULT_BLEND: f64 = 0.8;

fn check_k(k: Option<i64>) -> anyhow::Result<usize> {
    match k {
        Some(k) if (1..=10_000).contains(&k) => Ok(k as usize),
        Some(k) => anyhow::bail!("parameter `k` is {k}; it must be between 1 and 10000"),
        None => anyhow::bail!("parameter `k` is NULL; pass e.g. k := 10"),
    }
}

fn check_blend(blend: Option<f64>) -> anyhow::Result<f64> {
    match blend {
        Some(b) if (0.0..=1.0).contains(&b) => Ok(b),
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

fn rec_rows(
    model: &serving::ServingModel,
    lists: &[(Option<i64>, Vec<Recommendation>)],
    with_user: bool,
) -> RowSet {
    let mut user = Vec::new();
    let (mut rank, mut product, mut score, mut source) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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

/// `ecoreco_model_ready(model_table)`: whether the model last read from
/// that table is still cached. Deterministic on purpose: with a constant
/// table name DuckDB evaluates it once while planning, and the serving
/// macros' filter `side = 'param' OR NOT ecoreco_model_ready(...)` then
/// reads only the model's few `param` rows (zone maps skip the rest).
pub struct ModelReady;
impl ScalarFunction for ModelReady {
    const NAME: &'static str = "ecoreco_model_ready";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar]
    }
    fn returns() -> SqlType {
        SqlType::Boolean
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            out.set_bool(
                row,
                input
                    .str(0, row)
                    .and_then(model::cached_for_table)
                    .is_some(),
            );
        }
        Ok(())
    }
}

/// `ecoreco_recommend_sql(model, events, user_id, k, blend, exclude_purchased)`:
/// the query that serves one user, shaped by what the model cache holds
/// when DuckDB binds the call. `ecoreco.recommend` runs it through DuckDB's
/// `query()` table function, so only the shape needed is planned, and
/// planning is most of a single request's time:
/// - model cached, user known to it: only the model table's row `seq = 0`
///   is read (it names the model the table holds now); the user's events
///   are not touched;
/// - model cached, user unknown: that row and the user's own events;
/// - model not cached: every model row, and the user's events.
///
/// Every value is checked here and written into the SQL as a literal: table
/// names as string literals for `query_table`, numbers as numbers; nothing
/// a caller passes can change the statement's shape.
pub struct RecommendSql;
impl ScalarFunction for RecommendSql {
    const NAME: &'static str = "ecoreco_recommend_sql";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![Varchar, Varchar, BigInt, BigInt, Double, Boolean]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let model = input.str(0, row).ok_or_else(|| {
                anyhow::anyhow!("parameter `model` is NULL; pass the name of a model table, e.g. model := 'model'")
            })?;
            let events = input.str(1, row).ok_or_else(|| {
                anyhow::anyhow!("parameter `events` is NULL; pass the name of the events table, e.g. events := 'events'")
            })?;
            let request = OneUser {
                user_id: input
                    .i64(2, row)
                    .ok_or_else(|| anyhow::anyhow!("user_id is NULL; pass the id of a user"))?,
                k: check_k(input.i64(3, row))?,
                blend: check_blend(input.f64(4, row))?,
                exclude_purchased: input.bool(5, row).ok_or_else(|| {
                    anyhow::anyhow!("parameter `exclude_purchased` is NULL; pass true or false")
                })?,
            };
            let cached = model::cached_for_table(model);
            let known = cached.as_ref().map(|m| m.user(request.user_id).is_some());
            out.set_str(row, &recommend_sql(model, events, &request, known)?);
        }
        Ok(())
    }
}

/// One `recommend` request, checked.
struct OneUser {
    user_id: i64,
    k: usize,
    blend: f64,
    exclude_purchased: bool,
}

/// `text` as an SQL string literal.
fn string_literal(what: &str, text: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!text.contains('\0'), "parameter `{what}` contains a NUL character");
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// The serving query for one user. `known`: `None` when the model last
/// read from `model` is not cached, else whether it knows the user.
fn recommend_sql(model: &str, events: &str, request: &OneUser, known: Option<bool>) -> anyhow::Result<String> {
    let model = string_literal("model", model)?;
    let (cold_from, cold) = if known == Some(true) {
        (String::new(), "NULL, NULL")
    } else {
        (
            format!(
                ", (SELECT list(e.category_id) AS categories, list(e.product_id) FILTER (e.event_type = 'purchase') AS bought \
                 FROM query_table({events}) e WHERE e.user_id = {user} AND e.event_type IN ('view', 'cart', 'purchase')) cold",
                events = string_literal("events", events)?,
                user = request.user_id,
            ),
            "cold.categories, cold.bought",
        )
    };
    // Cached: the model's rows are not needed, only the model_id of row 0,
    // which the aggregate checks against the cache.
    let (planned_cached, model_columns, filter) = if known.is_some() {
        ("true", "NULL, NULL, NULL, NULL, NULL, NULL", " WHERE m.seq = 0")
    } else {
        (
            "false",
            "m.side::VARCHAR, m.id::BIGINT, m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[]",
            // Folded away while planning; it names `seq` first so that a
            // table that is not a model fails binding on its first column.
            " WHERE m.seq = 0 OR true",
        )
    };
    Ok(format!(
        "SELECT unnest(ecoreco_serve({model}, 'recommend', {user}, {k}, {blend:?}, {exclude}, current_setting('threads'), \
         {cold}, m.model_id::BIGINT, {planned_cached}, {model_columns}), recursive := true) \
         FROM query_table({model}) m{cold_from}{filter}",
        user = request.user_id,
        k = request.k,
        blend = request.blend,
        exclude = request.exclude_purchased,
    ))
}

/// `ecoreco_model_cache_clear()`: frees the served models (they are read
/// again from their tables on next use); returns how many were cached.
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

/// What a serving call asks for.
#[derive(Clone, Debug, PartialEq)]
enum Request {
    /// One user (known to the model or not: then their categories and purchases).
    Recommend {
        user_id: i64,
        cold_categories: Vec<i64>,
        cold_bought: Vec<i64>,
    },
    All,
    Similar {
        product_id: i64,
    },
}

#[derive(Clone, Debug)]
struct Call {
    table: String,
    /// The model the table holds now (read from its first row).
    model_id: Option<i64>,
    /// Whether, when DuckDB planned the query, the model last read from the
    /// table was cached, so that only its first row was read.
    planned_cached: bool,
    request: Request,
    k: usize,
    blend: f32,
    exclude_purchased: bool,
    threads: i64,
}

#[derive(Default)]
pub struct ServeState {
    call: Option<Call>,
    rows: Vec<ModelRow>,
}

impl ServeState {
    fn read_call(input: &InputChunk, row: usize) -> anyhow::Result<Call> {
        let table = input
            .str(0, row)
            .ok_or_else(|| {
                anyhow::anyhow!("parameter `model` is NULL; pass the name of a model table")
            })?
            .to_string();
        let op = input.str(1, row).unwrap_or("");
        let ints = |col: usize| -> Vec<i64> {
            match input.list::<i64>(col, row) {
                Some(Ok(v)) => v.to_vec(),
                _ => Vec::new(),
            }
        };
        let request = match op {
            "recommend" => Request::Recommend {
                user_id: input
                    .i64(2, row)
                    .ok_or_else(|| anyhow::anyhow!("user_id is NULL; pass the id of a user"))?,
                cold_categories: ints(7),
                cold_bought: ints(8),
            },
            "similar" => Request::Similar {
                product_id: input.i64(2, row).ok_or_else(|| {
                    anyhow::anyhow!("product_id is NULL; pass the id of a product")
                })?,
            },
            _ => Request::All,
        };
        Ok(Call {
            table,
            model_id: input.i64(9, row),
            planned_cached: input.bool(10, row).unwrap_or(false),
            request,
            k: check_k(input.i64(3, row))?,
            blend: check_blend(input.f64(4, row))? as f32,
            exclude_purchased: input.bool(5, row).ok_or_else(|| {
                anyhow::anyhow!("parameter `exclude_purchased` is NULL; pass true or false")
            })?,
            threads: input.i64(6, row).unwrap_or(1),
        })
    }
}

/// `ecoreco_serve(model_table, op, id, k, blend, exclude_purchased, threads,
/// cold_categories, cold_bought, side, id, item, name, value, factors)`:
/// gets the model (cached, or built from the rows it was given) and answers
/// the request, as `user_id, rank, product_id, score, source` rows.
pub struct Serve;
impl AggregateFunction for Serve {
    const NAME: &'static str = "ecoreco_serve";
    type State = ServeState;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![
            Varchar,
            Varchar,
            BigInt,
            BigInt,
            Double,
            Boolean,
            BigInt,
            List(Box::new(BigInt)),
            List(Box::new(BigInt)),
            BigInt,
            Boolean,
            Varchar,
            BigInt,
            BigInt,
            Varchar,
            Double,
            List(Box::new(Float)),
        ]
    }
    fn columns() -> Vec<Column> {
        rec_columns(true)
    }
    fn update(
        state: &mut ServeState,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        for row in rows {
            if state.call.is_none() {
                state.call = Some(ServeState::read_call(input, row)?);
            }
            let Some(side) = input.str(11, row) else {
                continue;
            };
            let factors = match input.list::<f32>(16, row) {
                None => None,
                Some(Ok(values)) => Some(values.to_vec()),
                Some(Err(at)) => anyhow::bail!(
                    "a factors list has a NULL at position {}; the model table is damaged",
                    at + 1
                ),
            };
            state.rows.push(ModelRow {
                side: side.to_string(),
                id: input.i64(12, row),
                item: input.i64(13, row),
                name: input.str(14, row).map(str::to_string),
                value: input.f64(15, row),
                factors,
            });
        }
        Ok(())
    }
    fn combine(target: &mut ServeState, source: ServeState) -> anyhow::Result<()> {
        if target.call.is_none() {
            target.call = source.call;
        }
        target.rows.extend(source.rows);
        Ok(())
    }
    fn finalize(state: ServeState) -> anyhow::Result<RowSet> {
        let call = state.call.ok_or_else(|| {
            anyhow::anyhow!("the model table has no rows; pass a table made by ecoreco.als_train")
        })?;
        let model_id = call
            .model_id
            .ok_or_else(|| anyhow::anyhow!("the model table is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        // All parallel work, the model's indexing included, runs on a pool
        // of DuckDB's `threads` size, never on rayon's global pool.
        let pool = crate::binding::thread_pool(call.threads)?;
        let served = match model::cached(model_id) {
            Some(m) => m,
            None if !call.planned_cached => {
                let rows = state.rows;
                model::remember(pool.install(|| model::from_rows(rows, model_id))?)
            }
            None => {
                // The query was planned believing the table still held the
                // model read from it before; it no longer does.
                model::forget_table(&call.table);
                anyhow::bail!(
                    "the table '{}' holds a different model than the one this session read from it before; \
                     it will be read afresh on the next call: run the query again",
                    call.table
                );
            }
        };
        if !call.table.is_empty() {
            model::note_table(&call.table, model_id);
        }
        pool.install(|| answer(&served, &call))
    }
}

fn answer(model: &serving::ServingModel, call: &Call) -> anyhow::Result<RowSet> {
    match &call.request {
        Request::Recommend {
            user_id,
            cold_categories,
            cold_bought,
        } => {
            let mut counts: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
            for &c in cold_categories {
                *counts.entry(c).or_default() += 1.0;
            }
            let bought: Vec<u32> = cold_bought
                .iter()
                .filter_map(|&p| model.product(p))
                .collect();
            let interest = serving::top_categories(&counts);
            let recs = model.recommend(
                model.user(*user_id),
                &interest,
                &bought,
                call.k,
                call.blend,
                call.exclude_purchased,
            );
            Ok(rec_rows(model, &[(Some(*user_id), recs)], true))
        }
        Request::All => {
            let lists = model.recommend_all(call.k, call.blend, call.exclude_purchased);
            let lists: Vec<(Option<i64>, Vec<Recommendation>)> = lists
                .into_iter()
                .enumerate()
                .map(|(u, r)| (Some(model.user_ids[u]), r))
                .collect();
            Ok(rec_rows(model, &lists, true))
        }
        Request::Similar { product_id } => {
            let item = model
                .product(*product_id)
                .ok_or_else(|| anyhow::anyhow!("product {product_id} is not in the model (it had no interactions in the training data)"))?;
            let similar = topk::similar_items(model.item_factors(), model.factors, item, call.k);
            let n = similar.len();
            Ok(RowSet::new()
                .with("user_id", Values::BigInt(vec![Some(*product_id); n]))
                .with("rank", Values::Integer((1..=n as i32).map(Some).collect()))
                .with(
                    "product_id",
                    Values::BigInt(
                        similar
                            .iter()
                            .map(|s| Some(model.product_ids[s.0 as usize]))
                            .collect(),
                    ),
                )
                .with(
                    "score",
                    Values::Double(similar.iter().map(|s| Some(s.1 as f64)).collect()),
                )
                .with("source", Values::Text(vec![Some("similar".to_string()); n])))
        }
    }
}

/// The serving macro body of `recommend_all` and `similar_products` (one
/// user's `recommend` is written by [`RecommendSql`] instead). With
/// `by_name`, `model` must be a string: it is the cache key, and when the
/// model last read from that table is still cached (settled while DuckDB
/// plans the query) only the row `seq = 0` is read, which carries the
/// table's model_id. Without it, `model` may also be a bare table name and
/// every row is read (fine for calls that do far more work than reading
/// the model, like recommend_all).
fn serve_call(op: &str, id: &str, k: &str, blend: &str, exclude: &str, by_name: bool) -> String {
    let (table, ready, filter) = if by_name {
        (
            "model",
            "ecoreco_model_ready(model)",
            " WHERE m.seq = 0 OR NOT ecoreco_model_ready(model)",
        )
    } else {
        ("''", "false", "")
    };
    // Call arguments are not cast: the aggregate's declared types make
    // DuckDB cast them. Model columns are, for tables re-imported with
    // looser types.
    format!(
        "SELECT unnest(ecoreco_serve({table}, '{op}', {id}, {k}, {blend}, {exclude}, \
         current_setting('threads'), NULL, NULL, m.model_id::BIGINT, {ready}, \
         m.side::VARCHAR, m.id::BIGINT, m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[]), recursive := true) \
         FROM query_table(model) m{filter}"
    )
}

pub fn macros() -> Vec<SqlMacro> {
    let blend = format!("blend := {DEFAULT_BLEND}");
    vec![
        SqlMacro::table(
            "recommend",
            &["uid", "model := 'model'", "events := 'events'", "k := 10", &blend, "exclude_purchased := true"],
            "FROM query(ecoreco_recommend_sql(model, events, uid, k, blend, exclude_purchased))".to_string(),
        ),
        SqlMacro::table(
            "recommend_all",
            &["model", "k := 10", &blend, "exclude_purchased := true"],
            serve_call("all", "NULL", "k", "blend", "exclude_purchased", false),
        ),
        SqlMacro::table(
            "similar_products",
            &["pid", "model := 'model'", "k := 10"],
            format!(
                "SELECT user_id AS of_product_id, rank, product_id, score AS similarity FROM ({})",
                serve_call("similar", "pid", "k", "0", "true", true)
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> OneUser {
        OneUser { user_id: -42, k: 7, blend: 0.25, exclude_purchased: false }
    }

    #[test]
    fn recommend_sql_reads_only_what_the_cache_lacks() {
        // Cached model that knows the user: row 0 of the model, no events.
        let known = recommend_sql("model", "events", &request(), Some(true)).unwrap();
        assert!(known.contains("FROM query_table('model') m WHERE m.seq = 0"), "{known}");
        assert!(!known.contains("events") && !known.contains("m.factors"), "{known}");
        assert!(known.contains("'recommend', -42, 7, 0.25, false,"), "{known}");
        // Cached model, unknown user: row 0 and the user's events.
        let unknown = recommend_sql("model", "events", &request(), Some(false)).unwrap();
        assert!(unknown.contains("FROM query_table('events') e WHERE e.user_id = -42"), "{unknown}");
        assert!(unknown.contains("WHERE m.seq = 0") && !unknown.contains("m.factors"), "{unknown}");
        // Nothing cached: every model row, and the events.
        let cold = recommend_sql("model", "events", &request(), None).unwrap();
        assert!(cold.contains("m.factors::FLOAT[]") && cold.contains("query_table('events')"), "{cold}");
        assert!(cold.contains("m.model_id::BIGINT, false,"), "{cold}");
    }

    #[test]
    fn recommend_sql_keeps_names_inside_string_literals() {
        let sql = recommend_sql("m'); DROP TABLE x; --", "e''", &request(), None).unwrap();
        assert!(sql.contains("query_table('m''); DROP TABLE x; --')"), "{sql}");
        assert!(sql.contains("query_table('e''''')"), "{sql}");
        assert!(recommend_sql("a\0b", "events", &request(), None).is_err());
    }
}
