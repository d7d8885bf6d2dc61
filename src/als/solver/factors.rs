//! Layout of the factor matrices while training: rows zero-padded to whole
//! 8-float chunks, the first row on a cache-line boundary, and their seeded
//! initialisation.

use crate::isa::vector::{prefetch_row, LANES};
use crate::rng::Rng;
use rayon::prelude::*;

/// Row length after zero padding to whole chunks.
pub(super) fn padded_stride(factors: usize) -> usize {
    factors.div_ceil(LANES) * LANES
}

/// Zero-padded factor rows whose first row starts on a 64-byte cache-line
/// boundary. With `stride · 4` bytes a multiple of 32, every row then spans
/// the minimum number of cache lines (4 instead of 4 or 5 for `factors = 50`),
/// which cuts the memory traffic of the scattered row reads that dominate a
/// half-iteration. Dereferences to the padded `[f32]`.
pub(super) struct FactorRows {
    buffer: Vec<f32>,
    offset: usize,
    len: usize,
}

impl FactorRows {
    const ALIGN_FLOATS: usize = 64 / std::mem::size_of::<f32>();

    fn zeroed(len: usize) -> FactorRows {
        let buffer = vec![0f32; len + Self::ALIGN_FLOATS];
        // Rows are read at random: huge pages spare a TLB miss per read.
        crate::pages::advise_huge_pages(&buffer);
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

impl FactorRows {
    /// The rows without their padding, moved down inside this buffer: the
    /// model's factors without a second copy of them (at 110M events the
    /// user factors alone are over a gigabyte). Row `r` moves from
    /// `offset + r · stride` to `r · factors`, never past a row not yet
    /// moved, so moving them in order is safe.
    pub(super) fn into_unpadded(self, factors: usize, stride: usize) -> Vec<f32> {
        let FactorRows {
            mut buffer,
            offset,
            len,
        } = self;
        let n = len / stride;
        for r in 0..n {
            let from = offset + r * stride;
            buffer.copy_within(from..from + factors, r * factors);
        }
        buffer.truncate(n * factors);
        // Gives back the tail (an in-place shrink for a buffer this size).
        buffer.shrink_to_fit();
        buffer
    }
}

pub(super) fn pad_rows(rows: &[f32], factors: usize, stride: usize) -> FactorRows {
    let n = rows.len() / factors;
    let mut out = FactorRows::zeroed(n * stride);
    for (dst, src) in out.chunks_exact_mut(stride).zip(rows.chunks_exact(factors)) {
        dst[..factors].copy_from_slice(src);
    }
    out
}

#[cfg(test)]
pub(super) fn unpad_rows(rows: &[f32], factors: usize, stride: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() / stride * factors);
    for src in rows.chunks_exact(stride) {
        out.extend_from_slice(&src[..factors]);
    }
    out
}

/// `0.01 · N(0, 1)` factors; row `r` uses stream `2r + side` so users
/// (side 0) and items (side 1) draw independent numbers.
pub(super) fn init_factors(
    len: usize,
    factors: usize,
    stride: usize,
    seed: u64,
    side: u64,
) -> FactorRows {
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

/// How many stored entries ahead a factor row's load is started.
const PREFETCH_DISTANCE: usize = 6;

/// The padded rows of `rows` at the indices `cols`, in order, each with its
/// value from `raw`. Each row's load is started a few stored entries before
/// it is needed: the rows of a user's items are scattered over a matrix much
/// larger than L2, and waiting for each miss dominates otherwise. The first
/// few are requested when this is called.
#[inline(always)]
pub(super) fn stored_rows<'a>(
    rows: &'a [f32],
    stride: usize,
    cols: &'a [u32],
    raw: &'a [f32],
) -> impl Iterator<Item = (&'a [f32], f32)> + 'a {
    let row = move |i: u32| &rows[i as usize * stride..(i as usize + 1) * stride];
    for &i in &cols[..cols.len().min(PREFETCH_DISTANCE)] {
        prefetch_row(row(i));
    }
    cols.iter().zip(raw).enumerate().map(move |(k, (&i, &r))| {
        if let Some(&ahead) = cols.get(k + PREFETCH_DISTANCE) {
            prefetch_row(row(ahead));
        }
        (row(i), r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpadding_in_place_equals_the_copy() {
        for (factors, rows) in [(1, 0), (1, 5), (8, 3), (50, 37), (13, 1000)] {
            let stride = padded_stride(factors);
            let padded = init_factors(rows * stride, factors, stride, 7, 0);
            let copy = unpad_rows(&padded, factors, stride);
            assert_eq!(copy.len(), rows * factors);
            assert_eq!(padded.into_unpadded(factors, stride), copy);
        }
    }
}
