//! K-Means clustering for customer segmentation, over plain row-major `f64`
//! matrices (`n_rows × n_cols` in one slice). Nothing here knows about DuckDB:
//! the caller collects the feature rows (imputing NULL → 0), optionally
//! standardises them with [`Standardizer`], calls [`kmeans`], and maps the
//! centroids back to original units with [`Standardizer::inverse_row`].
//!
//! Reproducibility is a design requirement: for a given seed the result is
//! bit-identical whatever the number of rayon threads. Every parallel pass
//! therefore works on fixed-size row blocks ([`BLOCK_ROWS`]); each block is
//! reduced sequentially and the per-block partial results are combined in
//! block order, so the floating-point summation order never depends on how
//! rayon schedules the blocks.
//!
//! Algorithm: greedy k-means++ seeding (as in scikit-learn: `2 + ln k`
//! candidates per step, keep the one that lowers the potential most), then
//! Lloyd iterations until the relative decrease of inertia drops below `tol`,
//! no assignment changes, or `max_iter` updates have been made.
//!
//! `standardize`: per-column scaling; `seeding`: k-means++; `lloyd`: the
//! iterations; `squared_silhouette`: the quality score over every row with
//! squared Euclidean distance (Spark's); `silhouette`: the sampled score with
//! Euclidean distance (scikit-learn's). The shape checks and distance
//! kernels they share are below.

mod lloyd;
mod seeding;
mod silhouette;
mod squared_silhouette;
mod standardize;

pub use lloyd::{kmeans, kmeans_from_centroids, KMeansModel, KMeansParams};
pub use silhouette::silhouette;
pub use squared_silhouette::squared_euclidean_silhouette;
pub use standardize::Standardizer;

use anyhow::{bail, ensure, Result};
use rayon::prelude::*;

/// Rows per parallel work unit. Fixed (not derived from the thread count) so
/// the summation order, and hence every bit of the result, is independent of
/// the machine; 4096 rows × 8 columns is 256 KiB, comfortably cache-sized.
pub const BLOCK_ROWS: usize = 4096;

/// Checks that `data` is whole rows of `n_cols` values; returns `n_rows`.
fn check_shape(data: &[f64], n_cols: usize) -> Result<usize> {
    ensure!(n_cols > 0, "n_cols must be at least 1");
    ensure!(
        data.len().is_multiple_of(n_cols),
        "data length {} is not a multiple of n_cols {}",
        data.len(),
        n_cols
    );
    Ok(data.len() / n_cols)
}

/// Checks the matrix shape and that every value is finite; returns `n_rows`.
fn validate_matrix(data: &[f64], n_cols: usize) -> Result<usize> {
    check_shape(data, n_cols)?;
    ensure!(!data.is_empty(), "data is empty: no rows to cluster");
    // Finite-ness is checked in parallel because this is a full pass over the
    // data; the lowest offending index is reported so the message is stable.
    let first_bad = data
        .par_chunks(BLOCK_ROWS * n_cols)
        .enumerate()
        .find_map_first(|(block, values)| {
            values
                .iter()
                .position(|v| !v.is_finite())
                .map(|offset| block * BLOCK_ROWS * n_cols + offset)
        });
    if let Some(index) = first_bad {
        bail!(
            "non-finite value {} at row {}, column {} (impute NULLs and remove NaN/Inf before clustering)",
            data[index],
            index / n_cols,
            index % n_cols
        );
    }
    Ok(data.len() / n_cols)
}

/// Checks that there is one label per row and every label is below `k`.
fn check_assignments(assignments: &[u32], n_rows: usize, k: usize) -> Result<()> {
    ensure!(k >= 1, "k must be at least 1 (got {k})");
    ensure!(
        assignments.len() == n_rows,
        "assignments has {} entries but data has {} rows",
        assignments.len(),
        n_rows
    );
    if let Some(row) = assignments.iter().position(|&c| c as usize >= k) {
        bail!(
            "assignment {} of row {} is out of range for k = {}",
            assignments[row],
            row,
            k
        );
    }
    Ok(())
}

/// Squared Euclidean distance. Four independent accumulators let the compiler
/// use SIMD lanes (a single running sum would serialise on the add latency);
/// the lane order is fixed, so the result is still deterministic.
#[inline]
fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0.0f64; 4];
    let a_quads = a.chunks_exact(4);
    let b_quads = b.chunks_exact(4);
    let (a_tail, b_tail) = (a_quads.remainder(), b_quads.remainder());
    for (qa, qb) in a_quads.zip(b_quads) {
        for lane in 0..4 {
            let diff = qa[lane] - qb[lane];
            lanes[lane] += diff * diff;
        }
    }
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (x, y) in a_tail.iter().zip(b_tail) {
        let diff = x - y;
        total += diff * diff;
    }
    total
}

/// Index and squared distance of the centroid nearest to `row`; ties go to
/// the lowest centroid index, which keeps assignments deterministic.
#[inline]
fn nearest_centroid(row: &[f64], centroids: &[f64], n_cols: usize) -> (u32, f64) {
    let mut best_index = 0u32;
    let mut best_d2 = f64::INFINITY;
    for (index, centroid) in centroids.chunks_exact(n_cols).enumerate() {
        let d2 = squared_distance(row, centroid);
        if d2 < best_d2 {
            best_d2 = d2;
            best_index = index as u32;
        }
    }
    (best_index, best_d2)
}

/// Helpers shared by the unit tests of the k-means files.
#[cfg(test)]
mod test_support {
    use super::KMeansParams;
    use crate::rng::Rng;
    use anyhow::Result;

    pub(super) fn run_in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
            .install(work)
    }

    /// Gaussian blobs: `per_blob` points around each centre with the given
    /// std; returns (row-major data, generating labels).
    pub(super) fn blobs(
        centres: &[&[f64]],
        per_blob: usize,
        std: f64,
        seed: u64,
    ) -> (Vec<f64>, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        // Interleave the blobs so the label is not simply a function of the row index.
        for _ in 0..per_blob {
            for (label, centre) in centres.iter().enumerate() {
                for &coordinate in centre.iter() {
                    data.push(coordinate + std * rng.normal());
                }
                labels.push(label as u32);
            }
        }
        (data, labels)
    }

    /// True if `found` equals `expected` up to a relabelling of clusters (a
    /// bijection between label sets).
    pub(super) fn same_partition(found: &[u32], expected: &[u32]) -> bool {
        let mut forward = std::collections::HashMap::new();
        let mut backward = std::collections::HashMap::new();
        found.iter().zip(expected).all(|(f, e)| {
            *forward.entry(*f).or_insert(*e) == *e && *backward.entry(*e).or_insert(*f) == *f
        })
    }

    pub(super) fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            ..KMeansParams::default()
        }
    }

    pub(super) fn error_text<T: std::fmt::Debug>(result: Result<T>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }
}
