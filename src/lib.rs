//! ecoreco: e-commerce behaviour analytics, customer segments and product
//! recommendations as a loadable DuckDB extension.
//!
//! # Layers
//!
//! Every module, lowest layer first. A module imports only modules listed
//! above its own row (a sub-module listed on its own row, such as
//! [`als::solver`], is a layer of its own: its parent may use it, it may not
//! use its parent), and files never import each other around a circle.
//! Test-only modules (`#[cfg(test)] mod x;`) may use any layer: they test
//! across them.
//! `test/python/test_layers.py` reads this table and fails on any import that
//! breaks it; docs/architecture.md explains the layers.
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | foundation | [`rng`] | seeded random streams and the hash mixer |
//! | foundation | [`isa`] | the one instruction-set dispatch and the shared vector ops |
//! | foundation | [`pages`] | huge pages for buffers read at random |
//! | foundation | [`error`] | the kinds of error a call ends with |
//! | foundation | [`threads`] | the worker pools and the rule for a poisoned lock |
//! | foundation | [`budget`] | Rust memory sized against `memory_limit`, fallible reserves |
//! | foundation | [`progress`] | progress lines on stderr |
//! | kernel | [`model::csr`] | the sparse matrix |
//! | kernel | [`model::confidence`] | how interaction weights become ALS's confidence |
//! | kernel | [`metrics`] | ranking metrics over plain lists |
//! | kernel | [`bench_support`] | synthetic inputs of benches and tests (not in the extension) |
//! | kernel | [`als::solver`] | the implicit ALS solver |
//! | kernel | [`recommend::topk`] | top-k selection and batch scoring |
//! | kernel | [`segment::kmeans`] | k-means, silhouettes, standardisation |
//! | model | [`model`] | the trained model as plain data and the model table's rows |
//! | binding | [`binding`] | the only code that talks to DuckDB's C API |
//! | stage | [`tables`] | what each pipeline table holds, as function inputs |
//! | stage | [`ingest`] | stage 1: CSV files to clean events |
//! | stage | [`synth`] | a REES46-shaped event generator |
//! | stage | [`analytics`] | stages 2 and 3: analytics and features, as SQL macros |
//! | stage | [`segment`] | stage 4: k-means customer segments |
//! | stage | [`als`] | the ALS trainer that stage 5 drives: pairs, weighting, fitting |
//! | stage | [`covisit`] | stage 5b: the item-to-item model |
//! | stage | [`recommend`] | stage 6: serving from a model table |
//! | stage | [`stream`] | real time: replay, fold-in, sessions, monitoring |
//! | stage | [`explain`] | why a score: its parts as rows (above the fold-in it decomposes) |
//! | stage | [`train`] | stage 5: `als_train`, parameters chosen on the user's data |
//! | stage | [`evaluate`] | stage 7: offline evaluation on a time split |
//! | stage | [`interop`] | models exchanged with Spark |
//! | stage | [`report`] | the HTML report |
//! | glue | [`entry`] | the entry point DuckDB calls at LOAD: registers everything |

pub mod budget;
pub mod error;
mod isa;
mod pages;
pub mod progress;
pub mod rng;
pub mod threads;

#[cfg(any(test, feature = "bench"))]
pub mod bench_support;
pub mod metrics;
pub mod model;

pub mod binding;

pub mod als;
pub mod analytics;
pub mod covisit;
pub mod evaluate;
pub mod explain;
pub mod ingest;
pub mod interop;
pub mod recommend;
pub mod report;
pub mod segment;
pub mod stream;
pub mod synth;
pub mod tables;
pub mod train;

mod entry;

/// The extension's version, as `ecoreco_version()` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
