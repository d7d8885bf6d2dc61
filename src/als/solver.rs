//! Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008,
//! "Collaborative Filtering for Implicit Feedback Datasets") solved per row
//! with a few conjugate-gradient steps, the scheme of benfred/implicit's CPU
//! `least_squares_cg` (Takács, Pilászy & Tikk 2011).
//!
//! # Model
//! For a raw interaction weight `r_ui >= 0` (a count or score from the
//! `user_items` matrix; unobserved cells have `r_ui = 0`):
//! * confidence `c_ui = 1 + alpha * r_ui`,
//! * preference `p_ui = 1` if `r_ui > 0`, else `0`.
//!
//! Training minimises
//! `Σ_{u,i} c_ui (p_ui − x_u·y_i)² + λ (Σ_u |x_u|² + Σ_i |y_i|²)`
//! by alternately fixing the item factors `Y` and solving every user's normal
//! equations `(YᵀY + Yᵀ(C_u − I)Y + λI) x_u = Yᵀ C_u p_u`, then the same for
//! items with the roles swapped. `YᵀY` is computed once per half-iteration, so
//! a user with `n_u` interactions costs `O(n_u·f + f²)` per CG step instead of
//! the `O(n_items·f²)` of forming the matrix naively. Each solve starts from
//! the row's previous factors and runs `cg_steps` CG iterations (3 is plenty
//! because the starting point is already close), stopping early when the
//! squared residual norm drops below `1e-20`. Rows without interactions get
//! all-zero factors, the exact solution of their equations.
//!
//! Note on `alpha`: recent versions of `implicit` take the matrix values as
//! the confidence itself (after multiplying by their `alpha`), i.e. `c = α·r`
//! rather than `1 + α·r`. Feeding `implicit` the values `1 + α·r` with its
//! `alpha = 1` reproduces the model here exactly.
//!
//! # Determinism
//! Initial factors come from per-row random streams (`Rng::for_stream`), each
//! row is solved independently, and every reduction (`YᵀY`, the loss) sums
//! fixed-size chunks in a fixed order, so for a given seed the result is bit
//! identical whatever the number of rayon threads. The vector kernels exist
//! twice — portable Rust and AVX2 intrinsics, picked at run time because the
//! crate is built for baseline x86-64 — and both use eight partial sums
//! reduced in the same fixed order without fused multiply-add, so a model is
//! also bit identical between machines with and without AVX2.
//!
//! # Layout
//! Internally each factor row is padded with zeros to a multiple of eight
//! floats (`stride`) so the kernels work on whole 8-lane chunks with no
//! remainder loop; the public [`AlsModel`] holds unpadded `n × factors` rows.

use crate::model::csr::Csr;
use crate::rng::Rng;
use anyhow::{bail, ensure, Result};
use rayon::prelude::*;

/// Hyper-parameters of [`train`].
#[derive(Clone, Debug, PartialEq)]
pub struct AlsParams {
    /// Latent dimension `f`.
    pub factors: usize,
    /// Number of full iterations (a user half followed by an item half).
    pub iterations: usize,
    /// L2 penalty `λ` added to the diagonal of every row's normal equations.
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha · r`.
    pub alpha: f32,
    /// Conjugate-gradient iterations per row and half-iteration.
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 50,
            iterations: 15,
            regularization: 0.1,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// A trained model. Factor matrices are row-major, one row of `factors`
/// floats per user (item), unpadded.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsModel {
    pub factors: usize,
    /// `n_users × factors`.
    pub user_factors: Vec<f32>,
    /// `n_items × factors`.
    pub item_factors: Vec<f32>,
    /// [`loss`] after each iteration, in iteration order.
    pub loss_per_iteration: Vec<f64>,
}

/// Trains a model on `user_items` (rows = users, columns = items, values =
/// raw non-negative interaction weights `r`, *not* confidences).
pub fn train(user_items: &Csr, params: &AlsParams) -> Result<AlsModel> {
    train_with_callback(user_items, params, |_, _| {})
}

/// [`train`], calling `on_iteration(iteration, loss)` after each iteration
/// (`iteration` counts from 0) — for progress reporting.
pub fn train_with_callback(
    user_items: &Csr,
    params: &AlsParams,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<AlsModel> {
    let mut trainer = AlsTrainer::new(user_items, params)?;
    let mut loss_per_iteration = Vec::with_capacity(params.iterations);
    for iteration in 0..params.iterations {
        trainer.step();
        let loss = trainer.loss();
        loss_per_iteration.push(loss);
        on_iteration(iteration, loss);
    }
    Ok(trainer.into_model(loss_per_iteration))
}

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

/// Exact solution of one row's normal equations
/// `(YᵀY + Yᵀ(C − I)Y + λI) x = Yᵀ C p` by dense Cholesky factorisation in
/// `f64` — the fixed point the CG solver approaches; used to test it.
///
/// `item_factors` is the fixed side (`n × factors`, unpadded), `items` and
/// `raw_values` the row's stored entries (raw weights `r`). Errors on shape
/// mismatches, out-of-range indices, or a matrix that is not positive
/// definite (possible only with `regularization == 0`).
pub fn solve_exact(
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

/// Step-by-step training, for callers that want to time or interleave
/// iterations themselves: `new` validates and initialises, `step` runs one
/// iteration (users then items), `loss` evaluates [`loss`] on the current
/// factors, `into_model` returns the unpadded model. `params.iterations` is
/// ignored here (the caller decides how many steps to run). Work runs on the
/// current rayon pool (wrap calls in `ThreadPool::install` to bound threads).
pub struct AlsTrainer<'a> {
    user_items: &'a Csr,
    item_users: Csr,
    params: AlsParams,
    stride: usize,
    /// `n_users × stride`, zero-padded.
    user_factors: FactorRows,
    /// `n_items × stride`, zero-padded.
    item_factors: FactorRows,
    /// `YᵀY` (unregularised, `stride × stride`) of the current item factors,
    /// shared by the loss and the next user half-iteration.
    item_gram: Option<Vec<f32>>,
    isa: Isa,
}

impl<'a> AlsTrainer<'a> {
    /// Validates `params` and `user_items`, transposes the matrix and draws
    /// the initial factors (`0.01 · N(0, 1)`, one random stream per row:
    /// stream `2u` for user `u`, `2i + 1` for item `i`).
    pub fn new(user_items: &'a Csr, params: &AlsParams) -> Result<AlsTrainer<'a>> {
        validate_params(params)?;
        validate_matrix(user_items)?;
        let f = params.factors;
        let stride = padded_stride(f);
        let n_users = user_items.n_rows;
        let n_items = user_items.n_cols;
        let user_len = n_users
            .checked_mul(stride)
            .ok_or_else(|| anyhow::anyhow!("user factor matrix too large"))?;
        let item_len = n_items
            .checked_mul(stride)
            .ok_or_else(|| anyhow::anyhow!("item factor matrix too large"))?;
        let user_factors = init_factors(user_len, f, stride, params.seed, 0);
        let item_factors = init_factors(item_len, f, stride, params.seed, 1);
        Ok(AlsTrainer {
            user_items,
            item_users: user_items.transpose(),
            params: params.clone(),
            stride,
            user_factors,
            item_factors,
            item_gram: None,
            isa: Isa::detect(),
        })
    }

    /// One ALS iteration: solve all users against the item factors, then all
    /// items against the new user factors.
    pub fn step(&mut self) {
        let f = self.params.factors;
        let item_gram = match self.item_gram.take() {
            Some(g) => g,
            None => gram(&self.item_factors, f, self.stride, self.isa),
        };
        self.solve_half(true, &item_gram);
        let user_gram = gram(&self.user_factors, f, self.stride, self.isa);
        self.solve_half(false, &user_gram);
    }

    /// [`loss`] of the current factors (computes and caches `YᵀY`).
    pub fn loss(&mut self) -> f64 {
        let f = self.params.factors;
        if self.item_gram.is_none() {
            self.item_gram = Some(gram(&self.item_factors, f, self.stride, self.isa));
        }
        loss_padded(
            self.user_items,
            &self.user_factors,
            &self.item_factors,
            self.item_gram.as_ref().unwrap(),
            f,
            self.stride,
            self.params.regularization,
            self.params.alpha,
            self.isa,
        )
    }

    /// The trained model with unpadded factor rows.
    pub fn into_model(self, loss_per_iteration: Vec<f64>) -> AlsModel {
        let f = self.params.factors;
        AlsModel {
            factors: f,
            user_factors: unpad_rows(&self.user_factors, f, self.stride),
            item_factors: unpad_rows(&self.item_factors, f, self.stride),
            loss_per_iteration,
        }
    }

    /// Solves every row of one side given the other side's factors and Gram matrix.
    fn solve_half(&mut self, users: bool, other_gram: &[f32]) {
        let (matrix, solved, fixed) = if users {
            (
                self.user_items,
                &mut *self.user_factors,
                &*self.item_factors,
            )
        } else {
            (
                &self.item_users,
                &mut *self.item_factors,
                &*self.user_factors,
            )
        };
        // The item half changes Y, invalidating the cached YᵀY.
        if !users {
            self.item_gram = None;
        }
        let problem = RowProblem {
            fixed_factors: fixed,
            gram: other_gram,
            factors: self.params.factors,
            stride: self.stride,
            regularization: self.params.regularization,
            alpha: self.params.alpha,
            cg_steps: self.params.cg_steps,
        };
        solve_rows(matrix, solved, &problem, self.isa);
    }
}

// ---------------------------------------------------------------------------
// Validation and layout helpers
// ---------------------------------------------------------------------------

fn validate_params(params: &AlsParams) -> Result<()> {
    ensure!(params.factors > 0, "ALS factors must be > 0");
    ensure!(params.iterations > 0, "ALS iterations must be > 0");
    ensure!(params.cg_steps > 0, "ALS cg_steps must be > 0");
    ensure!(
        params.regularization.is_finite() && params.regularization >= 0.0,
        "ALS regularization must be finite and >= 0, got {}",
        params.regularization
    );
    ensure!(
        params.alpha.is_finite() && params.alpha >= 0.0,
        "ALS alpha must be finite and >= 0, got {}",
        params.alpha
    );
    Ok(())
}

fn validate_matrix(user_items: &Csr) -> Result<()> {
    ensure!(
        user_items.n_rows > 0 && user_items.n_cols > 0 && user_items.nnz() > 0,
        "ALS needs a non-empty interaction matrix (got {} users × {} items, {} interactions)",
        user_items.n_rows,
        user_items.n_cols,
        user_items.nnz()
    );
    user_items.validate()?;
    if let Some(k) = user_items
        .values
        .iter()
        .position(|v| !(v.is_finite() && *v >= 0.0))
    {
        bail!(
            "ALS interaction weights must be finite and >= 0, found {} (entry {k})",
            user_items.values[k]
        );
    }
    Ok(())
}

/// Width of the 8-float chunks all vector kernels work on.
const LANES: usize = 8;

/// Row length after zero padding to whole chunks.
fn padded_stride(factors: usize) -> usize {
    factors.div_ceil(LANES) * LANES
}

/// Zero-padded factor rows whose first row starts on a 64-byte cache-line
/// boundary. With `stride · 4` bytes a multiple of 32, every row then spans
/// the minimum number of cache lines (4 instead of 4 or 5 for `factors = 50`),
/// which cuts the memory traffic of the scattered row reads that dominate a
/// half-iteration. Dereferences to the padded `[f32]`.
struct FactorRows {
    buffer: Vec<f32>,
    offset: usize,
    len: usize,
}

impl FactorRows {
    const ALIGN_FLOATS: usize = 64 / std::mem::size_of::<f32>();

    fn zeroed(len: usize) -> FactorRows {
        let buffer = vec![0f32; len + Self::ALIGN_FLOATS];
        let misalignment =
            (buffer.as_ptr() as usize / std::mem::size_of::<f32>()) % Self::ALIGN_FLOATS;
        let offset = (Self::ALIGN_FLOATS - misalignment) % Self::ALIGN_FLOATS;
        FactorRows {
            buffer,
            offset,
            len,
        }
    }
}

impl std::ops::Deref for FactorRows {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buffer[self.offset..self.offset + self.len]
    }
}

impl std::ops::DerefMut for FactorRows {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[self.offset..self.offset + self.len]
    }
}

fn pad_rows(rows: &[f32], factors: usize, stride: usize) -> FactorRows {
    let n = rows.len() / factors;
    let mut out = FactorRows::zeroed(n * stride);
    for (dst, src) in out.chunks_exact_mut(stride).zip(rows.chunks_exact(factors)) {
        dst[..factors].copy_from_slice(src);
    }
    out
}

fn unpad_rows(rows: &[f32], factors: usize, stride: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() / stride * factors);
    for src in rows.chunks_exact(stride) {
        out.extend_from_slice(&src[..factors]);
    }
    out
}

/// `0.01 · N(0, 1)` factors; row `r` uses stream `2r + side` so users
/// (side 0) and items (side 1) draw independent numbers.
fn init_factors(len: usize, factors: usize, stride: usize, seed: u64, side: u64) -> FactorRows {
    let mut out = FactorRows::zeroed(len);
    out.par_chunks_mut(stride)
        .enumerate()
        .with_min_len(256)
        .for_each(|(row, dst)| {
            let mut rng = Rng::for_stream(seed, 2 * row as u64 + side);
            for v in &mut dst[..factors] {
                *v = (rng.normal() * 0.01) as f32;
            }
        });
    out
}

// ---------------------------------------------------------------------------
// Instruction-set dispatch
// ---------------------------------------------------------------------------

/// The kernels below are compiled twice, see [`crate::isa`].
use crate::isa::Isa;

// ---------------------------------------------------------------------------
// Vector kernels on padded rows (length a multiple of LANES)
// ---------------------------------------------------------------------------

/// One 8-lane chunk of a padded row, as an array so the compiler emits whole-vector loads.
#[inline(always)]
fn lane_chunks(row: &[f32]) -> impl Iterator<Item = &[f32; LANES]> {
    row.chunks_exact(LANES).map(|c| c.try_into().unwrap())
}

#[inline(always)]
fn lane_chunks_mut(row: &mut [f32]) -> impl Iterator<Item = &mut [f32; LANES]> {
    row.chunks_exact_mut(LANES).map(|c| c.try_into().unwrap())
}

/// The two vector primitives every kernel is built from. Implemented once
/// portably and once with AVX2 intrinsics; both perform the same operations
/// in the same order (lane-wise multiply, then add; reductions via
/// [`horizontal_sum`]'s fixed pairing), so they return identical bits.
trait VectorOps {
    /// `a · b` over whole 8-lane chunks.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `y += a · x` over whole 8-lane chunks.
    fn axpy(a: f32, x: &[f32], y: &mut [f32]);
}

/// Plain Rust; the compiler vectorises it for whatever the build targets.
struct Portable;

impl VectorOps for Portable {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        for (ca, cb) in lane_chunks(a).zip(lane_chunks(b)) {
            let (va, vb) = (*ca, *cb);
            for l in 0..LANES {
                acc[l] += va[l] * vb[l];
            }
        }
        horizontal_sum(acc)
    }

    #[inline(always)]
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (cy, cx) in lane_chunks_mut(y).zip(lane_chunks(x)) {
            // Whole-chunk copies in and out: with every load before every
            // store the compiler needs no aliasing proof to use one vector op.
            let (vx, mut vy) = (*cx, *cy);
            for l in 0..LANES {
                vy[l] += a * vx[l];
            }
            *cy = vy;
        }
    }
}

/// Sum of the 8 lanes in a fixed pairwise order (halves, then quarters, then
/// the last pair — the natural vector reduction), identical in every compilation.
#[inline(always)]
fn horizontal_sum(acc: [f32; LANES]) -> f32 {
    let half = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    let quarter = [half[0] + half[2], half[1] + half[3]];
    quarter[0] + quarter[1]
}

/// AVX2 intrinsics. Only ever instantiated inside `#[target_feature(enable =
/// "avx2")]` functions that are called after `Isa::detect` found AVX2 (the
/// auto-vectoriser splits the 8-lane reduction of `Portable::dot` into 2-lane
/// pieces, hence the hand-written version).
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl VectorOps for Avx2 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see the type's documentation — AVX2 is present.
        unsafe { avx2::dot(a, b) }
    }

    #[inline(always)]
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        // SAFETY: see the type's documentation — AVX2 is present.
        unsafe { avx2::axpy(a, x, y) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / LANES * LANES;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_ps();
        let mut k = 0;
        while k < n {
            // SAFETY: k + LANES <= n <= a.len(), b.len().
            let (va, vb) = unsafe { (_mm256_loadu_ps(pa.add(k)), _mm256_loadu_ps(pb.add(k))) };
            acc = _mm256_add_ps(acc, _mm256_mul_ps(va, vb));
            k += LANES;
        }
        // Same pairing as `horizontal_sum`: (l, l+4), then (l, l+2), then (0, 1).
        let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(
            quarter,
            _mm_shuffle_ps::<0b01>(quarter, quarter),
        ))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len()) / LANES * LANES;
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let va = _mm256_set1_ps(a);
        let mut k = 0;
        while k < n {
            // SAFETY: k + LANES <= n <= x.len(), y.len().
            unsafe {
                let updated = _mm256_add_ps(
                    _mm256_loadu_ps(py.add(k)),
                    _mm256_mul_ps(va, _mm256_loadu_ps(px.add(k))),
                );
                _mm256_storeu_ps(py.add(k), updated);
            }
            k += LANES;
        }
    }
}

/// Asks the CPU to start loading a factor row that will be needed a few
/// stored entries later: the rows of a user's items are scattered over a
/// matrix much larger than L2, and waiting for each miss dominates otherwise.
#[inline(always)]
fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = row.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(row);
        let mut offset = 0;
        while offset < bytes {
            // SAFETY: prefetching is only a hint and never faults; the
            // addresses lie inside `row` anyway.
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset))
            };
            offset += 64;
        }
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(bytes - 1))
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// How many stored entries ahead [`prefetch_row`] is issued.
const PREFETCH_DISTANCE: usize = 6;

/// `out = (G + λI) v` for a symmetric `stride × stride` Gram matrix whose rows
/// beyond `factors` are zero (so they are skipped).
#[inline(always)]
fn gram_matvec<K: VectorOps>(
    gram: &[f32],
    v: &[f32],
    out: &mut [f32],
    factors: usize,
    stride: usize,
    regularization: f32,
) {
    for (o, &vi) in out.iter_mut().zip(v) {
        *o = regularization * vi;
    }
    // G symmetric: G v = Σ_j v_j · G[j, :], a sequence of row axpys that
    // vectorise along the row with no horizontal sums.
    for (j, &vj) in v[..factors].iter().enumerate() {
        K::axpy(vj, &gram[j * stride..(j + 1) * stride], out);
    }
}

// ---------------------------------------------------------------------------
// YᵀY
// ---------------------------------------------------------------------------

/// Rows per partial Gram sum. Fixed (not derived from the thread count) so
/// the reduction order, hence the result, is the same for any pool size.
const GRAM_CHUNK_ROWS: usize = 2048;

/// `YᵀY` of padded rows as a `stride × stride` matrix (zero outside the
/// leading `factors × factors` block).
fn gram(rows: &[f32], factors: usize, stride: usize, isa: Isa) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = rows
        .par_chunks(GRAM_CHUNK_ROWS * stride)
        .map(|chunk| {
            let mut partial = vec![0f32; stride * stride];
            match isa {
                Isa::Portable => gram_accumulate_portable(chunk, &mut partial, factors, stride),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
                Isa::Avx2 => unsafe { gram_accumulate_avx2(chunk, &mut partial, factors, stride) },
            }
            partial
        })
        .collect();
    let mut total = vec![0f32; stride * stride];
    for partial in &partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    total
}

fn gram_accumulate_portable(rows: &[f32], out: &mut [f32], factors: usize, stride: usize) {
    gram_accumulate::<Portable>(rows, out, factors, stride)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gram_accumulate_avx2(rows: &[f32], out: &mut [f32], factors: usize, stride: usize) {
    gram_accumulate::<Avx2>(rows, out, factors, stride)
}

/// `out += Σ_rows y yᵀ`, four rows at a time so each Gram row is loaded and
/// stored once per four rank-one updates.
#[inline(always)]
fn gram_accumulate<K: VectorOps>(rows: &[f32], out: &mut [f32], factors: usize, stride: usize) {
    let mut quads = rows.chunks_exact(4 * stride);
    for quad in &mut quads {
        let (y0, rest) = quad.split_at(stride);
        let (y1, rest) = rest.split_at(stride);
        let (y2, y3) = rest.split_at(stride);
        for j in 0..factors {
            let (a0, a1, a2, a3) = (y0[j], y1[j], y2[j], y3[j]);
            let g_row = &mut out[j * stride..(j + 1) * stride];
            for c in 0..stride / LANES {
                let range = c * LANES..(c + 1) * LANES;
                let (c0, c1, c2, c3) = (
                    &y0[range.clone()],
                    &y1[range.clone()],
                    &y2[range.clone()],
                    &y3[range.clone()],
                );
                let g = &mut g_row[range];
                for l in 0..LANES {
                    g[l] += (a0 * c0[l] + a1 * c1[l]) + (a2 * c2[l] + a3 * c3[l]);
                }
            }
        }
    }
    for y in quads.remainder().chunks_exact(stride) {
        for j in 0..factors {
            K::axpy(y[j], y, &mut out[j * stride..(j + 1) * stride]);
        }
    }
}

// ---------------------------------------------------------------------------
// Per-row conjugate gradient
// ---------------------------------------------------------------------------

/// Everything shared by the row solves of one half-iteration.
struct RowProblem<'a> {
    /// Padded factors of the side held fixed (`Y` when solving users).
    fixed_factors: &'a [f32],
    /// `YᵀY`, unregularised, `stride × stride`.
    gram: &'a [f32],
    factors: usize,
    stride: usize,
    regularization: f32,
    alpha: f32,
    cg_steps: usize,
}

/// Per-thread CG work vectors, allocated once per rayon job rather than per row.
struct CgScratch {
    residual: Vec<f32>,
    direction: Vec<f32>,
    a_direction: Vec<f32>,
}

/// Rows per rayon task: large enough to amortise scheduling, small enough to
/// balance rows of very different lengths across two or more threads.
const SOLVE_MIN_ROWS_PER_TASK: usize = 64;

fn solve_rows(matrix: &Csr, solved: &mut [f32], problem: &RowProblem, isa: Isa) {
    let stride = problem.stride;
    solved
        .par_chunks_mut(stride)
        .enumerate()
        .with_min_len(SOLVE_MIN_ROWS_PER_TASK)
        .for_each_init(
            || CgScratch {
                residual: vec![0.0; stride],
                direction: vec![0.0; stride],
                a_direction: vec![0.0; stride],
            },
            |scratch, (row, x)| {
                let (cols, raw) = matrix.row(row);
                match isa {
                    Isa::Portable => solve_row_portable(problem, cols, raw, x, scratch),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
                    Isa::Avx2 => unsafe { solve_row_avx2(problem, cols, raw, x, scratch) },
                }
            },
        );
}

fn solve_row_portable(
    problem: &RowProblem,
    cols: &[u32],
    raw: &[f32],
    x: &mut [f32],
    scratch: &mut CgScratch,
) {
    solve_row::<Portable>(problem, cols, raw, x, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn solve_row_avx2(
    problem: &RowProblem,
    cols: &[u32],
    raw: &[f32],
    x: &mut [f32],
    scratch: &mut CgScratch,
) {
    solve_row::<Avx2>(problem, cols, raw, x, scratch)
}

/// Improves `x` (one padded factor row, the previous solution) towards the
/// solution of `(YᵀY + Yᵀ(C − I)Y + λI) x = YᵀCp` with `cg_steps` CG steps.
/// `A·v` is applied as `(YᵀY + λI)v + Σ_i (c_i − 1)(y_i·v) y_i` over the row's
/// stored entries only, never forming `A`.
#[inline(always)]
fn solve_row<K: VectorOps>(
    problem: &RowProblem,
    cols: &[u32],
    raw: &[f32],
    x: &mut [f32],
    scratch: &mut CgScratch,
) {
    if cols.is_empty() {
        // A = YᵀY + λI, b = 0: x = 0 solves it (and is what implicit does).
        x.fill(0.0);
        return;
    }
    let stride = problem.stride;
    let y = problem.fixed_factors;
    let alpha = problem.alpha;
    let CgScratch {
        residual,
        direction,
        a_direction,
    } = scratch;

    // residual = b − A x = Σ_i c_i p_i y_i − (YᵀY + λI) x − Σ_i (c_i − 1)(y_i·x) y_i
    gram_matvec::<K>(
        problem.gram,
        x,
        residual,
        problem.factors,
        stride,
        problem.regularization,
    );
    for v in residual.iter_mut() {
        *v = -*v;
    }
    // First touch of this row's factor rows: prefetch ahead (later passes hit cache).
    for &i in &cols[..cols.len().min(PREFETCH_DISTANCE)] {
        prefetch_row(&y[i as usize * stride..(i as usize + 1) * stride]);
    }
    for (k, (&i, &r)) in cols.iter().zip(raw).enumerate() {
        if let Some(&ahead) = cols.get(k + PREFETCH_DISTANCE) {
            prefetch_row(&y[ahead as usize * stride..(ahead as usize + 1) * stride]);
        }
        let y_i = &y[i as usize * stride..(i as usize + 1) * stride];
        let confidence_minus_one = alpha * r;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
        let coefficient =
            preference * (1.0 + confidence_minus_one) - confidence_minus_one * K::dot(y_i, x);
        K::axpy(coefficient, y_i, residual);
    }

    direction.copy_from_slice(residual);
    let mut residual_norm2 = K::dot(residual, residual);
    if residual_norm2 < 1e-20 {
        return;
    }
    for _ in 0..problem.cg_steps {
        // a_direction = A · direction
        gram_matvec::<K>(
            problem.gram,
            direction,
            a_direction,
            problem.factors,
            stride,
            problem.regularization,
        );
        for (&i, &r) in cols.iter().zip(raw) {
            let confidence_minus_one = alpha * r;
            if confidence_minus_one != 0.0 {
                let y_i = &y[i as usize * stride..(i as usize + 1) * stride];
                K::axpy(
                    confidence_minus_one * K::dot(y_i, direction),
                    y_i,
                    a_direction,
                );
            }
        }
        let curvature = K::dot(direction, a_direction);
        // Guards the division: only a singular A (λ = 0) or an overflow gets here.
        if !(curvature > 0.0 && curvature.is_finite()) {
            break;
        }
        let step = residual_norm2 / curvature;
        K::axpy(step, direction, x);
        K::axpy(-step, a_direction, residual);
        let new_norm2 = K::dot(residual, residual);
        if new_norm2 < 1e-20 {
            break;
        }
        let beta = new_norm2 / residual_norm2;
        for (d, &r) in direction.iter_mut().zip(residual.iter()) {
            *d = r + beta * *d;
        }
        residual_norm2 = new_norm2;
    }
}

// ---------------------------------------------------------------------------
// Loss
// ---------------------------------------------------------------------------

/// Rows per partial loss sum; fixed for a thread-count-independent result.
const LOSS_CHUNK_ROWS: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn loss_padded(
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
                data_term += match isa {
                    Isa::Portable => loss_row_portable(args, cols, raw, x, &mut work),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
                    Isa::Avx2 => unsafe { loss_row_avx2(args, cols, raw, x, &mut work) },
                };
                user_norm2 += Portable::dot(x, x) as f64;
            }
            (data_term, user_norm2)
        })
        .collect();
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
    let (data_term, user_norm2) = partials
        .iter()
        .fold((0.0, 0.0), |(d, n), &(pd, pn)| (d + pd, n + pn));
    let raw_sum: f64 = user_items.values.iter().map(|&r| r as f64).sum();
    let total_confidence =
        (user_items.n_rows as f64) * (user_items.n_cols as f64) + alpha as f64 * raw_sum;
    (data_term + regularization as f64 * (user_norm2 + item_norm2)) / total_confidence
}

type LossArgs<'a> = (&'a [f32], &'a [f32], usize, usize, f32);

fn loss_row_portable(
    args: LossArgs,
    cols: &[u32],
    raw: &[f32],
    x: &[f32],
    work: &mut [f32],
) -> f64 {
    loss_row::<Portable>(args, cols, raw, x, work)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn loss_row_avx2(
    args: LossArgs,
    cols: &[u32],
    raw: &[f32],
    x: &[f32],
    work: &mut [f32],
) -> f64 {
    loss_row::<Avx2>(args, cols, raw, x, work)
}

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
    for &i in &cols[..cols.len().min(PREFETCH_DISTANCE)] {
        prefetch_row(&item_factors[i as usize * stride..(i as usize + 1) * stride]);
    }
    for (k, (&i, &r)) in cols.iter().zip(raw).enumerate() {
        if let Some(&ahead) = cols.get(k + PREFETCH_DISTANCE) {
            prefetch_row(&item_factors[ahead as usize * stride..(ahead as usize + 1) * stride]);
        }
        let y_i = &item_factors[i as usize * stride..(i as usize + 1) * stride];
        let confidence = 1.0 + alpha * r;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
        let coefficient = -2.0 * confidence * preference + (confidence - 1.0) * K::dot(y_i, x);
        K::axpy(coefficient, y_i, work);
        constant += (confidence * preference) as f64;
    }
    // work·x = xᵀYᵀYx − 2 Σ c p s + Σ (c − 1) s²
    constant + K::dot(work, x) as f64
}

// ---------------------------------------------------------------------------
// Synthetic data for benchmarks
// ---------------------------------------------------------------------------

/// A reproducible random `n_users × n_items` interaction matrix for
/// benchmarks: user `u` has `1..=2·mean_per_user − 1` interactions (uniform,
/// mean `mean_per_user`), items drawn with a popularity skew (`item =
/// ⌊n_items · U²⌋`, so low item ids are popular, like real catalogues), weights
/// uniform in 1..=10; repeated picks are summed by [`Csr::from_triplets`].
pub fn synthetic_user_items(
    n_users: usize,
    n_items: usize,
    mean_per_user: usize,
    seed: u64,
) -> Csr {
    assert!(n_users > 0 && n_items > 0 && mean_per_user > 0);
    let per_user: Vec<Vec<(u32, f32)>> = (0..n_users)
        .into_par_iter()
        .with_min_len(1024)
        .map(|u| {
            let mut rng = Rng::for_stream(seed, u as u64);
            let count = 1 + rng.below(2 * mean_per_user as u64 - 1) as usize;
            (0..count)
                .map(|_| {
                    let uniform = rng.next_f64();
                    let item = ((n_items as f64 * uniform * uniform) as usize).min(n_items - 1);
                    (item as u32, (1 + rng.below(10)) as f32)
                })
                .collect()
        })
        .collect();
    let total: usize = per_user.iter().map(Vec::len).sum();
    let (mut rows, mut cols, mut values) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    for (u, entries) in per_user.iter().enumerate() {
        for &(i, v) in entries {
            rows.push(u as u32);
            cols.push(i);
            values.push(v);
        }
    }
    Csr::from_triplets(n_users, n_items, &rows, &cols, &values)
        .expect("generated indices are in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_params(factors: usize) -> AlsParams {
        AlsParams {
            factors,
            iterations: 10,
            regularization: 0.1,
            alpha: 2.0,
            cg_steps: 3,
            seed: 7,
        }
    }

    fn random_factors(n: usize, f: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n * f).map(|_| (rng.normal() * 0.5) as f32).collect()
    }

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
    fn default_params() {
        let p = AlsParams::default();
        assert_eq!(
            (p.factors, p.iterations, p.cg_steps, p.seed),
            (50, 15, 3, 42)
        );
        assert_eq!((p.regularization, p.alpha), (0.1, 1.0));
    }

    #[test]
    fn invalid_params_are_rejected_with_clear_errors() {
        let m = synthetic_user_items(20, 10, 3, 1);
        let cases: Vec<(AlsParams, &str)> = vec![
            (
                AlsParams {
                    factors: 0,
                    ..Default::default()
                },
                "factors",
            ),
            (
                AlsParams {
                    iterations: 0,
                    ..Default::default()
                },
                "iterations",
            ),
            (
                AlsParams {
                    cg_steps: 0,
                    ..Default::default()
                },
                "cg_steps",
            ),
            (
                AlsParams {
                    regularization: -0.1,
                    ..Default::default()
                },
                "regularization",
            ),
            (
                AlsParams {
                    regularization: f32::NAN,
                    ..Default::default()
                },
                "regularization",
            ),
            (
                AlsParams {
                    alpha: -1.0,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                AlsParams {
                    alpha: f32::INFINITY,
                    ..Default::default()
                },
                "alpha",
            ),
        ];
        for (params, needle) in cases {
            let err = train(&m, &params).unwrap_err().to_string();
            assert!(err.contains(needle), "{params:?}: {err}");
        }
    }

    #[test]
    fn invalid_matrices_are_rejected() {
        let p = small_params(4);
        let neg = Csr::from_triplets(2, 2, &[0, 1], &[0, 1], &[1.0, -1.0]).unwrap();
        assert!(train(&neg, &p).unwrap_err().to_string().contains(">= 0"));
        let nan = Csr::from_triplets(2, 2, &[0], &[0], &[f32::NAN]).unwrap();
        assert!(train(&nan, &p).unwrap_err().to_string().contains("finite"));
        let inf = Csr::from_triplets(2, 2, &[0], &[0], &[f32::INFINITY]).unwrap();
        assert!(train(&inf, &p).is_err());
        for empty in [
            Csr::from_triplets(0, 0, &[], &[], &[]).unwrap(),
            Csr::from_triplets(3, 3, &[], &[], &[]).unwrap(),
        ] {
            assert!(train(&empty, &p)
                .unwrap_err()
                .to_string()
                .contains("non-empty"));
        }
        let mut broken = Csr::from_triplets(2, 2, &[0], &[0], &[1.0]).unwrap();
        broken.indices[0] = 7;
        assert!(train(&broken, &p)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn cg_converges_to_the_exact_solution() {
        // Solve the user half once with many CG steps from zero and compare
        // each row to the dense Cholesky solution.
        let (n_users, n_items, f) = (40, 25, 6);
        let m = synthetic_user_items(n_users, n_items, 5, 3);
        let item_factors = random_factors(n_items, f, 11);
        let (reg, alpha) = (0.3f32, 2.0f32);
        let stride = padded_stride(f);
        let fixed = pad_rows(&item_factors, f, stride);
        for isa in [Isa::Portable, Isa::detect()] {
            let item_gram = gram(&fixed, f, stride, isa);
            let problem = RowProblem {
                fixed_factors: &fixed,
                gram: &item_gram,
                factors: f,
                stride,
                regularization: reg,
                alpha,
                cg_steps: 4 * f,
            };
            let mut solved = vec![0f32; n_users * stride];
            solve_rows(&m, &mut solved, &problem, isa);
            for u in 0..n_users {
                let (cols, vals) = m.row(u);
                let exact = solve_exact(&item_factors, f, cols, vals, reg, alpha).unwrap();
                let cg = &solved[u * stride..u * stride + f];
                let scale = exact.iter().map(|v| v.abs()).fold(1e-3, f32::max);
                for k in 0..f {
                    assert!(
                        (cg[k] - exact[k]).abs() <= 1e-3 * scale,
                        "user {u} factor {k}: cg {} vs exact {}",
                        cg[k],
                        exact[k]
                    );
                }
                assert!(
                    solved[u * stride + f..(u + 1) * stride]
                        .iter()
                        .all(|&v| v == 0.0),
                    "padding stays zero"
                );
            }
        }
    }

    #[test]
    fn three_cg_steps_from_a_warm_start_get_close() {
        // After training converges, one more half-iteration with 3 steps
        // should already be near the exact per-user solution.
        let m = synthetic_user_items(60, 30, 6, 5);
        let params = AlsParams {
            factors: 8,
            iterations: 15,
            ..small_params(8)
        };
        let model = train(&m, &params).unwrap();
        let mut worst = 0f32;
        for u in 0..m.n_rows {
            let (cols, vals) = m.row(u);
            let exact = solve_exact(
                &model.item_factors,
                8,
                cols,
                vals,
                params.regularization,
                params.alpha,
            )
            .unwrap();
            let norm = exact.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-3);
            let diff = (0..8)
                .map(|k| (exact[k] - model.user_factors[u * 8 + k]).powi(2))
                .sum::<f32>()
                .sqrt();
            worst = worst.max(diff / norm);
        }
        assert!(
            worst < 0.05,
            "worst relative distance to exact solution {worst}"
        );
    }

    #[test]
    fn solve_exact_on_a_hand_example() {
        // f = 1, items y = [1, 2], user has item 1 with r = 1, alpha = 1:
        // A = YᵀY + (c−1)·2·2 + λ = (1 + 4) + 4 + 1 = 10, b = c·p·2 = 2·2 = 4, x = 0.4.
        let x = solve_exact(&[1.0, 2.0], 1, &[1], &[1.0], 1.0, 1.0).unwrap();
        assert!((x[0] - 0.4).abs() < 1e-7);
        // Singular without regularisation: Y = 0.
        assert!(solve_exact(&[0.0, 0.0], 1, &[], &[], 0.0, 1.0).is_err());
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

    #[test]
    fn training_reduces_loss_and_trainer_loss_matches_public_loss() {
        let m = synthetic_user_items(300, 120, 8, 21);
        let params = small_params(10);
        let model = train(&m, &params).unwrap();
        let l = &model.loss_per_iteration;
        assert_eq!(l.len(), params.iterations);
        assert!(l.iter().all(|v| v.is_finite()));
        assert!(l[l.len() - 1] < l[0], "{l:?}");
        assert!(l[l.len() - 1] < 0.8 * l[0], "{l:?}");
        let recomputed = loss(&m, &model, params.regularization, params.alpha);
        assert!(
            (recomputed - l[l.len() - 1]).abs() <= 1e-9 * recomputed,
            "{recomputed} vs {}",
            l[l.len() - 1]
        );
    }

    #[test]
    fn callback_sees_every_iteration() {
        let m = synthetic_user_items(50, 20, 4, 2);
        let mut seen = vec![];
        let model =
            train_with_callback(&m, &small_params(4), |it, loss| seen.push((it, loss))).unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            model.loss_per_iteration
        );
    }

    #[test]
    fn bit_identical_across_thread_counts_and_instruction_sets() {
        let m = synthetic_user_items(3000, 700, 6, 4);
        let params = AlsParams {
            iterations: 3,
            ..small_params(13)
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train(&m, &params).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one, two);
        assert_eq!(one, run(3));
        // Same seed, same model; another seed, another model.
        assert_eq!(one, train(&m, &params).unwrap());
        assert_ne!(
            one.user_factors,
            train(
                &m,
                &AlsParams {
                    seed: 8,
                    ..params.clone()
                }
            )
            .unwrap()
            .user_factors
        );

        // The portable compilation of the kernels gives the same bits as the dispatched one.
        let mut portable = AlsTrainer::new(&m, &params).unwrap();
        portable.isa = Isa::Portable;
        let mut losses = vec![];
        for _ in 0..params.iterations {
            portable.step();
            losses.push(portable.loss());
        }
        assert_eq!(portable.into_model(losses), one);
    }

    #[test]
    fn rows_without_interactions_get_zero_factors() {
        // Users 1 and 3, items 2 and 4 have no interactions.
        let m = Csr::from_triplets(
            4,
            5,
            &[0, 0, 2, 2, 0],
            &[0, 1, 1, 3, 3],
            &[1.0, 3.0, 2.0, 1.0, 5.0],
        )
        .unwrap();
        let f = 3;
        let model = train(
            &m,
            &AlsParams {
                factors: f,
                ..small_params(f)
            },
        )
        .unwrap();
        assert!(model
            .user_factors
            .iter()
            .chain(&model.item_factors)
            .all(|v| v.is_finite()));
        for u in [1, 3] {
            assert!(model.user_factors[u * f..(u + 1) * f]
                .iter()
                .all(|&v| v == 0.0));
        }
        for i in [2, 4] {
            assert!(model.item_factors[i * f..(i + 1) * f]
                .iter()
                .all(|&v| v == 0.0));
        }
        assert!(model.loss_per_iteration.iter().all(|l| l.is_finite()));
    }

    #[test]
    fn zero_regularization_zero_alpha_and_explicit_zeros_stay_finite() {
        let m =
            Csr::from_triplets(3, 3, &[0, 1, 2, 2], &[0, 1, 2, 0], &[1.0, 0.0, 4.0, 2.0]).unwrap();
        for (reg, alpha) in [(0.0, 1.0), (0.1, 0.0), (0.0, 0.0)] {
            let p = AlsParams {
                regularization: reg,
                alpha,
                ..small_params(4)
            };
            let model = train(&m, &p).unwrap();
            assert!(
                model
                    .user_factors
                    .iter()
                    .chain(&model.item_factors)
                    .all(|v| v.is_finite()),
                "{reg} {alpha}"
            );
            assert!(model.loss_per_iteration.iter().all(|l| l.is_finite()));
        }
    }

    #[test]
    fn learns_block_structure() {
        // Users 0..20 interact with items 0..10, users 20..40 with items 10..20
        // (each user with 6 random items of its block).
        let mut rng = Rng::new(3);
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 10 };
            for _ in 0..6 {
                rows.push(u);
                cols.push(base + rng.below(10) as u32);
                vals.push(1.0);
            }
        }
        let m = Csr::from_triplets(40, 20, &rows, &cols, &vals).unwrap();
        let f = 4;
        let model = train(
            &m,
            &AlsParams {
                factors: f,
                iterations: 15,
                ..small_params(f)
            },
        )
        .unwrap();
        let score = |u: usize, i: usize| -> f32 {
            (0..f)
                .map(|k| model.user_factors[u * f + k] * model.item_factors[i * f + k])
                .sum()
        };
        for u in 0..40 {
            let own: f32 = (0..20)
                .filter(|&i| (i < 10) == (u < 20))
                .map(|i| score(u, i))
                .sum::<f32>()
                / 10.0;
            let other: f32 = (0..20)
                .filter(|&i| (i < 10) != (u < 20))
                .map(|i| score(u, i))
                .sum::<f32>()
                / 10.0;
            assert!(
                own > other + 0.3,
                "user {u}: own block {own}, other block {other}"
            );
        }
    }

    #[test]
    fn synthetic_matrix_is_reproducible_and_skewed() {
        let a = synthetic_user_items(1000, 500, 10, 1);
        assert_eq!(a, synthetic_user_items(1000, 500, 10, 1));
        a.validate().unwrap();
        let t = a.transpose();
        let head = t.indptr[50];
        assert!(
            head > a.nnz() / 5,
            "first 10% of items should be popular: {head} of {}",
            a.nnz()
        );
    }

    /// Times ALS iterations on the 100K × 50K benchmark matrix (~2M stored
    /// entries) and writes it as `user,item,value` CSV for
    /// `benches/implicit_compare.py`, which times `implicit` on the same data:
    ///
    /// ```text
    /// cargo test --release --lib als::solver::tests::time_iterations_on_benchmark_matrix -- --ignored --nocapture
    /// /tmp/implicit-venv/bin/python benches/implicit_compare.py /tmp/ecoreco_als_bench.csv
    /// ```
    /// Environment: `ECORECO_ALS_CSV` (output path), `ECORECO_ALS_THREADS` (default 2).
    #[test]
    #[ignore]
    fn time_iterations_on_benchmark_matrix() {
        use std::io::Write;
        let path = std::env::var("ECORECO_ALS_CSV")
            .unwrap_or_else(|_| "/tmp/ecoreco_als_bench.csv".into());
        let threads: usize = std::env::var("ECORECO_ALS_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(2);
        let m = synthetic_user_items(100_000, 50_000, 20, 2024);
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            writeln!(out, "user,item,value").unwrap();
            for u in 0..m.n_rows {
                let (cols, vals) = m.row(u);
                for (&i, &v) in cols.iter().zip(vals) {
                    writeln!(out, "{u},{i},{v}").unwrap();
                }
            }
        }
        println!(
            "matrix {} users × {} items, nnz {}, written to {path}",
            m.n_rows,
            m.n_cols,
            m.nnz()
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let params = AlsParams {
                factors: 50,
                regularization: 0.1,
                alpha: 1.0,
                cg_steps: 3,
                ..Default::default()
            };
            let mut trainer = AlsTrainer::new(&m, &params).unwrap();
            println!("kernels: {:?}, threads: {threads}", trainer.isa);
            let iterations = 8;
            let mut step_seconds = vec![];
            let mut loss_seconds = vec![];
            for it in 0..iterations {
                let t = std::time::Instant::now();
                trainer.step();
                step_seconds.push(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                let l = trainer.loss();
                loss_seconds.push(t.elapsed().as_secs_f64());
                println!(
                    "iteration {it}: {:.4} s (+ loss {:.4} s), loss {l:.6}",
                    step_seconds[it], loss_seconds[it]
                );
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "ecoreco ALS: median {:.4} s per iteration (loss evaluation adds {:.4} s)",
                median(&mut step_seconds),
                median(&mut loss_seconds)
            );
        });
    }
}
