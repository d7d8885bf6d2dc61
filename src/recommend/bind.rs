//! The scalars that settle a serving call while DuckDB binds it: whether
//! the model is cached, the SQL of a `recommend` call (the model's rows or
//! only its id, the user's own events only for a user the model does not
//! know) and of its rule tables, and clearing the cache.

use super::*;

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
/// diversity, item_weight)`:
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
            Double, Double, Double, Double,
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
                item_weight: match input.f64(13, row) {
                    None => Value::Null,
                    Some(w) => {
                        items::weight_param().validate("ecoreco.recommend", Value::Double(w))?
                    }
                },
            };
            let cached = cache::cached_for_table(model);
            let known = cached.as_ref().map(|m| m.user(request.user_id).is_some());
            out.set_str(row, &recommend_sql(model, events, &request, known)?);
        }
        Ok(())
    }
}

/// A serving parameter's value, checked by its declaration.
pub(super) fn serving_arg(name: &str, value: Option<Value>) -> anyhow::Result<Value> {
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
pub(super) struct OneUser {
    user_id: i64,
    k: Value,
    blend: Value,
    exclude_purchased: Value,
    /// Table names of the include and exclude rules.
    include: Option<String>,
    exclude: Option<String>,
    /// The other rules' values, by parameter name.
    rules: Vec<(&'static str, Value)>,
    /// The known users' item-to-item weight (NULL: the model's).
    item_weight: Value,
}

/// `text` as an SQL string literal.
pub(super) fn string_literal(what: &str, text: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !text.contains('\0'),
        "parameter `{what}` contains a NUL character; pass a table name"
    );
    Ok(crate::binding::sql::quote_literal(text))
}

/// The model-row inputs of [`Serve`], read from the model table `m`.
pub(super) const MODEL_INPUTS: [&str; 7] = [
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
pub(super) const CACHED_INPUTS: [&str; 7] = [
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
pub(super) fn recommend_sql(
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
        ("item_weight", request.item_weight.sql_literal()),
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
pub(super) fn rule_rows_sql(
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
            item_weight: Value::Double(0.75),
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
        // The known user's item-to-item weight reaches the aggregate.
        assert!(known.contains("(0.75)::DOUBLE"), "{known}");
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
