//! Exact single-precision scores of eight items at once, in vector lanes:
//! each lane sums in ascending factor order, one multiply then one add, as
//! the scalar score does, so every path reports the same bits.

use crate::isa::{dispatch, Isa};

/// Eight items' exact scores, `items` indexing the row-major `rows`.
#[inline]
pub(super) fn scores8(
    isa: Isa,
    user: &[f32],
    rows: &[f32],
    f: usize,
    items: &[u32; 8],
) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: Isa::Avx2 is only detected on CPUs with AVX2.
        return unsafe { scores8_transposed(user, rows, f, items) };
    }
    dispatch!(isa, (user: &[f32] = user, rows: &[f32] = rows, f: usize = f, items: &[u32; 8] = items) -> [f32; 8] {
        scores8_lanes(user, rows, f, items)
    })
}

/// Eight items' exact scores: lane `l` sums `user[j] · row_l[j]` for
/// ascending `j`, one multiply then one add, as the scalar score does.
#[inline(always)]
fn scores8_lanes(user: &[f32], rows: &[f32], f: usize, items: &[u32; 8]) -> [f32; 8] {
    let starts = items.map(|i| i as usize * f);
    assert!(
        starts.iter().all(|&s| s + f <= rows.len()),
        "an item index is out of range"
    );
    let mut acc = [0f32; 8];
    for (j, &x) in user.iter().enumerate() {
        for lane in 0..8 {
            acc[lane] += x * rows[starts[lane] + j];
        }
    }
    acc
}

/// [`scores8_lanes`] with whole rows read eight factors at a time: each of the
/// eight items' next eight factors in one load, the 8 × 8 block turned in
/// registers so that lane `l` holds item `l`'s factor `j`, then multiplied
/// and added in ascending `j` exactly as the scalar score is (the same
/// bits). Reading element by element cost about 90 ns an item, most of the
/// real-time scorer's rescoring.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scores8_transposed(user: &[f32], rows: &[f32], f: usize, items: &[u32; 8]) -> [f32; 8] {
    use std::arch::x86_64::*;
    let starts = items.map(|i| i as usize * f);
    assert!(
        starts.iter().all(|&s| s + f <= rows.len()),
        "an item index is out of range"
    );
    assert!(user.len() >= f, "user row shorter than factors");
    let row = starts.map(|s| rows.as_ptr().add(s));
    let mut acc = _mm256_setzero_ps();
    let mut j = 0;
    while j + 8 <= f {
        let r = row.map(|p| _mm256_loadu_ps(p.add(j)));
        // Pairs of rows interleaved, then quadruples: s_k holds factor k of
        // rows 0..4 in its low half and factor k + 4 in its high half, t_k
        // the same for rows 4..8.
        let (a0, a1) = (
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
        );
        let (a2, a3) = (
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
        );
        let (b0, b1) = (
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
        );
        let (b2, b3) = (
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        );
        let s = [
            _mm256_shuffle_ps::<0x44>(a0, a2),
            _mm256_shuffle_ps::<0xEE>(a0, a2),
            _mm256_shuffle_ps::<0x44>(a1, a3),
            _mm256_shuffle_ps::<0xEE>(a1, a3),
        ];
        let t = [
            _mm256_shuffle_ps::<0x44>(b0, b2),
            _mm256_shuffle_ps::<0xEE>(b0, b2),
            _mm256_shuffle_ps::<0x44>(b1, b3),
            _mm256_shuffle_ps::<0xEE>(b1, b3),
        ];
        for k in 0..4 {
            let column = _mm256_permute2f128_ps::<0x20>(s[k], t[k]);
            acc = _mm256_add_ps(
                acc,
                _mm256_mul_ps(_mm256_set1_ps(*user.get_unchecked(j + k)), column),
            );
        }
        for k in 0..4 {
            let column = _mm256_permute2f128_ps::<0x31>(s[k], t[k]);
            acc = _mm256_add_ps(
                acc,
                _mm256_mul_ps(_mm256_set1_ps(*user.get_unchecked(j + 4 + k)), column),
            );
        }
        j += 8;
    }
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), acc);
    for (j, &x) in user.iter().enumerate().take(f).skip(j) {
        for lane in 0..8 {
            out[lane] += x * *row[lane].add(j);
        }
    }
    out
}
