//! Why ALS scores a product for a user: the decomposition of Hu, Koren and
//! Volinsky (2008, section 5). Nothing here knows DuckDB.
//!
//! The user half-step solves `x = W Σ_j c_j y_j` with
//! `W = (YᵀY + λI + Σ_j α t_j y_j y_jᵀ)⁻¹` over the products `j` the user
//! touched (`t_j` their transformed weights, `c_j = 1 + α t_j`), so the
//! score of a product `i` is a sum over the user's history:
//! `x · y_i = Σ_j c_j (y_iᵀ W y_j)`. Each term is what product `j` of the
//! history adds to the score of `i`; `y_iᵀ W y_j` is a similarity between
//! the two products weighted by what the user did. With `q = W y_i` (one
//! solve, `W` symmetric) every term is `c_j (q · y_j)`.

use crate::stream::foldin::{cholesky, cholesky_solve};
use anyhow::{ensure, Result};

/// One user's normal equations, factored once for every product explained.
#[derive(Debug)]
pub struct Explainer {
    factors: usize,
    /// The user's products (model indices), as given.
    items: Vec<u32>,
    /// `c_j = 1 + α t_j` per product (0 for a product of weight 0).
    confidence: Vec<f64>,
    /// Cholesky factor of `W⁻¹`, row-major `f × f` (lower triangle).
    factor: Vec<f64>,
}

fn row(y: &[f32], f: usize, i: u32) -> &[f32] {
    &y[i as usize * f..(i as usize + 1) * f]
}

impl Explainer {
    /// `gram`: `YᵀY + λI` of the model (row-major `f × f`, as the fold-in
    /// keeps it); `y`: product factors, row-major; `items` and
    /// `transformed`: the user's products and their weights after the
    /// model's confidence transform.
    pub fn new(
        gram: &[f64],
        y: &[f32],
        factors: usize,
        alpha: f64,
        items: &[u32],
        transformed: &[f32],
    ) -> Result<Explainer> {
        let f = factors;
        ensure!(gram.len() == f * f, "the gram matrix is not {f} × {f}");
        ensure!(
            items.len() == transformed.len(),
            "{} products and {} weights",
            items.len(),
            transformed.len()
        );
        ensure!(
            items.iter().all(|&i| (i as usize + 1) * f <= y.len()),
            "a history product is not in the model"
        );
        let mut a = gram.to_vec();
        let mut confidence = Vec::with_capacity(items.len());
        for (&item, &t) in items.iter().zip(transformed) {
            let t = t as f64;
            // Preference 1 only for a product actually weighed (as the fold-in).
            confidence.push(if t > 0.0 { 1.0 + alpha * t } else { 0.0 });
            let d = alpha * t;
            let yi = row(y, f, item);
            for r in 0..f {
                for c in 0..=r {
                    a[r * f + c] += d * yi[r] as f64 * yi[c] as f64;
                }
            }
        }
        cholesky(&mut a, f)?;
        Ok(Explainer {
            factors: f,
            items: items.to_vec(),
            confidence,
            factor: a,
        })
    }

    /// The products of the history, in the order given.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// `c_j (y_iᵀ W y_j)` for each history product `j` (in [`items`]
    /// order): what each adds to the score of `target`.
    ///
    /// [`items`]: Self::items
    pub fn contributions(&self, y: &[f32], target: u32) -> Vec<f64> {
        let f = self.factors;
        let mut q: Vec<f64> = row(y, f, target).iter().map(|&v| v as f64).collect();
        cholesky_solve(&self.factor, f, &mut q);
        self.items
            .iter()
            .zip(&self.confidence)
            .map(|(&j, &c)| {
                c * row(y, f, j)
                    .iter()
                    .zip(&q)
                    .map(|(&v, &w)| v as f64 * w)
                    .sum::<f64>()
            })
            .collect()
    }

    /// The user vector these equations give, `W Σ_j c_j y_j`.
    pub fn user_vector(&self, y: &[f32]) -> Vec<f64> {
        let f = self.factors;
        let mut b = vec![0f64; f];
        for (&j, &c) in self.items.iter().zip(&self.confidence) {
            for (b, &v) in b.iter_mut().zip(row(y, f, j)) {
                *b += c * v as f64;
            }
        }
        cholesky_solve(&self.factor, f, &mut b);
        b
    }
}

/// `YᵀY + λI` of product factors `y` (row-major, `factors` columns).
#[cfg(test)]
fn gram(y: &[f32], factors: usize, regularization: f64) -> Vec<f64> {
    let f = factors;
    let mut g = vec![0f64; f * f];
    for yi in y.chunks_exact(f) {
        for r in 0..f {
            for c in 0..f {
                g[r * f + c] += yi[r] as f64 * yi[c] as f64;
            }
        }
    }
    for d in 0..f {
        g[d * f + d] += regularization;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::confidence::Weighting;
    use crate::stream::foldin::{FoldIn, Scratch, UserFold};

    /// Two orthogonal unit products and λ = 1, α = 1: `YᵀY + λI = 2I`;
    /// a user who touched product 0 with weight 1 has
    /// `W⁻¹ = 2I + e₀e₀ᵀ = diag(3, 2)`, `c₀ = 2`, so
    /// `x = W · 2 e₀ = (2/3, 0)`: product 0 scores 2/3, all of it from
    /// product 0; product 1 scores 0.
    #[test]
    fn hand_checked_two_products() {
        let y = [1.0f32, 0.0, 0.0, 1.0];
        let e = Explainer::new(&gram(&y, 2, 1.0), &y, 2, 1.0, &[0], &[1.0]).unwrap();
        let c = e.contributions(&y, 0);
        assert!((c[0] - 2.0 / 3.0).abs() < 1e-12, "{c:?}");
        assert_eq!(e.contributions(&y, 1), vec![0.0]);
        let x = e.user_vector(&y);
        assert!((x[0] - 2.0 / 3.0).abs() < 1e-12 && x[1].abs() < 1e-12);
    }

    /// A skewed pair: y₀ = (1, 0), y₁ = (1, 1), λ = 0.5, α = 2, the user
    /// touched both with weights 1 and 0.5. By hand:
    /// YᵀY + λI = [[2.5, 1], [1, 1.5]]; + 2·1·y₀y₀ᵀ + 2·0.5·y₁y₁ᵀ
    /// = [[5.5, 2], [2, 2.5]], det 9.75, W = [[2.5, −2], [−2, 5.5]] / 9.75;
    /// c = (3, 2). For target 1: q = W y₁ = (0.5, 3.5) / 9.75, so
    /// product 0 adds 3 · 0.5 / 9.75 and product 1 adds 2 · 4 / 9.75.
    #[test]
    fn hand_checked_coupled_products() {
        let y = [1.0f32, 0.0, 1.0, 1.0];
        let e = Explainer::new(&gram(&y, 2, 0.5), &y, 2, 2.0, &[0, 1], &[1.0, 0.5]).unwrap();
        let c = e.contributions(&y, 1);
        assert!((c[0] - 1.5 / 9.75).abs() < 1e-12, "{c:?}");
        assert!((c[1] - 8.0 / 9.75).abs() < 1e-12, "{c:?}");
    }

    /// On random factors the parts add up to the score of the fold-in's
    /// own solve (the half-step `recommend_session` serves), for users
    /// on both of its paths (Woodbury and direct).
    #[test]
    fn parts_add_up_to_the_fold_in_score() {
        let (f, n) = (6usize, 60usize);
        let mut state = 7u64;
        let mut next = || {
            state = crate::rng::mix64(state);
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
        };
        let y: Vec<f32> = (0..n * f).map(|_| next()).collect();
        let (lambda, alpha) = (0.1, 4.0);
        let fold = FoldIn::new(&y, f, lambda, alpha)
            .unwrap()
            .with_weighting(Weighting::raw())
            .unwrap();
        for products in [3usize, 40] {
            let items: Vec<u32> = (0..products as u32).map(|i| (i * 7) % n as u32).collect();
            let weights: Vec<f32> = (0..products).map(|i| 1.0 + (i % 4) as f32).collect();
            let mut user = UserFold::default();
            for (&i, &w) in items.iter().zip(&weights) {
                user.set_weight(&fold, &y, i, w).unwrap();
            }
            let mut x = vec![0f32; f];
            user.solve(&fold, &y, &mut Scratch::default(), &mut x)
                .unwrap();
            let e = Explainer::new(fold.gram(), &y, f, alpha, &items, &weights).unwrap();
            let mine = e.user_vector(&y);
            for (a, b) in mine.iter().zip(&x) {
                assert!((a - *b as f64).abs() < 1e-4, "{mine:?} vs {x:?}");
            }
            for target in [0u32, 5, 59] {
                let parts: f64 = e.contributions(&y, target).iter().sum();
                let score: f64 = row(&y, f, target)
                    .iter()
                    .zip(&mine)
                    .map(|(&v, &w)| v as f64 * w)
                    .sum();
                assert!(
                    (parts - score).abs() <= 1e-9 * score.abs().max(1.0),
                    "{parts} vs {score}"
                );
            }
        }
    }
}
