//! Bounded top-k selection: higher score first, ties to the smaller index,
//! NaN never selected.

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
    pub(super) heap: Vec<(u32, f32)>,
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

    /// A selection holding the best `k` of `candidates` (distinct
    /// indices; NaN ignored), as if each had been pushed, built in one
    /// pass instead of one sift per candidate.
    pub fn from_candidates(k: usize, candidates: &[(u32, f32)]) -> TopK {
        let mut heap = Vec::with_capacity(k);
        heap.extend(candidates.iter().copied().filter(|c| !c.1.is_nan()));
        keep_best(&mut heap, k);
        let mut top = TopK { k, heap };
        for pos in (0..top.heap.len() / 2).rev() {
            top.sift_down(pos);
        }
        top
    }

    /// The kept candidates in ranking order.
    pub fn into_sorted(mut self) -> Vec<(u32, f32)> {
        sort_ranked(&mut self.heap);
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

/// [`ranks_before`] as one integer, smaller first (a total order over
/// distinct indices, NaN aside: higher score first, equal scores, -0 and
/// +0 among them, by smaller index): the score's bits made monotone (after
/// `+ 0.0`, which turns -0 into +0) and inverted, then the index. One
/// comparison where the float comparison, its equality case and the index
/// comparison were three.
#[inline(always)]
fn rank_key(c: (u32, f32)) -> u64 {
    let bits = (c.1 + 0.0).to_bits();
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    ((!ascending as u64) << 32) | c.0 as u64
}

/// Lists this long or shorter are sorted by insertion: the selections
/// sorted here are short and mostly come close to ranking order (a user's
/// previous top, rescored, first), where a general sort's unpredictable
/// comparisons cost more than the few moves.
const INSERTION_SORTED: usize = 64;

/// Sorts `candidates` (no NaN) in ranking order.
fn sort_ranked(candidates: &mut [(u32, f32)]) {
    if candidates.len() > INSERTION_SORTED {
        candidates.sort_unstable_by_key(|c| rank_key(*c));
        return;
    }
    for at in 1..candidates.len() {
        let c = candidates[at];
        let key = rank_key(c);
        let mut to = at;
        while to > 0 && rank_key(candidates[to - 1]) > key {
            candidates[to] = candidates[to - 1];
            to -= 1;
        }
        candidates[to] = c;
    }
}

/// Keeps the best `k` of `candidates` (no NaN), in no particular order.
fn keep_best(candidates: &mut Vec<(u32, f32)>, k: usize) {
    if candidates.len() > k {
        if k > 0 {
            candidates.select_nth_unstable_by_key(k - 1, |c| rank_key(*c));
        }
        candidates.truncate(k);
    }
}

/// The best `k` of `candidates` (distinct indices) in ranking order, NaN
/// ignored: the list a [`TopK`] of them gives, by one selection and a sort
/// of the `k` kept (or, for short lists, one sort) instead of a heap
/// operation per candidate.
pub fn best_of(mut candidates: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    candidates.retain(|c| !c.1.is_nan());
    if candidates.len() > INSERTION_SORTED {
        keep_best(&mut candidates, k);
    }
    sort_ranked(&mut candidates);
    candidates.truncate(k);
    candidates
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

/// Per-user selection state while the items stream by in ascending order.
pub(super) struct UserSelection<'a> {
    pub(super) top: TopK,
    /// Items to skip, ascending.
    pub(super) excluded: std::borrow::Cow<'a, [u32]>,
    /// First position in `excluded` not below the items seen so far.
    pub(super) cursor: usize,
}

impl UserSelection<'_> {
    #[inline(always)]
    pub(super) fn offer(&mut self, item: u32, score: f32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// `best_of` and `from_candidates` keep what pushing each candidate
    /// keeps: same list, same bar, and the same pushes accepted after.
    #[test]
    fn selections_built_at_once_equal_pushing_one_by_one() {
        let mut rng = Rng::new(41);
        for trial in 0..400 {
            let n = (rng.next_u64() % 90) as usize;
            let k = (rng.next_u64() % 50) as usize;
            // Few distinct scores (ties), a NaN now and then, -0 and +0.
            let pick = [f32::NAN, -0.0, 0.0, 1.0, -2.5, 3.0, f32::INFINITY, 0.5];
            let mut keyed: Vec<(u64, u32)> =
                (0..n as u32 * 3).map(|i| (rng.next_u64(), i)).collect();
            keyed.sort_unstable();
            let indices: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
            let candidates: Vec<(u32, f32)> = indices[..n]
                .iter()
                .map(|&i| (i, pick[(rng.next_u64() % pick.len() as u64) as usize]))
                .collect();
            let mut pushed = TopK::new(k);
            for &(i, s) in &candidates {
                pushed.push(i, s);
            }
            let mut built = TopK::from_candidates(k, &candidates);
            assert_eq!(
                built.min_score().to_bits(),
                pushed.min_score().to_bits(),
                "trial {trial}"
            );
            // Later pushes behave the same.
            for j in 0..20u32 {
                let c = (
                    1000 + j,
                    pick[(rng.next_u64() % pick.len() as u64) as usize],
                );
                assert_eq!(
                    built.accepts(c.0, c.1),
                    pushed.accepts(c.0, c.1),
                    "trial {trial}"
                );
                built.push(c.0, c.1);
                pushed.push(c.0, c.1);
            }
            let want = pushed.into_sorted();
            let bits =
                |v: &[(u32, f32)]| v.iter().map(|c| (c.0, c.1.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(&built.into_sorted()), bits(&want), "trial {trial}");
            let mut again = TopK::new(k);
            for &(i, s) in &candidates {
                again.push(i, s);
            }
            let best = best_of(candidates.clone(), k);
            assert_eq!(bits(&best), bits(&again.into_sorted()), "trial {trial}");
            // In the order of the heap's own rule.
            assert!(
                best.windows(2).all(|w| ranks_before(w[0], w[1])),
                "trial {trial}: {best:?}"
            );
        }
    }

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
}
