//! The dense kernels of the fold-in's direct and Woodbury solves: symmetric
//! products, dot products and a Cholesky in independent lanes, and rank-one
//! updates of a lower triangle. Plain slices of `f64`; nothing here knows
//! users or products.

use anyhow::{ensure, Result};

/// `out = m v` for a symmetric `m` (row-major, `v.len()` square), summed
/// column by column (`out += v_c · row_c`) so the lanes are independent.
#[inline(always)]
pub(super) fn symmetric_times(m: &[f64], v: &[f64], out: &mut [f64]) {
    let f = v.len();
    out.iter_mut().for_each(|o| *o = 0.0);
    for (c, &vc) in v.iter().enumerate() {
        for (o, &a) in out.iter_mut().zip(&m[c * f..(c + 1) * f]) {
            *o += vc * a;
        }
    }
}

/// `a · b` with four independent sums (in vector lanes where the caller
/// is compiled for them).
#[inline(always)]
fn dot_in_lanes(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0f64; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            sums[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// [`cholesky`](super::cholesky) with its dot products in [`dot_in_lanes`] (rounded
/// differently, so kept for the direct system formed afresh).
#[inline(always)]
pub(super) fn cholesky_in_lanes(a: &mut [f64], n: usize) -> Result<()> {
    for j in 0..n {
        let (before, from_j) = a.split_at_mut((j + 1) * n);
        let row_j = &mut before[j * n..];
        let diag = row_j[j] - dot_in_lanes(&row_j[..j], &row_j[..j]);
        ensure!(
            diag.is_finite() && diag > 0.0,
            "the normal equations are not positive definite (pivot {j} is {diag})"
        );
        let diag = diag.sqrt();
        row_j[j] = diag;
        let row_j = &before[j * n..j * n + j];
        for row_i in from_j.chunks_exact_mut(n) {
            row_i[j] = (row_i[j] - dot_in_lanes(&row_i[..j], row_j)) / diag;
        }
    }
    Ok(())
}

/// Columns of a tile of [`add_outers_lower`] (rows padded to a multiple).
pub(super) const OUTER_COLUMNS: usize = 8;
/// Rows of a tile of [`add_outers_lower`].
pub(super) const OUTER_ROWS: usize = 4;
/// Products summed per pass over the tiles: their rows stay in the first
/// level cache (2 × 56 doubles each at 50 factors).
pub(super) const OUTER_PRODUCTS: usize = 32;

/// `m += Σ_j dy_j y_jᵀ` on the lower triangle of the row-major `f × f`
/// `m`, the rows `dy_j = d_j y_j` and `y_j` given `stride` apart (padded
/// with zeros). Every entry is summed as `m += dy_r · y_c` product after
/// product in their order, the rounding of one rank-one update after
/// another, but a tile of 4 × 8 entries is kept in registers across
/// products instead of each update loading and storing the matrix.
#[inline(always)]
pub(super) fn add_outers_lower(
    m: &mut [f64],
    f: usize,
    dy: &[f64],
    yd: &[f64],
    stride: usize,
    padded: &mut Vec<f64>,
) {
    let (rows, cols) = (OUTER_ROWS, OUTER_COLUMNS);
    // Only the lower triangle's entries are read back; the upper ones of
    // a tile are summed along (from `m`'s, so they stay bounded), the
    // padding's stay 0 (the rows' padding is 0).
    padded.resize(stride * stride, 0.0);
    for r in 0..f {
        padded[r * stride..r * stride + f].copy_from_slice(&m[r * f..(r + 1) * f]);
    }
    let n = dy.len() / stride;
    let mut first = 0;
    while first < n {
        let last = (first + OUTER_PRODUCTS).min(n);
        let (dy, yd) = (
            &dy[first * stride..last * stride],
            &yd[first * stride..last * stride],
        );
        for r0 in (0..f).step_by(rows) {
            for c0 in (0..=(r0 + rows - 1).min(f - 1)).step_by(cols) {
                let mut acc = [[0f64; OUTER_COLUMNS]; OUTER_ROWS];
                for (r, a) in acc.iter_mut().enumerate() {
                    let at = (r0 + r) * stride + c0;
                    a.copy_from_slice(&padded[at..at + cols]);
                }
                for (d, y) in dy.chunks_exact(stride).zip(yd.chunks_exact(stride)) {
                    let d: &[f64; OUTER_ROWS] = d[r0..].first_chunk().unwrap_or(&[0.0; OUTER_ROWS]);
                    let y: &[f64; OUTER_COLUMNS] =
                        y[c0..].first_chunk().unwrap_or(&[0.0; OUTER_COLUMNS]);
                    for (a, &dr) in acc.iter_mut().zip(d) {
                        for (v, &yc) in a.iter_mut().zip(y) {
                            *v += dr * yc;
                        }
                    }
                }
                for (r, a) in acc.iter().enumerate() {
                    let at = (r0 + r) * stride + c0;
                    padded[at..at + cols].copy_from_slice(a);
                }
            }
        }
        first = last;
    }
    for r in 0..f {
        m[r * f..r * f + r + 1].copy_from_slice(&padded[r * stride..r * stride + r + 1]);
    }
}

/// `m −= s u uᵀ`, row by row.
#[inline(always)]
pub(super) fn subtract_outer(m: &mut [f64], u: &[f64], s: f64) {
    let f = u.len();
    for (row, &ur) in m.chunks_exact_mut(f).zip(u) {
        let su = s * ur;
        for (a, &uc) in row.iter_mut().zip(u) {
            *a -= su * uc;
        }
    }
}
