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

use anyhow::{bail, ensure, Result};
use rayon::prelude::*;
use std::collections::HashSet;

use crate::rng::Rng;

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

// ---------------------------------------------------------------------------
// Standardisation
// ---------------------------------------------------------------------------

/// Per-column standardisation: mean 0, population std 1. A constant column
/// (all values equal, or std == 0 or non-finite) gets std 1 so it becomes all
/// zeros: it then carries no weight in the distances.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits means and population standard deviations per column.
    ///
    /// Empty data gives the identity transform (mean 0, std 1).
    /// Panics if `n_cols == 0` or `data.len()` is not a multiple of `n_cols`;
    /// use [`Standardizer::try_fit`] to get an error instead (e.g. across FFI).
    /// Non-finite inputs propagate into `mean`; [`kmeans`] then rejects the
    /// transformed data with the offending row and column.
    pub fn fit(data: &[f64], n_cols: usize) -> Standardizer {
        match Standardizer::try_fit(data, n_cols) {
            Ok(standardizer) => standardizer,
            Err(error) => panic!("Standardizer::fit: {error}"),
        }
    }

    /// [`Standardizer::fit`] returning shape errors instead of panicking.
    pub fn try_fit(data: &[f64], n_cols: usize) -> Result<Standardizer> {
        let n_rows = check_shape(data, n_cols)?;
        if n_rows == 0 {
            return Ok(Standardizer {
                mean: vec![0.0; n_cols],
                std: vec![1.0; n_cols],
            });
        }
        let mut sum = vec![0.0; n_cols];
        let mut min = vec![f64::INFINITY; n_cols];
        let mut max = vec![f64::NEG_INFINITY; n_cols];
        for row in data.chunks_exact(n_cols) {
            for col in 0..n_cols {
                sum[col] += row[col];
                min[col] = min[col].min(row[col]);
                max[col] = max[col].max(row[col]);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n_rows as f64).collect();
        // Two-pass variance: sum of squared deviations from the mean avoids the
        // catastrophic cancellation of E[x²] − E[x]² on large-mean columns.
        let mut squared_deviations = vec![0.0; n_cols];
        for row in data.chunks_exact(n_cols) {
            for col in 0..n_cols {
                let deviation = row[col] - mean[col];
                squared_deviations[col] += deviation * deviation;
            }
        }
        let mut fitted_mean = mean;
        let mut std = vec![1.0; n_cols];
        for col in 0..n_cols {
            // A constant column is detected exactly (min == max) rather than by
            // std == 0: e.g. a column of 0.1s has a mean that is off by one ulp,
            // giving a std of ~1e-17 that would blow rounding noise up to ±1.
            if min[col] == max[col] {
                fitted_mean[col] = min[col];
                continue;
            }
            let column_std = (squared_deviations[col] / n_rows as f64).sqrt();
            if column_std.is_finite() && column_std > 0.0 {
                std[col] = column_std;
            }
        }
        Ok(Standardizer {
            mean: fitted_mean,
            std,
        })
    }

    /// Number of columns this standardiser was fitted on.
    pub fn n_cols(&self) -> usize {
        self.mean.len()
    }

    /// `x ← (x − mean) / std` for every value, in parallel over row blocks
    /// (element-wise, so the thread count cannot change the result).
    /// Panics if `data.len()` is not a multiple of the fitted column count.
    pub fn transform_in_place(&self, data: &mut [f64]) {
        let n_cols = self.n_cols();
        assert!(
            n_cols > 0 && data.len().is_multiple_of(n_cols),
            "Standardizer::transform_in_place: data length {} is not a multiple of {} columns",
            data.len(),
            n_cols
        );
        data.par_chunks_mut(BLOCK_ROWS * n_cols).for_each(|block| {
            for row in block.chunks_exact_mut(n_cols) {
                for ((value, mean), std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                    *value = (*value - mean) / std;
                }
            }
        });
    }

    /// Maps one standardised row (e.g. a centroid) back to original units.
    /// Constant columns come back as their constant value.
    pub fn inverse_row(&self, row: &[f64]) -> Vec<f64> {
        assert_eq!(
            row.len(),
            self.n_cols(),
            "Standardizer::inverse_row: row has {} values, expected {}",
            row.len(),
            self.n_cols()
        );
        row.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((value, mean), std)| value * std + mean)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// K-Means
// ---------------------------------------------------------------------------

/// Parameters of [`kmeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansParams {
    /// Number of clusters; 1 ≤ k ≤ number of rows.
    pub k: usize,
    /// Maximum number of Lloyd updates (0 returns the k-means++ seeding).
    pub max_iter: usize,
    /// Seed of the k-means++ initialisation.
    pub seed: u64,
    /// Stop when the relative inertia decrease `(prev − cur) / prev` is
    /// below `tol`; a fixed point (no assignment changed) also stops.
    pub tol: f64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            k: 5,
            max_iter: 20,
            seed: 42,
            tol: 1e-4,
        }
    }
}

/// Result of [`kmeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansModel {
    pub k: usize,
    pub n_cols: usize,
    /// `k × n_cols`, row-major, in the (standardised) space the data was given in.
    pub centroids: Vec<f64>,
    /// Cluster index of each row, nearest of the final `centroids`.
    pub assignments: Vec<u32>,
    /// Euclidean distance of each row to its assigned centroid.
    pub distances: Vec<f64>,
    /// Sum of squared distances of rows to their assigned centroids.
    pub inertia: f64,
    /// Number of Lloyd centroid updates performed.
    pub iterations: usize,
    /// True if stopped by `tol` or a fixed point, false if by `max_iter`.
    pub converged: bool,
    /// Rows per cluster. A 0 is possible only when the data has fewer
    /// distinct rows than `k` (nothing left to re-seed an empty cluster with).
    pub sizes: Vec<usize>,
    /// Inertia after every assignment pass: `[0]` for the k-means++ seeds,
    /// `[t]` after the t-th update; length `iterations + 1`, last == `inertia`.
    /// Lloyd's algorithm (with our empty-cluster rule) never increases it.
    pub inertia_history: Vec<f64>,
}

impl KMeansModel {
    /// Centroid `cluster` as a slice of `n_cols` values.
    pub fn centroid(&self, cluster: usize) -> &[f64] {
        &self.centroids[cluster * self.n_cols..(cluster + 1) * self.n_cols]
    }

    /// Assigns new rows (same space as the training data) to their nearest
    /// centroid; returns (assignments, Euclidean distances).
    pub fn predict(&self, data: &[f64]) -> Result<(Vec<u32>, Vec<f64>)> {
        let n_rows = validate_matrix(data, self.n_cols)?;
        let mut assignments = vec![0u32; n_rows];
        let mut distances = vec![0.0; n_rows];
        data.par_chunks(BLOCK_ROWS * self.n_cols)
            .zip(assignments.par_chunks_mut(BLOCK_ROWS))
            .zip(distances.par_chunks_mut(BLOCK_ROWS))
            .for_each(|((rows, block_assignments), block_distances)| {
                for ((row, assignment), distance) in rows
                    .chunks_exact(self.n_cols)
                    .zip(block_assignments.iter_mut())
                    .zip(block_distances.iter_mut())
                {
                    let (cluster, d2) = nearest_centroid(row, &self.centroids, self.n_cols);
                    *assignment = cluster;
                    *distance = d2.sqrt();
                }
            });
        Ok((assignments, distances))
    }
}

/// K-Means with greedy k-means++ seeding and Lloyd iterations; see the module
/// documentation. Errors on malformed shapes, `k` outside `1..=n_rows`,
/// non-finite values (naming row and column) and a negative/non-finite `tol`.
pub fn kmeans(data: &[f64], n_cols: usize, params: &KMeansParams) -> Result<KMeansModel> {
    let n_rows = validate_matrix(data, n_cols)?;
    validate_params(params, n_rows)?;
    let mut rng = Rng::new(params.seed);
    let initial_centroids = kmeans_plus_plus(data, n_rows, n_cols, params.k, &mut rng)?;
    lloyd(data, n_rows, n_cols, initial_centroids, params)
}

/// Lloyd iterations from caller-supplied initial centroids (`k × n_cols`,
/// `params.seed` unused). For warm starts, and to test the empty-cluster rule.
pub fn kmeans_from_centroids(
    data: &[f64],
    n_cols: usize,
    initial_centroids: &[f64],
    params: &KMeansParams,
) -> Result<KMeansModel> {
    let n_rows = validate_matrix(data, n_cols)?;
    validate_params(params, n_rows)?;
    ensure!(
        initial_centroids.len() == params.k * n_cols,
        "initial_centroids has {} values, expected k × n_cols = {}",
        initial_centroids.len(),
        params.k * n_cols
    );
    ensure!(
        initial_centroids.iter().all(|v| v.is_finite()),
        "initial_centroids contain a non-finite value"
    );
    lloyd(data, n_rows, n_cols, initial_centroids.to_vec(), params)
}

fn validate_params(params: &KMeansParams, n_rows: usize) -> Result<()> {
    ensure!(params.k >= 1, "k must be at least 1 (got {})", params.k);
    ensure!(
        params.k <= n_rows,
        "k = {} exceeds the number of rows ({})",
        params.k,
        n_rows
    );
    ensure!(
        params.tol.is_finite() && params.tol >= 0.0,
        "tol must be finite and >= 0 (got {})",
        params.tol
    );
    Ok(())
}

/// Sums a sequence of per-block partial sums in block order.
fn ordered_sum(block_sums: &[f64]) -> f64 {
    block_sums.iter().fold(0.0, |total, s| total + s)
}

/// Greedy k-means++ (Arthur & Vassilvitskii, with scikit-learn's local
/// trials): the first centre is a uniformly random row; each further centre
/// is the best of `2 + ⌊ln k⌋` rows sampled with probability proportional to
/// their squared distance to the nearest centre so far, "best" meaning the
/// lowest resulting potential (sum of squared distances).
fn kmeans_plus_plus(
    data: &[f64],
    n_rows: usize,
    n_cols: usize,
    k: usize,
    rng: &mut Rng,
) -> Result<Vec<f64>> {
    let n_local_trials = 2 + (k as f64).ln() as usize;
    let row = |index: usize| &data[index * n_cols..(index + 1) * n_cols];

    let mut centroids = Vec::with_capacity(k * n_cols);
    let first = rng.below(n_rows as u64) as usize;
    centroids.extend_from_slice(row(first));

    // closest_d2[i]: squared distance of row i to its nearest chosen centre.
    let mut closest_d2 = vec![f64::INFINITY; n_rows];
    let mut block_potentials = lower_closest(data, n_cols, row(first), &mut closest_d2);
    let mut potential = ordered_sum(&block_potentials);
    ensure!(
        potential.is_finite(),
        "squared distances overflow f64 (values too large); standardise the data first"
    );

    let mut candidates = Vec::with_capacity(n_local_trials * n_cols);
    for _ in 1..k {
        candidates.clear();
        for _ in 0..n_local_trials {
            let target = rng.next_f64() * potential;
            // potential == 0: every row coincides with a chosen centre (fewer
            // distinct rows than k); any row is as good as another.
            let chosen = sample_by_weight(&closest_d2, &block_potentials, target)
                .unwrap_or_else(|| rng.below(n_rows as u64) as usize);
            candidates.extend_from_slice(row(chosen));
        }
        let candidate_potentials =
            potentials_with_candidate(data, n_cols, &closest_d2, &candidates, n_local_trials);
        let mut best_trial = 0;
        for trial in 1..n_local_trials {
            if candidate_potentials[trial] < candidate_potentials[best_trial] {
                best_trial = trial;
            }
        }
        let best = &candidates[best_trial * n_cols..(best_trial + 1) * n_cols];
        centroids.extend_from_slice(best);
        block_potentials = lower_closest(data, n_cols, best, &mut closest_d2);
        potential = ordered_sum(&block_potentials);
    }
    Ok(centroids)
}

/// `closest_d2[i] ← min(closest_d2[i], ‖row_i − centre‖²)`; returns the
/// per-block sums of the updated `closest_d2`, in block order.
fn lower_closest(data: &[f64], n_cols: usize, centre: &[f64], closest_d2: &mut [f64]) -> Vec<f64> {
    data.par_chunks(BLOCK_ROWS * n_cols)
        .zip(closest_d2.par_chunks_mut(BLOCK_ROWS))
        .map(|(rows, block_d2)| {
            let mut block_sum = 0.0;
            for (row, d2) in rows.chunks_exact(n_cols).zip(block_d2.iter_mut()) {
                *d2 = d2.min(squared_distance(row, centre));
                block_sum += *d2;
            }
            block_sum
        })
        .collect()
}

/// For each candidate centre, the potential Σᵢ min(closest_d2[i], ‖row_i − c‖²)
/// the seeding would have if that candidate were added.
fn potentials_with_candidate(
    data: &[f64],
    n_cols: usize,
    closest_d2: &[f64],
    candidates: &[f64],
    n_candidates: usize,
) -> Vec<f64> {
    let block_partials: Vec<Vec<f64>> = data
        .par_chunks(BLOCK_ROWS * n_cols)
        .zip(closest_d2.par_chunks(BLOCK_ROWS))
        .map(|(rows, block_d2)| {
            let mut partial = vec![0.0; n_candidates];
            for (row, &current) in rows.chunks_exact(n_cols).zip(block_d2) {
                for (candidate, sum) in candidates.chunks_exact(n_cols).zip(partial.iter_mut()) {
                    *sum += current.min(squared_distance(row, candidate));
                }
            }
            partial
        })
        .collect();
    let mut totals = vec![0.0; n_candidates];
    for partial in &block_partials {
        for (total, value) in totals.iter_mut().zip(partial) {
            *total += value;
        }
    }
    totals
}

/// First row whose cumulative weight exceeds `target` (weights = squared
/// distances, cumulated block by block exactly as the potential was summed,
/// so `target < potential` always lands on a row of positive weight).
/// `None` when all weights are 0.
fn sample_by_weight(weights: &[f64], block_sums: &[f64], target: f64) -> Option<usize> {
    let mut cumulative_before_block = 0.0;
    for (block, &block_sum) in block_sums.iter().enumerate() {
        let cumulative_after_block = cumulative_before_block + block_sum;
        if cumulative_after_block > target {
            let start = block * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(weights.len());
            let mut within_block = 0.0;
            for (index, weight) in weights[start..end].iter().enumerate() {
                within_block += weight;
                if cumulative_before_block + within_block > target {
                    return Some(start + index);
                }
            }
        }
        cumulative_before_block = cumulative_after_block;
    }
    // Rounding pushed target up to the full potential: take the last row of
    // positive weight (what a clipped searchsorted does in scikit-learn).
    weights.iter().rposition(|&w| w > 0.0)
}

/// Per-block result of one assignment pass.
struct BlockTotals {
    /// `k × n_cols` coordinate sums of the rows assigned to each cluster.
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
    changed: usize,
}

/// Whole-data result of one assignment pass.
struct AssignmentTotals {
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
    changed: usize,
}

/// Assigns every row to its nearest centroid (writing `assignments` and
/// `min_d2`) and accumulates per-cluster sums, counts and the inertia, block
/// by block, combined in block order.
fn assignment_pass(
    data: &[f64],
    n_cols: usize,
    k: usize,
    centroids: &[f64],
    assignments: &mut [u32],
    min_d2: &mut [f64],
) -> AssignmentTotals {
    let block_totals: Vec<BlockTotals> = data
        .par_chunks(BLOCK_ROWS * n_cols)
        .zip(assignments.par_chunks_mut(BLOCK_ROWS))
        .zip(min_d2.par_chunks_mut(BLOCK_ROWS))
        .map(|((rows, block_assignments), block_d2)| {
            let mut totals = BlockTotals {
                sums: vec![0.0; k * n_cols],
                counts: vec![0; k],
                inertia: 0.0,
                changed: 0,
            };
            for ((row, assignment), d2) in rows
                .chunks_exact(n_cols)
                .zip(block_assignments.iter_mut())
                .zip(block_d2.iter_mut())
            {
                let (cluster, distance2) = nearest_centroid(row, centroids, n_cols);
                if *assignment != cluster {
                    totals.changed += 1;
                    *assignment = cluster;
                }
                *d2 = distance2;
                totals.inertia += distance2;
                let cluster = cluster as usize;
                totals.counts[cluster] += 1;
                let cluster_sums = &mut totals.sums[cluster * n_cols..(cluster + 1) * n_cols];
                for (sum, value) in cluster_sums.iter_mut().zip(row) {
                    *sum += value;
                }
            }
            totals
        })
        .collect();

    let mut combined = AssignmentTotals {
        sums: vec![0.0; k * n_cols],
        counts: vec![0; k],
        inertia: 0.0,
        changed: 0,
    };
    for block in &block_totals {
        for (total, value) in combined.sums.iter_mut().zip(&block.sums) {
            *total += value;
        }
        for (total, count) in combined.counts.iter_mut().zip(&block.counts) {
            *total += count;
        }
        combined.inertia += block.inertia;
        combined.changed += block.changed;
    }
    combined
}

/// Empty-cluster rule: each empty cluster (in index order) is re-seeded with
/// the row farthest from its current centroid (largest `min_d2`, lowest row
/// index on ties) among rows of clusters that keep at least one other row.
/// The row is moved out of its cluster's sums/counts into the empty cluster,
/// as scikit-learn does. Moving the worst-fitted row to a centroid of its own
/// can only lower the inertia, so the history stays non-increasing. If no
/// row has positive distance (fewer distinct rows than k) the cluster stays
/// empty and keeps its previous centroid.
fn reseed_empty_clusters(
    data: &[f64],
    n_cols: usize,
    totals: &mut AssignmentTotals,
    assignments: &mut [u32],
    min_d2: &mut [f64],
    centroids: &mut [f64],
) {
    let k = totals.counts.len();
    for empty in 0..k {
        if totals.counts[empty] != 0 {
            continue;
        }
        let mut farthest: Option<(usize, f64)> = None;
        for (index, (&d2, &cluster)) in min_d2.iter().zip(assignments.iter()).enumerate() {
            if d2 > 0.0
                && totals.counts[cluster as usize] >= 2
                && farthest.is_none_or(|(_, best)| d2 > best)
            {
                farthest = Some((index, d2));
            }
        }
        let Some((row_index, _)) = farthest else {
            continue;
        };
        let row = &data[row_index * n_cols..(row_index + 1) * n_cols];
        let donor = assignments[row_index] as usize;
        for (sum, value) in totals.sums[donor * n_cols..(donor + 1) * n_cols]
            .iter_mut()
            .zip(row)
        {
            *sum -= value;
        }
        totals.counts[donor] -= 1;
        totals.sums[empty * n_cols..(empty + 1) * n_cols].copy_from_slice(row);
        totals.counts[empty] = 1;
        // The row now sits on its own centroid: distance 0, so it cannot be
        // picked again for another empty cluster.
        assignments[row_index] = empty as u32;
        min_d2[row_index] = 0.0;
        centroids[empty * n_cols..(empty + 1) * n_cols].copy_from_slice(row);
    }
}

/// New centroids = means of the assigned rows; clusters still empty after
/// re-seeding keep their previous centroid.
fn update_centroids(totals: &AssignmentTotals, n_cols: usize, centroids: &mut [f64]) {
    for (cluster, &count) in totals.counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let sums = &totals.sums[cluster * n_cols..(cluster + 1) * n_cols];
        let centroid = &mut centroids[cluster * n_cols..(cluster + 1) * n_cols];
        for (coordinate, sum) in centroid.iter_mut().zip(sums) {
            *coordinate = sum / count as f64;
        }
    }
}

fn lloyd(
    data: &[f64],
    n_rows: usize,
    n_cols: usize,
    mut centroids: Vec<f64>,
    params: &KMeansParams,
) -> Result<KMeansModel> {
    let k = params.k;
    // u32::MAX marks "not yet assigned" so the first pass counts as a change.
    let mut assignments = vec![u32::MAX; n_rows];
    let mut min_d2 = vec![0.0; n_rows];

    let mut totals = assignment_pass(data, n_cols, k, &centroids, &mut assignments, &mut min_d2);
    ensure!(
        totals.inertia.is_finite(),
        "squared distances overflow f64 (values too large); standardise the data first"
    );
    let mut inertia_history = vec![totals.inertia];
    let mut iterations = 0;
    let mut converged = false;

    while iterations < params.max_iter {
        reseed_empty_clusters(
            data,
            n_cols,
            &mut totals,
            &mut assignments,
            &mut min_d2,
            &mut centroids,
        );
        update_centroids(&totals, n_cols, &mut centroids);
        let previous_inertia = totals.inertia;
        totals = assignment_pass(data, n_cols, k, &centroids, &mut assignments, &mut min_d2);
        iterations += 1;
        inertia_history.push(totals.inertia);
        // previous_inertia == 0 means a perfect fit: nothing left to improve.
        let relative_decrease = if previous_inertia > 0.0 {
            (previous_inertia - totals.inertia) / previous_inertia
        } else {
            0.0
        };
        if totals.changed == 0 || relative_decrease < params.tol {
            converged = true;
            break;
        }
    }

    let distances = min_d2.par_iter().map(|d2| d2.sqrt()).collect();
    Ok(KMeansModel {
        k,
        n_cols,
        centroids,
        assignments,
        distances,
        inertia: totals.inertia,
        iterations,
        converged,
        sizes: totals.counts,
        inertia_history,
    })
}

// ---------------------------------------------------------------------------
// Silhouette
// ---------------------------------------------------------------------------

/// Exact mean silhouette coefficient over a deterministic sample of at most
/// `max_sample` rows (all rows when n <= max_sample; sample chosen with
/// seed). Returns (score, sample_size). Uses O(sample² · d) exact pairwise
/// distances, parallel with rayon. Points in singleton clusters get
/// silhouette 0 (scikit-learn's convention). If only one cluster is non-empty
/// (in the sample), returns an error.
///
/// For each sampled point, a = mean distance to the other sampled points of
/// its cluster, b = smallest mean distance to the sampled points of another
/// cluster, s = (b − a) / max(a, b) (0 when a = b = 0, i.e. duplicates).
/// As in scikit-learn's `silhouette_score(sample_size=…)`, both a and b are
/// computed within the sample. Each point's sums run sequentially over the
/// sample and the mean is taken in sample order, so the score does not
/// depend on the thread count.
pub fn silhouette(
    data: &[f64],
    n_cols: usize,
    assignments: &[u32],
    k: usize,
    max_sample: usize,
    seed: u64,
) -> Result<(f64, usize)> {
    let n_rows = validate_matrix(data, n_cols)?;
    ensure!(k >= 1, "k must be at least 1 (got {k})");
    ensure!(
        max_sample >= 2,
        "max_sample must be at least 2 (got {max_sample})"
    );
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

    let sample_rows = sample_row_indices(n_rows, max_sample, seed);
    let sample_size = sample_rows.len();
    let mut sample = Vec::with_capacity(sample_size * n_cols);
    let mut sample_labels = Vec::with_capacity(sample_size);
    for &row in &sample_rows {
        sample.extend_from_slice(&data[row * n_cols..(row + 1) * n_cols]);
        sample_labels.push(assignments[row] as usize);
    }
    let mut cluster_sizes = vec![0usize; k];
    for &label in &sample_labels {
        cluster_sizes[label] += 1;
    }
    let non_empty_clusters = cluster_sizes.iter().filter(|&&size| size > 0).count();
    if non_empty_clusters < 2 {
        let distinct_overall = assignments.iter().collect::<HashSet<_>>().len();
        if distinct_overall < 2 {
            bail!("silhouette needs at least 2 non-empty clusters; all rows are in one cluster");
        }
        bail!(
            "silhouette needs at least 2 non-empty clusters; the sample of {sample_size} rows holds only one (raise max_sample)"
        );
    }

    let per_point: Vec<f64> = (0..sample_size)
        .into_par_iter()
        .map_init(
            || vec![0.0f64; k],
            |distance_sums, i| {
                let own = sample_labels[i];
                if cluster_sizes[own] == 1 {
                    return 0.0;
                }
                distance_sums.iter_mut().for_each(|s| *s = 0.0);
                let point = &sample[i * n_cols..(i + 1) * n_cols];
                for (other, &label) in sample.chunks_exact(n_cols).zip(&sample_labels) {
                    distance_sums[label] += squared_distance(point, other).sqrt();
                }
                // The point's distance to itself is 0, so the own-cluster sum
                // needs no correction; only the divisor excludes the point.
                let a = distance_sums[own] / (cluster_sizes[own] - 1) as f64;
                let mut b = f64::INFINITY;
                for (cluster, (&sum, &size)) in distance_sums.iter().zip(&cluster_sizes).enumerate()
                {
                    if cluster != own && size > 0 {
                        b = b.min(sum / size as f64);
                    }
                }
                let denominator = a.max(b);
                if denominator > 0.0 {
                    (b - a) / denominator
                } else {
                    0.0
                }
            },
        )
        .collect();
    let score = per_point.iter().fold(0.0, |total, s| total + s) / sample_size as f64;
    Ok((score, sample_size))
}

/// All rows if `n_rows <= max_sample`, else `max_sample` distinct rows drawn
/// uniformly with Floyd's algorithm (O(max_sample) draws, no O(n) shuffle),
/// returned in ascending row order. The hash set is only used for membership,
/// so the result is determined by `seed` alone.
fn sample_row_indices(n_rows: usize, max_sample: usize, seed: u64) -> Vec<usize> {
    if n_rows <= max_sample {
        return (0..n_rows).collect();
    }
    let mut rng = Rng::new(seed);
    let mut chosen = HashSet::with_capacity(max_sample);
    for upper in (n_rows - max_sample)..n_rows {
        let candidate = rng.below(upper as u64 + 1) as usize;
        if !chosen.insert(candidate) {
            chosen.insert(upper);
        }
    }
    let mut rows: Vec<usize> = chosen.into_iter().collect();
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn run_in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
            .install(work)
    }

    /// Gaussian blobs: `per_blob` points around each centre with the given
    /// std; returns (row-major data, generating labels).
    fn blobs(centres: &[&[f64]], per_blob: usize, std: f64, seed: u64) -> (Vec<f64>, Vec<u32>) {
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
    fn same_partition(found: &[u32], expected: &[u32]) -> bool {
        let mut forward = std::collections::HashMap::new();
        let mut backward = std::collections::HashMap::new();
        found.iter().zip(expected).all(|(f, e)| {
            *forward.entry(*f).or_insert(*e) == *e && *backward.entry(*e).or_insert(*f) == *f
        })
    }

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            ..KMeansParams::default()
        }
    }

    #[test]
    fn recovers_three_separated_blobs() {
        let centres: [&[f64]; 3] = [&[0.0, 0.0, 0.0], &[10.0, 10.0, 0.0], &[-10.0, 10.0, 5.0]];
        let (data, labels) = blobs(&centres, 400, 0.7, 3);
        let model = kmeans(&data, 3, &params(3)).unwrap();
        assert!(same_partition(&model.assignments, &labels));
        assert_eq!(model.sizes, vec![400, 400, 400]);
        assert!(model.converged);
        // Each fitted centroid is within 0.15 of a generating centre
        // (standard error of a 400-point mean with std 0.7 is 0.035).
        for cluster in 0..3 {
            let centroid = model.centroid(cluster);
            let nearest = centres
                .iter()
                .map(|c| squared_distance(c, centroid).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 0.15,
                "centroid {centroid:?} is {nearest} from every centre"
            );
        }
        // Inertia ≈ n · d · σ² = 1200 · 3 · 0.49 = 1764 (minus the 3·3 dof of the means).
        assert!(
            (model.inertia - 1764.0).abs() < 150.0,
            "inertia {}",
            model.inertia
        );
        let (score, sample_size) = silhouette(&data, 3, &model.assignments, 3, 10_000, 1).unwrap();
        assert_eq!(sample_size, 1200);
        assert!(score > 0.8, "silhouette {score}");
    }

    #[test]
    fn hand_computed_one_dimensional_example() {
        // Clusters {0, 1} and {10, 11}: centroids 0.5 and 10.5, each point at
        // distance 0.5, inertia 4 · 0.25 = 1.
        let data = [0.0, 1.0, 10.0, 11.0];
        for seed in 0..20 {
            let model = kmeans(
                &data,
                1,
                &KMeansParams {
                    k: 2,
                    seed,
                    ..KMeansParams::default()
                },
            )
            .unwrap();
            let mut centroids = model.centroids.clone();
            centroids.sort_by(f64::total_cmp);
            assert_eq!(centroids, vec![0.5, 10.5], "seed {seed}");
            assert_eq!(model.inertia, 1.0);
            assert_eq!(model.distances, vec![0.5; 4]);
            assert!(same_partition(&model.assignments, &[0, 0, 1, 1]));
            assert_eq!(model.sizes, vec![2, 2]);
            assert!(model.converged);
        }
    }

    #[test]
    fn k_equal_to_rows_and_k_one() {
        let data = [0.0, 1.0, 10.0, 11.0];
        let model = kmeans(&data, 1, &params(4)).unwrap();
        assert_eq!(model.inertia, 0.0);
        assert_eq!(model.sizes, vec![1; 4]);
        let mut centroids = model.centroids.clone();
        centroids.sort_by(f64::total_cmp);
        assert_eq!(centroids, data.to_vec());

        // k = 1: the centroid is the mean 5.5; inertia = 5.5² + 4.5² + 4.5² + 5.5² = 101.
        let model = kmeans(&data, 1, &params(1)).unwrap();
        assert_eq!(model.centroids, vec![5.5]);
        assert_eq!(model.inertia, 101.0);
        assert_eq!(model.assignments, vec![0; 4]);
    }

    #[test]
    fn empty_cluster_is_reseeded_with_farthest_point() {
        // Initial centroids 1 and 1000: every row goes to cluster 0 (mean 3.25)
        // and cluster 1 is empty. Re-seeding moves the row farthest from
        // centroid 1, i.e. 10 (d² = 81), into cluster 1; cluster 0 becomes
        // {0, 1, 2} with mean 1. Final inertia = 1 + 0 + 1 + 0 = 2.
        let data = [0.0, 1.0, 2.0, 10.0];
        let model = kmeans_from_centroids(&data, 1, &[1.0, 1000.0], &params(2)).unwrap();
        assert_eq!(model.centroids, vec![1.0, 10.0]);
        assert_eq!(model.assignments, vec![0, 0, 0, 1]);
        assert_eq!(model.sizes, vec![3, 1]);
        assert_eq!(model.inertia, 2.0);
        // First pass: (0−1)² + 0 + 1 + 81 = 83, then 2.
        assert_eq!(model.inertia_history, vec![83.0, 2.0]);
        assert!(model.converged);
    }

    #[test]
    fn several_empty_clusters_take_the_farthest_rows_in_order() {
        // All rows first go to centroid 1; squared distances to it are
        // 1, 0, 1, 4, 361, 400, 1521 (sum 2288). Empty clusters 1, 2, 3 take,
        // in that order, the farthest rows 40, 21, 20; cluster 0 keeps
        // {0, 1, 2, 3} with mean 1.5 → inertia 2.25 + 0.25 + 0.25 + 2.25 = 5.
        let data = [0.0, 1.0, 2.0, 3.0, 20.0, 21.0, 40.0];
        let model =
            kmeans_from_centroids(&data, 1, &[1.0, 500.0, 600.0, 700.0], &params(4)).unwrap();
        assert_eq!(model.centroids, vec![1.5, 40.0, 21.0, 20.0]);
        assert_eq!(model.assignments, vec![0, 0, 0, 0, 3, 2, 1]);
        assert_eq!(model.sizes, vec![4, 1, 1, 1]);
        assert_eq!(model.inertia_history, vec![2288.0, 5.0]);
    }

    #[test]
    fn fewer_distinct_rows_than_k_leaves_a_cluster_empty_without_failing() {
        let data = [3.0, 3.0, 3.0, 7.0, 7.0];
        let model = kmeans(&data, 1, &params(3)).unwrap();
        assert_eq!(model.inertia, 0.0);
        let mut sizes = model.sizes.clone();
        sizes.sort();
        assert_eq!(sizes, vec![0, 2, 3]);
        assert!(model.distances.iter().all(|&d| d == 0.0));
    }

    #[test]
    fn standardizer_hand_example_with_constant_column() {
        // Column 0: [1, 2, 3] → mean 2, population variance 2/3.
        // Column 1: constant 5 → mean 5, std 1, all zeros after transform.
        // Column 2: [0, 0, 6] → mean 2, variance (4 + 4 + 16)/3 = 8, std 2√2.
        // Column 3: constant 0.1, whose computed mean is not exactly 0.1; it
        //           must still map to exact zeros rather than rounding noise.
        let mut data = vec![
            1.0, 5.0, 0.0, 0.1, //
            2.0, 5.0, 0.0, 0.1, //
            3.0, 5.0, 6.0, 0.1,
        ];
        let original = data.clone();
        let standardizer = Standardizer::fit(&data, 4);
        assert_eq!(standardizer.mean, vec![2.0, 5.0, 2.0, 0.1]);
        let std0 = (2.0f64 / 3.0).sqrt();
        let std2 = 8.0f64.sqrt();
        assert!((standardizer.std[0] - std0).abs() < 1e-15);
        assert_eq!(standardizer.std[1], 1.0);
        assert!((standardizer.std[2] - std2).abs() < 1e-15);
        assert_eq!(standardizer.std[3], 1.0);

        standardizer.transform_in_place(&mut data);
        let expected = [
            -1.0 / std0,
            0.0,
            -2.0 / std2,
            0.0, //
            0.0,
            0.0,
            -2.0 / std2,
            0.0, //
            1.0 / std0,
            0.0,
            4.0 / std2,
            0.0,
        ];
        for (value, want) in data.iter().zip(expected) {
            assert!((value - want).abs() < 1e-12, "{value} vs {want}");
        }
        // Each non-constant column now has mean 0 and population std 1.
        for col in [0, 2] {
            let column: Vec<f64> = data.iter().skip(col).step_by(4).copied().collect();
            let mean = column.iter().sum::<f64>() / 3.0;
            let variance = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
            assert!(mean.abs() < 1e-12 && (variance - 1.0).abs() < 1e-12);
        }
        for row in 0..3 {
            let back = standardizer.inverse_row(&data[row * 4..(row + 1) * 4]);
            for (value, want) in back.iter().zip(&original[row * 4..(row + 1) * 4]) {
                assert!((value - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn standardizer_shapes() {
        let empty = Standardizer::fit(&[], 2);
        assert_eq!(
            empty,
            Standardizer {
                mean: vec![0.0, 0.0],
                std: vec![1.0, 1.0]
            }
        );
        assert!(Standardizer::try_fit(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(Standardizer::try_fit(&[1.0], 0).is_err());
        // Many rows spanning several blocks, transformed in parallel.
        let mut data: Vec<f64> = (0..3 * BLOCK_ROWS + 17).map(|i| (i % 97) as f64).collect();
        let standardizer = Standardizer::fit(&data, 1);
        standardizer.transform_in_place(&mut data);
        let mean = data.iter().sum::<f64>() / data.len() as f64;
        let variance = data.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / data.len() as f64;
        assert!(mean.abs() < 1e-12 && (variance - 1.0).abs() < 1e-12);
    }

    #[test]
    fn silhouette_hand_examples() {
        // Points 0, 1 | 4, 5 (1-D), labels [0, 0, 1, 1]:
        //   x=0: a = 1, b = (4 + 5)/2 = 4.5, s = 3.5/4.5 = 7/9
        //   x=1: a = 1, b = (3 + 4)/2 = 3.5, s = 2.5/3.5 = 5/7
        //   x=4: a = 1, b = (4 + 3)/2 = 3.5, s = 5/7
        //   x=5: a = 1, b = (5 + 4)/2 = 4.5, s = 7/9
        //   mean = (7/9 + 5/7) / 2 = 47/63 ≈ 0.746032
        let (score, size) = silhouette(&[0.0, 1.0, 4.0, 5.0], 1, &[0, 0, 1, 1], 2, 100, 0).unwrap();
        assert_eq!(size, 4);
        assert!((score - 47.0 / 63.0).abs() < 1e-15, "{score}");

        // Singleton rule: 0, 1 | 10 with labels [0, 0, 1]:
        //   x=0: a = 1, b = 10, s = 9/10
        //   x=1: a = 1, b = 9,  s = 8/9
        //   x=10: alone in its cluster → 0
        //   mean = (9/10 + 8/9 + 0) / 3 = 161/270 ≈ 0.596296
        // An unused cluster index (k = 3, cluster 2 empty) changes nothing.
        let (score, size) = silhouette(&[0.0, 1.0, 10.0], 1, &[0, 0, 1], 3, 100, 0).unwrap();
        assert_eq!(size, 3);
        assert!((score - 161.0 / 270.0).abs() < 1e-15, "{score}");

        // Duplicate points in two clusters: a = b = 0 gives s = 0, not NaN.
        let (score, _) = silhouette(&[2.0, 2.0, 2.0, 2.0], 1, &[0, 0, 1, 1], 2, 100, 0).unwrap();
        assert_eq!(score, 0.0);
    }

    #[test]
    fn silhouette_sampling_is_deterministic_and_bounded() {
        let centres: [&[f64]; 2] = [&[0.0, 0.0], &[3.0, 0.0]];
        let (data, labels) = blobs(&centres, 3000, 1.0, 9);
        let (full, full_size) = silhouette(&data, 2, &labels, 2, 10_000, 5).unwrap();
        assert_eq!(full_size, 6000);
        let (a, size_a) = run_in_pool(1, || silhouette(&data, 2, &labels, 2, 500, 5).unwrap());
        let (b, size_b) = run_in_pool(2, || silhouette(&data, 2, &labels, 2, 500, 5).unwrap());
        let (c, _) = silhouette(&data, 2, &labels, 2, 500, 6).unwrap();
        assert_eq!((size_a, size_b), (500, 500));
        assert_eq!(a.to_bits(), b.to_bits());
        assert_ne!(a.to_bits(), c.to_bits());
        // The sample estimate is close to the exact full-data value.
        assert!((a - full).abs() < 0.05, "sample {a} vs full {full}");

        let rows = sample_row_indices(100, 30, 1);
        assert_eq!(rows.len(), 30);
        assert!(rows.windows(2).all(|w| w[0] < w[1]) && *rows.last().unwrap() < 100);
    }

    #[test]
    fn deterministic_across_threads_and_seed_sensitive() {
        // Uniform noise (no natural clusters) over several blocks: the result
        // depends on the seeding, and any summation-order change would show.
        let mut rng = Rng::new(11);
        let n_cols = 5;
        let data: Vec<f64> = (0..(5 * BLOCK_ROWS + 123) * n_cols)
            .map(|_| rng.next_f64())
            .collect();
        let fit = |seed: u64| KMeansParams {
            k: 7,
            max_iter: 30,
            seed,
            tol: 0.0,
        };
        let one_thread = run_in_pool(1, || kmeans(&data, n_cols, &fit(1)).unwrap());
        let two_threads = run_in_pool(2, || kmeans(&data, n_cols, &fit(1)).unwrap());
        let again = kmeans(&data, n_cols, &fit(1)).unwrap();
        let bits = |m: &KMeansModel| -> Vec<u64> {
            m.centroids
                .iter()
                .chain(&m.distances)
                .chain(&m.inertia_history)
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&one_thread), bits(&two_threads));
        assert_eq!(one_thread, two_threads);
        assert_eq!(one_thread, again);
        let other_seed = kmeans(&data, n_cols, &fit(2)).unwrap();
        assert_ne!(one_thread.centroids, other_seed.centroids);
        assert_eq!(other_seed.sizes.iter().sum::<usize>(), 5 * BLOCK_ROWS + 123);
    }

    #[test]
    fn inertia_never_increases() {
        let mut rng = Rng::new(5);
        let n_cols = 3;
        let data: Vec<f64> = (0..20_000 * n_cols).map(|_| rng.normal()).collect();
        for seed in 0..5 {
            let model = kmeans(
                &data,
                n_cols,
                &KMeansParams {
                    k: 6,
                    max_iter: 50,
                    seed,
                    tol: 0.0,
                },
            )
            .unwrap();
            assert_eq!(model.inertia_history.len(), model.iterations + 1);
            assert_eq!(*model.inertia_history.last().unwrap(), model.inertia);
            assert!(model.iterations > 2, "too few iterations to test anything");
            for pair in model.inertia_history.windows(2) {
                assert!(
                    pair[1] <= pair[0],
                    "inertia rose: {:?}",
                    model.inertia_history
                );
            }
            // The reported inertia is the sum of the reported squared distances.
            let recomputed: f64 = model.distances.iter().map(|d| d * d).sum();
            assert!((recomputed - model.inertia).abs() <= 1e-9 * model.inertia);
        }
    }

    #[test]
    fn stops_at_max_iter_or_tol() {
        let mut rng = Rng::new(8);
        let data: Vec<f64> = (0..10_000 * 2).map(|_| rng.next_f64()).collect();
        let capped = kmeans(
            &data,
            2,
            &KMeansParams {
                k: 9,
                max_iter: 2,
                seed: 1,
                tol: 0.0,
            },
        )
        .unwrap();
        assert_eq!(capped.iterations, 2);
        assert!(!capped.converged);
        let seeding_only = kmeans(
            &data,
            2,
            &KMeansParams {
                k: 9,
                max_iter: 0,
                seed: 1,
                tol: 0.0,
            },
        )
        .unwrap();
        assert_eq!(seeding_only.iterations, 0);
        assert_eq!(seeding_only.inertia_history.len(), 1);
        // A loose tolerance stops earlier than a strict one.
        let loose = kmeans(
            &data,
            2,
            &KMeansParams {
                k: 9,
                max_iter: 100,
                seed: 1,
                tol: 1e-2,
            },
        )
        .unwrap();
        let strict = kmeans(
            &data,
            2,
            &KMeansParams {
                k: 9,
                max_iter: 100,
                seed: 1,
                tol: 0.0,
            },
        )
        .unwrap();
        assert!(loose.converged && strict.converged);
        assert!(loose.iterations < strict.iterations);
    }

    #[test]
    fn predict_matches_training_assignments() {
        let centres: [&[f64]; 2] = [&[0.0, 0.0], &[5.0, 5.0]];
        let (data, _) = blobs(&centres, 200, 0.5, 2);
        let model = kmeans(&data, 2, &params(2)).unwrap();
        let (assignments, distances) = model.predict(&data).unwrap();
        assert_eq!(assignments, model.assignments);
        assert_eq!(distances, model.distances);
    }

    fn error_text<T: std::fmt::Debug>(result: Result<T>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn kmeans_error_cases() {
        let data = [0.0, 1.0, 2.0, 3.0];
        assert!(error_text(kmeans(&data, 0, &params(1))).contains("n_cols"));
        assert!(error_text(kmeans(&data, 3, &params(1))).contains("not a multiple"));
        assert!(error_text(kmeans(&[], 2, &params(1))).contains("empty"));
        assert!(error_text(kmeans(&data, 1, &params(0))).contains("k must be at least 1"));
        assert!(error_text(kmeans(&data, 2, &params(3))).contains("exceeds the number of rows (2)"));
        let nan = [0.0, 1.0, 2.0, 3.0, f64::NAN, 5.0];
        let message = error_text(kmeans(&nan, 2, &params(1)));
        assert!(message.contains("row 2, column 0"), "{message}");
        let infinite = [0.0, 1.0, 2.0, f64::NEG_INFINITY];
        assert!(error_text(kmeans(&infinite, 2, &params(1))).contains("row 1, column 1"));
        // Far beyond the first block, the index must still be exact.
        let mut big = vec![0.0; (BLOCK_ROWS * 2 + 5) * 3];
        big[(BLOCK_ROWS * 2 + 3) * 3 + 2] = f64::INFINITY;
        let message = error_text(kmeans(&big, 3, &params(2)));
        assert!(
            message.contains(&format!("row {}, column 2", BLOCK_ROWS * 2 + 3)),
            "{message}"
        );
        let bad_tol = KMeansParams {
            tol: -1.0,
            ..params(1)
        };
        assert!(error_text(kmeans(&data, 1, &bad_tol)).contains("tol"));
        let huge = [1e300, -1e300];
        assert!(error_text(kmeans(&huge, 1, &params(2))).contains("overflow"));
        assert!(
            error_text(kmeans_from_centroids(&data, 1, &[0.0], &params(2)))
                .contains("initial_centroids")
        );
    }

    #[test]
    fn silhouette_error_cases() {
        let data = [0.0, 1.0, 4.0, 5.0];
        let labels = [0, 0, 1, 1];
        assert!(error_text(silhouette(&data, 1, &[0, 0, 0, 0], 2, 10, 0))
            .contains("all rows are in one cluster"));
        assert!(
            error_text(silhouette(&data, 1, &labels[..3], 2, 10, 0)).contains("assignments has 3")
        );
        assert!(error_text(silhouette(&data, 1, &[0, 0, 1, 2], 2, 10, 0)).contains("out of range"));
        assert!(error_text(silhouette(&data, 1, &labels, 2, 1, 0)).contains("max_sample"));
        assert!(error_text(silhouette(&data, 0, &labels, 2, 10, 0)).contains("n_cols"));
        assert!(
            error_text(silhouette(&[0.0, f64::NAN, 4.0, 5.0], 1, &labels, 2, 10, 0))
                .contains("row 1")
        );
        assert!(error_text(silhouette(&data, 1, &labels, 0, 10, 0)).contains("k must be"));
        // Two clusters overall, but a 2-row sample of 1000 rows where one
        // cluster is a single row will almost surely miss it.
        let mut many = vec![0.0; 1000];
        many[999] = 9.0;
        let mut many_labels = vec![0u32; 1000];
        many_labels[999] = 1;
        assert!(
            error_text(silhouette(&many, 1, &many_labels, 2, 2, 0)).contains("raise max_sample")
        );
    }

    /// 1M rows × 8 columns, k = 5, exactly 20 Lloyd iterations (tol = 0 and
    /// well-mixed data so it cannot stop early). Run with
    /// `cargo test --release --lib segment::kmeans -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_one_million_by_eight() {
        let n_rows = 1_000_000;
        let n_cols = 8;
        let mut rng = Rng::new(2024);
        let data: Vec<f64> = (0..n_rows * n_cols).map(|_| rng.normal()).collect();
        let params = KMeansParams {
            k: 5,
            max_iter: 20,
            seed: 42,
            tol: 0.0,
        };
        let start = Instant::now();
        let model = kmeans(&data, n_cols, &params).unwrap();
        let elapsed = start.elapsed();
        println!(
            "kmeans 1M x 8, k=5: {} iterations in {:.3} s on {} threads (inertia {:.1}, converged {})",
            model.iterations,
            elapsed.as_secs_f64(),
            rayon::current_num_threads(),
            model.inertia,
            model.converged
        );
        let start = Instant::now();
        let (score, size) = silhouette(&data, n_cols, &model.assignments, 5, 10_000, 1).unwrap();
        println!(
            "silhouette on a 10k sample: {score:.4} (n = {size}) in {:.3} s",
            start.elapsed().as_secs_f64()
        );
        assert_eq!(model.iterations, 20);
    }
}
