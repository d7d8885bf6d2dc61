//! The single-precision vector primitives the ALS kernels are built from,
//! on rows whose length is a multiple of [`LANES`] (zero-padded), compiled
//! once portably and once with AVX2 intrinsics (see [`crate::isa`]).

/// Width of the 8-float chunks all vector kernels work on.
pub(crate) const LANES: usize = 8;

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
pub(crate) trait VectorOps {
    /// `a · b` over whole 8-lane chunks.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `y += a · x` over whole 8-lane chunks.
    fn axpy(a: f32, x: &[f32], y: &mut [f32]);
}

/// Plain Rust; the compiler vectorises it for whatever the build targets.
pub(crate) struct Portable;

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
pub(crate) struct Avx2;

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

/// Asks the CPU to start loading a row that will be needed a few steps
/// later (a factor row, a neighbour list): the rows read per call are
/// scattered over memory much larger than L2, and waiting for each miss in
/// turn dominates otherwise. An empty row asks for nothing.
#[inline(always)]
pub(crate) fn prefetch_row<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = row.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(row);
        if bytes == 0 {
            return;
        }
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
