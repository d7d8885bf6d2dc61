//! `YᵀY` of the fixed side's factors, computed once per half-iteration, and
//! the product with it that every row solve and the loss apply.

use crate::isa::vector::{VectorOps, LANES};
use crate::isa::{dispatch, Isa};
use rayon::prelude::*;

/// `out = (G + λI) v` for a symmetric `stride × stride` Gram matrix whose rows
/// beyond `factors` are zero (so they are skipped).
///
/// `G v = Σ_j v_j · G[j, :]` (G symmetric): row axpys that vectorise along the
/// row with no horizontal sums. The output is accumulated in registers, four
/// 8-lane chunks at a time, so `out` is stored once instead of once per row
/// of `G`; every element still sees `λ v_o` then `+ v_j G[j, o]` for `j` in
/// order, the same operations in the same order as one axpy per row.
#[inline(always)]
pub(super) fn gram_matvec<K: VectorOps>(
    gram: &[f32],
    v: &[f32],
    out: &mut [f32],
    factors: usize,
    stride: usize,
    regularization: f32,
) {
    debug_assert!(stride.is_multiple_of(LANES) && v.len() == stride && out.len() == stride);
    let mut first = 0;
    while first + 4 * LANES <= stride {
        gram_matvec_block::<4>(gram, v, out, factors, stride, regularization, first);
        first += 4 * LANES;
    }
    // The last one to three chunks in one pass too: a block of one chunk
    // waits out the add latency at every row of G (with 50 factors the
    // product was a block of four and three blocks of one; one block of
    // three instead made a whole ALS step about 15% faster).
    match (stride - first) / LANES {
        3 => gram_matvec_block::<3>(gram, v, out, factors, stride, regularization, first),
        2 => gram_matvec_block::<2>(gram, v, out, factors, stride, regularization, first),
        1 => gram_matvec_block::<1>(gram, v, out, factors, stride, regularization, first),
        _ => {}
    }
}

/// Columns `first .. first + N·LANES` of [`gram_matvec`].
#[inline(always)]
fn gram_matvec_block<const N: usize>(
    gram: &[f32],
    v: &[f32],
    out: &mut [f32],
    factors: usize,
    stride: usize,
    regularization: f32,
    first: usize,
) {
    let mut acc = [[0f32; LANES]; N];
    for (c, chunk) in acc.iter_mut().enumerate() {
        for (l, a) in chunk.iter_mut().enumerate() {
            *a = regularization * v[first + c * LANES + l];
        }
    }
    for (j, &vj) in v[..factors].iter().enumerate() {
        let row = &gram[j * stride + first..j * stride + first + N * LANES];
        for (chunk, g) in acc.iter_mut().zip(row.chunks_exact(LANES)) {
            let g: &[f32; LANES] = g.try_into().unwrap();
            for l in 0..LANES {
                chunk[l] += vj * g[l];
            }
        }
    }
    for (c, chunk) in acc.iter().enumerate() {
        out[first + c * LANES..first + (c + 1) * LANES].copy_from_slice(chunk);
    }
}

/// Rows per partial Gram sum. Fixed (not derived from the thread count) so
/// the reduction order, hence the result, is the same for any pool size.
const GRAM_CHUNK_ROWS: usize = 2048;

/// `YᵀY` of padded rows as a `stride × stride` matrix (zero outside the
/// leading `factors × factors` block).
pub(super) fn gram(rows: &[f32], factors: usize, stride: usize, isa: Isa) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = rows
        .par_chunks(GRAM_CHUNK_ROWS * stride)
        .map(|chunk| {
            let mut partial = vec![0f32; stride * stride];
            dispatch!(isa, <K>(
                rows: &[f32] = chunk,
                out: &mut [f32] = &mut partial,
                factors: usize = factors,
                stride: usize = stride,
            ) {
                gram_accumulate::<K>(rows, out, factors, stride)
            });
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
