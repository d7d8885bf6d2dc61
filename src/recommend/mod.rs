//! Stage 6: serving recommendations from a model table.
//!
//! `ecoreco.recommend(user_id, model := 'model', ...)` reads the model's
//! `model_id`, loads the model into the in-process cache only when it is not
//! there yet (the load scan is skipped entirely once cached), looks up the
//! user's own events only when the model does not know the user (both
//! settled while DuckDB binds the call: [`RecommendSql`]), and asks the Rust
//! scorer ([`serving`]) for the top k.

mod bind;
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

use bind::*;
pub use bind::{ModelCacheClear, ModelReady, RecommendSql, RuleRowsSql};

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
        // Read by `similar` only (the other ops pass NULL).
        params.push(items::weight_param());
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
                // A known user's item-to-item weight (NULL: the model's
                // user_item_weight; 0: their plain list).
                let weight = items::call_weight(call)?;
                let recs = pool.install(|| {
                    recommend_one(
                        &served,
                        user_id,
                        &state.cold_categories,
                        &state.cold_bought,
                        (k, blend, exclude),
                        &rules,
                        weight,
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
                // The nearest by cosine, blended with the product's
                // item-to-item neighbours when the model keeps them.
                let weight = items::call_weight(call)?;
                let similar = topk::similar_items(
                    served.item_factors(),
                    served.factors,
                    item,
                    items::base_length(&served, weight, k),
                );
                let recs = items::similar_list(&served, &similar, item, weight, k);
                Ok(Arc::new(Computed::new(rec_rows(
                    &served,
                    &[(product_id, recs)],
                )?)))
            }
            Request::All => {
                // The known users' item-to-item weight (NULL: the model's
                // user_item_weight; 0: their plain lists).
                let weight = items::call_weight(call)?;
                Ok(Arc::new(Ranges::new(
                    served.user_ids.len(),
                    USERS_PER_BLOCK,
                    move |users| {
                        let ids: Vec<u32> = (users.start as u32..users.end as u32).collect();
                        let lists = items::known_users_lists(
                            &served,
                            &ids,
                            &[],
                            k,
                            blend,
                            exclude,
                            &rules,
                            weight,
                        );
                        let lists: Vec<(i64, Vec<Recommendation>)> = ids
                            .iter()
                            .zip(lists)
                            .map(|(&u, r)| (served.user_ids[u as usize], r))
                            .collect();
                        rec_rows(&served, &lists)
                    },
                )))
            }
        }
    }
}

/// Users per block of `recommend_all`: k rows each.
const USERS_PER_BLOCK: usize = 64;

/// Bytes to index a model for serving, from its rows.
fn serving_bytes(rows: &ModelRows) -> u64 {
    (rows.floats() * 4 * 2 + rows.rows() * 48) as u64
}

/// One user's list: known to the model (with the item-to-item scores of
/// their latest products where the model blends them: [`items`]), or
/// from their own events.
#[allow(clippy::too_many_arguments)]
fn recommend_one(
    model: &ServingModel,
    user_id: i64,
    cold_categories: &[i64],
    cold_bought: &[i64],
    (k, blend, exclude_purchased): (usize, f32, bool),
    rules: &Rules,
    item_weight: Option<f32>,
) -> Vec<Recommendation> {
    let mut counts: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
    for &c in cold_categories {
        *counts.entry(c).or_default() += 1.0;
    }
    let bought: Vec<u32> = cold_bought
        .iter()
        .filter_map(|&p| model.product(p))
        .collect();
    if let Some(u) = model.user(user_id) {
        let mut lists = items::known_users_lists(
            model,
            &[u],
            &bought,
            k,
            blend,
            exclude_purchased,
            rules,
            item_weight,
        );
        return lists.pop().unwrap_or_default();
    }
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
        .chain([
            "item_weight := NULL".to_string(),
            "explain := false".to_string(),
        ])
        .collect();
    let all: Vec<String> = std::iter::once("model".to_string())
        .chain(serving.iter().cloned())
        .chain(["item_weight := NULL".to_string()])
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
            // With `explain := true`, a `because` column (crate::explain).
            "FROM query(ecoreco_explained_sql(ecoreco_recommend_sql(model, events, uid, k, blend, exclude_purchased, \
             include, exclude, max_per_category, max_per_brand, min_price, max_price, diversity, item_weight), \
             explain, model, events, uid, k, blend, exclude_purchased, item_weight))"
                .to_string(),
        ),
        SqlMacro::table(
            "recommend_all",
            &all,
            serve_sql(
                "ecoreco.recommend_all",
                "all",
                &[("item_weight", "item_weight".into())],
                false,
                true,
            ),
        )
        .checking("model", &serving_model()),
        SqlMacro::table(
            "similar_products",
            &["pid", "model := 'model'", &k, "item_weight := NULL"],
            format!(
                "SELECT user_id AS of_product_id, rank, product_id, score AS similarity, source FROM ({})",
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
