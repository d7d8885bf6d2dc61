//! The SQL side of the Spark exchange: the macros, the scalar that writes
//! the import query, and the two aggregates that do the work.
//!
//! Import: `ecoreco.als_import_spark(path, events, indexer)` runs the
//! query [`ImportSql`] writes (DuckDB reads every file: parquet, text,
//! globs, and the events through `ecoreco.interactions`), and the
//! [`SparkImport`] aggregate builds the model from those rows.
//! Export: `ecoreco.als_export_spark(model, path)` feeds the model's factor
//! rows to [`SparkExport`], which writes the folder.

use super::export::{write_als_model, SparkFactors};
use super::import::{build, SparkParts};
use super::spark_metadata::{AlsMetadata, Metadata, PIPELINE_MODEL, STRING_INDEXER_MODEL};
use crate::als::Pair;
use crate::binding::aggregate::AggregateFunction;
use crate::binding::rows::{InputChunk, RowSet, Values};
use crate::binding::scalar::ScalarFunction;
use crate::binding::sql::quote_literal;
use crate::binding::{Column, ColumnWriter, SqlMacro, SqlType};
use crate::recommend::model::{self, to_rows};
use std::collections::HashMap;
use std::path::Path;

const IMPORT_SQL: &str = include_str!("../../sql/macros/spark_import.sql");
const IMPORT_INDEXER_SQL: &str = include_str!("../../sql/macros/spark_import_indexer.sql");
const IMPORT_EVENTS_SQL: &str = include_str!("../../sql/macros/spark_import_events.sql");
const EXPORT_SQL: &str = include_str!("../../sql/macros/spark_export.sql");

/// `name` as an SQL string literal; NUL bytes cannot be passed on.
fn literal(what: &str, text: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!text.contains('\0'), "parameter `{what}` contains a NUL character");
    Ok(quote_literal(text))
}

/// Replaces `{name}` placeholders; every value is already SQL.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut sql = template.to_string();
    for (name, value) in values {
        sql = sql.replace(&format!("{{{name}}}", name = name), value);
    }
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
        let meta = Metadata::parse(&text).map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e}"))?;
        AlsMetadata::from_metadata(&meta).map_err(|e| anyhow::anyhow!("'{path}' is not an ALSModel: {e}"))?;
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
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
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
            .map(|entries| entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with(".parquet")))
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
pub fn import_sql(path: &str, events: Option<&str>, indexer: Option<&str>) -> anyhow::Result<String> {
    let base = path.trim_end_matches('/');
    let indexer_rows = match indexer {
        None => String::new(),
        Some(ix) => {
            let ix = ix.trim_end_matches('/');
            fill(
                IMPORT_INDEXER_SQL,
                &[
                    ("indexer_metadata_glob", &literal("indexer", &format!("{ix}/**/metadata/part-*"))?),
                    ("indexer_data_glob", &literal("indexer", &format!("{ix}/**/data/*.parquet"))?),
                ],
            )
        }
    };
    let event_rows = match events {
        None => String::new(),
        Some(e) => fill(IMPORT_EVENTS_SQL, &[("events", &literal("events", e)?)]),
    };
    Ok(fill(
        IMPORT_SQL,
        &[
            ("path", &literal("path", path)?),
            ("with_indexer", if indexer.is_some() { "true" } else { "false" }),
            ("metadata_glob", &literal("path", &format!("{base}/metadata/part-*"))?),
            ("user_glob", &literal("path", &format!("{base}/userFactors/*.parquet"))?),
            ("item_glob", &literal("path", &format!("{base}/itemFactors/*.parquet"))?),
            ("indexer_rows", &indexer_rows),
            ("event_rows", &event_rows),
        ],
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
        for row in 0..input.rows() {
            let path = input.str(0, row).ok_or_else(|| {
                anyhow::anyhow!("parameter `path` is NULL; pass the folder that ALSModel.save(path) wrote")
            })?;
            anyhow::ensure!(!path.is_empty(), "parameter `path` is empty; pass the folder that ALSModel.save(path) wrote");
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
}

#[derive(Default)]
pub struct ImportState {
    settings: Option<(String, bool, i64)>,
    parts: SparkParts,
    label_file_index: HashMap<String, u32>,
}

fn factors(input: &InputChunk, col: usize, row: usize, what: &str) -> anyhow::Result<Vec<f32>> {
    match input.list::<f32>(col, row) {
        Some(Ok(values)) => Ok(values.to_vec()),
        Some(Err(at)) => anyhow::bail!("a {what} features list has a NULL at position {}; the model folder is damaged", at + 1),
        None => anyhow::bail!("a {what} row has NULL features; the model folder is damaged"),
    }
}

/// `ecoreco_spark_import(path, with_indexer, threads, kind, ...)`: the model as rows.
pub struct SparkImport;
impl AggregateFunction for SparkImport {
    const NAME: &'static str = "ecoreco_spark_import";
    type State = ImportState;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![
            Varchar, Boolean, BigInt, Varchar, Varchar, Varchar, BigInt, List(Box::new(Float)), BigInt, BigInt,
            BigInt, Double, BigInt, BigInt, BigInt,
        ]
    }
    fn columns() -> Vec<Column> {
        model::model_columns()
    }
    fn update(state: &mut ImportState, input: &InputChunk, rows: std::ops::Range<usize>) -> anyhow::Result<()> {
        for row in rows {
            if state.settings.is_none() {
                state.settings = Some((
                    input.str(0, row).unwrap_or("").to_string(),
                    input.bool(1, row).unwrap_or(false),
                    input.i64(2, row).unwrap_or(1),
                ));
            }
            let text = || input.str(5, row).unwrap_or("").to_string();
            let file = || input.str(4, row).unwrap_or("").to_string();
            let id = input.i64(6, row);
            let parts = &mut state.parts;
            match input.str(3, row).unwrap_or("") {
                "metadata" => parts.metadata.push((file(), text())),
                "indexer_metadata" => parts.indexer_metadata.push((file(), text())),
                side @ ("user" | "item") => {
                    let id = id.ok_or_else(|| anyhow::anyhow!("a {side} factor row has a NULL id; the model folder is damaged"))?;
                    let row_factors = factors(input, 7, row, side)?;
                    if side == "user" {
                        parts.users.push((id, row_factors));
                    } else {
                        parts.items.push((id, row_factors));
                    }
                }
                "label" => {
                    let (Some(col), Some(idx), Some(label)) = (input.i64(8, row), id, input.str(5, row)) else {
                        continue;
                    };
                    let name = file();
                    let next = state.label_file_index.len() as u32;
                    let f = *state.label_file_index.entry(name.clone()).or_insert_with(|| {
                        parts.label_files.push(name);
                        next
                    });
                    let narrow = |v: i64| u32::try_from(v).map_err(|_| anyhow::anyhow!("an indexer has more than 2^32 labels"));
                    parts.labels.push((f, narrow(col)?, narrow(idx)?, label.to_string()));
                }
                "pair" => {
                    let (Some(user), Some(product), Some(weight)) = (input.i64(9, row), input.i64(10, row), input.f64(11, row))
                    else {
                        continue;
                    };
                    parts.pairs.push(Pair {
                        user,
                        product,
                        weight: weight as f32,
                        purchases: input.i64(12, row).unwrap_or(0).max(0) as u32,
                        interactions: input.i64(13, row).unwrap_or(1).max(0) as u32,
                        category: input.i64(14, row).unwrap_or(-1),
                    });
                }
                other => anyhow::bail!(
                    "unknown row kind '{other}'; this aggregate is fed by ecoreco.als_import_spark, call that instead"
                ),
            }
        }
        Ok(())
    }
    fn combine(target: &mut ImportState, source: ImportState) -> anyhow::Result<()> {
        if target.settings.is_none() {
            target.settings = source.settings;
        }
        let t = &mut target.parts;
        let s = source.parts;
        t.metadata.extend(s.metadata);
        t.indexer_metadata.extend(s.indexer_metadata);
        t.users.extend(s.users);
        t.items.extend(s.items);
        t.pairs.extend(s.pairs);
        // Label files are interned per state: renumber the source's.
        let mut remap = Vec::with_capacity(s.label_files.len());
        for name in s.label_files {
            let next = target.label_file_index.len() as u32;
            let f = *target.label_file_index.entry(name.clone()).or_insert_with(|| {
                t.label_files.push(name);
                next
            });
            remap.push(f);
        }
        t.labels.extend(s.labels.into_iter().map(|(f, c, i, l)| (remap[f as usize], c, i, l)));
        Ok(())
    }
    fn finalize(state: ImportState) -> anyhow::Result<RowSet> {
        let (path, with_indexer, threads) = state
            .settings
            .ok_or_else(|| anyhow::anyhow!("nothing was read; pass the folder that ALSModel.save(path) wrote"))?;
        let imported = crate::binding::thread_pool(threads)?.install(|| build(state.parts, &path, with_indexer))?;
        let rows = to_rows(&imported.serving, &imported.params, &[]);
        model::remember(imported.serving);
        Ok(rows.into_rowset())
    }
}

#[derive(Default)]
pub struct ExportState {
    settings: Option<(Option<String>, bool)>,
    model_id: Option<i64>,
    users: Vec<(i64, Vec<f32>)>,
    products: Vec<(i64, Vec<f32>)>,
}

fn sorted_side(mut rows: Vec<(i64, Vec<f32>)>, rank: usize, side: &str) -> anyhow::Result<(Vec<i64>, Vec<f32>)> {
    rows.sort_unstable_by_key(|r| r.0);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!("the model has two {side} rows for id {}; pass a table made by ecoreco.als_train", w[0].0);
    }
    let mut factors = Vec::new();
    factors
        .try_reserve_exact(rows.len() * rank)
        .map_err(|_| anyhow::anyhow!("not enough memory for {} {side} rows", rows.len()))?;
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

/// `ecoreco_spark_export(path, external_access, side, id, factors, model_id)`:
/// writes the folder, returns `path, users, products, rank`.
pub struct SparkExport;
impl AggregateFunction for SparkExport {
    const NAME: &'static str = "ecoreco_spark_export";
    type State = ExportState;
    fn params() -> Vec<SqlType> {
        use SqlType::*;
        vec![Varchar, Boolean, Varchar, BigInt, List(Box::new(Float)), BigInt]
    }
    fn columns() -> Vec<Column> {
        vec![
            Column::new("path", SqlType::Varchar),
            Column::new("users", SqlType::BigInt),
            Column::new("products", SqlType::BigInt),
            Column::new("rank", SqlType::BigInt),
        ]
    }
    fn update(state: &mut ExportState, input: &InputChunk, rows: std::ops::Range<usize>) -> anyhow::Result<()> {
        for row in rows {
            if state.settings.is_none() {
                state.settings = Some((input.str(0, row).map(str::to_string), input.bool(1, row) == Some(true)));
            }
            if state.model_id.is_none() {
                state.model_id = input.i64(5, row);
            }
            let side = input.str(2, row).unwrap_or("");
            let id = input
                .i64(3, row)
                .ok_or_else(|| anyhow::anyhow!("a {side} row has a NULL id; pass a table made by ecoreco.als_train"))?;
            let f = factors(input, 4, row, side)?;
            match side {
                "user" => state.users.push((id, f)),
                _ => state.products.push((id, f)),
            }
        }
        Ok(())
    }
    fn combine(target: &mut ExportState, source: ExportState) -> anyhow::Result<()> {
        if target.settings.is_none() {
            target.settings = source.settings;
        }
        if target.model_id.is_none() {
            target.model_id = source.model_id;
        }
        target.users.extend(source.users);
        target.products.extend(source.products);
        Ok(())
    }
    fn finalize(state: ExportState) -> anyhow::Result<RowSet> {
        let Some((path, external_access)) = state.settings else {
            anyhow::bail!("the model table has no user or product rows; pass a table made by ecoreco.als_train or ecoreco.als_import_spark");
        };
        let path = path.ok_or_else(|| anyhow::anyhow!("parameter `path` is NULL; pass the folder to create, e.g. 'models/als'"))?;
        anyhow::ensure!(
            external_access,
            "writing files is disabled (enable_external_access is false); enable it to export a model"
        );
        anyhow::ensure!(
            !state.users.is_empty() && !state.products.is_empty(),
            "the model table has no user or no product rows; pass a table made by ecoreco.als_train"
        );
        let rank = state.products[0].1.len();
        anyhow::ensure!(rank > 0, "the model's factors are empty; the model table is damaged");
        let (user_ids, user_factors) = sorted_side(state.users, rank, "user")?;
        let (product_ids, product_factors) = sorted_side(state.products, rank, "product")?;
        let model_id = state
            .model_id
            .unwrap_or_else(|| model::model_id(&[&user_factors, &product_factors], &[&user_ids, &product_ids]));
        let factors = SparkFactors { model_id, rank, user_ids, user_factors, product_ids, product_factors };
        let written = write_als_model(&path, &factors)?;
        Ok(RowSet::new()
            .with("path", Values::Text(vec![Some(written.to_string_lossy().into_owned())]))
            .with("users", Values::BigInt(vec![Some(factors.user_ids.len() as i64)]))
            .with("products", Values::BigInt(vec![Some(factors.product_ids.len() as i64)]))
            .with("rank", Values::BigInt(vec![Some(rank as i64)])))
    }
}

pub fn macros() -> Vec<SqlMacro> {
    vec![
        SqlMacro::table(
            "als_import_spark",
            &["path", "events := 'events'", "indexer := NULL"],
            "FROM query(ecoreco_spark_import_sql(path, events, indexer, current_setting('enable_external_access')))",
        ),
        SqlMacro::table("als_export_spark", &["model", "path"], EXPORT_SQL),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_sql_quotes_every_name_and_leaves_out_absent_parts() {
        let sql = import_sql("/m'x/", Some("ev'"), None).unwrap();
        assert!(sql.contains("read_text('/m''x/metadata/part-*')"), "{sql}");
        assert!(sql.contains("read_parquet('/m''x/itemFactors/*.parquet')"), "{sql}");
        assert!(sql.contains("ecoreco.interactions('ev''')"), "{sql}");
        assert!(sql.contains("ecoreco_spark_import('/m''x/', false,"), "{sql}");
        assert!(!sql.contains("labelsArray") && !sql.contains('{'), "{sql}");
        let sql = import_sql("m", None, Some("ix/")).unwrap();
        assert!(sql.contains("read_text('ix/**/metadata/part-*')") && sql.contains("'ix/**/data/*.parquet'"), "{sql}");
        assert!(!sql.contains("interactions(") && sql.contains("ecoreco_spark_import('m', true,"), "{sql}");
        assert!(import_sql("a\0b", None, None).is_err());
    }

    #[test]
    fn local_folders_are_checked_before_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().to_str().unwrap();
        assert!(check_local_model(&format!("{p}/none")).unwrap_err().to_string().contains("is not a folder"));
        assert!(check_local_model(p).unwrap_err().to_string().contains("no metadata/ folder"));
        std::fs::create_dir_all(tmp.path().join("metadata")).unwrap();
        std::fs::create_dir_all(tmp.path().join("userFactors")).unwrap();
        std::fs::write(tmp.path().join("userFactors/.part-0.parquet"), b"").unwrap();
        assert!(check_local_model(p).unwrap_err().to_string().contains("no userFactors/*.parquet"));
        std::fs::write(tmp.path().join("userFactors/part-0.parquet"), b"").unwrap();
        assert!(check_local_model(p).unwrap_err().to_string().contains("no itemFactors/*.parquet"));
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
        assert!(err.contains("is not an ALSModel: it holds a org.apache.spark.ml.PipelineModel"), "{err}");
        assert!(check_local_indexer(&format!("{p}/userFactors")).unwrap_err().to_string().contains("no metadata/ folder"));
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
        assert!(err.contains("holds a org.apache.spark.ml.recommendation.ALSModel; pass the StringIndexerModel"), "{err}");
    }
}
