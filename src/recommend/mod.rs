//! Stage 6: serving recommendations from a model table.
//!
//! `ecoreco.recommend(user_id, model := 'model', ...)` reads the model's
//! `model_id`, loads the model into the in-process cache only when it is not
//! there yet (the load scan is skipped entirely once cached), looks up the
//! user's own events only when the model does not know the user (both
//! settled while DuckDB binds the call: [`RecommendSql`]), and asks the Rust
//! scorer ([`serving`]) for the top k.

pub mod cache;
pub mod items;
pub mod rules;
pub mod serving;
pub mod topk;

use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed, Ranges};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::scalar::ScalarFunction;
use crate::binding::sql::{checked_table, Expect};
use crate::binding::{Args, Check, Column, ColumnWriter, Param, SqlMacro, SqlType, Value};
use crate::budget::Budget;
use crate::model::table::ModelRows;
use crate::tables;
use rules::{rule_params, rule_table_params, RuleRequest, Rules};
use serving::{Recommendation, ServingModel};
use std::sync::Arc;

/// The serving parameters, declared once for every function that serves.
pub fn serving_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named("k", BigInt, Value::Int(10), "how many products per user, e.g. k := 10")
            .check(Check::IntRange(1, 10_000)),
        Param::named("blend", Double, Value::Null, "a number between 0 (collaborative only) and 1 (category interest only); NULL: the blend stored with the model")
            .check(Check::Range(0.0, 1.0))
            .nullable(),
        Param::named("exclude_purchased", Boolean, Value::Bool(true), "true or false"),
    ]
}

fn rec_columns() -> Vec<Column> {
    vec![
        Column::new("user_id", SqlType::BigInt),
        Column::new("rank", SqlType::Integer),
        Column::new("product_id", SqlType::BigInt),
        Column::new("score", SqlType::Double),
        Column::new("source", SqlType::Varchar),
    ]
}

/// Recommendation lists as rows of [`rec_columns`].
fn rec_rows(model: &ServingModel, lists: &[(i64, Vec<Recommendation>)]) -> anyhow::Result<RowSet> {
    let mut rows = RowSet::for_columns(&rec_columns());
    let (user, rank, product) = (
        rows.col("user_id")?,
        rows.col("rank")?,
        rows.col("product_id")?,
    );
    let (score, source) = (rows.col("score")?, rows.col("source")?);
    for (u, recs) in lists {
        for (r, rec) in recs.iter().enumerate() {
            rows.put(user, Some(*u));
            rows.put(rank, Some(r as i32 + 1));
            rows.put(product, Some(model.product_ids[rec.product as usize]));
            rows.put(score, Some(rec.score as f64));
            rows.put_str(source, Some(rec.source.as_str()));
        }
    }
    Ok(rows)
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
                    .and_then(cache::cached_for_table)
                    .is_some(),
            );
        }
        Ok(())
    }
}

/// `ecoreco_recommend_sql(model, events, user_id, k, blend, exclude_purchased,
/// include, exclude, max_per_category, max_per_brand, min_price, max_price,
/// diversity)`:
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
        vec![
            Varchar, Varchar, BigInt, BigInt, Double, Boolean, Varchar, Varchar, BigInt, BigInt,
            Double, Double, Double,
        ]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let model = input.str(0, row).ok_or_else(|| {
                anyhow::anyhow!("parameter `model` is NULL; pass the name of a model table, e.g. model := 'model'")
            })?;
            // NULL: no events table; users the model does not know get the
            // most popular products.
            let events = input.str(1, row);
            let request = OneUser {
                user_id: input
                    .i64(2, row)
                    .ok_or_else(|| anyhow::anyhow!("user_id is NULL; pass the id of a user"))?,
                k: serving_arg("k", input.i64(3, row).map(Value::Int))?,
                blend: serving_arg("blend", input.f64(4, row).map(Value::Double))?,
                exclude_purchased: serving_arg(
                    "exclude_purchased",
                    input.bool(5, row).map(Value::Bool),
                )?,
                include: input.str(6, row).map(str::to_string),
                exclude: input.str(7, row).map(str::to_string),
                rules: vec![
                    (
                        "max_per_category",
                        serving_arg("max_per_category", input.i64(8, row).map(Value::Int))?,
                    ),
                    (
                        "max_per_brand",
                        serving_arg("max_per_brand", input.i64(9, row).map(Value::Int))?,
                    ),
                    (
                        "min_price",
                        serving_arg("min_price", input.f64(10, row).map(Value::Double))?,
                    ),
                    (
                        "max_price",
                        serving_arg("max_price", input.f64(11, row).map(Value::Double))?,
                    ),
                    (
                        "diversity",
                        serving_arg("diversity", input.f64(12, row).map(Value::Double))?,
                    ),
                ],
            };
            let cached = cache::cached_for_table(model);
            let known = cached.as_ref().map(|m| m.user(request.user_id).is_some());
            out.set_str(row, &recommend_sql(model, events, &request, known)?);
        }
        Ok(())
    }
}

/// A serving parameter's value, checked by its declaration.
fn serving_arg(name: &str, value: Option<Value>) -> anyhow::Result<Value> {
    let param = serving_params()
        .into_iter()
        .chain(rule_params())
        .find(|p| p.name == name)
        .ok_or_else(|| anyhow::anyhow!("internal error: no serving parameter {name}"))?;
    let value = match value {
        Some(v) => v,
        None if param.nullable => return Ok(Value::Null),
        None => return Err(param.null_error("ecoreco.recommend")),
    };
    param.validate("ecoreco.recommend", value)
}

/// One `recommend` request, checked; values as SQL literals.
struct OneUser {
    user_id: i64,
    k: Value,
    blend: Value,
    exclude_purchased: Value,
    /// Table names of the include and exclude rules.
    include: Option<String>,
    exclude: Option<String>,
    /// The other rules' values, by parameter name.
    rules: Vec<(&'static str, Value)>,
}

/// `text` as an SQL string literal.
fn string_literal(what: &str, text: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !text.contains('\0'),
        "parameter `{what}` contains a NUL character; pass a table name"
    );
    Ok(crate::binding::sql::quote_literal(text))
}

/// The model-row inputs of [`Serve`], read from the model table `m`.
const MODEL_INPUTS: [&str; 7] = [
    "m.model_id::BIGINT",
    "m.side::VARCHAR",
    "m.id::BIGINT",
    "m.item::BIGINT",
    "m.name::VARCHAR",
    "m.value::DOUBLE",
    "m.factors::FLOAT[]",
];

/// The same inputs when the model is cached: only its model_id is read
/// (and the side and id of the rule rows, [`rule_rows_sql`]).
const CACHED_INPUTS: [&str; 7] = [
    "m.model_id::BIGINT",
    "m.side::VARCHAR",
    "m.id::BIGINT",
    "NULL",
    "NULL",
    "NULL",
    "NULL",
];

/// The serving query for one user. `known`: `None` when the model last
/// read from `model` is not cached, else whether it knows the user. The
/// user's events are read only when the model may not know the user and
/// the caller named an events table.
fn recommend_sql(
    model: &str,
    events: Option<&str>,
    request: &OneUser,
    known: Option<bool>,
) -> anyhow::Result<String> {
    let table = string_literal("model", model)?;
    let (cold_from, cold) = if let (Some(events), false) = (events, known == Some(true)) {
        (
            format!(
                ", (SELECT list(e.category_id) AS categories, list(e.product_id) FILTER (e.event_type = 'purchase') AS bought \
                 FROM {events} e WHERE e.user_id = {user} AND e.event_type IN ('view', 'cart', 'purchase')) cold",
                events = checked_table(
                    "ecoreco.recommend",
                    &string_literal("events", events)?,
                    &tables::events(&["event_type", "product_id", "category_id", "user_id"]).by_name(),
                ),
                user = request.user_id,
            ),
            ["cold.categories", "cold.bought"],
        )
    } else {
        (String::new(), ["NULL", "NULL"])
    };
    // Cached: the model's rows are not needed, only the model_id of row 0,
    // which the aggregate checks against the cache.
    let (planned_cached, model_inputs, filter) = if known.is_some() {
        ("true", CACHED_INPUTS, " WHERE m.seq = 0")
    } else {
        // Folded away while planning; it names `seq` first so that a
        // table that is not a model fails binding on its first column.
        ("false", MODEL_INPUTS, " WHERE m.seq = 0 OR true")
    };
    let mut inputs: Vec<&str> = model_inputs.to_vec();
    inputs.extend(cold);
    let mut values = vec![
        ("model", table.clone()),
        ("op", "'recommend'".into()),
        ("id", request.user_id.to_string()),
        ("k", request.k.sql_literal()),
        ("blend", request.blend.sql_literal()),
        ("exclude_purchased", request.exclude_purchased.sql_literal()),
        ("planned_cached", planned_cached.into()),
    ];
    values.extend(request.rules.iter().map(|(n, v)| (*n, v.sql_literal())));
    let model_rows = checked_table("ecoreco.recommend", &table, &serving_model().by_name());
    let from = if request.include.is_none() && request.exclude.is_none() {
        format!("{model_rows} m{cold_from}{filter}")
    } else {
        format!(
            "(SELECT m.seq, m.model_id, m.side, m.id, m.item, m.name, m.value, m.factors FROM {model_rows} m{filter} \
             UNION ALL BY NAME {rules}) m",
            rules = rule_rows_sql(
                "ecoreco.recommend",
                request.include.as_deref(),
                request.exclude.as_deref()
            )?,
        ) + &cold_from
    };
    Ok(aggregate::rows_sql::<Serve>(
        "ecoreco.recommend",
        &inputs,
        &values,
        &from,
    ))
}

/// The rows that carry the include and exclude tables to the serving
/// aggregate, in the model table's columns: per table a marker row (side
/// `include` or `exclude`, id NULL: the rule is there, even when its table
/// is empty) and a row per product_id. A table without a product_id column
/// or with one that is not an integer fails with a message saying so.
fn rule_rows_sql(
    function: &str,
    include: Option<&str>,
    exclude: Option<&str>,
) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for (rule, table) in [("include", include), ("exclude", exclude)] {
        let Some(table) = table else { continue };
        let name = string_literal(rule, table)?;
        // Missing columns come out as BOOLEAN NULLs, which `typeof` tells
        // while DuckDB plans the query.
        let rows = format!(
            "(FROM (SELECT NULL::BOOLEAN AS product_id WHERE false) UNION ALL BY NAME FROM query_table({name}))"
        );
        let fail = |what: &str| {
            crate::binding::sql::quote_literal(&format!(
                "{function}: the {rule} table {table} {what}"
            ))
        };
        parts.push(format!(
            "SELECT NULL::BIGINT AS model_id, '{rule}' AS side, NULL::BIGINT AS id \
             FROM (SELECT typeof(any_value(r.product_id)) AS t FROM {rows} r) \
             WHERE CASE WHEN t = 'BOOLEAN' THEN error({no_column}) ELSE true END \
             UNION ALL \
             SELECT NULL::BIGINT, '{rule}', CASE WHEN try_cast(r.product_id AS BIGINT) IS NULL \
               THEN error({not_integer} || r.product_id::VARCHAR || '; pass integer product_ids') \
               ELSE try_cast(r.product_id AS BIGINT) END \
             FROM {rows} r WHERE r.product_id IS NOT NULL",
            no_column =
                fail("has no product_id column; pass a table or view with a product_id column"),
            not_integer = fail("has a product_id that is not an integer: "),
        ));
    }
    if parts.is_empty() {
        parts.push(
            "SELECT NULL::BIGINT AS model_id, NULL::VARCHAR AS side, NULL::BIGINT AS id WHERE false"
                .into(),
        );
    }
    Ok(format!("({})", parts.join(" UNION ALL ")))
}

/// `ecoreco_rule_rows_sql(function, include, exclude)`: [`rule_rows_sql`]
/// for the `recommend_all` macro, which runs it through `query()`.
pub struct RuleRowsSql;
impl ScalarFunction for RuleRowsSql {
    const NAME: &'static str = "ecoreco_rule_rows_sql";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Varchar, SqlType::Varchar]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let function = input.str(0, row).unwrap_or("ecoreco.recommend_all");
            let sql = rule_rows_sql(function, input.str(1, row), input.str(2, row))?;
            out.set_str(row, &format!("SELECT * FROM {sql}"));
        }
        Ok(())
    }
}

/// `ecoreco_model_cache_clear()`: frees the served models and held results
/// (models are read again from their tables on next use); returns how many
/// models were cached.
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
        let cleared = cache::forget_all() as i64;
        crate::binding::blocks::clear();
        for row in 0..input.rows().max(1) {
            out.set_i64(row, cleared);
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
    },
    All,
    Similar {
        product_id: i64,
    },
}

#[derive(Default)]
pub struct ServeState {
    rows: ModelRows,
    model_id: Option<i64>,
    cold_categories: Vec<i64>,
    cold_bought: Vec<i64>,
    /// The include table's product_ids, when the call names one.
    include: Option<Vec<i64>>,
    exclude: Vec<i64>,
}

/// `ecoreco_serve`: gets the model (cached, or built from the rows it was
/// given) and answers the request, as `user_id, rank, product_id, score,
/// source` rows.
pub struct Serve;
impl AggregateFunction for Serve {
    const NAME: &'static str = "ecoreco_serve";
    const FUNCTION: &'static str = "ecoreco.recommend";
    const EMPTY: &'static str =
        "the model table has no rows; pass a table made by ecoreco.als_train";
    type State = ServeState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        let mut inputs = vec![Column::new("model_id", BigInt)];
        inputs.extend(crate::binding::model_table::columns().into_iter().skip(2));
        inputs.push(Column::new("cold_categories", List(Box::new(BigInt))));
        inputs.push(Column::new("cold_bought", List(Box::new(BigInt))));
        inputs
    }
    fn params() -> Vec<Param> {
        use SqlType::*;
        let mut params = vec![
            Param::named(
                "model",
                Varchar,
                Value::Text("model".into()),
                "the name of a model table, e.g. model := 'model'",
            ),
            Param::supplied("op", Varchar, "'all'").check(Check::OneOf(&[
                "recommend",
                "all",
                "similar",
            ])),
            Param::supplied("id", BigInt, "NULL").nullable(),
            Param::supplied("planned_cached", Boolean, "false"),
        ];
        params.extend(serving_params());
        params.extend(rule_params());
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        rec_columns()
    }
    fn update(
        state: &mut ServeState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let (model_id, side, id, item) = (
            input.col("model_id")?,
            input.col("side")?,
            input.col("id")?,
            input.col("item")?,
        );
        let (name, value, factors) = (
            input.col("name")?,
            input.col("value")?,
            input.col("factors")?,
        );
        let (categories, bought) = (input.col("cold_categories")?, input.col("cold_bought")?);
        for row in rows {
            match input.str(side, row) {
                Some("include") => {
                    let include = state.include.get_or_insert_with(Vec::new);
                    include.extend(input.i64(id, row));
                    continue;
                }
                Some("exclude") => {
                    state.exclude.extend(input.i64(id, row));
                    continue;
                }
                _ => {}
            }
            if state.model_id.is_none() {
                state.model_id = input.i64(model_id, row);
                let ints = |col: usize| -> Vec<i64> {
                    match input.list::<i64>(col, row) {
                        Some(Ok(v)) => v.to_vec(),
                        _ => Vec::new(),
                    }
                };
                state.cold_categories = ints(categories);
                state.cold_bought = ints(bought);
            }
            let Some(side) = input.str(side, row) else {
                continue;
            };
            let factors = match input.list::<f32>(factors, row) {
                None => None,
                Some(Ok(values)) => Some(values),
                Some(Err(at)) => anyhow::bail!(
                    "a factors list has a NULL at position {}; the model table is damaged, train it again",
                    at + 1
                ),
            };
            state.rows.push(
                side,
                input.i64(id, row),
                input.i64(item, row),
                input.str(name, row),
                input.f64(value, row),
                factors,
            )?;
        }
        Ok(())
    }
    fn combine(target: &mut ServeState, source: ServeState) -> anyhow::Result<()> {
        if target.model_id.is_none() {
            target.model_id = source.model_id;
            target.cold_categories = source.cold_categories;
            target.cold_bought = source.cold_bought;
        }
        if let Some(include) = source.include {
            target.include.get_or_insert_with(Vec::new).extend(include);
        }
        target.exclude.extend(source.exclude);
        target.rows.extend(source.rows)?;
        Ok(())
    }
    fn finalize(state: ServeState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let table = call.text("model")?.to_string();
        let model_id = state
            .model_id
            .ok_or_else(|| anyhow::anyhow!("the model table is empty or its model_id is NULL; pass a table made by ecoreco.als_train"))?;
        // All parallel work, the model's indexing included, runs on a pool
        // of DuckDB's `threads` size, never on rayon's global pool.
        let pool = crate::threads::pool(call.int("threads")?)?;
        let served = match cache::cached(model_id) {
            Some(m) => m,
            None if !call.boolean("planned_cached")? => {
                let rows = state.rows;
                let budget = Budget::from_setting(call.text("memory_limit")?);
                budget.check(
                    "serving the model",
                    serving_bytes(&rows),
                    "the model's factors twice (index and half-precision copy) plus 48 bytes per row",
                )?;
                let model = pool.install(|| items::serving_of_rows(rows, model_id));
                // The rows read (one block per factor row) are gone by now.
                crate::pages::release_free_heap();
                cache::remember(model?)
            }
            None => {
                // The query was planned believing the table still held the
                // model read from it before; it no longer does.
                cache::forget_table(&table);
                anyhow::bail!(
                    "the table '{table}' holds a different model than the one this session read from it before; \
                     it will be read afresh on the next call: run the query again"
                );
            }
        };
        if !table.is_empty() {
            cache::note_table(&table, model_id);
        }
        let k = call.int("k")? as usize;
        // No blend given: the one stored with the model.
        let blend = call.opt_double("blend")?.map_or(served.blend, |b| b as f32);
        let exclude = call.boolean("exclude_purchased")?;
        let rules = served.rules(&RuleRequest {
            include: state.include.as_deref().map(|p| served.product_indices(p)),
            exclude: served.product_indices(&state.exclude),
            min_price: call.opt_double("min_price")?,
            max_price: call.opt_double("max_price")?,
            max_per_category: call.opt_int("max_per_category")?.map(|n| n as u32),
            max_per_brand: call.opt_int("max_per_brand")?.map(|n| n as u32),
            diversity: call.double("diversity")? as f32,
        })?;
        let request = match call.text("op")? {
            "recommend" => Request::Recommend {
                user_id: call
                    .opt_int("id")?
                    .ok_or_else(|| anyhow::anyhow!("user_id is NULL; pass the id of a user"))?,
            },
            "similar" => Request::Similar {
                product_id: call.opt_int("id")?.ok_or_else(|| {
                    anyhow::anyhow!("product_id is NULL; pass the id of a product")
                })?,
            },
            _ => Request::All,
        };
        match request {
            Request::Recommend { user_id } => {
                let recs = pool.install(|| {
                    recommend_one(
                        &served,
                        user_id,
                        &state.cold_categories,
                        &state.cold_bought,
                        k,
                        blend,
                        exclude,
                        &rules,
                    )
                });
                Ok(Arc::new(Computed::new(rec_rows(
                    &served,
                    &[(user_id, recs)],
                )?)))
            }
            Request::Similar { product_id } => {
                let item = served.product(product_id).ok_or_else(|| {
                    anyhow::anyhow!("product {product_id} is not in the model (it had no interactions in the training data); pass a product_id of the model")
                })?;
                let similar = topk::similar_items(served.item_factors(), served.factors, item, k);
                let recs: Vec<Recommendation> = similar
                    .iter()
                    .map(|&(product, score)| Recommendation {
                        product,
                        score,
                        source: serving::Source::Similar,
                    })
                    .collect();
                Ok(Arc::new(Computed::new(rec_rows(
                    &served,
                    &[(product_id, recs)],
                )?)))
            }
            Request::All => Ok(Arc::new(Ranges::new(
                served.user_ids.len(),
                USERS_PER_BLOCK,
                move |users| {
                    let ids: Vec<u32> = (users.start as u32..users.end as u32).collect();
                    let lists = served.recommend_users_ruled(&ids, k, blend, exclude, &rules);
                    let lists: Vec<(i64, Vec<Recommendation>)> = ids
                        .iter()
                        .zip(lists)
                        .map(|(&u, r)| (served.user_ids[u as usize], r))
                        .collect();
                    rec_rows(&served, &lists)
                },
            ))),
        }
    }
}

/// Users per block of `recommend_all`: k rows each.
const USERS_PER_BLOCK: usize = 64;

/// Bytes to index a model for serving, from its rows.
fn serving_bytes(rows: &ModelRows) -> u64 {
    (rows.floats() * 4 * 2 + rows.rows() * 48) as u64
}

/// One user's list: known to the model, or from their own events.
#[allow(clippy::too_many_arguments)]
fn recommend_one(
    model: &ServingModel,
    user_id: i64,
    cold_categories: &[i64],
    cold_bought: &[i64],
    k: usize,
    blend: f32,
    exclude_purchased: bool,
    rules: &Rules,
) -> Vec<Recommendation> {
    let mut counts: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
    for &c in cold_categories {
        *counts.entry(c).or_default() += 1.0;
    }
    let bought: Vec<u32> = cold_bought
        .iter()
        .filter_map(|&p| model.product(p))
        .collect();
    let interest = crate::model::top_categories(&counts);
    model.recommend_ruled(
        model.user(user_id),
        &interest,
        &bought,
        k,
        blend,
        exclude_purchased,
        rules,
    )
}

/// What serving reads of a model table.
fn serving_model() -> Expect {
    tables::model(&[
        "seq", "model_id", "side", "id", "item", "name", "value", "factors",
    ])
}

/// The serving macro body of `recommend_all` and `similar_products` (one
/// user's `recommend` is written by [`RecommendSql`] instead). With
/// `by_name`, `model` must be a string: it is the cache key, and when the
/// model last read from that table is still cached (settled while DuckDB
/// plans the query) only the row `seq = 0` is read, which carries the
/// table's model_id. Without it, `model` may also be a bare table name and
/// every row is read (fine for calls that do far more work than reading
/// the model, like recommend_all).
/// With `with_rules`, the macro's `include` and `exclude` tables are read
/// too ([`rule_rows_sql`]).
fn serve_sql(
    function: &str,
    op: &str,
    values: &[(&str, String)],
    by_name: bool,
    with_rules: bool,
) -> String {
    let (table, ready, filter) = if by_name {
        (
            "model",
            "ecoreco_model_ready(model)",
            " WHERE m.seq = 0 OR NOT ecoreco_model_ready(model)",
        )
    } else {
        ("''", "false", "")
    };
    let mut values: Vec<(&str, String)> = values.to_vec();
    values.extend([
        ("model", table.to_string()),
        ("op", format!("'{op}'")),
        ("planned_cached", ready.to_string()),
    ]);
    let mut inputs: Vec<&str> = MODEL_INPUTS.to_vec();
    inputs.extend(["NULL", "NULL"]);
    let from = if with_rules {
        format!(
            "(SELECT m.seq, m.model_id, m.side, m.id, m.item, m.name, m.value, m.factors FROM query_table(model) m{filter} \
             UNION ALL BY NAME FROM query(ecoreco_rule_rows_sql({function}, include, exclude))) m",
            function = crate::binding::sql::quote_literal(function),
        )
    } else {
        format!("query_table(model) m{filter}")
    };
    aggregate::rows_sql::<Serve>(function, &inputs, &values, &from)
}

pub fn macros() -> Vec<SqlMacro> {
    let serving: Vec<String> = serving_params()
        .iter()
        .chain(&rule_table_params())
        .chain(&rule_params())
        .map(Param::macro_signature)
        .collect();
    let recommend: Vec<String> = ["uid", "model := 'model'", "events := NULL"]
        .iter()
        .map(|s| s.to_string())
        .chain(serving.iter().cloned())
        .collect();
    let all: Vec<String> = std::iter::once("model".to_string())
        .chain(serving.iter().cloned())
        .collect();
    let k = serving_params()
        .into_iter()
        .find(|p| p.name == "k")
        .map(|p| p.macro_signature())
        .unwrap_or_default();
    let refs = |v: &[String]| -> Vec<String> { v.to_vec() };
    let (recommend, all) = (refs(&recommend), refs(&all));
    let recommend: Vec<&str> = recommend.iter().map(String::as_str).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    vec![
        SqlMacro::table(
            "recommend",
            &recommend,
            "FROM query(ecoreco_recommend_sql(model, events, uid, k, blend, exclude_purchased, \
             include, exclude, max_per_category, max_per_brand, min_price, max_price, diversity))"
                .to_string(),
        ),
        SqlMacro::table(
            "recommend_all",
            &all,
            serve_sql("ecoreco.recommend_all", "all", &[], false, true),
        )
        .checking("model", &serving_model()),
        SqlMacro::table(
            "similar_products",
            &["pid", "model := 'model'", &k],
            format!(
                "SELECT user_id AS of_product_id, rank, product_id, score AS similarity FROM ({})",
                serve_sql(
                    "ecoreco.similar_products",
                    "similar",
                    &[
                        ("id", "pid".into()),
                        ("blend", "0".into()),
                        ("exclude_purchased", "true".into()),
                        ("max_per_category", "NULL".into()),
                        ("max_per_brand", "NULL".into()),
                        ("min_price", "NULL".into()),
                        ("max_price", "NULL".into()),
                        ("diversity", "0".into()),
                    ],
                    true,
                    false
                )
            ),
        )
        .checking("model", &serving_model().by_name()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> OneUser {
        OneUser {
            user_id: -42,
            k: Value::Int(7),
            blend: Value::Double(0.25),
            exclude_purchased: Value::Bool(false),
            include: None,
            exclude: None,
            rules: Vec::new(),
        }
    }

    #[test]
    fn recommend_sql_reads_only_what_the_cache_lacks() {
        // Cached model that knows the user: row 0 of the model, no events.
        let known = recommend_sql("model", Some("events"), &request(), Some(true)).unwrap();
        assert!(
            known.contains("(FROM query_table('model') WHERE (SELECT CASE")
                && known.contains(") m WHERE m.seq = 0"),
            "{known}"
        );
        assert!(
            !known.contains("query_table('events')") && !known.contains("m.factors"),
            "{known}"
        );
        assert!(known.contains("('recommend')::VARCHAR, (-42)::BIGINT, (true)::BOOLEAN, (7)::BIGINT, (0.25)::DOUBLE, (false)::BOOLEAN"), "{known}");
        // Cached model, unknown user: row 0 and the user's events.
        let unknown = recommend_sql("model", Some("events"), &request(), Some(false)).unwrap();
        assert!(
            unknown.contains("(FROM query_table('events') WHERE (SELECT CASE")
                && unknown.contains(") e WHERE e.user_id = -42"),
            "{unknown}"
        );
        assert!(
            unknown.contains("WHERE m.seq = 0") && !unknown.contains("m.factors"),
            "{unknown}"
        );
        // Nothing cached: every model row, and the events.
        let cold = recommend_sql("model", Some("events"), &request(), None).unwrap();
        assert!(
            cold.contains("m.factors::FLOAT[]") && cold.contains("query_table('events')"),
            "{cold}"
        );
        assert!(cold.contains("(false)::BOOLEAN, (7)::BIGINT"), "{cold}");
        // No events table named: never read, cached or not (a known user on
        // a cold cache needs only the model).
        let no_events = recommend_sql("model", None, &request(), None).unwrap();
        assert!(
            no_events.contains("m.factors::FLOAT[]") && !no_events.contains("e.user_id"),
            "{no_events}"
        );
        let blend_from_model = OneUser {
            blend: Value::Null,
            ..request()
        };
        assert!(recommend_sql("model", None, &blend_from_model, Some(true))
            .unwrap()
            .contains("(NULL)::DOUBLE"));
    }

    #[test]
    fn recommend_sql_keeps_names_inside_string_literals() {
        let sql = recommend_sql("m'); DROP TABLE x; --", Some("e''"), &request(), None).unwrap();
        assert!(
            sql.contains("query_table('m''); DROP TABLE x; --')"),
            "{sql}"
        );
        assert!(sql.contains("query_table('e''''')"), "{sql}");
        assert!(recommend_sql("a\0b", Some("events"), &request(), None).is_err());
    }
}
