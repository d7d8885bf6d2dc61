//! The item-to-item kernel: co-occurrence and sequential rules counted over
//! sessions, each product's best neighbours kept.
//!
//! Input: the events as dense product indices, grouped by session and
//! ordered within it (`products`), with where each session starts
//! (`starts`, one more entry for the end). For every product `a`:
//!
//! - **co-occurrence** `cooc[a][b]`: the number of (event of `a`, event of
//!   `b`) pairs of one session at most `cooc_window` positions apart, in
//!   either order (the whole session when `cooc_window` is 0): symmetric.
//! - **sequence** `seq[a][b]`: over events of `b` that follow an event of
//!   `a` in its session by `d` steps, `1 ≤ d ≤ seq_window`, the sum of
//!   `1 / d` (sequential rules with the 1/distance decay).
//!
//! A product is never its own neighbour. The work runs per product over an
//! inverted index (product → its events), so it needs 12 bytes per event
//! and a dense accumulator per thread, whatever the number of distinct
//! pairs ([`memory_bytes`]); each product then keeps its `neighbours` best
//! of each kind (ties: the smaller index first).
//!
//! [`neighbours_and_prefixes`] counts in the same pass the neighbours of
//! each session's first steps alone (the steps before a time cut): the
//! lists a count over those steps gives, for a second accumulator instead
//! of a second pass.

use rayon::prelude::*;

/// The two kinds of neighbour rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cooccurrence,
    Sequence,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cooccurrence => "cooccurrence",
            Kind::Sequence => "sequence",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Windows {
    /// Co-occurring events at most this many positions apart; 0: anywhere
    /// in the session.
    pub cooc: usize,
    /// Following events at most this many positions later (≥ 1).
    pub seq: usize,
}

/// One product's neighbours of one kind, best first.
pub type Neighbours = Vec<(u32, f32)>;

/// Each product's `(cooccurrence, sequence)` lists, indexed by product.
pub type Lists = Vec<(Neighbours, Neighbours)>;

/// Bytes the kernel holds for `events` events of `n_products` products
/// on `threads` threads, keeping `neighbours` per product and kind.
pub fn memory_bytes(events: usize, n_products: usize, neighbours: usize, threads: usize) -> u64 {
    let index = 12 * events as u64 + 4 * (n_products as u64 + 1);
    let scratch = threads.max(1) as u64 * 16 * n_products as u64;
    let kept = 2 * 8 * (n_products as u64) * neighbours.min(n_products) as u64;
    index + scratch + kept
}

/// [`memory_bytes`] of [`neighbours_and_prefixes`]: a second accumulator
/// per thread, the prefixes' lists and a step count per session.
pub fn memory_bytes_with_prefixes(
    events: usize,
    sessions: usize,
    n_products: usize,
    neighbours: usize,
    threads: usize,
) -> u64 {
    let twice = threads.max(1) as u64 * 8 * n_products as u64
        + 2 * 8 * (n_products as u64) * neighbours.min(n_products) as u64;
    memory_bytes(events, n_products, neighbours, threads) + twice + 4 * sessions as u64
}

/// The `k` largest of `scores` (indices with non-zero score listed in
/// `touched`), best first, ties by index.
fn best(scores: &[f32], touched: &[u32], k: usize) -> Neighbours {
    let mut list: Neighbours = touched.iter().map(|&b| (b, scores[b as usize])).collect();
    let order = |x: &(u32, f32), y: &(u32, f32)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
    if list.len() > k {
        list.select_nth_unstable_by(k, order);
        list.truncate(k);
    }
    list.sort_unstable_by(order);
    list
}

/// Per-thread accumulators over all products (`prefix_*`: the prefixes'
/// counts, empty when none are counted).
struct Scratch {
    cooc: Vec<f32>,
    seq: Vec<f32>,
    prefix_cooc: Vec<f32>,
    prefix_seq: Vec<f32>,
    touched: Vec<u32>,
    seen: Vec<bool>,
}

impl Scratch {
    fn new(n: usize, prefixes: bool) -> Self {
        let m = if prefixes { n } else { 0 };
        Scratch {
            cooc: vec![0.0; n],
            seq: vec![0.0; n],
            prefix_cooc: vec![0.0; m],
            prefix_seq: vec![0.0; m],
            touched: Vec::new(),
            seen: vec![false; n],
        }
    }
    fn touch(&mut self, b: u32) {
        if !self.seen[b as usize] {
            self.seen[b as usize] = true;
            self.touched.push(b);
        }
    }
    fn clear(&mut self) {
        let prefixes = !self.prefix_cooc.is_empty();
        for &b in &self.touched {
            self.cooc[b as usize] = 0.0;
            self.seq[b as usize] = 0.0;
            if prefixes {
                self.prefix_cooc[b as usize] = 0.0;
                self.prefix_seq[b as usize] = 0.0;
            }
            self.seen[b as usize] = false;
        }
        self.touched.clear();
    }
}

/// Each product's best `neighbours` co-occurring and following products:
/// `(cooccurrence, sequence)` lists indexed by product.
pub fn neighbours(
    products: &[u32],
    starts: &[usize],
    n_products: usize,
    windows: Windows,
    neighbours: usize,
) -> Lists {
    count(products, starts, None, n_products, windows, neighbours)
        .into_iter()
        .map(|(all, _)| all)
        .collect()
}

/// [`neighbours`], and the same lists counted over the first `prefix[s]`
/// steps of each session `s` alone (as if the sessions ended there), in
/// one pass: `(all, prefixes)` indexed by product.
pub fn neighbours_and_prefixes(
    products: &[u32],
    starts: &[usize],
    prefix: &[u32],
    n_products: usize,
    windows: Windows,
    neighbours: usize,
) -> (Lists, Lists) {
    assert_eq!(prefix.len() + 1, starts.len(), "one prefix per session");
    count(
        products,
        starts,
        Some(prefix),
        n_products,
        windows,
        neighbours,
    )
    .into_iter()
    .unzip()
}

/// Each product's lists, and its prefixes' lists when `prefix` is given
/// (else empty).
fn count(
    products: &[u32],
    starts: &[usize],
    prefix: Option<&[u32]>,
    n_products: usize,
    windows: Windows,
    neighbours: usize,
) -> Vec<((Neighbours, Neighbours), (Neighbours, Neighbours))> {
    assert!(windows.seq >= 1, "the sequence window is at least 1");
    // The inverted index: each product's events, and each event's session.
    let mut offsets = vec![0u32; n_products + 1];
    for &p in products {
        offsets[p as usize + 1] += 1;
    }
    for i in 0..n_products {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut events = vec![0u32; products.len()];
    for (e, &p) in products.iter().enumerate() {
        events[fill[p as usize] as usize] = e as u32;
        fill[p as usize] += 1;
    }
    drop(fill);
    let mut session_of = vec![0u32; products.len()];
    for s in 0..starts.len().saturating_sub(1) {
        session_of[starts[s]..starts[s + 1]].fill(s as u32);
    }
    let kept = |scores: &[f32], touched: &[u32]| {
        let touched: Vec<u32> = touched
            .iter()
            .copied()
            .filter(|&b| scores[b as usize] > 0.0)
            .collect();
        best(scores, &touched, neighbours)
    };
    (0..n_products)
        .into_par_iter()
        .map_init(
            || Scratch::new(n_products, prefix.is_some()),
            |scratch, a| {
                let own = &events[offsets[a] as usize..offsets[a + 1] as usize];
                for &e in own {
                    let e = e as usize;
                    let s = session_of[e] as usize;
                    let (lo, hi) = (starts[s], starts[s + 1]);
                    // The session's steps before its prefix's end (none
                    // when no prefix is counted).
                    let cut = prefix.map_or(lo, |p| lo + p[s] as usize);
                    let (from, to) = if windows.cooc == 0 {
                        (lo, hi)
                    } else {
                        (
                            e.saturating_sub(windows.cooc).max(lo),
                            (e + windows.cooc + 1).min(hi),
                        )
                    };
                    let end = (e + windows.seq + 1).min(hi);
                    // Co-occurrences within the prefix go to its own tally
                    // only, the others to the whole's: counts are whole
                    // numbers, so their sum is the whole's count exactly.
                    let split = if e < cut { to.min(cut).max(from) } else { from };
                    for &b in &products[from..split] {
                        if b as usize != a {
                            scratch.touch(b);
                            scratch.prefix_cooc[b as usize] += 1.0;
                        }
                    }
                    for &b in &products[split..to] {
                        if b as usize != a {
                            scratch.touch(b);
                            scratch.cooc[b as usize] += 1.0;
                        }
                    }
                    for (distance, &b) in (1..).zip(&products[e + 1..end]) {
                        if b as usize != a {
                            scratch.touch(b);
                            scratch.seq[b as usize] += 1.0 / distance as f32;
                        }
                    }
                    if e < cut {
                        // The same following steps, in the same order,
                        // within the prefix: the sums a count of the
                        // prefixes alone makes, bit for bit.
                        for (distance, &b) in (1..).zip(&products[e + 1..end.min(cut)]) {
                            if b as usize != a {
                                scratch.prefix_seq[b as usize] += 1.0 / distance as f32;
                            }
                        }
                    }
                }
                if prefix.is_some() {
                    for &b in &scratch.touched {
                        scratch.cooc[b as usize] += scratch.prefix_cooc[b as usize];
                    }
                }
                let all = (
                    kept(&scratch.cooc, &scratch.touched),
                    kept(&scratch.seq, &scratch.touched),
                );
                let prefixes = if prefix.is_some() {
                    (
                        kept(&scratch.prefix_cooc, &scratch.touched),
                        kept(&scratch.prefix_seq, &scratch.touched),
                    )
                } else {
                    Default::default()
                };
                scratch.clear();
                (all, prefixes)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: Windows = Windows { cooc: 0, seq: 10 };

    /// Sessions given as product lists, into (products, starts).
    fn flat(sessions: &[&[u32]]) -> (Vec<u32>, Vec<usize>) {
        let mut products = Vec::new();
        let mut starts = vec![0];
        for s in sessions {
            products.extend_from_slice(s);
            starts.push(products.len());
        }
        (products, starts)
    }

    /// Every pair counted by the definition, with no index and no bound.
    fn oracle(sessions: &[&[u32]], n: usize, w: Windows) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mut cooc = vec![vec![0.0f32; n]; n];
        let mut seq = vec![vec![0.0f32; n]; n];
        for s in sessions {
            for i in 0..s.len() {
                for j in 0..s.len() {
                    let d = i.abs_diff(j);
                    if s[i] == s[j] {
                        continue;
                    }
                    if w.cooc == 0 || d <= w.cooc {
                        cooc[s[i] as usize][s[j] as usize] += 1.0;
                    }
                    if j > i && d <= w.seq {
                        seq[s[i] as usize][s[j] as usize] += 1.0 / d as f32;
                    }
                }
            }
        }
        (cooc, seq)
    }

    #[test]
    fn counts_by_hand() {
        // Sessions [0 1 2], [1 0], [0 2 2 1].
        let sessions: &[&[u32]] = &[&[0, 1, 2], &[1, 0], &[0, 2, 2, 1]];
        let (p, s) = flat(sessions);
        let got = neighbours(&p, &s, 3, WHOLE, 10);
        // 0 with 1: once in each session = 3; 0 with 2: 1 + 2 = 3.
        assert_eq!(got[0].0, vec![(1, 3.0), (2, 3.0)]);
        // 2 with 1: once in s1, twice in s3 (two events of 2) = 3; with 0: 3.
        assert_eq!(got[2].0, vec![(0, 3.0), (1, 3.0)]);
        // 0 then 1: s1 d=1 (1), s3 d=3 (1/3): 4/3; 0 then 2: s1 d=2 (1/2),
        // s3 d=1 and d=2 (1 + 1/2): 2.
        assert_eq!(got[0].1, vec![(2, 2.0), (1, 1.0 + 1.0 / 3.0)]);
        // 1 then 2: s1 d=1 = 1; 1 then 0: s2 d=1 = 1 (ties by index).
        assert_eq!(got[1].1, vec![(0, 1.0), (2, 1.0)]);
        // 2 then 1: s3 d=2 and d=1: 1.5; 2 never precedes 0.
        assert_eq!(got[2].1, vec![(1, 1.5)]);
    }

    #[test]
    fn windows_limit_the_pairs() {
        let sessions: &[&[u32]] = &[&[0, 1, 2, 3]];
        let (p, s) = flat(sessions);
        let got = neighbours(&p, &s, 4, Windows { cooc: 1, seq: 2 }, 10);
        assert_eq!(got[0].0, vec![(1, 1.0)]);
        assert_eq!(got[1].0, vec![(0, 1.0), (2, 1.0)]);
        assert_eq!(got[0].1, vec![(1, 1.0), (2, 0.5)]);
        assert!(got[3].1.is_empty());
    }

    #[test]
    fn matches_the_definition_and_keeps_the_best() {
        let mut rng = crate::rng::Rng::new(7);
        let n = 40;
        let owned: Vec<Vec<u32>> = (0..300)
            .map(|_| {
                let len = 1 + rng.below(12) as usize;
                (0..len).map(|_| rng.below(n as u64) as u32).collect()
            })
            .collect();
        let sessions: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        for w in [WHOLE, Windows { cooc: 3, seq: 2 }] {
            let (p, s) = flat(&sessions);
            let (cooc, seq) = oracle(&sessions, n, w);
            let k = 5;
            let got = neighbours(&p, &s, n, w, k);
            for a in 0..n {
                for (list, full) in [(&got[a].0, &cooc[a]), (&got[a].1, &seq[a])] {
                    let mut want: Vec<(u32, f32)> = full
                        .iter()
                        .enumerate()
                        .filter(|(_, &x)| x > 0.0)
                        .map(|(b, &x)| (b as u32, x))
                        .collect();
                    want.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                    want.truncate(k);
                    assert_eq!(list.len(), want.len());
                    // Same scores in the same order, each the neighbour's own
                    // (summation order may swap near-ties of equal sums).
                    for (g, w) in list.iter().zip(&want) {
                        assert!((g.1 - w.1).abs() < 1e-4, "product {a}");
                        assert!((full[g.0 as usize] - g.1).abs() < 1e-4, "product {a}");
                    }
                }
            }
        }
    }

    #[test]
    fn prefixes_are_counted_as_if_the_sessions_ended_there() {
        let mut rng = crate::rng::Rng::new(11);
        let n = 30;
        let owned: Vec<Vec<u32>> = (0..200)
            .map(|_| {
                let len = 1 + rng.below(10) as usize;
                (0..len).map(|_| rng.below(n as u64) as u32).collect()
            })
            .collect();
        // Some sessions wholly before the cut, some wholly after, most cut
        // inside.
        let prefix: Vec<u32> = owned
            .iter()
            .map(|s| rng.below(s.len() as u64 + 1) as u32)
            .collect();
        let sessions: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        let firsts: Vec<&[u32]> = owned
            .iter()
            .zip(&prefix)
            .map(|(s, &p)| &s[..p as usize])
            .collect();
        assert!(prefix.contains(&0));
        assert!(owned
            .iter()
            .zip(&prefix)
            .any(|(s, &p)| p as usize == s.len()));
        for w in [WHOLE, Windows { cooc: 2, seq: 3 }] {
            let (p, s) = flat(&sessions);
            let (all, before) = neighbours_and_prefixes(&p, &s, &prefix, n, w, 5);
            assert_eq!(all, neighbours(&p, &s, n, w, 5));
            let (fp, fs) = flat(&firsts);
            // The same lists, bit for bit, as a count of the prefixes alone.
            assert_eq!(before, neighbours(&fp, &fs, n, w, 5));
            assert!(before.iter().any(|l| !l.0.is_empty()));
            assert_ne!(before, all);
        }
    }

    #[test]
    fn memory_grows_with_events_not_pairs() {
        let small = memory_bytes(1_000, 100, 10, 2);
        let large = memory_bytes(2_000, 100, 10, 2);
        assert_eq!(large - small, 12_000);
    }
}
