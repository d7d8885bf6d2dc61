//! The training loss, implicit's definition, without forming the dense matrix.

use super::factors::{pad_rows, padded_stride, stored_rows};
use super::gram::{gram, gram_matvec};
use super::types::AlsModel;
use crate::isa::vector::{Portable, VectorOps};
use crate::isa::{dispatch, Isa};
use crate::model::csr::Csr;
use rayon::prelude::*;

/// Training loss of `model` on `user_items`, exactly `implicit`'s
/// `calculate_loss` for confidences `c = 1 + alpha·r`:
///
/// ```text
/// [ Σ_{all u,i} c_ui (p_ui − x_u·y_i)²  +  λ (Σ_u |x_u|² + Σ_i |y_i|²) ]
///   / Σ_{all u,i} c_ui
/// ```
///
/// where the sums run over *every* cell of the `n_users × n_items` matrix
/// (unobserved cells have `c = 1`, `p = 0`), so the normaliser is
/// `Σ c_ui = n_users·n_items + alpha·Σ r_ui` (implicit writes it as
/// `total_confidence + n_users·n_items − nnz`). The dense sum is never formed:
/// per user, `Σ_i (x_u·y_i)² = x_uᵀ (YᵀY) x_u`, and each stored entry adds the
/// correction `c p − 2 c p s + (c − 1) s²` with `s = x_u·y_i`. Accumulated in
/// `f64` over fixed chunks, so the value does not depend on the thread count.
///
/// Panics if the factor matrices do not match the shape of `user_items`.
pub fn loss(user_items: &Csr, model: &AlsModel, regularization: f32, alpha: f32) -> f64 {
    let f = model.factors;
    assert!(f > 0, "model has 0 factors");
    assert_eq!(
        model.user_factors.len(),
        user_items.n_rows * f,
        "user_factors do not match n_rows × factors"
    );
    assert_eq!(
        model.item_factors.len(),
        user_items.n_cols * f,
        "item_factors do not match n_cols × factors"
    );
    let stride = padded_stride(f);
    let users = pad_rows(&model.user_factors, f, stride);
    let items = pad_rows(&model.item_factors, f, stride);
    let item_gram = gram(&items, f, stride, Isa::detect());
    loss_padded(
        user_items,
        &users,
        &items,
        &item_gram,
        f,
        stride,
        regularization,
        alpha,
        Isa::detect(),
    )
}

/// Rows per partial loss sum; fixed for a thread-count-independent result.
const LOSS_CHUNK_ROWS: usize = 1024;

#[allow(clippy::too_many_arguments)]
pub(super) fn loss_padded(
    user_items: &Csr,
    user_factors: &[f32],
    item_factors: &[f32],
    item_gram: &[f32],
    factors: usize,
    stride: usize,
    regularization: f32,
    alpha: f32,
    isa: Isa,
) -> f64 {
    // (data term, Σ|x_u|²) per chunk of users.
    let partials: Vec<(f64, f64)> = user_factors
        .par_chunks(LOSS_CHUNK_ROWS * stride)
        .enumerate()
        .map(|(chunk, rows)| {
            let mut work = vec![0f32; stride];
            let first_user = chunk * LOSS_CHUNK_ROWS;
            let mut data_term = 0f64;
            let mut user_norm2 = 0f64;
            for (k, x) in rows.chunks_exact(stride).enumerate() {
                let (cols, raw) = user_items.row(first_user + k);
                let args = (item_factors, item_gram, factors, stride, alpha);
                data_term += dispatch!(isa, <K>(
                    args: LossArgs = args,
                    cols: &[u32] = cols,
                    raw: &[f32] = raw,
                    x: &[f32] = x,
                    work: &mut [f32] = &mut work,
                ) -> f64 {
                    loss_row::<K>(args, cols, raw, x, work)
                });
                user_norm2 += Portable::dot(x, x) as f64;
            }
            (data_term, user_norm2)
        })
        .collect();
    let (data_term, user_norm2) = partials
        .iter()
        .fold((0.0, 0.0), |(d, n), &(pd, pn)| (d + pd, n + pn));
    normalised_loss(
        user_items,
        data_term + regularization as f64 * user_norm2,
        item_factors,
        stride,
        regularization,
        alpha,
    )
}

/// The loss from its user part `Σ_u [Σ_all_i c (p − x_u·y_i)² + λ|x_u|²]`
/// (computed here or by the user half-iteration's first residuals): adds
/// `λ Σ_i |y_i|²` and divides by `Σ c`.
pub(super) fn normalised_loss(
    user_items: &Csr,
    user_part: f64,
    item_factors: &[f32],
    stride: usize,
    regularization: f32,
    alpha: f32,
) -> f64 {
    let item_norm2: f64 = item_factors
        .par_chunks(LOSS_CHUNK_ROWS * stride)
        .map(|rows| {
            rows.chunks_exact(stride)
                .map(|y| Portable::dot(y, y) as f64)
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    let raw_sum: f64 = user_items.values.iter().map(|&r| r as f64).sum();
    let total_confidence =
        (user_items.n_rows as f64) * (user_items.n_cols as f64) + alpha as f64 * raw_sum;
    (user_part + regularization as f64 * item_norm2) / total_confidence
}

type LossArgs<'a> = (&'a [f32], &'a [f32], usize, usize, f32);

/// `Σ_i c_ui (p_ui − x·y_i)²` over all items for one user:
/// `xᵀ(YᵀY)x + Σ_stored [c p − 2 c p s + (c − 1) s²]`, `s = x·y_i`.
#[inline(always)]
fn loss_row<K: VectorOps>(
    args: LossArgs,
    cols: &[u32],
    raw: &[f32],
    x: &[f32],
    work: &mut [f32],
) -> f64 {
    let (item_factors, item_gram, factors, stride, alpha) = args;
    gram_matvec::<K>(item_gram, x, work, factors, stride, 0.0);
    let mut constant = 0f64;
    for (y_i, r) in stored_rows(item_factors, stride, cols, raw) {
        let confidence = 1.0 + alpha * r;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
        let coefficient = -2.0 * confidence * preference + (confidence - 1.0) * K::dot(y_i, x);
        K::axpy(coefficient, y_i, work);
        constant += (confidence * preference) as f64;
    }
    // work·x = xᵀYᵀYx − 2 Σ c p s + Σ (c − 1) s²
    constant + K::dot(work, x) as f64
}

#[cfg(test)]
mod tests {
    use super::super::reference::random_factors;
    use super::*;
    use crate::bench_support::synthetic_user_items;

    /// Loss by its definition: every cell of the dense matrix, in f64.
    fn brute_force_loss(m: &Csr, model: &AlsModel, reg: f64, alpha: f64) -> f64 {
        let f = model.factors;
        let mut dense = vec![0f64; m.n_rows * m.n_cols];
        for u in 0..m.n_rows {
            let (cols, vals) = m.row(u);
            for (&i, &r) in cols.iter().zip(vals) {
                dense[u * m.n_cols + i as usize] = r as f64;
            }
        }
        let (mut sum, mut weight) = (0.0, 0.0);
        for u in 0..m.n_rows {
            for i in 0..m.n_cols {
                let r = dense[u * m.n_cols + i];
                let c = 1.0 + alpha * r;
                let p = if r > 0.0 { 1.0 } else { 0.0 };
                let s: f64 = (0..f)
                    .map(|k| {
                        model.user_factors[u * f + k] as f64 * model.item_factors[i * f + k] as f64
                    })
                    .sum();
                sum += c * (p - s) * (p - s);
                weight += c;
            }
        }
        let norms: f64 = model
            .user_factors
            .iter()
            .chain(&model.item_factors)
            .map(|&v| v as f64 * v as f64)
            .sum();
        (sum + reg * norms) / weight
    }

    #[test]
    fn loss_matches_the_dense_definition() {
        let m = synthetic_user_items(30, 17, 4, 9);
        let f = 5;
        let model = AlsModel {
            factors: f,
            user_factors: random_factors(30, f, 1),
            item_factors: random_factors(17, f, 2),
            loss_per_iteration: vec![],
        };
        let ours = loss(&m, &model, 0.25, 1.5);
        let expected = brute_force_loss(&m, &model, 0.25, 1.5);
        assert!(
            (ours - expected).abs() <= 1e-5 * expected.abs(),
            "{ours} vs {expected}"
        );
    }

    #[test]
    fn loss_hand_example() {
        // 1 user × 2 items, f = 1, x = 1, y = [1, 0], r = [2, 0] (only item 0 stored), alpha = 1, λ = 0.5.
        // cell (0,0): c = 3, p = 1, s = 1 → 3·0 = 0; cell (0,1): c = 1, p = 0, s = 0 → 0.
        // reg: 0.5·(1 + 1 + 0) = 1; Σc = 2 + 1·2 = 4 → loss = 1/4.
        let m = Csr::from_triplets(1, 2, &[0], &[0], &[2.0]).unwrap();
        let model = AlsModel {
            factors: 1,
            user_factors: vec![1.0],
            item_factors: vec![1.0, 0.0],
            loss_per_iteration: vec![],
        };
        assert!((loss(&m, &model, 0.5, 1.0) - 0.25).abs() < 1e-12);
    }
}
