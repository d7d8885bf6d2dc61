//! K-Means proper: greedy k-means++ seeding, then Lloyd iterations with a
//! deterministic empty-cluster rule.

use super::seeding::kmeans_plus_plus;
use super::{nearest_centroid, validate_matrix, BLOCK_ROWS};
use crate::rng::Rng;
use anyhow::{ensure, Result};
use rayon::prelude::*;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{silhouette, squared_distance};
    use super::*;

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
}
