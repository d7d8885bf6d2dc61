//! Models exchanged with Spark MLlib, both ways, in Spark's own format.
//!
//! A Spark cluster can train ALS on a history too large for one machine,
//! and DuckDB with ecoreco serve, explain and evaluate the result; or
//! ecoreco trains and Spark serves. [`import`] reads what
//! `ALSModel.save(path)` writes (plus the `StringIndexerModel`s that mapped
//! ids to indices) into an ecoreco model table; [`export`] writes an
//! ecoreco model as a folder `ALSModel.load(path)` reads.
//! [`spark_metadata`] is the metadata JSON, [`factor_parquet`] the factor
//! files, [`functions`] the SQL functions.

pub mod export;
pub mod factor_parquet;
pub mod functions;
pub mod import;
pub mod spark_metadata;

pub use functions::{macros, ImportSql, SparkExport, SparkImport};
