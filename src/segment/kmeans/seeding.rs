//! Greedy k-means++ seeding, every sum taken block by block in block order.

use super::{squared_distance, BLOCK_ROWS};
use crate::rng::Rng;
use anyhow::{ensure, Result};
use rayon::prelude::*;

/// Sums a sequence of per-block partial sums in block order.
fn ordered_sum(block_sums: &[f64]) -> f64 {
    block_sums.iter().fold(0.0, |total, s| total + s)
}

/// Greedy k-means++ (Arthur & Vassilvitskii, with scikit-learn's local
/// trials): the first centre is a uniformly random row; each further centre
/// is the best of `2 + ⌊ln k⌋` rows sampled with probability proportional to
/// their squared distance to the nearest centre so far, "best" meaning the
/// lowest resulting potential (sum of squared distances).
pub(super) fn kmeans_plus_plus(
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
