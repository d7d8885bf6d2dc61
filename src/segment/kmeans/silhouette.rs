//! The mean silhouette coefficient of a clustering with Euclidean distance
//! (scikit-learn's `silhouette_score`), on a seeded sample.

use super::validate_matrix;
use crate::isa::{dispatch, Isa};
use crate::rng::Rng;
use anyhow::{bail, ensure, Result};
use rayon::prelude::*;
use std::collections::HashSet;

/// Exact mean silhouette coefficient over a deterministic sample of at most
/// `max_sample` rows (all rows when n <= max_sample; sample chosen with
/// seed). Returns (score, sample_size). Uses O(sample² · d) exact pairwise
/// distances, parallel with rayon over points. Points in singleton clusters get
/// silhouette 0 (scikit-learn's convention). If only one cluster is non-empty
/// (in the sample), returns an error.
///
/// For each sampled point, a = mean distance to the other sampled points of
/// its cluster, b = smallest mean distance to the sampled points of another
/// cluster, s = (b − a) / max(a, b) (0 when a = b = 0, i.e. duplicates).
/// As in scikit-learn's `silhouette_score(sample_size=…)`, both a and b are
/// computed within the sample. Each point's sums run in a fixed order over
/// its cluster blocks ([`distance_sum`]) and the mean is taken in sample
/// order, so the score does not depend on the thread count.
pub fn silhouette(
    data: &[f64],
    n_cols: usize,
    assignments: &[u32],
    k: usize,
    max_sample: usize,
    seed: u64,
) -> Result<(f64, usize)> {
    let n_rows = validate_matrix(data, n_cols)?;
    super::check_assignments(assignments, n_rows, k)?;
    ensure!(
        max_sample >= 2,
        "max_sample must be at least 2 (got {max_sample})"
    );

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

    // The sample regrouped by cluster, each cluster's points column by
    // column: a point's distances to one cluster are then one contiguous
    // pass that the compiler vectorises (four lanes, each summing its own
    // points), with no scatter into per-cluster sums.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &label) in sample_labels.iter().enumerate() {
        members[label].push(i);
    }
    let columns: Vec<Vec<f64>> = members
        .iter()
        .map(|points| {
            let mut block = vec![0.0f64; points.len() * n_cols];
            for (m, &i) in points.iter().enumerate() {
                for j in 0..n_cols {
                    block[j * points.len() + m] = sample[i * n_cols + j];
                }
            }
            block
        })
        .collect();
    let isa = Isa::detect();
    let per_point: Vec<f64> = (0..sample_size)
        .into_par_iter()
        .map(|i| {
            let own = sample_labels[i];
            if cluster_sizes[own] == 1 {
                return 0.0;
            }
            let point = &sample[i * n_cols..(i + 1) * n_cols];
            let mean_to = |cluster: usize| {
                let block = &columns[cluster];
                dispatch!(isa, (point: &[f64] = point, block: &[f64] = block, len: usize = cluster_sizes[cluster]) -> f64 {
                    distance_sum(point, block, len)
                })
            };
            // The point's distance to itself is 0, so the own-cluster sum
            // needs no correction; only the divisor excludes the point.
            let a = mean_to(own) / (cluster_sizes[own] - 1) as f64;
            let mut b = f64::INFINITY;
            for (cluster, &size) in cluster_sizes.iter().enumerate() {
                if cluster != own && size > 0 {
                    b = b.min(mean_to(cluster) / size as f64);
                }
            }
            let denominator = a.max(b);
            if denominator > 0.0 {
                (b - a) / denominator
            } else {
                0.0
            }
        })
        .collect();
    let score = per_point.iter().fold(0.0, |total, s| total + s) / sample_size as f64;
    Ok((score, sample_size))
}

/// The sum of the Euclidean distances from `point` to the `len` points of
/// `block` (stored column by column: coordinate `j` of point `m` at
/// `j * len + m`), in four interleaved lanes, then the tail in order: a
/// fixed order, so the same sum on every machine and thread count.
#[inline(always)]
fn distance_sum(point: &[f64], block: &[f64], len: usize) -> f64 {
    let quads = len / 4;
    let mut lanes = [0.0f64; 4];
    for q in 0..quads {
        let mut squared = [0.0f64; 4];
        for (j, &x) in point.iter().enumerate() {
            let column = &block[j * len + 4 * q..j * len + 4 * q + 4];
            for lane in 0..4 {
                let diff = x - column[lane];
                squared[lane] += diff * diff;
            }
        }
        for lane in 0..4 {
            lanes[lane] += squared[lane].sqrt();
        }
    }
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for m in 4 * quads..len {
        let mut squared = 0.0;
        for (j, &x) in point.iter().enumerate() {
            let diff = x - block[j * len + m];
            squared += diff * diff;
        }
        total += squared.sqrt();
    }
    total
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
    use super::super::test_support::*;
    use super::*;

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
}
