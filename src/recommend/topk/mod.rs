//! Top-k selection and batch scoring for recommendations from factor
//! matrices (row-major, `factors` floats per row, as in `AlsModel`).
//!
//! Ranking order everywhere: higher score first, ties broken by the smaller
//! index, so results are fully determined by the scores. NaN scores are never
//! returned. Selection is partial (a bounded heap of `k` entries, O(n log k)),
//! never a sort of all candidates.
//!
//! `heap`: the bounded selection every path ends in; `batch`: many users
//! against a catalogue packed into single-precision panels; `packed`: one
//! user against a catalogue packed once, scanned in half precision in
//! descending norm order and rescored exactly (`bound`: the proven error of
//! a half-precision score; `exact`: eight exact scores in vector lanes);
//! `similar`: item-to-item cosine similarity.

mod batch;
mod bound;
mod exact;
mod heap;
mod packed;
mod similar;

pub use batch::recommend_batch;
pub(crate) use bound::{norm, norm_rounded_up};
pub use heap::{best_of, top_k, TopK};
pub use packed::PackedItems;
pub use similar::similar_items;
