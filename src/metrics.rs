//! Offline evaluation metrics over plain data: top-k ranking quality of
//! recommendation lists against held-out items, and RMSE of predictions.
//!
//! Ranking definitions, for one user with held-out set `R` (duplicates
//! ignored) and recommended list `L` truncated to its first `k` entries;
//! `rel_i = 1` if the item at rank `i` (1-based) is in `R` and did not already
//! appear at an earlier rank (a repeated item earns nothing), else `0`;
//! `hits = Σ_i rel_i`:
//!
//! * precision@k = `hits / k` — the denominator is `k` even when `L` is
//!   shorter, so short lists are penalised;
//! * recall@k = `hits / |R|` (standard recall; it cannot reach 1 when
//!   `|R| > k`);
//! * NDCG@k = `DCG / IDCG` with binary gains, `DCG = Σ_i rel_i / log2(i + 1)`
//!   and the ideal `IDCG = Σ_{i=1}^{min(k, |R|)} 1 / log2(i + 1)`;
//! * MAP@k = mean over users of `AP@k = (1 / min(k, |R|)) Σ_i P@i · rel_i`,
//!   `P@i = (Σ_{j<=i} rel_j) / i`.
//!
//! Each is averaged over the *evaluated* users: those with a non-empty `R`.
//! With no evaluated user (or `k == 0`) there is nothing to average: the
//! averages are `None` (NULL in SQL), not 0, so "no user could be scored"
//! never reads as "every list missed".

use std::collections::HashSet;

/// Averages of the ranking metrics defined in the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct RankingMetrics {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub ndcg: Option<f64>,
    pub map: Option<f64>,
    /// Users with a non-empty held-out set (the averages' denominator).
    pub users_evaluated: usize,
    /// Distinct item ids `< n_items` among the first `k` entries of all
    /// recommended lists (every user, evaluated or not), divided by `n_items`.
    pub coverage: f64,
}

/// Ranking metrics at `k`. `recommended[u]` is user `u`'s ranked list (only
/// its first `k` entries count), `relevant[u]` the held-out items of user `u`.
/// Users are `0..relevant.len()`; a user without a `recommended` entry is
/// treated as having an empty list. Users with an empty `relevant` set are
/// skipped (not counted). With no evaluated user, or with `k == 0`, the
/// averages are `None`. `coverage` is 0 when `n_items == 0`.
pub fn ranking_metrics(
    recommended: &[Vec<u32>],
    relevant: &[Vec<u32>],
    k: usize,
    n_items: usize,
) -> RankingMetrics {
    // 1 / log2(rank + 1) for ranks 1..=k, shared by DCG and IDCG.
    let discount: Vec<f64> = (1..=k)
        .map(|rank| 1.0 / ((rank + 1) as f64).log2())
        .collect();

    let (mut precision, mut recall, mut ndcg, mut map) = (0.0, 0.0, 0.0, 0.0);
    let mut users_evaluated = 0usize;
    for (u, held_out) in relevant.iter().enumerate() {
        let held_out: HashSet<u32> = held_out.iter().copied().collect();
        if held_out.is_empty() {
            continue;
        }
        users_evaluated += 1;
        if k == 0 {
            continue;
        }
        let list = recommended.get(u).map(Vec::as_slice).unwrap_or(&[]);
        let mut seen = HashSet::with_capacity(k.min(list.len()));
        let (mut hits, mut dcg, mut precision_sum) = (0usize, 0.0, 0.0);
        for (position, &item) in list.iter().take(k).enumerate() {
            if seen.insert(item) && held_out.contains(&item) {
                hits += 1;
                dcg += discount[position];
                precision_sum += hits as f64 / (position + 1) as f64;
            }
        }
        let ideal_hits = k.min(held_out.len());
        let ideal_dcg: f64 = discount[..ideal_hits].iter().sum();
        precision += hits as f64 / k as f64;
        recall += hits as f64 / held_out.len() as f64;
        ndcg += dcg / ideal_dcg;
        map += precision_sum / ideal_hits as f64;
    }

    let mut recommended_items = vec![false; n_items];
    for list in recommended {
        for &item in list.iter().take(k) {
            if let Some(flag) = recommended_items.get_mut(item as usize) {
                *flag = true;
            }
        }
    }
    let distinct = recommended_items.iter().filter(|&&flag| flag).count();

    let mean = |total: f64| (users_evaluated > 0 && k > 0).then(|| total / users_evaluated as f64);
    RankingMetrics {
        precision: mean(precision),
        recall: mean(recall),
        ndcg: mean(ndcg),
        map: mean(map),
        users_evaluated,
        coverage: if n_items > 0 {
            distinct as f64 / n_items as f64
        } else {
            0.0
        },
    }
}

/// Root mean squared error `sqrt(Σ (predicted − actual)² / n)`; NaN for
/// empty input. Panics if the lengths differ.
pub fn rmse(predicted: &[f64], actual: &[f64]) -> f64 {
    assert_eq!(
        predicted.len(),
        actual.len(),
        "rmse: predicted and actual differ in length"
    );
    if predicted.is_empty() {
        return f64::NAN;
    }
    let sum_sq: f64 = predicted
        .iter()
        .zip(actual)
        .map(|(p, a)| (p - a) * (p - a))
        .sum();
    (sum_sq / predicted.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn three_users_by_hand() {
        // k = 4, n_items = 10.
        // User 0: L = [1, 2, 3, 4], R = {2, 4, 9} → rel = [0, 1, 0, 1], hits = 2.
        //   precision = 2/4 = 0.5; recall = 2/3;
        //   DCG = 1/log2(3) + 1/log2(5); IDCG (min(4, 3) = 3) = 1 + 1/log2(3) + 1/log2(4);
        //   AP = (P@2 + P@4) / 3 = (1/2 + 2/4) / 3 = 1/3.
        // User 1: L = [5, 6] (shorter than k), R = {5} → rel = [1, 0], hits = 1.
        //   precision = 1/4; recall = 1; DCG = 1 = IDCG → NDCG = 1; AP = (P@1)/1 = 1.
        // User 2: L = [7], R = {} → skipped.
        // Means over 2 users: precision (0.5 + 0.25)/2 = 0.375; recall (2/3 + 1)/2 = 5/6;
        //   MAP (1/3 + 1)/2 = 2/3. Coverage: {1..7} = 7 of 10 items = 0.7.
        let recommended = vec![vec![1, 2, 3, 4], vec![5, 6], vec![7]];
        let relevant = vec![vec![2, 4, 9], vec![5], vec![]];
        let m = ranking_metrics(&recommended, &relevant, 4, 10);
        let ndcg0 = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5);
        assert_eq!(m.users_evaluated, 2);
        assert!(close(m.precision.unwrap(), 0.375), "{m:?}");
        assert!(close(m.recall.unwrap(), 5.0 / 6.0), "{m:?}");
        assert!(close(m.ndcg.unwrap(), (ndcg0 + 1.0) / 2.0), "{m:?}");
        assert!(
            (ndcg0 - 0.498_19).abs() < 1e-5,
            "DCG 1.06161 / IDCG 2.13093 ≈ 0.49819: {ndcg0}"
        );
        assert!(close(m.map.unwrap(), 2.0 / 3.0), "{m:?}");
        assert!(close(m.coverage, 0.7), "{m:?}");
    }

    #[test]
    fn truncation_to_k_duplicates_and_missing_lists() {
        // k = 2. User 0: L = [3, 3, 8], R = {3, 8}: only [3, 3] counts and the
        //   repeat earns nothing → rel = [1, 0], hits = 1: precision 1/2, recall 1/2,
        //   NDCG = 1 / (1 + 1/log2(3)), AP = (P@1)/min(2, 2) = 1/2.
        // User 1: no recommended list at all, R = {0, 1, 2}: everything 0.
        // Coverage counts only item 3 (8 is beyond k) → 1/5.
        let recommended = vec![vec![3, 3, 8]];
        let relevant = vec![vec![3, 8, 8], vec![0, 1, 2]];
        let m = ranking_metrics(&recommended, &relevant, 2, 5);
        assert_eq!(m.users_evaluated, 2);
        assert!(close(m.precision.unwrap(), 0.25));
        assert!(close(m.recall.unwrap(), 0.25));
        assert!(close(m.ndcg.unwrap(), 0.5 / (1.0 + 1.0 / 3f64.log2())));
        assert!(close(m.map.unwrap(), 0.25));
        assert!(close(m.coverage, 0.2));
    }

    #[test]
    fn perfect_ranking_scores_one() {
        // R larger than k: recall is capped at k/|R|, the others reach 1.
        let m = ranking_metrics(&[vec![4, 2, 9]], &[vec![9, 2, 4, 7]], 3, 10);
        assert!(
            close(m.precision.unwrap(), 1.0)
                && close(m.ndcg.unwrap(), 1.0)
                && close(m.map.unwrap(), 1.0)
        );
        assert!(close(m.recall.unwrap(), 0.75));
    }

    #[test]
    fn degenerate_inputs() {
        let none = ranking_metrics(&[vec![1]], &[vec![]], 5, 3);
        assert_eq!(none.users_evaluated, 0);
        // Nothing to average: NULL, not 0.
        assert_eq!(
            (none.precision, none.recall, none.ndcg, none.map),
            (None, None, None, None)
        );
        assert!(close(none.coverage, 1.0 / 3.0));
        let k0 = ranking_metrics(&[vec![1]], &[vec![1]], 0, 3);
        assert_eq!(
            (k0.users_evaluated, k0.precision, k0.ndcg, k0.coverage),
            (1, None, None, 0.0)
        );
        // Item ids beyond n_items do not count towards coverage; n_items = 0 gives 0.
        assert!(close(
            ranking_metrics(&[vec![1, 50]], &[vec![1]], 2, 4).coverage,
            0.25
        ));
        assert_eq!(ranking_metrics(&[vec![1]], &[vec![1]], 2, 0).coverage, 0.0);
        let empty = ranking_metrics(&[], &[], 10, 10);
        assert_eq!(empty.users_evaluated, 0);
    }

    #[test]
    fn rmse_by_hand() {
        // Errors 1, -2, 2 → squares 1 + 4 + 4 = 9, mean 3, RMSE √3.
        assert!(close(rmse(&[2.0, 1.0, 5.0], &[1.0, 3.0, 3.0]), 3f64.sqrt()));
        assert_eq!(rmse(&[1.5], &[1.5]), 0.0);
        assert!(rmse(&[], &[]).is_nan());
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn rmse_length_mismatch_panics() {
        rmse(&[1.0], &[]);
    }
}
