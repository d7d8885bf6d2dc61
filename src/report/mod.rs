//! `ecoreco.report(events, model, segments, evaluation, path, seed)`: one
//! self-contained HTML page of charts about the pipeline's tables.
//!
//! The macro (sql/macros/report.sql) aggregates everything in DuckDB into
//! one bounded JSON value; [`ReportWrite`] reads it ([`data`]), draws the
//! charts with plotters ([`charts`]), lays out the page ([`page`]) and
//! writes it atomically ([`write`]). The optional tables reach the macro
//! through `query(ecoreco_report_sql(...))` ([`ReportSql`]), which reads a
//! table by name or gives a typed empty table when the name is NULL: a
//! table macro cannot take an optional table argument.

pub mod charts;
pub mod data;
pub mod format;
pub mod page;
pub mod write;

use crate::binding::rows::InputChunk;
use crate::binding::scalar::ScalarFunction;
use crate::binding::sql::{checked_table, quote_literal, Expect};
use crate::binding::{ColumnWriter, SqlMacro, SqlType};
use crate::tables;
use anyhow::{anyhow, Result};

const REPORT: &str = include_str!("../../sql/macros/report.sql");
const RECOMMENDATIONS: &str = include_str!("../../sql/macros/report_recommendations.sql");
const SEGMENTS: &str = include_str!("../../sql/macros/report_segments.sql");
const EVALUATION: &str = include_str!("../../sql/macros/report_evaluation.sql");

/// The query for one optional part of the report; `name` is the table's
/// name, `None` when the caller gave none. Names go in as string literals
/// for `query_table` (DuckDB resolves them), the seed as a number.
pub fn part_sql(part: &str, name: Option<&str>, seed: i64) -> Result<String> {
    let (template, placeholder, empty, expect) = match part {
        "recommendations" => (
            RECOMMENDATIONS,
            "{model}",
            "SELECT NULL::VARCHAR AS kind, NULL::BIGINT AS id, NULL::BIGINT AS n, NULL::DOUBLE AS x, NULL::DOUBLE AS y WHERE false",
            tables::model(&["seq", "model_id", "side", "id", "item", "name", "value", "factors"]),
        ),
        "segments" => (
            SEGMENTS,
            "{segments}",
            "SELECT NULL::BIGINT AS user_id, NULL::BIGINT AS segment_id, NULL::VARCHAR AS segment WHERE false",
            Expect::of(tables::SEGMENTS, &["user_id", "segment_id", "segment"], tables::PASS_SEGMENTS),
        ),
        "evaluation" => (
            EVALUATION,
            "{evaluation}",
            "SELECT NULL::VARCHAR AS recommender, NULL::BIGINT AS k, NULL::DOUBLE AS \"precision\", NULL::DOUBLE AS recall, \
             NULL::DOUBLE AS ndcg, NULL::DOUBLE AS \"map\", NULL::DOUBLE AS coverage, NULL::BIGINT AS users_evaluated WHERE false",
            Expect::of(
                tables::EVALUATION,
                &["model", "k", "precision", "recall", "ndcg", "map", "coverage", "users_evaluated"],
                tables::PASS_EVALUATION,
            ),
        ),
        other => {
            return Err(anyhow!("part must be one of recommendations, segments, evaluation, got '{other}'"))
        }
    };
    let Some(name) = name else {
        return Ok(empty.to_string());
    };
    if name.contains('\0') {
        return Err(anyhow!(
            "the {part} table name contains a NUL character, pass a table name"
        ));
    }
    // Every read of the table is checked first (its name is in the message).
    let table = quote_literal(name);
    let checked = checked_table("ecoreco.report", &table, &expect.by_name());
    Ok(template
        .replace(&format!("query_table({placeholder})"), &checked)
        .replace(placeholder, &table)
        .replace("{seed}", &seed.to_string()))
}

/// `ecoreco_report_sql(part, table_name, seed)`: the query
/// `ecoreco.report` runs with `query()` for one optional table.
pub struct ReportSql;
impl ScalarFunction for ReportSql {
    const NAME: &'static str = "ecoreco_report_sql";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Varchar, SqlType::BigInt]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> Result<()> {
        for row in 0..input.rows() {
            let part = input.str(0, row).ok_or_else(|| {
                anyhow!("part is NULL, pass recommendations, segments or evaluation")
            })?;
            let seed = input
                .i64(2, row)
                .ok_or_else(|| anyhow!("seed is NULL, pass an integer such as seed := 42"))?;
            out.set_str(row, &part_sql(part, input.str(1, row), seed)?);
        }
        Ok(())
    }
}

/// `ecoreco_report_write(path, external_access, data)`: renders the JSON
/// `data` the report macro aggregated and writes the page to `path`;
/// returns its size in bytes.
pub struct ReportWrite;
impl ScalarFunction for ReportWrite {
    const NAME: &'static str = "ecoreco_report_write";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Boolean, SqlType::Varchar]
    }
    fn returns() -> SqlType {
        SqlType::BigInt
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> Result<()> {
        for row in 0..input.rows() {
            let path = input.str(0, row).ok_or_else(|| {
                anyhow!("path is NULL, pass a file name such as path := 'report.html'")
            })?;
            // A NULL setting is read as "not allowed".
            let external_access = input.bool(1, row).unwrap_or(false);
            let payload = input.str(2, row).ok_or_else(|| {
                anyhow!("the report data is NULL, call ecoreco.report(events, ...)")
            })?;
            let bytes = render_and_write(path, external_access, payload)?;
            out.set_i64(row, bytes as i64);
        }
        Ok(())
    }
}

/// Checks access before any work, renders, writes.
pub fn render_and_write(path: &str, external_access: bool, payload: &str) -> Result<u64> {
    if !external_access {
        // The same refusal write_atomically gives, before rendering.
        return write::write_atomically(path, false, &[]);
    }
    let data = data::ReportData::from_json(payload)?;
    let html = page::render(&data)?;
    write::write_atomically(path, true, html.as_bytes())
}

pub fn macros() -> Vec<SqlMacro> {
    vec![SqlMacro::table(
        "report",
        &[
            "events",
            "model := 'model'",
            "segments := NULL",
            "evaluation := NULL",
            "path := 'report.html'",
            "seed := 42",
        ],
        REPORT.replace(
            "{rfm_summary}",
            &crate::segment::rfm::summary_query("rfm_users"),
        ),
    )
    .checking("events", &tables::raw_events_and(&["hour", "date"]))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sql_quotes_names_and_has_a_typed_empty_form() {
        let sql = part_sql("segments", Some("seg'); DROP TABLE x; --"), 42).unwrap();
        assert!(
            sql.contains("query_table('seg''); DROP TABLE x; --')"),
            "{sql}"
        );
        let sql = part_sql("recommendations", Some("model"), 7).unwrap();
        assert!(
            sql.contains("ecoreco.recommend_all('model')")
                && sql.contains("hash(user_id, product_id, 7)"),
            "{sql}"
        );
        assert!(part_sql("evaluation", None, 42)
            .unwrap()
            .ends_with("WHERE false"));
        assert!(part_sql("nope", None, 42).is_err());
        assert!(part_sql("segments", Some("a\0b"), 42).is_err());
    }
}
