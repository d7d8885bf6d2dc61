//! Folding a user into a trained ALS model: the exact least-squares solve
//! for one user against the model's fixed product factors, kept up to date
//! event by event.
//!
//! For the products `i` a user touched, with interaction weights `w_i`
//! (the trainer's: summed event weights, capped, decayed by recency and
//! transformed by the model's confidence, [`Weighting`]), the implicit-ALS
//! user half-step is
//! `x = (YᵀY + λI + Σ_i α w_i y_i y_iᵀ)⁻¹ Σ_i (1 + α w_i) y_i`
//! (confidence `1 + α·w`, preference 1 for every product touched), the
//! same equations the trainer's solver converges to (`als::solver`).
//! The user's state keeps the decayed weights; the transform is applied at
//! the solve (raw and log look at each weight alone, bm25 at the whole row:
//! its row sum moves every entry).
//!
//! Solving the `f × f` system per event costs `f³/6` (about 20,000
//! multiply-adds at 50 factors). Most users touch far fewer products than
//! there are factors, so the solve uses the Woodbury identity instead:
//! with `A₀ = YᵀY + λI` (one Cholesky per model), `z_i = A₀⁻¹ y_i`
//! (precomputed for every product), `K_jl = y_j · z_l` over the user's `n`
//! products and `s_j = √(α w_j)`, `c_j = 1 + α w_j`,
//! `x = Σ_j β_j z_j` with `β = c − S (I + S K S)⁻¹ S K c`.
//! A new product adds one row to `K` (`n·f` work), a weight change costs
//! nothing until the solve, and the solve is an `n × n` Cholesky plus an
//! `n × f` sum. Users with more than [`WOODBURY_MAX`] products (or more
//! than `f`) switch to the direct `f × f` system, whose inverse is kept up
//! to date by Sherman–Morrison (weights only grow, so every update adds a
//! positive semi-definite `d y yᵀ` and the inverse stays well conditioned):
//! `u = A⁻¹ y`, `A⁻¹ −= d u uᵀ / (1 + d yᵀu)`, then `x = A⁻¹ b`, three
//! `f²` passes in vector lanes per event, where keeping a Cholesky factor
//! needed a rank-one update and two triangular solves, each a chain of
//! dependent steps. Under bm25 every weight changes with every event, so
//! past the Woodbury identity nothing is updated incrementally: the direct
//! system is formed (`n f²/2` in vector lanes) and factored (its Cholesky
//! with the dot products in vector lanes) afresh at each solve.
//!
//! Everything is accumulated in `f64`; product factors and `z` are `f32`.

use super::product_scores::{ProductScores, MAX_SCORED_PRODUCTS};
use crate::isa::vector::prefetch_row;
use crate::isa::{dispatch, Isa};
use crate::model::confidence::Weighting;
use crate::recommend::topk::norm_rounded_up;
use anyhow::{ensure, Result};
use rayon::prelude::*;

mod dense;
use dense::{add_outers_lower, cholesky_in_lanes, subtract_outer, symmetric_times, OUTER_COLUMNS};

/// The per-model part of the fold-in: `A₀ = YᵀY + λI` and `z_i = A₀⁻¹ y_i`.
#[derive(Debug)]
pub struct FoldIn {
    pub factors: usize,
    pub regularization: f64,
    pub alpha: f64,
    /// `YᵀY + λI`, row-major `f × f`.
    a0: Vec<f64>,
    /// `A₀⁻¹ y_i` per product, row-major `n_items × f`.
    z: Vec<f32>,
    /// `z_j · y_i` for every pair of products, for catalogues of at most
    /// [`MAX_SCORED_PRODUCTS`] (see [`super::score`]).
    product_scores: Option<ProductScores>,
    /// Every product (index, `‖y‖` rounded up) in descending order of
    /// norm, ties by index: the product scores' slot order, and
    /// [`super::anchor`] bounds the products it did not keep by the first
    /// of them here.
    pub by_norm: Vec<(u32, f32)>,
    /// How the model's weights were transformed (raw unless
    /// [`with_weighting`](Self::with_weighting) says otherwise).
    weighting: Weighting,
}

/// In-place Cholesky factorisation `a = L Lᵀ` of the symmetric positive
/// definite `n × n` row-major matrix `a` (only its lower triangle is read;
/// `L` replaces it). Errors name the failing pivot.
pub fn cholesky(a: &mut [f64], n: usize) -> Result<()> {
    debug_assert!(a.len() >= n * n);
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        ensure!(
            diag.is_finite() && diag > 0.0,
            "the normal equations are not positive definite (pivot {j} is {diag})"
        );
        let diag = diag.sqrt();
        a[j * n + j] = diag;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / diag;
        }
    }
    Ok(())
}

/// Solves `L Lᵀ x = b` in place, `l` from [`cholesky`].
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i * n + k] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= l[k * n + i] * b[k];
        }
        b[i] = v / l[i * n + i];
    }
}

/// The inverse of the symmetric positive definite `n × n` row-major `a`
/// (only its lower triangle is read), column by column from its Cholesky
/// factor.
fn spd_inverse(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>> {
    cholesky(&mut a, n)?;
    let mut inverse = vec![0f64; n * n];
    let mut column = vec![0f64; n];
    for c in 0..n {
        column.iter_mut().for_each(|v| *v = 0.0);
        column[c] = 1.0;
        cholesky_solve(&a, n, &mut column);
        for r in 0..n {
            inverse[r * n + c] = column[r];
        }
    }
    Ok(inverse)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Most products a user's solve handles by the Woodbury identity: beyond,
/// its `n³/6` Cholesky costs more than the direct system's `3f²` update and
/// solve (about equal at n = 32 for 50 factors).
pub const WOODBURY_MAX: usize = 32;

/// How many products ahead a user's factor rows (or `z` rows) are asked
/// for while one is read: a user's products are scattered over the
/// catalogue, and each row waited on from memory otherwise.
const PREFETCH_AHEAD: usize = 4;

/// Rows per task when summing `YᵀY`: fixed, so the sum's order (and the
/// result, bit for bit) does not depend on the thread count.
const GRAM_CHUNK: usize = 1024;

impl FoldIn {
    /// Precomputes the fold-in of a model with `item_factors`
    /// (`n_items × factors`, row-major), with the product-by-product
    /// scores that let the stream find a user's top products without a
    /// scan (catalogues of at most [`MAX_SCORED_PRODUCTS`]).
    pub fn new(
        item_factors: &[f32],
        factors: usize,
        regularization: f64,
        alpha: f64,
    ) -> Result<FoldIn> {
        Self::build(item_factors, factors, regularization, alpha, true)
    }

    /// The fold-in for solving users only (`als_update`): without the
    /// product-by-product scores, whose `n²` table costs far more than the
    /// solves of an update.
    pub fn solver(
        item_factors: &[f32],
        factors: usize,
        regularization: f64,
        alpha: f64,
    ) -> Result<FoldIn> {
        Self::build(item_factors, factors, regularization, alpha, false)
    }

    fn build(
        item_factors: &[f32],
        factors: usize,
        regularization: f64,
        alpha: f64,
        with_scores: bool,
    ) -> Result<FoldIn> {
        let f = factors;
        ensure!(
            f > 0 && item_factors.len().is_multiple_of(f),
            "product factors do not have {f} columns"
        );
        ensure!(
            regularization.is_finite()
                && regularization >= 0.0
                && alpha.is_finite()
                && alpha >= 0.0,
            "regularization ({regularization}) and alpha ({alpha}) must be finite numbers >= 0"
        );
        let partials: Vec<Vec<f64>> = item_factors
            .par_chunks(GRAM_CHUNK * f)
            .map(|rows| {
                let mut g = vec![0f64; f * f];
                for y in rows.chunks_exact(f) {
                    for j in 0..f {
                        let yj = y[j] as f64;
                        for k in 0..=j {
                            g[j * f + k] += yj * y[k] as f64;
                        }
                    }
                }
                g
            })
            .collect();
        let mut a0 = vec![0f64; f * f];
        for g in &partials {
            for (a, v) in a0.iter_mut().zip(g) {
                *a += v;
            }
        }
        for j in 0..f {
            for k in 0..j {
                a0[k * f + j] = a0[j * f + k];
            }
            a0[j * f + j] += regularization;
        }
        // A₀⁻¹ column by column from its Cholesky factor; then each z_i is
        // one matrix-vector product.
        let inverse = spd_inverse(a0.clone(), f)?;
        let mut z: Vec<f32> = Vec::new();
        z.try_reserve_exact(item_factors.len()).map_err(|_| {
            anyhow::anyhow!(
                "not enough memory for the fold-in of {} products",
                item_factors.len() / f
            )
        })?;
        z.resize(item_factors.len(), 0.0);
        z.par_chunks_mut(f)
            .zip(item_factors.par_chunks(f))
            .for_each(|(zi, yi)| {
                for r in 0..f {
                    let row = &inverse[r * f..(r + 1) * f];
                    zi[r] = row.iter().zip(yi).map(|(&a, &y)| a * y as f64).sum::<f64>() as f32;
                }
            });
        let n = item_factors.len() / f;
        let mut by_norm: Vec<(u32, f32)> = item_factors
            .par_chunks(f)
            .map(norm_rounded_up)
            .enumerate()
            .map(|(i, v)| (i as u32, v))
            .collect();
        by_norm.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let product_scores = if with_scores && n <= MAX_SCORED_PRODUCTS {
            Some(ProductScores::new(&z, item_factors, f, &by_norm)?)
        } else {
            None
        };
        Ok(FoldIn {
            factors: f,
            regularization,
            alpha,
            a0,
            z,
            product_scores,
            by_norm,
            weighting: Weighting::raw(),
        })
    }

    /// The fold-in of a model whose weights were transformed by
    /// `weighting` (refused when its table does not record all the
    /// statistics the transform needs).
    pub fn with_weighting(mut self, weighting: Weighting) -> Result<FoldIn> {
        weighting.check(self.n_items())?;
        self.weighting = weighting;
        Ok(self)
    }

    /// How the model's weights were transformed.
    pub fn weighting(&self) -> &Weighting {
        &self.weighting
    }

    /// `YᵀY + λI`, row-major `f × f` (what explanations and updates solve with).
    pub fn gram(&self) -> &[f64] {
        &self.a0
    }

    /// Bytes [`new`](Self::new) keeps for `n_items` products of `factors`.
    pub fn bytes(n_items: usize, factors: usize) -> u64 {
        (n_items * factors * 4 + n_items * 8 + factors * factors * 16) as u64
            + ProductScores::bytes(n_items)
            // A bm25 model's users per product and idf.
            + n_items as u64 * 12
    }

    /// The product-by-product scores (`None` above [`MAX_SCORED_PRODUCTS`]).
    pub fn product_scores(&self) -> Option<&ProductScores> {
        self.product_scores.as_ref()
    }

    /// The product scores rebuilt in single precision (the table of a CPU
    /// without F16C), for tests.
    #[cfg(test)]
    pub fn with_single_precision_scores(mut self, item_factors: &[f32]) -> FoldIn {
        self.product_scores = Some(
            ProductScores::build(&self.z, item_factors, self.factors, &self.by_norm, false)
                .unwrap(),
        );
        self
    }

    pub fn n_items(&self) -> usize {
        self.z.len() / self.factors
    }

    fn z(&self, item: u32) -> &[f32] {
        let f = self.factors;
        &self.z[item as usize * f..(item as usize + 1) * f]
    }
}

fn row(y: &[f32], f: usize, item: u32) -> &[f32] {
    &y[item as usize * f..(item as usize + 1) * f]
}

/// The direct system of a user with many products: the inverse of
/// `A = A₀ + Σ α w y yᵀ` (symmetric, row-major `f × f`) and
/// `b = Σ (1 + α w) y`.
#[derive(Clone, Debug)]
struct Dense {
    inverse: Vec<f64>,
    b: Vec<f64>,
    /// Scratch of the update: `y` in double precision, and `A⁻¹ y`.
    y: Vec<f64>,
    u: Vec<f64>,
}

/// One user's fold-in: the products they touched (model indices) with
/// their interaction weights (decayed, not yet transformed), and what the
/// solve needs kept up to date.
#[derive(Clone, Debug, Default)]
pub struct UserFold {
    items: Vec<u32>,
    weights: Vec<f32>,
    /// `K_jl = y_j · z_l`, lower triangle packed row by row (row `j` at
    /// `j(j+1)/2`), while the user is on the Woodbury identity.
    k: Vec<f64>,
    dense: Option<Box<Dense>>,
    /// Past the Woodbury identity under a row-coupled transform (bm25):
    /// the direct system is formed afresh at every solve.
    afresh: bool,
}

/// Reusable buffers for [`UserFold::solve`].
#[derive(Default)]
pub struct Scratch {
    /// The transformed weights of the user's products.
    t: Vec<f32>,
    m: Vec<f64>,
    v: Vec<f64>,
    x: Vec<f64>,
    /// Per product: `(c_j, √(α w_j))`.
    cs: Vec<(f64, f64)>,
    /// The direct system formed afresh: the rows `d y` and `y` of its
    /// outer products in double precision, and the padded matrix summed.
    dy: Vec<f64>,
    yd: Vec<f64>,
    /// The rows' stride in `dy` and `yd` (0: none yet).
    stride: usize,
    padded: Vec<f64>,
    /// After a Woodbury solve, `β` (`x = Σ_j β_j z_j` over the user's
    /// products); empty after a direct one.
    beta: Vec<f64>,
}

impl Scratch {
    /// `β` of the last [`UserFold::solve`], when it used the Woodbury
    /// identity (`x = Σ_j β_j z_j`, `j` over [`UserFold::items`]).
    pub fn woodbury_weights(&self) -> Option<&[f64]> {
        (!self.beta.is_empty()).then_some(self.beta.as_slice())
    }
}

/// `(confidence · preference, α w)` of a transformed weight: the
/// right-hand side coefficient and the diagonal correction.
fn coefficients(alpha: f64, weight: f32) -> (f64, f64) {
    let w = weight as f64;
    let preference = if w > 0.0 { 1.0 } else { 0.0 };
    ((1.0 + alpha * w) * preference, alpha * w)
}

impl UserFold {
    pub fn products(&self) -> usize {
        self.items.len()
    }

    /// The products touched (model indices), in the order first touched.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Whether the user touched any product of the model.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sets the interaction weight of `item` (a product index of the model
    /// whose factors are `y`; the weight decayed, not transformed), adding
    /// the product if it is new; whether that changed anything (a product
    /// kept at the same weight does not).
    pub fn set_weight(&mut self, fold: &FoldIn, y: &[f32], item: u32, weight: f32) -> Result<bool> {
        let f = fold.factors;
        let entry = |w: f32| fold.weighting.entry(w);
        match self.items.iter().position(|&i| i == item) {
            Some(at) => {
                let old = std::mem::replace(&mut self.weights[at], weight);
                if old.to_bits() == weight.to_bits() {
                    return Ok(false);
                }
                if let Some(dense) = &mut self.dense {
                    let (c_old, d_old) = coefficients(fold.alpha, entry(old));
                    let (c_new, d_new) = coefficients(fold.alpha, entry(weight));
                    dense.rank_one(row(y, f, item), d_new - d_old, c_new - c_old)?;
                }
            }
            None => {
                self.items.push(item);
                self.weights.push(weight);
                if let Some(dense) = &mut self.dense {
                    let (c, d) = coefficients(fold.alpha, entry(weight));
                    dense.rank_one(row(y, f, item), d, c)?;
                } else if self.afresh {
                    // Nothing kept up to date: the solve forms the system.
                } else if self.items.len() > f.min(WOODBURY_MAX) {
                    self.k = Vec::new();
                    if fold.weighting.is_row_coupled() {
                        self.afresh = true;
                    } else {
                        self.dense =
                            Some(Box::new(Dense::new(fold, y, &self.items, &self.weights)?));
                    }
                } else {
                    let yi = row(y, f, item);
                    for &other in self.items.iter().take(PREFETCH_AHEAD) {
                        prefetch_row(fold.z(other));
                    }
                    for (j, &other) in self.items.iter().enumerate() {
                        if let Some(&ahead) = self.items.get(j + PREFETCH_AHEAD) {
                            prefetch_row(fold.z(ahead));
                        }
                        self.k.push(dot(yi, fold.z(other)));
                    }
                }
            }
        }
        Ok(true)
    }

    /// The folded-in factor vector (`out.len() == factors`); all zeros
    /// for a user with no product of the model. `y` are the model's
    /// product factors.
    pub fn solve(
        &self,
        fold: &FoldIn,
        y: &[f32],
        scratch: &mut Scratch,
        out: &mut [f32],
    ) -> Result<()> {
        let f = fold.factors;
        ensure!(
            out.len() == f,
            "the output has {} values, the model {f} factors",
            out.len()
        );
        scratch.x.clear();
        scratch.x.resize(f, 0.0);
        scratch.beta.clear();
        if let Some(dense) = &self.dense {
            let isa = Isa::detect();
            dispatch!(isa, (inverse: &[f64] = &dense.inverse, v: &[f64] = &dense.b, out: &mut [f64] = &mut scratch.x) {
                symmetric_times(inverse, v, out)
            });
        } else if self.afresh {
            direct(fold, y, &self.items, &self.weights, scratch)?;
        } else {
            let n = self.items.len();
            let k = |j: usize, l: usize| {
                let (j, l) = if j >= l { (j, l) } else { (l, j) };
                self.k[j * (j + 1) / 2 + l]
            };
            fold.weighting
                .row(&self.items, &self.weights, &mut scratch.t);
            scratch.cs.clear();
            scratch.cs.extend(scratch.t.iter().map(|&w| {
                let (c, d) = coefficients(fold.alpha, w);
                (c, d.sqrt())
            }));
            let cs = &scratch.cs;
            // v = S K c, then M = I + S K S, solved in place.
            scratch.v.clear();
            scratch
                .v
                .extend((0..n).map(|j| cs[j].1 * (0..n).map(|l| k(j, l) * cs[l].0).sum::<f64>()));
            scratch.m.clear();
            scratch.m.resize(n * n, 0.0);
            for j in 0..n {
                for l in 0..=j {
                    scratch.m[j * n + l] =
                        cs[j].1 * k(j, l) * cs[l].1 + if j == l { 1.0 } else { 0.0 };
                }
            }
            cholesky(&mut scratch.m, n)?;
            cholesky_solve(&scratch.m, n, &mut scratch.v);
            for j in 0..n.min(PREFETCH_AHEAD) {
                prefetch_row(fold.z(self.items[j]));
            }
            for (j, &(c, s)) in cs.iter().enumerate().take(n) {
                if let Some(&ahead) = self.items.get(j + PREFETCH_AHEAD) {
                    prefetch_row(fold.z(ahead));
                }
                let beta = c - s * scratch.v[j];
                scratch.beta.push(beta);
                for (x, &z) in scratch.x.iter_mut().zip(fold.z(self.items[j])) {
                    *x += beta * z as f64;
                }
            }
        }
        for (o, &x) in out.iter_mut().zip(&scratch.x) {
            *o = x as f32;
        }
        Ok(())
    }
}

/// `x = A⁻¹ b` into `scratch.x` (zeroed by the caller), the system formed
/// afresh: `A = A₀ + Σ α t y yᵀ` (lower triangle), `b = Σ (1 + α t) y`,
/// `t` the weights transformed by the model's confidence.
fn direct(
    fold: &FoldIn,
    y: &[f32],
    items: &[u32],
    weights: &[f32],
    scratch: &mut Scratch,
) -> Result<()> {
    let f = fold.factors;
    fold.weighting.row(items, weights, &mut scratch.t);
    // A = A₀ + Σ α t y yᵀ (lower triangle), b = Σ (1 + α t) y; the
    // outer products' rows `d y` and `y` in double precision first.
    let stride = f.next_multiple_of(OUTER_COLUMNS);
    let n = items.len();
    // Each row's first f values are written below; the padding
    // after them is zero from the first call at this stride on.
    if scratch.stride != stride {
        scratch.stride = stride;
        scratch.dy.clear();
        scratch.yd.clear();
    }
    if scratch.dy.len() < n * stride {
        scratch.dy.resize(n * stride, 0.0);
        scratch.yd.resize(n * stride, 0.0);
    }
    for (j, (&item, &t)) in items.iter().zip(&scratch.t).enumerate() {
        if let Some(&ahead) = items.get(j + PREFETCH_AHEAD) {
            prefetch_row(row(y, f, ahead));
        }
        let (c, d) = coefficients(fold.alpha, t);
        let yi = row(y, f, item);
        let at = j * stride;
        for ((dy, yd), &v) in scratch.dy[at..at + f]
            .iter_mut()
            .zip(&mut scratch.yd[at..at + f])
            .zip(yi)
        {
            *dy = d * v as f64;
            *yd = v as f64;
        }
        for (x, &v) in scratch.x.iter_mut().zip(yi) {
            *x += c * v as f64;
        }
    }
    scratch.m.clear();
    scratch.m.extend_from_slice(&fold.a0);
    let isa = Isa::detect();
    dispatch!(isa, (m: &mut [f64] = &mut scratch.m, f: usize = f, dy: &[f64] = &scratch.dy[..n * stride],
                    yd: &[f64] = &scratch.yd[..n * stride], stride: usize = stride, padded: &mut Vec<f64> = &mut scratch.padded) {
        add_outers_lower(m, f, dy, yd, stride, padded)
    });
    dispatch!(isa, (m: &mut [f64] = &mut scratch.m, n: usize = f) -> Result<()> {
        cholesky_in_lanes(m, n)
    })?;
    cholesky_solve(&scratch.m, f, &mut scratch.x);
    Ok(())
}

impl FoldIn {
    /// One user's factors from their products (model indices, each once)
    /// and weights (decayed, not transformed), solved directly: what
    /// [`UserFold::solve`] gives, without the state a stream keeps up to
    /// date between events (a batch of users is solved once each). `y` are
    /// the model's product factors.
    pub fn solve_once(
        &self,
        y: &[f32],
        items: &[u32],
        weights: &[f32],
        scratch: &mut Scratch,
        out: &mut [f32],
    ) -> Result<()> {
        let f = self.factors;
        ensure!(
            out.len() == f && items.len() == weights.len(),
            "the output has {} values, the model {f} factors",
            out.len()
        );
        scratch.x.clear();
        scratch.x.resize(f, 0.0);
        scratch.beta.clear();
        direct(self, y, items, weights, scratch)?;
        for (o, &x) in out.iter_mut().zip(&scratch.x) {
            *o = x as f32;
        }
        Ok(())
    }
}

impl Dense {
    /// Inverts `A₀ + Σ α w y yᵀ` over the given products.
    fn new(fold: &FoldIn, y: &[f32], items: &[u32], weights: &[f32]) -> Result<Dense> {
        let f = fold.factors;
        let mut l = fold.a0.clone();
        let mut b = vec![0f64; f];
        for (&i, &w) in items.iter().zip(weights) {
            let (c, d) = coefficients(fold.alpha, fold.weighting.entry(w));
            let yi = row(y, f, i);
            for j in 0..f {
                let dyj = d * yi[j] as f64;
                for k in 0..=j {
                    l[j * f + k] += dyj * yi[k] as f64;
                }
                b[j] += c * yi[j] as f64;
            }
        }
        let inverse = spd_inverse(l, f)?;
        Ok(Dense {
            inverse,
            b,
            y: vec![0.0; f],
            u: vec![0.0; f],
        })
    }

    /// `A += d y yᵀ` (d ≥ 0), `b += c y`.
    fn rank_one(&mut self, y: &[f32], d: f64, c: f64) -> Result<()> {
        for (b, &v) in self.b.iter_mut().zip(y) {
            *b += c * v as f64;
        }
        ensure!(
            d >= 0.0 && d.is_finite(),
            "an interaction weight went down or is not finite ({d})"
        );
        if d == 0.0 {
            return Ok(());
        }
        for (t, &v) in self.y.iter_mut().zip(y) {
            *t = v as f64;
        }
        let isa = Isa::detect();
        dispatch!(isa, (inverse: &[f64] = &self.inverse, v: &[f64] = &self.y, out: &mut [f64] = &mut self.u) {
            symmetric_times(inverse, v, out)
        });
        let denominator = 1.0 + d * self.y.iter().zip(&self.u).map(|(a, b)| a * b).sum::<f64>();
        ensure!(
            denominator.is_finite() && denominator > 0.0,
            "the fold-in lost positive definiteness ({denominator})"
        );
        let scale = d / denominator;
        dispatch!(isa, (inverse: &mut [f64] = &mut self.inverse, u: &[f64] = &self.u, s: f64 = scale) {
            subtract_outer(inverse, u, s)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
