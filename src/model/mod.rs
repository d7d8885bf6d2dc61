//! The model layer: what training writes and serving reads.
//!
//! Neither the trainer (`crate::als`) nor the server (`crate::recommend`)
//! imports the other; both depend on this layer: the sparse matrix type
//! ([`csr`]) and the model-table layout.

pub mod csr;
