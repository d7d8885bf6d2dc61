//! Top-k selection and batch scoring for recommendations from factor
//! matrices (row-major, `factors` floats per row, as in `AlsModel`).
//!
//! Ranking order everywhere: higher score first, ties broken by the smaller
//! index, so results are fully determined by the scores. NaN scores are never
//! returned. Selection is partial (a bounded heap of `k` entries, O(n log k)),
//! never a sort of all candidates.

use crate::als::csr::Csr;
use rayon::prelude::*;

/// `true` if candidate `a` ranks strictly before `b`.
#[inline(always)]
fn ranks_before(a: (u32, f32), b: (u32, f32)) -> bool {
    a.1 > b.1 || (a.1 == b.1 && a.0 < b.0)
}

/// Keeps the best `k` candidates pushed so far. A binary heap with the
/// *worst* kept candidate at the root, so a new candidate is compared with
/// one value and usually rejected immediately.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: Vec<(u32, f32)>,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    /// Whether `(index, score)` would currently enter the selection — cheap,
    /// so callers can test it before an expensive exclusion check.
    #[inline(always)]
    pub fn accepts(&self, index: u32, score: f32) -> bool {
        if score.is_nan() {
            return false;
        }
        if self.heap.len() < self.k {
            return true;
        }
        self.k > 0 && ranks_before((index, score), self.heap[0])
    }

    /// A score below this can never enter the selection (`-inf` while it is
    /// not full): a one-comparison filter that vectorises over many scores.
    #[inline(always)]
    pub fn min_score(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else if self.k == 0 {
            f32::INFINITY
        } else {
            self.heap[0].1
        }
    }

    /// Offers a candidate; NaN scores are ignored. Indices must be distinct.
    #[inline]
    pub fn push(&mut self, index: u32, score: f32) {
        if !self.accepts(index, score) {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push((index, score));
            self.sift_up(self.heap.len() - 1);
        } else {
            self.heap[0] = (index, score);
            self.sift_down(0);
        }
    }

    /// The kept candidates in ranking order.
    pub fn into_sorted(mut self) -> Vec<(u32, f32)> {
        self.heap.sort_unstable_by(|&a, &b| {
            if ranks_before(a, b) {
                std::cmp::Ordering::Less
            } else if ranks_before(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        self.heap
    }

    /// Heap invariant: a parent never ranks before its children.
    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if ranks_before(self.heap[parent], self.heap[pos]) {
                self.heap.swap(parent, pos);
                pos = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let mut worst = pos;
            for child in [2 * pos + 1, 2 * pos + 2] {
                if child < len && ranks_before(self.heap[worst], self.heap[child]) {
                    worst = child;
                }
            }
            if worst == pos {
                break;
            }
            self.heap.swap(pos, worst);
            pos = worst;
        }
    }
}

/// Top-k `(index, score)` in descending score order, ties broken by smaller
/// index; skips indices for which `excluded(i)` is true and NaN scores.
/// Returns fewer than `k` entries when fewer candidates remain. Partial
/// selection with a heap of size `k` (`excluded` is only consulted for
/// candidates that would enter it).
pub fn top_k(scores: &[f32], k: usize, excluded: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
    assert!(
        scores.len() <= u32::MAX as usize + 1,
        "more scores than u32 indices"
    );
    let mut selection = TopK::new(k.min(scores.len()));
    for (i, &score) in scores.iter().enumerate() {
        let index = i as u32;
        if selection.accepts(index, score) && !excluded(index) {
            selection.push(index, score);
        }
    }
    selection.into_sorted()
}

/// Users scored together: one rayon task, sharing each packed item panel
/// while it is in L1.
const USER_BLOCK: usize = 64;
/// Users per register tile of the scoring micro-kernel.
const TILE_USERS: usize = 4;
/// Items per register tile (two 8-float vectors per user).
const TILE_ITEMS: usize = 16;

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
fn pack_item_panels(item_factors: &[f32], f: usize, n_items: usize) -> Vec<f32> {
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

use crate::isa::Isa;

/// Per-user selection state while the items stream by in ascending order.
struct UserSelection<'a> {
    top: TopK,
    /// Items to skip, ascending.
    excluded: std::borrow::Cow<'a, [u32]>,
    /// First position in `excluded` not below the items seen so far.
    cursor: usize,
}

impl UserSelection<'_> {
    #[inline(always)]
    fn offer(&mut self, item: u32, score: f32) {
        if !self.top.accepts(item, score) {
            return;
        }
        // Items arrive in ascending order, so the cursor only moves forward.
        while self.cursor < self.excluded.len() && self.excluded[self.cursor] < item {
            self.cursor += 1;
        }
        if self.cursor < self.excluded.len() && self.excluded[self.cursor] == item {
            return;
        }
        self.top.push(item, score);
    }
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
    match isa {
        Isa::Portable => {
            score_block_portable(user_factors, panels, f, n_items, users, &mut selections)
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
        Isa::Avx2 => unsafe {
            score_block_avx2(user_factors, panels, f, n_items, users, &mut selections)
        },
    }
    selections
        .into_iter()
        .map(|s| s.top.into_sorted())
        .collect()
}

fn score_block_portable(
    user_factors: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    users: &[u32],
    selections: &mut [UserSelection],
) {
    score_block_kernel(user_factors, panels, f, n_items, users, selections)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn score_block_avx2(
    user_factors: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    users: &[u32],
    selections: &mut [UserSelection],
) {
    score_block_kernel(user_factors, panels, f, n_items, users, selections)
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

/// The `k` items most similar to `item` by cosine similarity of their
/// factor rows, excluding `item` itself. Items with an all-zero factor row
/// have similarity 0 to everything (no NaN). An out-of-range `item` gives an
/// empty list.
pub fn similar_items(item_factors: &[f32], factors: usize, item: u32, k: usize) -> Vec<(u32, f32)> {
    let f = factors;
    assert!(f > 0, "factors must be > 0");
    assert_eq!(
        item_factors.len() % f,
        0,
        "item_factors length is not a multiple of factors"
    );
    let n_items = item_factors.len() / f;
    if item as usize >= n_items || k == 0 {
        return Vec::new();
    }
    let row = |i: usize| &item_factors[i * f..(i + 1) * f];
    let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
    let query = row(item as usize);
    let query_norm = norm(query);
    let similarities: Vec<f32> = (0..n_items)
        .map(|i| {
            let other = row(i);
            let denominator = query_norm * norm(other);
            if denominator > 0.0 {
                query.iter().zip(other).map(|(a, b)| a * b).sum::<f32>() / denominator
            } else {
                0.0
            }
        })
        .collect();
    top_k(&similarities, k, |i| i == item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn top_k_orders_by_score_then_index() {
        let scores = [0.5, 2.0, -1.0, 2.0, 0.5, 3.0];
        assert_eq!(
            top_k(&scores, 3, |_| false),
            vec![(5, 3.0), (1, 2.0), (3, 2.0)]
        );
        // The 0.5 tie at indices 0 and 4: the smaller index wins the last place.
        assert_eq!(
            top_k(&scores, 4, |_| false),
            vec![(5, 3.0), (1, 2.0), (3, 2.0), (0, 0.5)]
        );
        let all = top_k(&scores, 6, |_| false);
        assert_eq!(
            all,
            vec![(5, 3.0), (1, 2.0), (3, 2.0), (0, 0.5), (4, 0.5), (2, -1.0)]
        );
    }

    #[test]
    fn top_k_ties_everywhere() {
        let scores = [1.0f32; 10];
        assert_eq!(
            top_k(&scores, 3, |_| false),
            vec![(0, 1.0), (1, 1.0), (2, 1.0)]
        );
        // -0.0 == 0.0, so the index decides.
        assert_eq!(top_k(&[0.0, -0.0], 1, |_| false), vec![(0, 0.0)]);
        assert_eq!(top_k(&[-0.0, 0.0], 1, |_| false)[0].0, 0);
    }

    #[test]
    fn top_k_exclusion_k_zero_k_too_large_nan_empty() {
        let scores = [0.5, 2.0, -1.0, 2.0, 0.5, 3.0];
        assert_eq!(
            top_k(&scores, 2, |i| i == 5 || i == 1),
            vec![(3, 2.0), (0, 0.5)]
        );
        assert_eq!(top_k(&scores, 0, |_| false), vec![]);
        // k > n: every non-excluded candidate, ranked.
        assert_eq!(
            top_k(&scores, 100, |i| i % 2 == 0),
            vec![(5, 3.0), (1, 2.0), (3, 2.0)]
        );
        assert_eq!(
            top_k(&[f32::NAN, 1.0, f32::NAN], 3, |_| false),
            vec![(1, 1.0)]
        );
        assert_eq!(top_k(&[], 3, |_| false), vec![]);
        assert_eq!(
            top_k(&[f32::NEG_INFINITY, f32::INFINITY], 5, |_| false),
            vec![(1, f32::INFINITY), (0, f32::NEG_INFINITY)]
        );
    }

    #[test]
    fn top_k_matches_full_sort_on_random_scores() {
        let mut rng = Rng::new(5);
        for trial in 0..50 {
            let n = 1 + rng.below(300) as usize;
            // Few distinct values, to exercise ties.
            let scores: Vec<f32> = (0..n).map(|_| rng.below(20) as f32 * 0.25).collect();
            let k = rng.below(n as u64 + 5) as usize;
            let excluded = |i: u32| (i as u64 * 7 + trial).is_multiple_of(5);
            let mut expected: Vec<(u32, f32)> = scores
                .iter()
                .enumerate()
                .map(|(i, &s)| (i as u32, s))
                .filter(|&(i, _)| !excluded(i))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(k);
            assert_eq!(top_k(&scores, k, excluded), expected, "trial {trial}");
        }
    }

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

    #[test]
    fn similar_items_by_cosine() {
        // f = 2. Items: 0 = (1, 0), 1 = (2, 0.1), 2 = (0, 1), 3 = (-1, 0), 4 = (0, 0).
        // cos(0, 1) = 2/√4.01 ≈ 0.99875, cos(0, 2) = 0, cos(0, 3) = −1, cos(0, 4) := 0.
        let itf = [1.0, 0.0, 2.0, 0.1, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0];
        let sims = similar_items(&itf, 2, 0, 10);
        let ids: Vec<u32> = sims.iter().map(|s| s.0).collect();
        assert_eq!(ids, vec![1, 2, 4, 3]);
        assert!((sims[0].1 - 2.0 / 4.01f32.sqrt()).abs() < 1e-6);
        assert_eq!((sims[1].1, sims[2].1, sims[3].1), (0.0, 0.0, -1.0));
        assert_eq!(similar_items(&itf, 2, 0, 1), vec![sims[0]]);
        // The zero item: all similarities 0, ties by index, itself excluded.
        assert_eq!(similar_items(&itf, 2, 4, 2), vec![(0, 0.0), (1, 0.0)]);
        assert_eq!(similar_items(&itf, 2, 9, 3), vec![]);
        assert_eq!(similar_items(&itf, 2, 1, 0), vec![]);
    }
}

/// Item factors packed once (the same panels as [`recommend_batch`]) for
/// repeated single-user scoring: serving one `recommend(user_id)` call must
/// not re-pack the catalogue.
pub struct PackedItems {
    panels: Vec<f32>,
    /// Half-precision copy of `panels` and the exact rows, when the CPU can
    /// convert halves in hardware (F16C) — see [`PackedItems::top_k`].
    fast: Option<HalfPanels>,
    factors: usize,
    n_items: usize,
    isa: Isa,
}

/// Scoring a large catalogue for one user is bound by memory traffic: a
/// half-precision copy halves it. Its scores only pick candidates, which
/// are then rescored exactly.
struct HalfPanels {
    panels: Vec<u16>,
    rows: Vec<f32>,
}

/// The approximate candidate pool for an exact top-k: wide enough that an
/// item of the exact top-k ranking below it by half-precision error would
/// need near-ties far tighter than the pool's margin.
fn candidate_pool(k: usize) -> usize {
    k + k / 2 + 8
}

#[cfg(target_arch = "x86_64")]
fn has_f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn to_half(values: &[f32]) -> Vec<u16> {
    use std::arch::x86_64::*;
    let mut out = vec![0u16; values.len()];
    let chunks = values.len() / 8 * 8;
    for i in (0..chunks).step_by(8) {
        let v = _mm256_loadu_ps(values.as_ptr().add(i));
        // Round to nearest even.
        let h = _mm256_cvtps_ph::<0>(v);
        _mm_storeu_si128(out.as_mut_ptr().add(i) as *mut __m128i, h);
    }
    for i in chunks..values.len() {
        let mut lane = [0f32; 8];
        lane[0] = values[i];
        let h = _mm256_cvtps_ph::<0>(_mm256_loadu_ps(lane.as_ptr()));
        out[i] = _mm_extract_epi16::<0>(h) as u16;
    }
    out
}

/// Approximate scores of one user against a run of half-precision panels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn half_kernel(user: &[f32], panels: &[u16], f: usize, n_items: usize, first_panel: usize, selection: &mut UserSelection) {
    use std::arch::x86_64::*;
    for (p, panel) in panels.chunks_exact(f * TILE_ITEMS).enumerate() {
        let first_item = (first_panel + p) * TILE_ITEMS;
        let items_here = TILE_ITEMS.min(n_items - first_item);
        let mut low = _mm256_setzero_ps();
        let mut high = _mm256_setzero_ps();
        let base = panel.as_ptr();
        for j in 0..f {
            let x = _mm256_set1_ps(*user.get_unchecked(j));
            let row = base.add(j * TILE_ITEMS);
            low = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128(row as *const __m128i)), low);
            high = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128(row.add(8) as *const __m128i)), high);
        }
        let mut acc = [0f32; TILE_ITEMS];
        _mm256_storeu_ps(acc.as_mut_ptr(), low);
        _mm256_storeu_ps(acc.as_mut_ptr().add(8), high);
        let min_score = selection.top.min_score();
        if acc.iter().any(|&s| s >= min_score) {
            for (c, &score) in acc[..items_here].iter().enumerate() {
                selection.offer((first_item + c) as u32, score);
            }
        }
    }
}

/// Panels per parallel task (1024 × 16 items): few tasks, so few bounded
/// heaps to fill, yet enough to keep two to eight threads busy.
const PANELS_PER_TASK: usize = 1024;

impl std::fmt::Debug for PackedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedItems({} items × {} factors)",
            self.n_items, self.factors
        )
    }
}

impl PackedItems {
    pub fn new(item_factors: &[f32], factors: usize) -> PackedItems {
        assert!(factors > 0, "factors must be > 0");
        assert_eq!(
            item_factors.len() % factors,
            0,
            "item_factors length is not a multiple of factors"
        );
        let n_items = item_factors.len() / factors;
        let panels = pack_item_panels(item_factors, factors, n_items);
        #[cfg(target_arch = "x86_64")]
        let fast = has_f16c().then(|| HalfPanels {
            // SAFETY: has_f16c checked the CPU.
            panels: unsafe { to_half(&panels) },
            rows: item_factors.to_vec(),
        });
        #[cfg(not(target_arch = "x86_64"))]
        let fast = None;
        PackedItems { panels, fast, factors, n_items, isa: Isa::detect() }
    }

    /// Exact top-k from half-precision candidates: the best
    /// `candidate_pool(k)` items by approximate score, rescored with the
    /// summation order of [`recommend_batch`], so final scores are
    /// bit-identical to the batch kernel's. Sequential on purpose: one user
    /// takes about a millisecond, less than splitting it across threads
    /// costs in coordination and latency tail, and concurrent requests use
    /// the other cores better.
    #[cfg(target_arch = "x86_64")]
    fn top_k_from_halves(&self, fast: &HalfPanels, user: &[f32], k: usize, excluded: &[u32]) -> Vec<(u32, f32)> {
        let f = self.factors;
        let pool = candidate_pool(k).min(self.n_items);
        let partial: Vec<Vec<(u32, f32)>> = fast
            .panels
            .chunks(f * TILE_ITEMS * PANELS_PER_TASK)
            .enumerate()
            .map(|(task, panels)| {
                let mut selection =
                    UserSelection { top: TopK::new(pool), excluded: std::borrow::Cow::Borrowed(excluded), cursor: 0 };
                // SAFETY: `fast` exists only when has_f16c found the CPU features.
                unsafe { half_kernel(user, panels, f, self.n_items, task * PANELS_PER_TASK, &mut selection) };
                selection.top.into_sorted()
            })
            .collect();
        let mut candidates = TopK::new(pool);
        for (item, score) in partial.into_iter().flatten() {
            if candidates.accepts(item, score) {
                candidates.push(item, score);
            }
        }
        let mut top = TopK::new(k);
        for (item, _) in candidates.into_sorted() {
            let row = &fast.rows[item as usize * f..(item as usize + 1) * f];
            // Ascending j, one multiply then one add: the batch kernel's
            // arithmetic, so the score is bit-identical.
            let mut score = 0f32;
            for j in 0..f {
                score += user[j] * row[j];
            }
            if top.accepts(item, score) {
                top.push(item, score);
            }
        }
        top.into_sorted()
    }

    /// Top-k items for one user's factor row, skipping `excluded` (sorted
    /// ascending). Scores are bit-identical to [`recommend_batch`]'s (same
    /// summation order), ties go to the smaller index; parallel over blocks
    /// of panels on the current rayon pool.
    pub fn top_k(&self, user: &[f32], k: usize, excluded: &[u32]) -> Vec<(u32, f32)> {
        let f = self.factors;
        assert_eq!(user.len(), f, "user row length differs from factors");
        if k == 0 || self.n_items == 0 {
            return Vec::new();
        }
        let k = k.min(self.n_items);
        #[cfg(target_arch = "x86_64")]
        if let Some(fast) = &self.fast {
            return self.top_k_from_halves(fast, user, k, excluded);
        }
        let partial: Vec<Vec<(u32, f32)>> = self
            .panels
            .par_chunks(f * TILE_ITEMS * PANELS_PER_TASK)
            .enumerate()
            .map(|(task, panels)| {
                let first_panel = task * PANELS_PER_TASK;
                let mut selection = UserSelection {
                    top: TopK::new(k),
                    excluded: std::borrow::Cow::Borrowed(excluded),
                    cursor: 0,
                };
                match self.isa {
                    Isa::Portable => single_user_kernel(
                        user,
                        panels,
                        f,
                        self.n_items,
                        first_panel,
                        &mut selection,
                    ),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: Isa::Avx2 is only chosen when the CPU reports AVX2.
                    Isa::Avx2 => unsafe {
                        single_user_avx2(user, panels, f, self.n_items, first_panel, &mut selection)
                    },
                }
                selection.top.into_sorted()
            })
            .collect();
        let mut top = TopK::new(k);
        for (item, score) in partial.into_iter().flatten() {
            if top.accepts(item, score) {
                top.push(item, score);
            }
        }
        top.into_sorted()
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn single_user_avx2(
    user: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    first_panel: usize,
    selection: &mut UserSelection,
) {
    single_user_kernel(user, panels, f, n_items, first_panel, selection)
}

/// One user against a run of panels: `score[c] = Σ_j user[j] · panel[j][c]`
/// in ascending `j`, as [`tile_scores`] sums.
#[inline(always)]
fn single_user_kernel(
    user: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    first_panel: usize,
    selection: &mut UserSelection,
) {
    for (p, panel) in panels.chunks_exact(f * TILE_ITEMS).enumerate() {
        let first_item = (first_panel + p) * TILE_ITEMS;
        let items_here = TILE_ITEMS.min(n_items - first_item);
        let mut acc = [0f32; TILE_ITEMS];
        for (j, panel_row) in panel.chunks_exact(TILE_ITEMS).enumerate().take(f) {
            let x = user[j];
            for c in 0..TILE_ITEMS {
                acc[c] += x * panel_row[c];
            }
        }
        let min_score = selection.top.min_score();
        if acc.iter().any(|&s| s >= min_score) {
            for (c, &score) in acc[..items_here].iter().enumerate() {
                selection.offer((first_item + c) as u32, score);
            }
        }
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn packed_single_user_equals_batch_bit_for_bit() {
        let (n_users, n_items, f) = (7, 9_000, 13);
        let mut rng = Rng::new(3);
        let users: Vec<f32> = (0..n_users * f).map(|_| rng.normal() as f32).collect();
        let items: Vec<f32> = (0..n_items * f).map(|_| rng.normal() as f32).collect();
        let exclude = Csr::from_triplets(
            n_users,
            n_items,
            &[0, 0, 3],
            &[5, 77, 8_999],
            &[1.0, 1.0, 1.0],
        )
        .unwrap();
        let ids: Vec<u32> = (0..n_users as u32).collect();
        let batch = recommend_batch(&users, &items, f, &ids, 25, Some(&exclude));
        let packed = PackedItems::new(&items, f);
        for u in 0..n_users {
            let single = packed.top_k(&users[u * f..(u + 1) * f], 25, exclude.row(u).0);
            assert_eq!(single, batch[u], "user {u}");
        }
        // Trained-model-like factors, many users: the half-precision
        // candidate scan never loses an exact top-k item.
        let many: Vec<f32> = (0..500 * f).map(|_| rng.normal() as f32 * 0.3).collect();
        let ids: Vec<u32> = (0..500).collect();
        for k in [10, 40] {
            let exact = recommend_batch(&many, &items, f, &ids, k, None);
            for u in 0..500 {
                assert_eq!(packed.top_k(&many[u * f..(u + 1) * f], k, &[]), exact[u], "user {u}, k {k}");
            }
        }
        assert!(packed.top_k(&users[..f], 0, &[]).is_empty());
        assert_eq!(packed.top_k(&users[..f], 100_000, &[]).len(), n_items);
    }
}
