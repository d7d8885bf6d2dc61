//! Batch scoring: many users against item factors packed into panels, a
//! register-tiled kernel compiled for the detected instruction set, scores
//! streamed into per-user bounded selections.

use super::heap::{TopK, UserSelection};
use crate::isa::{dispatch, Isa};
use crate::model::csr::Csr;
use rayon::prelude::*;

/// Users scored together: one rayon task, sharing each packed item panel
/// while it is in L1.
const USER_BLOCK: usize = 64;
/// Users per register tile of the scoring micro-kernel.
const TILE_USERS: usize = 4;
/// Items per register tile (two 8-float vectors per user).
pub(super) const TILE_ITEMS: usize = 16;

/// Batch recommendations: for each user in `users`, the top `k` items by
/// `user_factors[u] · item_factors[i]`, excluding the items of row `u` of
/// `exclude` (typically the training interactions; users beyond its rows
/// have nothing excluded).
///
/// A user index beyond `user_factors` gets an empty list. Each score is the
/// plain sequential sum `Σ_j x_u[j]·y_i[j]` (j ascending, no fused
/// multiply-add), so results are deterministic and equal to a scalar loop.
///
/// Implementation: item factors are packed once into panels of 16 items
/// stored dimension-major; users are processed in blocks of 64 (parallel
/// over blocks with rayon), and within a block a 4-user × 16-item register
/// tile accumulates over the factor dimension with no horizontal sums. Scores
/// stream straight into per-user bounded heaps, so no block × items score
/// matrix is materialised.
///
/// Panics if `factors == 0` or a factor slice length is not a multiple of it.
pub fn recommend_batch(
    user_factors: &[f32],
    item_factors: &[f32],
    factors: usize,
    users: &[u32],
    k: usize,
    exclude: Option<&Csr>,
) -> Vec<Vec<(u32, f32)>> {
    let f = factors;
    assert!(f > 0, "factors must be > 0");
    assert_eq!(
        user_factors.len() % f,
        0,
        "user_factors length is not a multiple of factors"
    );
    assert_eq!(
        item_factors.len() % f,
        0,
        "item_factors length is not a multiple of factors"
    );
    let n_users = user_factors.len() / f;
    let n_items = item_factors.len() / f;
    assert!(
        n_items <= u32::MAX as usize + 1,
        "more items than u32 indices"
    );
    if k == 0 || n_items == 0 {
        return vec![Vec::new(); users.len()];
    }

    let panels = pack_item_panels(item_factors, f, n_items);
    let isa = Isa::detect();
    let mut results: Vec<Vec<(u32, f32)>> = vec![Vec::new(); users.len()];
    results
        .par_chunks_mut(USER_BLOCK)
        .zip(users.par_chunks(USER_BLOCK))
        .for_each(|(out, block)| {
            let valid: Vec<u32> = block
                .iter()
                .copied()
                .filter(|&u| (u as usize) < n_users)
                .collect();
            let scored = score_block(isa, user_factors, &panels, f, n_items, &valid, k, exclude);
            let mut scored = scored.into_iter();
            for (slot, &u) in out.iter_mut().zip(block) {
                if (u as usize) < n_users {
                    *slot = scored.next().expect("one result per valid user");
                }
            }
        });
    results
}

/// Item factors rearranged as `ceil(n_items / 16)` panels, each `f × 16`
/// (dimension-major), the last one zero-padded.
pub(super) fn pack_item_panels(item_factors: &[f32], f: usize, n_items: usize) -> Vec<f32> {
    let n_panels = n_items.div_ceil(TILE_ITEMS);
    let mut panels = vec![0f32; n_panels * f * TILE_ITEMS];
    panels
        .par_chunks_mut(f * TILE_ITEMS)
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..TILE_ITEMS {
                let item = p * TILE_ITEMS + c;
                if item < n_items {
                    for j in 0..f {
                        panel[j * TILE_ITEMS + c] = item_factors[item * f + j];
                    }
                }
            }
        });
    panels
}

#[allow(clippy::too_many_arguments)]
fn score_block(
    isa: Isa,
    user_factors: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    users: &[u32],
    k: usize,
    exclude: Option<&Csr>,
) -> Vec<Vec<(u32, f32)>> {
    let mut selections: Vec<UserSelection> = users
        .iter()
        .map(|&u| {
            let row: &[u32] = match exclude {
                Some(m) if (u as usize) < m.n_rows => m.row(u as usize).0,
                _ => &[],
            };
            // Rows built by Csr::from_triplets are sorted; sort a copy otherwise.
            let excluded = if row.windows(2).all(|w| w[0] < w[1]) {
                std::borrow::Cow::Borrowed(row)
            } else {
                let mut sorted = row.to_vec();
                sorted.sort_unstable();
                std::borrow::Cow::Owned(sorted)
            };
            UserSelection {
                top: TopK::new(k.min(n_items)),
                excluded,
                cursor: 0,
            }
        })
        .collect();
    dispatch!(isa, (
        user_factors: &[f32] = user_factors,
        panels: &[f32] = panels,
        f: usize = f,
        n_items: usize = n_items,
        users: &[u32] = users,
        selections: &mut [UserSelection] = &mut selections,
    ) {
        score_block_kernel(user_factors, panels, f, n_items, users, selections)
    });
    selections
        .into_iter()
        .map(|s| s.top.into_sorted())
        .collect()
}

/// Streams every item panel past the block's users, 4 users at a time.
#[inline(always)]
fn score_block_kernel(
    user_factors: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    users: &[u32],
    selections: &mut [UserSelection],
) {
    for (p, panel) in panels.chunks_exact(f * TILE_ITEMS).enumerate() {
        let first_item = p * TILE_ITEMS;
        let items_here = TILE_ITEMS.min(n_items - first_item);
        for (group, group_selections) in users
            .chunks(TILE_USERS)
            .zip(selections.chunks_mut(TILE_USERS))
        {
            // A short last group repeats its first user; the extra rows are ignored.
            let rows: [&[f32]; TILE_USERS] = std::array::from_fn(|r| {
                let u = group[r.min(group.len() - 1)] as usize;
                &user_factors[u * f..(u + 1) * f]
            });
            let scores = tile_scores(rows, panel, f);
            for (selection, user_scores) in group_selections.iter_mut().zip(&scores) {
                // Most tiles hold nothing good enough once the heap is full:
                // test all 16 scores with one vector compare before any
                // per-item work.
                let min_score = selection.top.min_score();
                let mut any_candidate = false;
                for &score in user_scores {
                    any_candidate |= score >= min_score;
                }
                if any_candidate {
                    for (c, &score) in user_scores[..items_here].iter().enumerate() {
                        selection.offer((first_item + c) as u32, score);
                    }
                }
            }
        }
    }
}

/// `scores[r][c] = Σ_j rows[r][j] · panel[j][c]`, summed in ascending `j`.
/// The 4 × 16 accumulator lives in registers; each step broadcasts one user
/// value against a 16-item row of the panel.
#[inline(always)]
fn tile_scores(
    rows: [&[f32]; TILE_USERS],
    panel: &[f32],
    f: usize,
) -> [[f32; TILE_ITEMS]; TILE_USERS] {
    let mut acc = [[0f32; TILE_ITEMS]; TILE_USERS];
    let rows: [&[f32]; TILE_USERS] = std::array::from_fn(|r| &rows[r][..f]);
    for (j, panel_row) in panel.chunks_exact(TILE_ITEMS).enumerate().take(f) {
        let items: [f32; TILE_ITEMS] = panel_row.try_into().unwrap();
        for r in 0..TILE_USERS {
            let x = rows[r][j];
            for c in 0..TILE_ITEMS {
                acc[r][c] += x * items[c];
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::super::heap::top_k;
    use super::*;
    use crate::rng::Rng;

    /// Brute force with the same arithmetic as the blocked kernel: scalar
    /// sum in ascending factor order.
    fn brute_force(
        uf: &[f32],
        itf: &[f32],
        f: usize,
        users: &[u32],
        k: usize,
        exclude: Option<&Csr>,
    ) -> Vec<Vec<(u32, f32)>> {
        let n_items = itf.len() / f;
        users
            .iter()
            .map(|&u| {
                let u = u as usize;
                if u >= uf.len() / f {
                    return vec![];
                }
                let scores: Vec<f32> = (0..n_items)
                    .map(|i| (0..f).fold(0f32, |s, j| s + uf[u * f + j] * itf[i * f + j]))
                    .collect();
                let seen: &[u32] = match exclude {
                    Some(m) if u < m.n_rows => m.row(u).0,
                    _ => &[],
                };
                top_k(&scores, k, |i| seen.contains(&i))
            })
            .collect()
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn recommend_batch_equals_brute_force() {
        for &(n_users, n_items, f, k) in &[
            (150, 37, 7, 5),
            (70, 200, 16, 12),
            (9, 5, 3, 10),
            (130, 1000, 50, 20),
        ] {
            let uf = random(n_users * f, 1 + f as u64);
            let itf = random(n_items * f, 2 + f as u64);
            let mut rng = Rng::new(9);
            let (mut rows, mut cols) = (vec![], vec![]);
            for u in 0..n_users as u32 {
                for _ in 0..rng.below(6) {
                    rows.push(u);
                    cols.push(rng.below(n_items as u64) as u32);
                }
            }
            let values = vec![1.0; rows.len()];
            let seen = Csr::from_triplets(n_users, n_items, &rows, &cols, &values).unwrap();
            // Unsorted, repeated and out-of-range user ids.
            let users: Vec<u32> = (0..n_users as u32)
                .rev()
                .chain([3, 3, n_users as u32 + 4, 0])
                .collect();
            for exclude in [None, Some(&seen)] {
                let batch = recommend_batch(&uf, &itf, f, &users, k, exclude);
                assert_eq!(
                    batch,
                    brute_force(&uf, &itf, f, &users, k, exclude),
                    "{n_users}×{n_items}×{f} k={k}"
                );
            }
            assert_eq!(
                batch_len(&recommend_batch(&uf, &itf, f, &users, 0, Some(&seen))),
                0
            );
        }
    }

    fn batch_len(batch: &[Vec<(u32, f32)>]) -> usize {
        batch.iter().map(Vec::len).sum()
    }

    #[test]
    fn recommend_batch_hand_example() {
        // f = 2. User 0 = (1, 0), user 1 = (0, 1).
        // Items: 0 = (1, 1), 1 = (2, 0), 2 = (0, 3), 3 = (1, 1).
        // User 0 scores: [1, 2, 0, 1]; user 1 scores: [1, 0, 3, 1].
        let uf = [1.0, 0.0, 0.0, 1.0];
        let itf = [1.0, 1.0, 2.0, 0.0, 0.0, 3.0, 1.0, 1.0];
        let seen = Csr::from_triplets(2, 4, &[1], &[2], &[1.0]).unwrap();
        let recs = recommend_batch(&uf, &itf, 2, &[0, 1, 7], 2, Some(&seen));
        assert_eq!(
            recs,
            vec![vec![(1, 2.0), (0, 1.0)], vec![(0, 1.0), (3, 1.0)], vec![]]
        );
        let all = recommend_batch(&uf, &itf, 2, &[1], 10, None);
        assert_eq!(all, vec![vec![(2, 3.0), (0, 1.0), (3, 1.0), (1, 0.0)]]);
        assert_eq!(
            recommend_batch(&uf, &itf, 2, &[], 3, None),
            Vec::<Vec<(u32, f32)>>::new()
        );
    }

    #[test]
    fn recommend_batch_same_result_with_1_and_2_threads() {
        let (n_users, n_items, f) = (300, 500, 10);
        let uf = random(n_users * f, 3);
        let itf = random(n_items * f, 4);
        let users: Vec<u32> = (0..n_users as u32).collect();
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| recommend_batch(&uf, &itf, f, &users, 10, None))
        };
        assert_eq!(run(1), run(2));
    }
}
