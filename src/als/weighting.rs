//! How raw interaction weights become the `r` that ALS turns into
//! confidence (`c = 1 + alpha · r`): a confidence transform of the
//! user × product matrix, and a recency decay of each pair's weight.
//! Plain slices and [`Csr`] only; nothing here knows DuckDB.
//!
//! Transforms (each keeps every stored entry strictly positive, so the
//! preference `p = 1` of an interacting pair is never lost):
//! * `raw`: the weights as given (the seed's behaviour);
//! * `log`: `ln(1 + r)`, which flattens heavy repeat counts;
//! * `bm25`: Okapi BM25 of the user's row, the weighting `implicit` offers
//!   (`bm25_weight`, K1 = 100, B = 0.8): a product many users touch weighs
//!   less (`idf`), and a user with a long history has each entry scaled down
//!   towards the mean history length. The idf is the always-positive form
//!   `ln(1 + (N − df + 0.5) / (df + 0.5))` (N users, df users of the product),
//!   not implicit's `ln N − ln(1 + df)`, which is negative for a product
//!   every user touched.
//!
//! `log` and `bm25` are rescaled so the mean of the stored entries equals
//! the mean of the raw weights: `alpha` then means the same thing ("how much
//! an average interaction outweighs an unobserved cell") under every
//! transform, and one alpha grid serves them all.
//!
//! Recency: `w · 0.5^(age / half_life)`, `age` the time from the pair's last
//! event to the reference time (the latest event of the training data), so
//! a pair last touched one half-life before the end of the data counts half.

use crate::model::confidence::{bm25_entry, decayed, log_entry, rescaled, Bm25, BM25_B, BM25_K1};
pub use crate::model::confidence::{Confidence, Weighting};
use crate::model::csr::Csr;

/// Applies `confidence` to the values of a user × product matrix (rows =
/// users) in place, and returns what the model records of it (the scale,
/// bm25's statistics; no decay). Entries must be finite and > 0 (the
/// caller's checks).
pub fn apply(matrix: &mut Csr, confidence: Confidence) -> Weighting {
    let mut weighting = Weighting {
        confidence,
        ..Weighting::raw()
    };
    if confidence == Confidence::Raw || matrix.nnz() == 0 {
        return weighting;
    }
    let raw_mean = mean(&matrix.values);
    match confidence {
        Confidence::Raw => {}
        Confidence::Log => {
            for v in &mut matrix.values {
                *v = log_entry(*v);
            }
        }
        Confidence::Bm25 => weighting.bm25 = Some(bm25(matrix)),
    }
    let scale = raw_mean / mean(&matrix.values);
    for v in &mut matrix.values {
        *v = rescaled(*v, scale);
    }
    weighting.scale = scale;
    weighting
}

fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&v| v as f64).sum::<f64>() / values.len().max(1) as f64
}

/// BM25 of every row, before the scale; its statistics.
fn bm25(matrix: &mut Csr) -> Bm25 {
    let mut users_of = vec![0u32; matrix.n_cols];
    for &i in &matrix.indices {
        users_of[i as usize] += 1;
    }
    let row_sums: Vec<f64> = (0..matrix.n_rows)
        .map(|u| matrix.row(u).1.iter().map(|&v| v as f64).sum())
        .collect();
    let n_users = matrix.n_rows as f64;
    let mean_length = row_sums.iter().sum::<f64>() / n_users.max(1.0);
    let stats = Bm25::new(BM25_K1, BM25_B, mean_length, n_users, users_of);
    for (u, &row_sum) in row_sums.iter().enumerate() {
        for k in matrix.indptr[u]..matrix.indptr[u + 1] {
            let i = matrix.indices[k];
            matrix.values[k] = bm25_entry(
                matrix.values[k],
                row_sum,
                mean_length,
                stats.idf(i),
                stats.k1,
                stats.b,
            );
        }
    }
    stats
}

/// Multiplies each weight by `0.5^((reference − time) / half_life)`
/// ([`decayed`]). Times and the half-life share one unit (seconds in
/// ecoreco). `half_life` must be > 0.
pub fn decay(weights: &mut [f32], times: &[f64], reference: f64, half_life: f64) {
    debug_assert_eq!(weights.len(), times.len());
    debug_assert!(half_life > 0.0);
    for (w, &t) in weights.iter_mut().zip(times) {
        *w = decayed(*w, t, reference, half_life);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5 * b.abs().max(1.0)
    }

    /// 3 users × 3 products: user 0 {0: 1, 1: 3}, user 1 {0: 10}, user 2 {0: 2, 2: 4}.
    fn matrix() -> Csr {
        Csr::from_triplets(
            3,
            3,
            &[0, 0, 1, 2, 2],
            &[0, 1, 0, 0, 2],
            &[1.0, 3.0, 10.0, 2.0, 4.0],
        )
        .unwrap()
    }

    #[test]
    fn raw_leaves_the_matrix_alone() {
        let mut m = matrix();
        apply(&mut m, Confidence::Raw);
        assert_eq!(m, matrix());
    }

    #[test]
    fn log_by_hand_rescaled_to_the_raw_mean() {
        // ln(1 + r) for r = 1, 3, 10, 2, 4; raw mean 20 / 5 = 4.
        let logs: Vec<f64> = [1.0f64, 3.0, 10.0, 2.0, 4.0]
            .iter()
            .map(|r| r.ln_1p())
            .collect();
        let scale = 4.0 / (logs.iter().sum::<f64>() / 5.0);
        let mut m = matrix();
        apply(&mut m, Confidence::Log);
        for (got, want) in m.values.iter().zip(&logs) {
            assert!(
                close(*got as f64, want * scale),
                "{got} vs {}",
                want * scale
            );
        }
        assert!(close(mean(&m.values), 4.0));
        // Order is preserved and the heavy entry is flattened: 10 was 10× the
        // lightest weight, now ln 11 / ln 2 ≈ 3.46×.
        assert!(close(
            (m.values[2] / m.values[0]) as f64,
            11f64.ln() / 2f64.ln()
        ));
    }

    #[test]
    fn bm25_by_hand() {
        // N = 3 users. Product 0 has df 3, products 1 and 2 have df 1.
        // idf(df) = ln(1 + (3 − df + 0.5) / (df + 0.5)): idf0 = ln(1 + 0.5/3.5), idf1 = idf2 = ln(1 + 2.5/1.5).
        // Row sums 4, 10, 6, mean 20/3; length_norm = 0.2 + 0.8 · sum / (20/3).
        let idf = |df: f64| (1.0 + (3.0 - df + 0.5) / (df + 0.5)).ln();
        let norm = |sum: f64| 0.2 + 0.8 * sum / (20.0 / 3.0);
        let w = |r: f64, sum: f64, df: f64| r * 101.0 / (100.0 * norm(sum) + r) * idf(df);
        let want = [
            w(1.0, 4.0, 3.0),
            w(3.0, 4.0, 1.0),
            w(10.0, 10.0, 3.0),
            w(2.0, 6.0, 3.0),
            w(4.0, 6.0, 1.0),
        ];
        let scale = 4.0 / (want.iter().sum::<f64>() / 5.0);
        let mut m = matrix();
        apply(&mut m, Confidence::Bm25);
        for (got, want) in m.values.iter().zip(want) {
            assert!(
                close(*got as f64, want * scale),
                "{got} vs {}",
                want * scale
            );
        }
        // The rare product outweighs the common one for user 0 although raw
        // weight 3 vs 1 alone would give 3×: idf makes it more.
        assert!(m.values[1] > 3.0 * m.values[0]);
        assert!(m.values.iter().all(|&v| v > 0.0));
    }

    #[test]
    fn bm25_of_a_product_everyone_touched_stays_positive() {
        let mut m = Csr::from_triplets(2, 1, &[0, 1], &[0, 0], &[1.0, 1.0]).unwrap();
        apply(&mut m, Confidence::Bm25);
        assert!(m.values.iter().all(|&v| v > 0.0), "{:?}", m.values);
        assert!(close(mean(&m.values), 1.0));
    }

    /// The statistics `apply` returns give back every row's transformed
    /// entries from its raw ones alone, bit for bit: the fold-in's recipe
    /// is the trainer's.
    #[test]
    fn the_returned_weighting_repeats_every_row() {
        for confidence in Confidence::ALL {
            let mut m = matrix();
            let weighting = apply(&mut m, confidence);
            weighting.check(3).unwrap();
            assert_eq!(weighting.bm25.is_some(), confidence == Confidence::Bm25);
            let raw = matrix();
            let mut row = Vec::new();
            for u in 0..3 {
                let (products, weights) = raw.row(u);
                weighting.row(products, weights, &mut row);
                assert_eq!(row, m.row(u).1, "{confidence:?} user {u}");
            }
        }
        let bm25 = apply(&mut matrix(), Confidence::Bm25).bm25.unwrap();
        assert_eq!(
            (bm25.product_users, bm25.users, bm25.mean_length),
            (vec![3, 1, 1], 3.0, 20.0 / 3.0)
        );
    }

    #[test]
    fn decay_halves_per_half_life() {
        let mut w = vec![8.0f32, 8.0, 8.0, 8.0, 8.0];
        let times = [100.0, 90.0, 80.0, 120.0, f64::NAN];
        decay(&mut w, &times, 100.0, 10.0);
        // Ages 0, 10, 20, future (0), no time.
        assert_eq!(w, vec![8.0, 4.0, 2.0, 8.0, 8.0]);
    }
}
