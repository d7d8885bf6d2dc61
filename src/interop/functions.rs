//! The SQL side of the Spark exchange: the macros, the scalar that writes
//! the import query, and the two aggregates that do the work.
//!
//! Import: `ecoreco.als_import_spark(path, events, indexer)` runs the
//! query [`ImportSql`] writes (DuckDB reads every file: parquet, text,
//! globs, and the events through `ecoreco.interactions`), and the
//! [`SparkImport`] aggregate builds the model from those rows and returns
//! it as model-table rows ([`ModelTable`]).
//! Export: `ecoreco.als_export_spark(model, path)` feeds the model's factor
//! rows to [`SparkExport`], which writes the folder.

use super::export::{write_als_model, SparkFactors};
use super::import::{build, SparkParts};
use super::spark_metadata::{AlsMetadata, Metadata, PIPELINE_MODEL, STRING_INDEXER_MODEL};
use crate::als::read_plain_pairs;
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::scalar::ScalarFunction;
use crate::binding::sql::quote_literal;
use crate::binding::{in_call, Args, Column, ColumnWriter, Param, SqlMacro, SqlType};
use crate::budget;
use crate::model::table::ModelTable;
use crate::tables;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const IMPORT: &str = "ecoreco.als_import_spark";
const EXPORT: &str = "ecoreco.als_export_spark";
const IMPORT_SQL: &str = include_str!("../../sql/macros/spark_import.sql");
const IMPORT_INDEXER_SQL: &str = include_str!("../../sql/macros/spark_import_indexer.sql");
const IMPORT_EVENTS_SQL: &str = include_str!("../../sql/macros/spark_import_events.sql");
const EXPORT_FROM_SQL: &str = include_str!("../../sql/macros/spark_export.sql");

/// `name` as an SQL string literal; NUL bytes cannot be passed on.
fn literal(what: &str, text: &str) -> anyhow::Result<String> {
    if text.contains('\0') {
        return Err(crate::error::param(format!(
            "parameter `{what}` contains a NUL character"
        )));
    }
    Ok(quote_literal(text))
}

/// Replaces `{name}` placeholders of the template (every value is already
/// SQL), in one pass: text inside a value is never read as a placeholder.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut sql = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        sql.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            values
                .iter()
                .find(|(name, _)| *name == &after[..close])
                .map(|(_, value)| (close, value))
        }) {
            Some((close, value)) => {
                sql.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                sql.push('{');
                rest = after;
            }
        }
    }
    sql.push_str(rest);
    sql
}

/// For a local folder, says clearly what is missing before DuckDB's glob
/// errors would (remote paths are left to DuckDB's file system).
fn check_local_model(path: &str) -> anyhow::Result<()> {
    if path.contains("://") {
        return Ok(());
    }
    let root = Path::new(path);
    anyhow::ensure!(
        root.is_dir(),
        "'{path}' is not a folder; pass the folder that ALSModel.save(path) wrote"
    );
    anyhow::ensure!(
        root.join("metadata").is_dir(),
        "'{path}' is not a saved Spark model (it has no metadata/ folder); pass the folder that ALSModel.save(path) wrote"
    );
    // What kind of model it is, before looking for factor files: a
    // PipelineModel or an indexer passed by mistake gets named as such.
    if let Some(text) = first_part(&root.join("metadata")) {
        let meta = Metadata::parse(&text)
            .map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e}"))?;
        AlsMetadata::from_metadata(&meta)
            .map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e}"))?;
    }
    for side in ["userFactors", "itemFactors"] {
        let has_parquet = std::fs::read_dir(root.join(side))
            .map(|entries| {
                entries.filter_map(Result::ok).any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_')
                })
            })
            .unwrap_or(false);
        anyhow::ensure!(
            has_parquet,
            "'{path}' is not an ALSModel folder (no {side}/*.parquet); pass the folder that ALSModel.save(path) wrote"
        );
    }
    Ok(())
}

/// The content of the first `part-*` file of a local metadata folder.
fn first_part(dir: &Path) -> Option<String> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        })
        .collect();
    parts.sort();
    std::fs::read_to_string(parts.first()?).ok()
}

fn check_local_indexer(path: &str) -> anyhow::Result<()> {
    if path.contains("://") {
        return Ok(());
    }
    let root = Path::new(path);
    let not_saved = || {
        anyhow::anyhow!(
            "indexer '{path}' is not a saved Spark model (it has no metadata/ folder); pass the folder that \
             StringIndexerModel.save or PipelineModel.save wrote"
        )
    };
    let text = first_part(&root.join("metadata")).ok_or_else(not_saved)?;
    let meta = Metadata::parse(&text).map_err(|e| anyhow::anyhow!("indexer '{path}': {e}"))?;
    let has_data = |dir: &Path| {
        std::fs::read_dir(dir.join("data"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            })
            .unwrap_or(false)
    };
    let found = match meta.class.as_str() {
        STRING_INDEXER_MODEL => has_data(root),
        PIPELINE_MODEL => std::fs::read_dir(root.join("stages"))
            .map(|stages| stages.filter_map(Result::ok).any(|s| has_data(&s.path())))
            .unwrap_or(false),
        other => anyhow::bail!(
            "indexer '{path}' holds a {other}; pass the StringIndexerModel or PipelineModel folder that indexed the ids"
        ),
    };
    anyhow::ensure!(
        found,
        "indexer '{path}' has no StringIndexerModel data (no data/*.parquet); pass the folder that StringIndexerModel.save or PipelineModel.save wrote"
    );
    Ok(())
}

/// The import query for these arguments.
pub fn import_sql(
    path: &str,
    events: Option<&str>,
    indexer: Option<&str>,
) -> anyhow::Result<String> {
    let base = path.trim_end_matches('/');
    let indexer_rows = match indexer {
        None => String::new(),
        Some(ix) => {
            let ix = ix.trim_end_matches('/');
            fill(
                IMPORT_INDEXER_SQL,
                &[
                    (
                        "indexer_metadata_glob",
                        &literal("indexer", &format!("{ix}/**/metadata/part-*"))?,
                    ),
                    (
                        "indexer_data_glob",
                        &literal("indexer", &format!("{ix}/**/data/*.parquet"))?,
                    ),
                ],
            )
        }
    };
    let event_rows = match events {
        None => String::new(),
        Some(e) => fill(IMPORT_EVENTS_SQL, &[("events", &literal("events", e)?)]),
    };
    let from = fill(
        IMPORT_SQL,
        &[
            (
                "metadata_glob",
                &literal("path", &format!("{base}/metadata/part-*"))?,
            ),
            (
                "user_glob",
                &literal("path", &format!("{base}/userFactors/*.parquet"))?,
            ),
            (
                "item_glob",
                &literal("path", &format!("{base}/itemFactors/*.parquet"))?,
            ),
            ("indexer_rows", &indexer_rows),
            ("event_rows", &event_rows),
        ],
    );
    Ok(aggregate::rows_sql::<SparkImport>(
        IMPORT,
        &IMPORT_INPUTS,
        &[
            ("path", literal("path", path)?),
            (
                "with_indexer",
                if indexer.is_some() { "true" } else { "false" }.to_string(),
            ),
        ],
        &from,
    ))
}

/// `ecoreco_spark_import_sql(path, events, indexer, external_access)`.
pub struct ImportSql;
impl ScalarFunction for ImportSql {
    const NAME: &'static str = "ecoreco_spark_import_sql";
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![Varchar, Varchar, Varchar, Boolean]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        in_call(IMPORT, write_import_sql(input, out))
    }
}

fn write_import_sql(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
    for row in 0..input.rows() {
        let path = input.str(0, row).ok_or_else(|| {
            crate::error::param(
                "parameter `path` is NULL; pass the folder that ALSModel.save(path) wrote",
            )
        })?;
        if path.is_empty() {
            return Err(crate::error::param(
                "parameter `path` is empty; pass the folder that ALSModel.save(path) wrote",
            ));
        }
        if input.bool(3, row) != Some(true) {
            anyhow::bail!("reading files is disabled (enable_external_access is false); enable it to import a model");
        }
        let indexer = input.str(2, row);
        check_local_model(path)?;
        if let Some(ix) = indexer {
            check_local_indexer(ix)?;
        }
        out.set_str(row, &import_sql(path, input.str(1, row), indexer)?);
    }
    Ok(())
}

/// The per-row inputs of the import aggregate: one shape for every kind
/// of row (metadata, factors, labels, event pairs); see spark_import.sql.
fn import_inputs() -> Vec<Column> {
    use SqlType::*;
    let mut columns = vec![
        Column::new("kind", Varchar),
        Column::new("file", Varchar),
        Column::new("text", Varchar),
        Column::new("id", BigInt),
        Column::new("features", List(Box::new(Float))),
        Column::new("col", BigInt),
    ];
    columns.extend(crate::als::plain_pair_inputs());
    columns
}

const IMPORT_INPUTS: [&str; 12] = [
    "kind",
    "file",
    "text",
    "id",
    "features",
    "col",
    "user_id",
    "product_id",
    "weight",
    "purchases",
    "interactions",
    "category_id",
];

#[derive(Default)]
pub struct ImportState {
    parts: SparkParts,
    label_file_index: HashMap<String, u32>,
}

impl ImportState {
    fn label_file(&mut self, name: String) -> u32 {
        let next = self.label_file_index.len() as u32;
        let parts = &mut self.parts;
        *self
            .label_file_index
            .entry(name.clone())
            .or_insert_with(|| {
                parts.label_files.push(name);
                next
            })
    }
}

fn factors(input: &InputChunk, col: usize, row: usize, what: &str) -> anyhow::Result<Vec<f32>> {
    match input.list::<f32>(col, row) {
        Some(Ok(values)) => Ok(values.to_vec()),
        Some(Err(at)) => anyhow::bail!(
            "a {what} features list has a NULL at position {}; the model folder is damaged",
            at + 1
        ),
        None => anyhow::bail!("a {what} row has NULL features; the model folder is damaged"),
    }
}

/// `ecoreco_spark_import`: the model the rows describe, as model-table rows.
pub struct SparkImport;
impl AggregateFunction for SparkImport {
    const NAME: &'static str = "ecoreco_spark_import";
    const FUNCTION: &'static str = IMPORT;
    const EMPTY: &'static str = "nothing was read; pass the folder that ALSModel.save(path) wrote";
    type State = ImportState;
    fn inputs() -> Vec<Column> {
        import_inputs()
    }
    fn params() -> Vec<Param> {
        let mut params = vec![
            Param::positional(
                "path",
                SqlType::Varchar,
                "the folder ALSModel.save(path) wrote, e.g. 'models/als'",
            ),
            Param::positional(
                "with_indexer",
                SqlType::Boolean,
                "whether an indexer maps indices back to ids",
            ),
        ];
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        crate::binding::model_table::columns()
    }
    fn update(
        state: &mut ImportState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let (kind, file, text, id, features, col) = (
            input.col("kind")?,
            input.col("file")?,
            input.col("text")?,
            input.col("id")?,
            input.col("features")?,
            input.col("col")?,
        );
        // Pair rows (and only they) have a user, product and weight.
        read_plain_pairs(&mut state.parts.pairs, input, rows.clone())?;
        for row in rows {
            let owned = |c: usize| input.str(c, row).unwrap_or("").to_string();
            match input.str(kind, row).unwrap_or("") {
                "metadata" => state.parts.metadata.push((owned(file), owned(text))),
                "indexer_metadata" => state.parts.indexer_metadata.push((owned(file), owned(text))),
                side @ ("user" | "item") => {
                    let id = input
                        .i64(id, row)
                        .ok_or_else(|| anyhow::anyhow!("a {side} factor row has a NULL id; the model folder is damaged"))?;
                    let row_factors = factors(input, features, row, side)?;
                    let target = if side == "user" { &mut state.parts.users } else { &mut state.parts.items };
                    budget::reserve(target, 1, "factor rows")?;
                    target.push((id, row_factors));
                }
                "label" => {
                    let (Some(c), Some(idx), Some(label)) = (input.i64(col, row), input.i64(id, row), input.str(text, row)) else {
                        continue;
                    };
                    let f = state.label_file(owned(file));
                    let narrow = |v: i64| u32::try_from(v).map_err(|_| anyhow::anyhow!("an indexer has more than 2^32 labels"));
                    state.parts.labels.push((f, narrow(c)?, narrow(idx)?, label.to_string()));
                }
                "pair" => {}
                other => anyhow::bail!(
                    "unknown row kind '{other}'; this aggregate is fed by ecoreco.als_import_spark, call that instead"
                ),
            }
        }
        Ok(())
    }
    fn combine(target: &mut ImportState, source: ImportState) -> anyhow::Result<()> {
        let s = source.parts;
        // Label files are interned per state: renumber the source's.
        let remap: Vec<u32> = s
            .label_files
            .into_iter()
            .map(|name| target.label_file(name))
            .collect();
        let t = &mut target.parts;
        t.metadata.extend(s.metadata);
        t.indexer_metadata.extend(s.indexer_metadata);
        budget::reserve(&mut t.users, s.users.len(), "factor rows")?;
        t.users.extend(s.users);
        budget::reserve(&mut t.items, s.items.len(), "factor rows")?;
        t.items.extend(s.items);
        budget::reserve(&mut t.pairs, s.pairs.len(), "interaction pairs")?;
        t.pairs.extend(s.pairs);
        budget::reserve(&mut t.labels, s.labels.len(), "indexer labels")?;
        t.labels.extend(
            s.labels
                .into_iter()
                .map(|(f, c, i, l)| (remap[f as usize], c, i, l)),
        );
        Ok(())
    }
    fn finalize(state: ImportState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let (path, with_indexer) = (call.text("path")?, call.boolean("with_indexer")?);
        let imported = crate::threads::pool(call.int("threads")?)?
            .install(|| build(state.parts, path, with_indexer))?;
        Ok(Arc::new(ModelTable::new(
            imported.model,
            imported.params,
            Vec::new(),
        )))
    }
}

#[derive(Default)]
pub struct ExportState {
    model_id: Option<i64>,
    blend: Option<f32>,
    users: Vec<(i64, Vec<f32>)>,
    products: Vec<(i64, Vec<f32>)>,
}

fn sorted_side(
    mut rows: Vec<(i64, Vec<f32>)>,
    rank: usize,
    side: &str,
) -> anyhow::Result<(Vec<i64>, Vec<f32>)> {
    rows.sort_unstable_by_key(|r| r.0);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!(
            "the model has two {side} rows for id {}; pass a table made by ecoreco.als_train",
            w[0].0
        );
    }
    let mut factors = Vec::new();
    budget::reserve(&mut factors, rows.len() * rank, "factors")?;
    for (id, f) in &rows {
        anyhow::ensure!(
            f.len() == rank,
            "{side} {id} has {} factors and others {rank}; the model table is damaged",
            f.len()
        );
        factors.extend_from_slice(f);
    }
    Ok((rows.into_iter().map(|r| r.0).collect(), factors))
}

fn export_columns() -> Vec<Column> {
    vec![
        Column::new("path", SqlType::Varchar),
        Column::new("users", SqlType::BigInt),
        Column::new("products", SqlType::BigInt),
        Column::new("rank", SqlType::BigInt),
    ]
}

/// `ecoreco_spark_export`: writes the folder, returns `path, users, products, rank`.
pub struct SparkExport;
impl AggregateFunction for SparkExport {
    const NAME: &'static str = "ecoreco_spark_export";
    const FUNCTION: &'static str = EXPORT;
    const EMPTY: &'static str =
        "the model table has no user or product rows; pass a table made by ecoreco.als_train or ecoreco.als_import_spark";
    type State = ExportState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        vec![
            Column::new("side", Varchar),
            Column::new("id", BigInt),
            Column::new("factors", List(Box::new(Float))),
            Column::new("model_id", BigInt),
            Column::new("name", Varchar),
            Column::new("value", Double),
        ]
    }
    fn params() -> Vec<Param> {
        let mut params = vec![
            Param::positional(
                "path",
                SqlType::Varchar,
                "the folder to create, e.g. 'models/als'",
            ),
            Param::supplied(
                "external_access",
                SqlType::Boolean,
                "current_setting('enable_external_access')",
            ),
        ];
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        export_columns()
    }
    fn update(
        state: &mut ExportState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            call.boolean("external_access")?,
            "writing files is disabled (enable_external_access is false); enable it to export a model"
        );
        let (side, id, factors_col, model_id) = (
            input.col("side")?,
            input.col("id")?,
            input.col("factors")?,
            input.col("model_id")?,
        );
        let (name, value) = (input.col("name")?, input.col("value")?);
        for row in rows {
            if state.model_id.is_none() {
                state.model_id = input.i64(model_id, row);
            }
            let side = input.str(side, row).unwrap_or("");
            if side == "param" {
                if input.str(name, row) == Some("blend") {
                    state.blend = input.f64(value, row).map(|b| b as f32);
                }
                continue;
            }
            let id = input.i64(id, row).ok_or_else(|| {
                anyhow::anyhow!(
                    "a {side} row has a NULL id; pass a table made by ecoreco.als_train"
                )
            })?;
            let f = factors(input, factors_col, row, side)?;
            let target = if side == "user" {
                &mut state.users
            } else {
                &mut state.products
            };
            budget::reserve(target, 1, "factor rows")?;
            target.push((id, f));
        }
        Ok(())
    }
    fn combine(target: &mut ExportState, source: ExportState) -> anyhow::Result<()> {
        if target.model_id.is_none() {
            target.model_id = source.model_id;
        }
        if target.blend.is_none() {
            target.blend = source.blend;
        }
        budget::reserve(&mut target.users, source.users.len(), "factor rows")?;
        target.users.extend(source.users);
        budget::reserve(&mut target.products, source.products.len(), "factor rows")?;
        target.products.extend(source.products);
        Ok(())
    }
    fn finalize(state: ExportState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let path = call.text("path")?;
        anyhow::ensure!(
            !state.users.is_empty() && !state.products.is_empty(),
            "the model table has no user or no product rows; pass a table made by ecoreco.als_train"
        );
        let rank = state.products[0].1.len();
        anyhow::ensure!(
            rank > 0,
            "the model's factors are empty; the model table is damaged"
        );
        let (user_ids, user_factors) = sorted_side(state.users, rank, "user")?;
        let (product_ids, product_factors) = sorted_side(state.products, rank, "product")?;
        // A table without a blend row was made before models stored one.
        let blend = state.blend.unwrap_or(crate::model::LEGACY_BLEND);
        // A table without a model_id column: the id the trainer would give
        // these factors (a model table carries no attributes to export).
        let model_id = state.model_id.unwrap_or_else(|| {
            crate::model::model_id(
                &user_ids,
                &product_ids,
                &user_factors,
                &product_factors,
                blend,
                None,
            )
        });
        let factors = SparkFactors {
            model_id,
            blend,
            rank,
            user_ids,
            user_factors,
            product_ids,
            product_factors,
        };
        let written = write_als_model(path, &factors)?;
        let mut out = RowSet::for_columns(&export_columns());
        let (p, u, n, r) = (
            out.col("path")?,
            out.col("users")?,
            out.col("products")?,
            out.col("rank")?,
        );
        out.put(p, Some(written.to_string_lossy().into_owned()));
        out.put(u, Some(factors.user_ids.len() as i64));
        out.put(n, Some(factors.product_ids.len() as i64));
        out.put(r, Some(rank as i64));
        Ok(Arc::new(Computed::new(out)))
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let export = aggregate::signature::<SparkExport>(&["model"], &[]);
    let export: Vec<&str> = export.iter().map(String::as_str).collect();
    vec![
        SqlMacro::table(
            "als_import_spark",
            &["path", "events := 'events'", "indexer := NULL"],
            "FROM query(ecoreco_spark_import_sql(path, events, indexer, current_setting('enable_external_access')))",
        ),
        SqlMacro::table(
            "als_export_spark",
            &export,
            aggregate::rows_sql::<SparkExport>(
                EXPORT,
                &["m.side::VARCHAR", "m.id::BIGINT", "m.factors::FLOAT[]", "m.model_id::BIGINT", "m.name::VARCHAR", "m.value::DOUBLE"],
                &[],
                EXPORT_FROM_SQL.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join(" ").trim(),
            ),
        )
        .checking("model", &tables::model(&["side", "id", "factors", "model_id", "name", "value"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_sql_quotes_every_name_and_leaves_out_absent_parts() {
        let sql = import_sql("/m'x/", Some("ev'"), None).unwrap();
        assert!(sql.contains("read_text('/m''x/metadata/part-*')"), "{sql}");
        assert!(
            sql.contains("read_parquet('/m''x/itemFactors/*.parquet')"),
            "{sql}"
        );
        assert!(sql.contains("ecoreco.interactions('ev''')"), "{sql}");
        assert!(
            sql.contains("ecoreco_spark_import('ecoreco.als_import_spark', kind,"),
            "{sql}"
        );
        assert!(
            sql.contains("('/m''x/')::VARCHAR, (false)::BOOLEAN"),
            "{sql}"
        );
        assert!(!sql.contains("labelsArray") && !sql.contains('{'), "{sql}");
        let sql = import_sql("m", None, Some("ix/")).unwrap();
        assert!(
            sql.contains("read_text('ix/**/metadata/part-*')")
                && sql.contains("'ix/**/data/*.parquet'"),
            "{sql}"
        );
        assert!(
            !sql.contains("interactions(") && sql.contains("('m')::VARCHAR, (true)::BOOLEAN"),
            "{sql}"
        );
        assert!(import_sql("a\0b", None, None).is_err());
        // A placeholder inside a name stays text inside its literal.
        let sql = import_sql("/m/{event_rows}", Some("e"), None).unwrap();
        assert!(
            sql.contains("read_text('/m/{event_rows}/metadata/part-*')"),
            "{sql}"
        );
        assert_eq!(sql.matches("ecoreco.interactions(").count(), 1, "{sql}");
        assert_eq!(
            fill("a {x} {y} {x", &[("x", "{y}"), ("y", "2")]),
            "a {y} 2 {x"
        );
    }

    #[test]
    fn local_folders_are_checked_before_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().to_str().unwrap();
        assert!(check_local_model(&format!("{p}/none"))
            .unwrap_err()
            .to_string()
            .contains("is not a folder"));
        assert!(check_local_model(p)
            .unwrap_err()
            .to_string()
            .contains("no metadata/ folder"));
        std::fs::create_dir_all(tmp.path().join("metadata")).unwrap();
        std::fs::create_dir_all(tmp.path().join("userFactors")).unwrap();
        std::fs::write(tmp.path().join("userFactors/.part-0.parquet"), b"").unwrap();
        assert!(check_local_model(p)
            .unwrap_err()
            .to_string()
            .contains("no userFactors/*.parquet"));
        std::fs::write(tmp.path().join("userFactors/part-0.parquet"), b"").unwrap();
        assert!(check_local_model(p)
            .unwrap_err()
            .to_string()
            .contains("no itemFactors/*.parquet"));
        std::fs::create_dir_all(tmp.path().join("itemFactors")).unwrap();
        std::fs::write(tmp.path().join("itemFactors/part-0.parquet"), b"").unwrap();
        check_local_model(p).unwrap();
        check_local_model("s3://bucket/model").unwrap();
        std::fs::write(
            tmp.path().join("metadata/part-00000"),
            r#"{"class":"org.apache.spark.ml.PipelineModel","paramMap":{},"defaultParamMap":{}}"#,
        )
        .unwrap();
        let err = check_local_model(p).unwrap_err().to_string();
        assert!(
            err.contains("is not an ALSModel: it holds a org.apache.spark.ml.PipelineModel"),
            "{err}"
        );
        assert!(check_local_indexer(&format!("{p}/userFactors"))
            .unwrap_err()
            .to_string()
            .contains("no metadata/ folder"));
        // The folder holds a PipelineModel: its stages need StringIndexer data.
        let err = check_local_indexer(p).unwrap_err().to_string();
        assert!(err.contains("has no StringIndexerModel data"), "{err}");
        std::fs::create_dir_all(tmp.path().join("stages/0_S/data")).unwrap();
        std::fs::write(tmp.path().join("stages/0_S/data/part-0.parquet"), b"").unwrap();
        check_local_indexer(p).unwrap();
        std::fs::write(
            tmp.path().join("metadata/part-00000"),
            r#"{"class":"org.apache.spark.ml.recommendation.ALSModel","paramMap":{},"defaultParamMap":{},"rank":2}"#,
        )
        .unwrap();
        let err = check_local_indexer(p).unwrap_err().to_string();
        assert!(
            err.contains(
                "holds a org.apache.spark.ml.recommendation.ALSModel; pass the StringIndexerModel"
            ),
            "{err}"
        );
    }
}
