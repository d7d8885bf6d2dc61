//! The mean silhouette with squared Euclidean distance over every row, in
//! O(n · k · d): the definition of Spark's `ClusteringEvaluator` (its
//! default `distanceMeasure = "squaredEuclidean"`), which the original
//! pipeline reported.
//!
//! With d(x, y) = ‖x − y‖², the sum of the distances from a point x to the
//! members of a cluster C needs only the cluster's size N, mean μ and
//! within sum of squares W = Σ_{y∈C} ‖y − μ‖²:
//!
//!   Σ_{y∈C} ‖x − y‖² = N · ‖x − μ‖² + W
//!
//! (the same quantity as Spark's N·‖x‖² − 2·x·S + Q with S = Σ y and
//! Q = Σ ‖y‖², written around the mean so that no large terms cancel).
//! Then, for a point x in cluster A with N_A > 1 members,
//!   a = Σ_{y∈A} ‖x − y‖² / (N_A − 1)    (x's own distance is 0),
//!   b = min over other non-empty clusters B of Σ_{y∈B} ‖x − y‖² / N_B,
//!   s = (b − a) / max(a, b)   (0 when a = b),
//! and s = 0 for a point alone in its cluster. The score is the mean of s
//! over all rows; empty clusters are not clusters (Spark only sees the
//! labels that occur).

use super::{squared_distance, validate_matrix, BLOCK_ROWS};
use anyhow::{bail, Result};
use rayon::prelude::*;

/// The squared-Euclidean silhouette of the module documentation, over all
/// rows. Needs at least two non-empty clusters. Every sum runs over fixed
/// row blocks combined in block order, so the score does not depend on the
/// thread count.
pub fn squared_euclidean_silhouette(
    data: &[f64],
    n_cols: usize,
    assignments: &[u32],
    k: usize,
) -> Result<f64> {
    let n_rows = validate_matrix(data, n_cols)?;
    super::check_assignments(assignments, n_rows, k)?;

    // Sizes and means, then within sums of squares around the means.
    let sums = block_sums(data, n_cols, assignments, k, n_cols, |_, row, out| {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    });
    let mut sizes = vec![0usize; k];
    for &label in assignments {
        sizes[label as usize] += 1;
    }
    let non_empty: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    if non_empty.len() < 2 {
        bail!("silhouette needs at least 2 non-empty clusters; all rows are in one cluster");
    }
    let mut means = sums;
    for c in 0..k {
        if sizes[c] > 0 {
            for v in &mut means[c * n_cols..(c + 1) * n_cols] {
                *v /= sizes[c] as f64;
            }
        }
    }
    let within = block_sums(data, n_cols, assignments, k, 1, |c, row, out| {
        out[0] += squared_distance(row, &means[c * n_cols..(c + 1) * n_cols]);
    });

    let block_totals: Vec<f64> = data
        .par_chunks(BLOCK_ROWS * n_cols)
        .zip(assignments.par_chunks(BLOCK_ROWS))
        .map(|(rows, labels)| {
            let mut total = 0.0;
            for (row, &label) in rows.chunks_exact(n_cols).zip(labels) {
                let own = label as usize;
                if sizes[own] == 1 {
                    continue;
                }
                let sum_to = |c: usize| {
                    sizes[c] as f64 * squared_distance(row, &means[c * n_cols..(c + 1) * n_cols])
                        + within[c]
                };
                let a = sum_to(own) / (sizes[own] - 1) as f64;
                let b = non_empty
                    .iter()
                    .filter(|&&c| c != own)
                    .map(|&c| sum_to(c) / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let denominator = a.max(b);
                if denominator > 0.0 {
                    total += (b - a) / denominator;
                }
            }
            total
        })
        .collect();
    Ok(block_totals.iter().fold(0.0, |t, s| t + s) / n_rows as f64)
}

/// Per-cluster sums of `width` values: `add(cluster, row, out)` adds a row
/// into its cluster's `out`, within fixed row blocks that are then added in
/// block order (the same sums on every thread count).
fn block_sums(
    data: &[f64],
    n_cols: usize,
    assignments: &[u32],
    k: usize,
    width: usize,
    add: impl Fn(usize, &[f64], &mut [f64]) + Sync,
) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = data
        .par_chunks(BLOCK_ROWS * n_cols)
        .zip(assignments.par_chunks(BLOCK_ROWS))
        .map(|(rows, labels)| {
            let mut sums = vec![0.0; k * width];
            for (row, &label) in rows.chunks_exact(n_cols).zip(labels) {
                let c = label as usize;
                add(c, row, &mut sums[c * width..(c + 1) * width]);
            }
            sums
        })
        .collect();
    let mut total = vec![0.0; k * width];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::rng::Rng;

    /// The definition computed pair by pair, O(n² · d).
    fn brute_force(data: &[f64], n_cols: usize, labels: &[u32], k: usize) -> f64 {
        let n = labels.len();
        let mut sizes = vec![0usize; k];
        for &l in labels {
            sizes[l as usize] += 1;
        }
        let mut total = 0.0;
        for i in 0..n {
            let own = labels[i] as usize;
            if sizes[own] == 1 {
                continue;
            }
            let mut sums = vec![0.0; k];
            for j in 0..n {
                let mut d = 0.0;
                for c in 0..n_cols {
                    let diff = data[i * n_cols + c] - data[j * n_cols + c];
                    d += diff * diff;
                }
                sums[labels[j] as usize] += d;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if a.max(b) > 0.0 {
                total += (b - a) / a.max(b);
            }
        }
        total / n as f64
    }

    #[test]
    fn hand_example() {
        // 1-D points 0, 1 | 4, 5, labels [0, 0, 1, 1], squared distances:
        //   x=0: a = 1, b = (16 + 25)/2 = 20.5, s = 19.5/20.5
        //   x=1: a = 1, b = (9 + 16)/2 = 12.5,  s = 11.5/12.5
        //   x=4, x=5 mirror x=1, x=0.
        let score =
            squared_euclidean_silhouette(&[0.0, 1.0, 4.0, 5.0], 1, &[0, 0, 1, 1], 2).unwrap();
        let expected = (19.5 / 20.5 + 11.5 / 12.5) / 2.0;
        assert!((score - expected).abs() < 1e-15, "{score} vs {expected}");
        // A singleton scores 0 and an empty cluster (index 2) is no cluster:
        // 0, 1 | 10: x=0: a = 1, b = 100, s = 0.99; x=1: a = 1, b = 81,
        // s = 80/81; mean over 3 rows.
        let score = squared_euclidean_silhouette(&[0.0, 1.0, 10.0], 1, &[0, 0, 1], 3).unwrap();
        let expected = (0.99 + 80.0 / 81.0) / 3.0;
        assert!((score - expected).abs() < 1e-15, "{score} vs {expected}");
        // Duplicates in two clusters: a = b = 0 gives 0, not NaN.
        let score = squared_euclidean_silhouette(&[2.0; 4], 1, &[0, 0, 1, 1], 2).unwrap();
        assert_eq!(score, 0.0);
    }

    #[test]
    fn equals_brute_force_with_empty_and_single_point_clusters() {
        let mut rng = Rng::new(17);
        for trial in 0..20 {
            let n_cols = 1 + trial % 5;
            let n = 30 + 7 * trial;
            let k = 6;
            let data: Vec<f64> = (0..n * n_cols).map(|_| 3.0 * rng.normal() + 1.0).collect();
            // Clusters 0..3 at random, cluster 3 one point, 4 and 5 empty
            // (on odd trials cluster 5 takes one point instead).
            let mut labels: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
            labels[n / 2] = 3;
            if trial % 2 == 1 {
                labels[n - 1] = 5;
            }
            let fast = squared_euclidean_silhouette(&data, n_cols, &labels, k).unwrap();
            let slow = brute_force(&data, n_cols, &labels, k);
            assert!(
                (fast - slow).abs() < 1e-12,
                "trial {trial}: {fast} vs {slow}"
            );
        }
    }

    #[test]
    fn same_bits_on_any_thread_count() {
        let centres: [&[f64]; 3] = [&[0.0, 0.0], &[3.0, 0.0], &[0.0, 4.0]];
        let (data, labels) = blobs(&centres, 5000, 1.0, 3);
        let one = run_in_pool(1, || {
            squared_euclidean_silhouette(&data, 2, &labels, 3).unwrap()
        });
        let two = run_in_pool(2, || {
            squared_euclidean_silhouette(&data, 2, &labels, 3).unwrap()
        });
        assert_eq!(one.to_bits(), two.to_bits());
        assert!(one > 0.5 && one < 1.0, "{one}");
    }

    #[test]
    fn errors() {
        let data = [0.0, 1.0, 4.0, 5.0];
        assert!(
            error_text(squared_euclidean_silhouette(&data, 1, &[1, 1, 1, 1], 2))
                .contains("all rows are in one cluster")
        );
        assert!(
            error_text(squared_euclidean_silhouette(&data, 1, &[0, 0, 1], 2))
                .contains("assignments has 3")
        );
        assert!(
            error_text(squared_euclidean_silhouette(&data, 1, &[0, 0, 1, 2], 2))
                .contains("out of range")
        );
        assert!(
            error_text(squared_euclidean_silhouette(&data, 1, &[0, 0, 1, 1], 0))
                .contains("k must be")
        );
    }
}
