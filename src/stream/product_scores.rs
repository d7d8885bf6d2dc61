//! The product-by-product scores a folded-in user's collaborative top is
//! summed from (see [`super::score`]): `z_j · y_i` for every pair of
//! products, kept in descending order of `‖y_i‖`, in half precision where
//! the CPU converts it; and the bound on a single-precision sum's error
//! ([`gamma`]) that the scorer and the anchor share. Below the fold-in,
//! which keeps a table per model, and the scorer, which reads it.

use crate::isa::{dispatch, Isa};
use crate::recommend::topk::norm_rounded_up;
use anyhow::Result;
use rayon::prelude::*;

/// Largest catalogue whose product-by-product scores are kept: `n²`
/// half-precision values (single where the CPU lacks F16C), 128 MB at
/// this size.
pub const MAX_SCORED_PRODUCTS: usize = 8192;

/// Products kept per row as the first hints of a user with only that
/// product and no previous top (a new user's first event): the row's best,
/// which are that user's best when its weight is positive, so the bar is
/// high from the start instead of every slot reaching it.
const ROW_HINTS: usize = 64;

/// Slots summed before the bar is raised and the prefix cut again.
pub(super) const SLOTS_PER_CHUNK: usize = 256;

/// The stored scores: each row is read in full for every event of a user
/// with that product, from memory (the table is larger than the caches),
/// so half precision halves the event's main cost. Its rounding widens
/// the bound (the scorer's `top_k`), never the result.
#[derive(Debug)]
pub(super) enum Rows {
    /// `σ · (z_j · y_i)` rounded to half precision; `σ` is a power of two
    /// (exact to apply and undo) that puts the largest score near 2¹⁵, so
    /// that small scores stay normal numbers.
    Half {
        values: Vec<u16>,
        sigma: f32,
    },
    Single(Vec<f32>),
}

/// `z_j · y_i` for every pair of products, each row in descending order of
/// `‖y_i‖` (slot `s` holds product `order[s]`).
#[derive(Debug)]
pub struct ProductScores {
    pub(super) n: usize,
    /// Row `j` (a product index), slot `s`: `z_j · y_order[s]`.
    pub(super) rows: Rows,
    pub(super) order: Vec<u32>,
    /// `‖y‖` per slot, rounded up: descending.
    pub(super) norms: Vec<f32>,
    /// `‖z_j‖` per product, rounded up.
    pub(super) z_norms: Vec<f32>,
    /// Per product `j`, the `min(ROW_HINTS, n)` products of largest
    /// `z_j · y_i` (single precision), best first.
    pub(super) row_hints: Vec<u32>,
}

/// The power of two `σ` of [`Rows::Half`] for scores of at most `largest`
/// in magnitude (`σ · largest ≤ 2¹⁵ < 65504`, the largest half value),
/// kept within `2^±60` so that `β / σ` stays a normal float.
fn half_sigma(largest: f64) -> f32 {
    if !(largest > 0.0 && largest.is_finite()) {
        return 1.0;
    }
    let exponent = (2f64.powi(15) / largest).log2().floor().clamp(-60.0, 60.0);
    2f64.powi(exponent as i32) as f32
}

impl ProductScores {
    /// From `z` and the product factors `y` (both `n × f`, row-major),
    /// and the products in descending order of `‖y‖` (rounded up), ties by
    /// index ([`FoldIn::by_norm`]).
    pub fn new(z: &[f32], y: &[f32], f: usize, by_norm: &[(u32, f32)]) -> Result<ProductScores> {
        Self::build(z, y, f, by_norm, crate::isa::half_precision_scan())
    }

    /// [`new`](Self::new), in half precision only if `half` (which needs
    /// AVX2 and F16C).
    pub(super) fn build(
        z: &[f32],
        y: &[f32],
        f: usize,
        by_norm: &[(u32, f32)],
        half: bool,
    ) -> Result<ProductScores> {
        let n = y.len() / f;
        let z_norms: Vec<f32> = z.chunks_exact(f).map(norm_rounded_up).collect();
        let order: Vec<u32> = by_norm.iter().map(|t| t.0).collect();
        let row_of = |zj: &[f32], row: &mut [f32]| {
            for (score, &i) in row.iter_mut().zip(&order) {
                let yi = &y[i as usize * f..(i as usize + 1) * f];
                let mut s = 0f32;
                for (a, b) in zj.iter().zip(yi) {
                    s += a * b;
                }
                *score = s;
            }
        };
        let hints_per_row = ROW_HINTS.min(n);
        let hints_of = |row: &[f32], out: &mut [u32]| {
            // Fewer when a row has NaN: the rest stay product 0, a hint
            // like any other (hints only set the bar).
            for (hint, (slot, _)) in
                out.iter_mut()
                    .zip(crate::recommend::topk::top_k(row, hints_per_row, |_| false))
            {
                *hint = order[slot as usize];
            }
        };
        let mut row_hints = vec![0u32; n * hints_per_row];
        let too_large = || {
            anyhow::anyhow!("not enough memory for the product-by-product scores of {n} products")
        };
        // |z_j · y_i| ≤ ‖z_j‖ ‖y_i‖ (1 + γ_f): the scale without a first pass.
        let largest = z_norms.iter().fold(0f32, |m, &v| m.max(v)) as f64
            * by_norm.first().map_or(0.0, |t| t.1) as f64
            * (1.0 + gamma(f));
        let rows = if half && largest.is_finite() {
            let sigma = half_sigma(largest);
            let mut values: Vec<u16> = Vec::new();
            values.try_reserve_exact(n * n).map_err(|_| too_large())?;
            // Rows of it are read at random, one per product of the user.
            crate::pages::advise_huge_pages(values.spare_capacity_mut());
            values.resize(n * n, 0);
            values
                .par_chunks_mut(n.max(1))
                .zip(row_hints.par_chunks_mut(hints_per_row.max(1)))
                .zip(z.par_chunks(f))
                .for_each_init(
                    || vec![0f32; n],
                    |single, ((row, hints), zj)| {
                        row_of(zj, single);
                        hints_of(single, hints);
                        for s in single.iter_mut() {
                            *s *= sigma;
                        }
                        // SAFETY: half_precision_scan() checked F16C.
                        unsafe { to_half(single, row) };
                    },
                );
            Rows::Half { values, sigma }
        } else {
            let mut values: Vec<f32> = Vec::new();
            values.try_reserve_exact(n * n).map_err(|_| too_large())?;
            crate::pages::advise_huge_pages(values.spare_capacity_mut());
            values.resize(n * n, 0.0);
            values
                .par_chunks_mut(n.max(1))
                .zip(row_hints.par_chunks_mut(hints_per_row.max(1)))
                .zip(z.par_chunks(f))
                .for_each(|((row, hints), zj)| {
                    row_of(zj, row);
                    hints_of(row, hints);
                });
            Rows::Single(values)
        };
        let norms = by_norm.iter().map(|t| t.1).collect();
        Ok(ProductScores {
            n,
            rows,
            order,
            norms,
            z_norms,
            row_hints,
        })
    }

    /// The products of largest `z_j · y_i`, best first (`ROW_HINTS` of
    /// them, or all when fewer).
    pub(super) fn row_hints(&self, j: u32) -> &[u32] {
        let per_row = ROW_HINTS.min(self.n);
        &self.row_hints[j as usize * per_row..(j as usize + 1) * per_row]
    }

    /// Bytes kept for `n` products (0 above [`MAX_SCORED_PRODUCTS`]).
    pub fn bytes(n: usize) -> u64 {
        let value = if crate::isa::half_precision_scan() {
            2
        } else {
            4
        };
        if n <= MAX_SCORED_PRODUCTS {
            (n * n * value + n * 12 + n * ROW_HINTS.min(n) * 4) as u64
        } else {
            0
        }
    }

    /// Asks the memory for the first chunk of the rows of `items`.
    pub(super) fn prefetch(&self, items: &[u32]) {
        #[cfg(target_arch = "x86_64")]
        if let Rows::Half { values, .. } = &self.rows {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let len = SLOTS_PER_CHUNK.min(self.n);
            for &j in items {
                let row = &values[j as usize * self.n..j as usize * self.n + len];
                for line in row.chunks(32) {
                    // SAFETY: a prefetch only hints; the address is in the table.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
                }
            }
        }
    }

    /// `scores[s] = Σ_j b_j · row_{items_j}[from + s]` over
    /// `scores.len()` slots, `j` in order (the rounding the bound counts),
    /// and into `out` the slots (from 0) whose upper bound reaches the bar
    /// ([`reaching_slots`]; in half precision tested while the sums are
    /// still in registers).
    pub(super) fn sum_rows(
        &self,
        items: &[u32],
        b: &[f32],
        from: usize,
        scores: &mut [f32],
        bar: &Bar,
        out: &mut Vec<u32>,
    ) {
        let n = self.n;
        let norms = &self.norms[from..from + scores.len()];
        match &self.rows {
            Rows::Half { values, .. } => {
                // SAFETY: the table is only built in half precision when
                // half_precision_scan() found AVX2 and F16C.
                unsafe { sum_half_rows(values, n, items, b, from, scores, norms, bar, out) }
            }
            Rows::Single(values) => {
                let isa = Isa::detect();
                scores.fill(0.0);
                for (&j, &b) in items.iter().zip(b) {
                    let row = &values[j as usize * n + from..j as usize * n + from + scores.len()];
                    dispatch!(isa, (scores: &mut [f32] = scores, row: &[f32] = row, b: f32 = b) {
                        axpy(scores, row, b)
                    });
                }
                reaching_slots(isa, scores, norms, bar, out);
            }
        }
    }
}

/// The test a slot's sum `g` must pass to be looked at:
/// `g + (‖y‖·pn + ab) ≥ t`.
pub(super) struct Bar {
    pub(super) pn: f32,
    pub(super) ab: f32,
    pub(super) t: f32,
}

impl Bar {
    /// The slot's error bound `‖y‖·pn + ab`.
    #[inline(always)]
    pub(super) fn err(&self, norm: f32) -> f32 {
        norm * self.pn + self.ab
    }

    #[inline(always)]
    pub(super) fn reaches(&self, g: f32, norm: f32) -> bool {
        g + self.err(norm) >= self.t
    }
}

/// The lanes of the slots `first..first + 8` whose sums `g` pass
/// [`Bar::reaches`] against `norms` (from `first`), as bits: the same
/// multiply, add, add and comparison, in vector lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn reaching_mask8(g: std::arch::x86_64::__m256, norms: *const f32, bar: &Bar) -> u32 {
    use std::arch::x86_64::*;
    let err = _mm256_add_ps(
        _mm256_mul_ps(_mm256_loadu_ps(norms), _mm256_set1_ps(bar.pn)),
        _mm256_set1_ps(bar.ab),
    );
    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(
        _mm256_add_ps(g, err),
        _mm256_set1_ps(bar.t),
    )) as u32
}

/// Appends to `out` slot `first + b` for every bit `b` set in `mask`, in order.
#[inline]
fn push_bits(mut mask: u32, first: usize, out: &mut Vec<u32>) {
    while mask != 0 {
        out.push(first as u32 + mask.trailing_zeros());
        mask &= mask - 1;
    }
}

/// `out = half(values)`, rounded to nearest even.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn to_half(values: &[f32], out: &mut [u16]) {
    use std::arch::x86_64::*;
    for (chunk, half) in values.chunks(8).zip(out.chunks_mut(8)) {
        let mut lane = [0f32; 8];
        lane[..chunk.len()].copy_from_slice(chunk);
        let h: [u16; 8] = std::mem::transmute(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(
            _mm256_loadu_ps(lane.as_ptr()),
        ));
        half.copy_from_slice(&h[..half.len()]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn to_half(_: &[f32], _: &mut [u16]) {
    unreachable!("half precision is only used on x86-64")
}

/// [`ProductScores::sum_rows`] of half-precision rows (stride `n`): 32
/// slots at a time in four independent sums (one would wait on the
/// latency of each add), every row's term of a slot added in the order of
/// `items` (multiply, then add: no fused rounding).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn sum_half_rows(
    values: &[u16],
    n: usize,
    items: &[u32],
    b: &[f32],
    from: usize,
    scores: &mut [f32],
    norms: &[f32],
    bar: &Bar,
    out: &mut Vec<u32>,
) {
    use std::arch::x86_64::*;
    let len = scores.len();
    for &j in items {
        assert!((j as usize + 1) * n <= values.len() && from + len <= n);
    }
    let values = &values[from..];
    let term = |b: f32, row: *const u16| {
        _mm256_mul_ps(
            _mm256_set1_ps(b),
            _mm256_cvtph_ps(_mm_loadu_si128(row as *const __m128i)),
        )
    };
    let mut at = 0;
    while at + 32 <= len {
        // Four named sums, not an array: an array's lanes were kept on the
        // stack, and every row's add then waited on a store and a load.
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        let prefetch = at + 32 + SLOTS_PER_CHUNK <= n - from;
        for (&j, &b) in items.iter().zip(b) {
            let row = values.as_ptr().add(j as usize * n + at);
            // The row's next chunk, while this one is summed: the rows
            // come from memory, and the wait per line is what costs.
            if prefetch {
                _mm_prefetch::<_MM_HINT_T0>(row.add(SLOTS_PER_CHUNK) as *const i8);
            }
            a0 = _mm256_add_ps(a0, term(b, row));
            a1 = _mm256_add_ps(a1, term(b, row.add(8)));
            a2 = _mm256_add_ps(a2, term(b, row.add(16)));
            a3 = _mm256_add_ps(a3, term(b, row.add(24)));
        }
        let sums = scores.as_mut_ptr().add(at);
        _mm256_storeu_ps(sums, a0);
        _mm256_storeu_ps(sums.add(8), a1);
        _mm256_storeu_ps(sums.add(16), a2);
        _mm256_storeu_ps(sums.add(24), a3);
        // The 32 slots' tests as one mask, pushed (a call) only once no
        // sum is live any more.
        let norms = norms.as_ptr().add(at);
        let mask = reaching_mask8(a0, norms, bar)
            | reaching_mask8(a1, norms.add(8), bar) << 8
            | reaching_mask8(a2, norms.add(16), bar) << 16
            | reaching_mask8(a3, norms.add(24), bar) << 24;
        push_bits(mask, at, out);
        at += 32;
    }
    let tail = at;
    while at < len {
        let width = (len - at).min(8);
        let mut acc = _mm256_setzero_ps();
        for (&j, &b) in items.iter().zip(b) {
            let mut lane = [0u16; 8];
            std::ptr::copy_nonoverlapping(
                values.as_ptr().add(j as usize * n + at),
                lane.as_mut_ptr(),
                width,
            );
            acc = _mm256_add_ps(acc, term(b, lane.as_ptr()));
        }
        let sums: [f32; 8] = std::mem::transmute(acc);
        scores[at..at + width].copy_from_slice(&sums[..width]);
        at += width;
    }
    out.extend(
        (tail..len)
            .filter(|&slot| bar.reaches(scores[slot], norms[slot]))
            .map(|slot| slot as u32),
    );
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn sum_half_rows(
    _: &[u16],
    _: usize,
    _: &[u32],
    _: &[f32],
    _: usize,
    _: &mut [f32],
    _: &[f32],
    _: &Bar,
    _: &mut Vec<u32>,
) {
    unreachable!("half precision is only used on x86-64")
}

/// `scores += b · row`.
#[inline(always)]
fn axpy(scores: &mut [f32], row: &[f32], b: f32) {
    for (score, &m) in scores.iter_mut().zip(row) {
        *score += b * m;
    }
}

/// Appends to `out` every slot whose sum `g` passes [`Bar::reaches`], in
/// order, eight slots at a time: most fall short, so the test runs in
/// vector lanes and only the slots that may enter are listed.
fn reaching_slots(isa: Isa, g: &[f32], norms: &[f32], bar: &Bar, out: &mut Vec<u32>) {
    let whole = g.len() / 8 * 8;
    let vector = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            for first in (0..whole).step_by(8) {
                // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2;
                // both slices hold slots first..first + 8.
                push_bits(
                    unsafe {
                        reaching_mask8(
                            std::arch::x86_64::_mm256_loadu_ps(g.as_ptr().add(first)),
                            norms.as_ptr().add(first),
                            bar,
                        )
                    },
                    first,
                    out,
                );
            }
            whole
        }
        Isa::Portable => 0,
    };
    out.extend(
        (vector..g.len())
            .filter(|&slot| bar.reaches(g[slot], norms[slot]))
            .map(|slot| slot as u32),
    );
}

/// `γ_m = m u / (1 − m u)`, `u = 2⁻²⁴`: the relative error bound of an
/// `m`-term single-precision sum.
pub(super) fn gamma(m: usize) -> f64 {
    let u = 2f64.powi(-24);
    m as f64 * u / (1.0 - m as f64 * u)
}
