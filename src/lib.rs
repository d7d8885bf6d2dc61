//! ecoreco: e-commerce behaviour analytics, customer segments and product
//! recommendations as a loadable DuckDB extension.
//!
//! Read top-down like the pipeline: [`ingest`] (CSV → clean events),
//! [`synth`] (a calibrated REES46-shaped generator), [`segment`] (k-means),
//! [`als`] (implicit ALS), [`recommend`] (top-k), [`evaluate`] (ranking
//! metrics), all over the thin [`binding`] layer, the only code that talks to
//! DuckDB's C API.

pub mod binding;
pub mod budget;
mod isa;
mod pages;
pub mod rng;
pub mod tables;

pub mod als;
pub mod analytics;
pub mod bench_support;
pub mod covisit;
pub mod evaluate;
pub mod explain;
pub mod features;
pub mod ingest;
pub mod interop;
pub mod model;
pub mod recommend;
pub mod report;
pub mod segment;
pub mod stream;
pub mod synth;
pub mod train;

mod entry;

/// The extension's version, as `ecoreco_version()` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
