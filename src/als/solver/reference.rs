//! Test-only references: the dense exact solution of a row's normal
//! equations (what CG converges to) and helpers shared by the solver's tests.

use super::types::AlsParams;
use crate::rng::Rng;
use anyhow::{bail, ensure, Result};

/// Exact solution of one row's normal equations
/// `(YᵀY + Yᵀ(C − I)Y + λI) x = Yᵀ C p` by dense Cholesky factorisation in
/// `f64` — the fixed point the CG solver approaches; used to test it.
///
/// `item_factors` is the fixed side (`n × factors`, unpadded), `items` and
/// `raw_values` the row's stored entries (raw weights `r`). Errors on shape
/// mismatches, out-of-range indices, or a matrix that is not positive
/// definite (possible only with `regularization == 0`).
pub(super) fn solve_exact(
    item_factors: &[f32],
    factors: usize,
    items: &[u32],
    raw_values: &[f32],
    regularization: f32,
    alpha: f32,
) -> Result<Vec<f32>> {
    let f = factors;
    ensure!(f > 0, "factors must be > 0");
    ensure!(
        item_factors.len().is_multiple_of(f),
        "item_factors length {} is not a multiple of factors {f}",
        item_factors.len()
    );
    ensure!(
        items.len() == raw_values.len(),
        "{} items but {} values",
        items.len(),
        raw_values.len()
    );
    let n_items = item_factors.len() / f;
    let y = |i: usize| &item_factors[i * f..(i + 1) * f];

    // a = YᵀY + λI, then the observed-entry corrections.
    let mut a = vec![0f64; f * f];
    for i in 0..n_items {
        let yi = y(i);
        for j in 0..f {
            for k in 0..f {
                a[j * f + k] += yi[j] as f64 * yi[k] as f64;
            }
        }
    }
    for j in 0..f {
        a[j * f + j] += regularization as f64;
    }
    let mut b = vec![0f64; f];
    for (&i, &r) in items.iter().zip(raw_values) {
        ensure!(
            (i as usize) < n_items,
            "item index {i} out of range ({n_items} items)"
        );
        let yi = y(i as usize);
        let confidence = 1.0 + alpha as f64 * r as f64;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
        for j in 0..f {
            b[j] += confidence * preference * yi[j] as f64;
            for k in 0..f {
                a[j * f + k] += (confidence - 1.0) * yi[j] as f64 * yi[k] as f64;
            }
        }
    }

    // Cholesky a = L Lᵀ (lower triangle, in place).
    for j in 0..f {
        let mut diag = a[j * f + j];
        for k in 0..j {
            diag -= a[j * f + k] * a[j * f + k];
        }
        if diag.is_nan() || diag <= 0.0 {
            bail!("normal equations are not positive definite (pivot {j} = {diag})");
        }
        let diag = diag.sqrt();
        a[j * f + j] = diag;
        for i in j + 1..f {
            let mut v = a[i * f + j];
            for k in 0..j {
                v -= a[i * f + k] * a[j * f + k];
            }
            a[i * f + j] = v / diag;
        }
    }
    // Forward substitution L z = b, then back substitution Lᵀ x = z.
    for i in 0..f {
        for k in 0..i {
            b[i] -= a[i * f + k] * b[k];
        }
        b[i] /= a[i * f + i];
    }
    for i in (0..f).rev() {
        for k in i + 1..f {
            b[i] -= a[k * f + i] * b[k];
        }
        b[i] /= a[i * f + i];
    }
    Ok(b.into_iter().map(|v| v as f32).collect())
}

pub(super) fn small_params(factors: usize) -> AlsParams {
    AlsParams {
        factors,
        iterations: 10,
        regularization: 0.1,
        alpha: 2.0,
        cg_steps: 3,
        seed: 7,
    }
}

pub(super) fn random_factors(n: usize, f: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * f).map(|_| (rng.normal() * 0.5) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_exact_on_a_hand_example() {
        // f = 1, items y = [1, 2], user has item 1 with r = 1, alpha = 1:
        // A = YᵀY + (c−1)·2·2 + λ = (1 + 4) + 4 + 1 = 10, b = c·p·2 = 2·2 = 4, x = 0.4.
        let x = solve_exact(&[1.0, 2.0], 1, &[1], &[1.0], 1.0, 1.0).unwrap();
        assert!((x[0] - 0.4).abs() < 1e-7);
        // Singular without regularisation: Y = 0.
        assert!(solve_exact(&[0.0, 0.0], 1, &[], &[], 0.0, 1.0).is_err());
    }
}
