//! Scoring a session's next products through the item-to-item rows.
//!
//! For a session of products `p_0 … p_{n-1}` (oldest first), each step
//! weighs `decay^(n-1-i)` (the last step 1), and a candidate `b` scores
//!
//! ```text
//! Σ_i decay^(n-1-i) · ( sequence · seq[p_i][b] / max_b' seq[p_i][b']
//!                     + cooccurrence · cooc[p_i][b] / max_b' cooc[p_i][b']
//!                     + repeat · [p_i = b] )
//! ```
//!
//! (steps whose weight falls below [`MIN_STEP_WEIGHT`] are left out, so only
//! the latest [`steps_read`] steps of a session move its list). Each row is
//! scaled by its best neighbour so a product seen in many
//! sessions does not drown the others. `repeat` re-offers products the
//! session already has (a third of next clicks in real sessions are such
//! products); the product the session is on is never offered (when the
//! session is on a product the model does not know, every known product of
//! the session may be). Slots left are filled by popularity (step counts) and marked
//! so ([`Source::Popular`]).

use super::ItemModel;
use crate::isa::vector::prefetch_row;

/// A step weighing less than this (after the decay of the steps after it)
/// no longer moves a list: it and every older step are left out.
pub const MIN_STEP_WEIGHT: f32 = 1e-3;

/// How many of a session's latest steps [`Scorer::recommend`] reads at
/// `decay`, at most `most`: the same float steps as its loop (the last step
/// weighs 1, each earlier one `decay` times the next, until a weight falls
/// below [`MIN_STEP_WEIGHT`]). 10 at the default 0.5; `most` when the decay
/// never falls that low (1 or more, or NaN).
pub fn steps_read(decay: f32, most: usize) -> usize {
    let mut weight = 1.0f32;
    let mut n = 0;
    while n < most {
        n += 1;
        weight *= decay;
        if weight < MIN_STEP_WEIGHT {
            break;
        }
    }
    n
}

/// The blend of the item-to-item signals for sessions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SessionBlend {
    pub sequence: f32,
    pub cooccurrence: f32,
    pub repeat: f32,
    pub decay: f32,
}

impl Default for SessionBlend {
    /// Chosen on the earlier parts of the REES46 head and the Diginetica
    /// sample (see benches/next_click.py); reported on the later parts.
    fn default() -> Self {
        SessionBlend {
            sequence: 1.0,
            cooccurrence: 0.5,
            repeat: 2.0,
            decay: 0.5,
        }
    }
}

impl SessionBlend {
    /// The weights by their parameter names (also the `kind` of the model
    /// rows that store them).
    pub const NAMES: [&'static str; 4] = [
        "sequence_weight",
        "cooccurrence_weight",
        "repeat_weight",
        "decay",
    ];

    pub fn values(&self) -> [f32; 4] {
        [self.sequence, self.cooccurrence, self.repeat, self.decay]
    }

    /// This blend with the weight called `name` set to `value`; `None` for
    /// another name.
    pub fn with(mut self, name: &str, value: f32) -> Option<Self> {
        match name {
            "sequence_weight" => self.sequence = value,
            "cooccurrence_weight" => self.cooccurrence = value,
            "repeat_weight" => self.repeat = value,
            "decay" => self.decay = value,
            _ => return None,
        }
        Some(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Scored through the session's products.
    Items,
    /// A popular product filling the list.
    Popular,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Items => "item-to-item",
            Source::Popular => "popular",
        }
    }
}

/// Reusable buffers for scoring many sessions.
#[derive(Default)]
pub struct Scorer {
    scores: Vec<f32>,
    /// The products scored, in the order first scored: the first
    /// `n_touched` (room for more after them).
    touched: Vec<u32>,
    n_touched: usize,
    /// The sort keys of the products scored.
    keys: Vec<u64>,
}

impl Scorer {
    /// The `k` best next products of `session` (its known products as
    /// dense indices, oldest first), best first, with their scores and
    /// sources. `last` is the product the session is on, when the model
    /// knows it (never offered); `popular` is the model's products in
    /// descending popularity (see [`popular_order`]).
    pub fn recommend(
        &mut self,
        model: &ItemModel,
        popular: &[u32],
        session: &[u32],
        last: Option<u32>,
        blend: &SessionBlend,
        k: usize,
    ) -> Vec<(u32, f32, Source)> {
        let n = model.product_ids.len();
        if self.scores.len() != n {
            self.scores = vec![0.0; n];
        }
        // The lists of the steps read, asked for up front: each sits at
        // its own place in memory, and read one after the other every
        // step waited on two misses in turn (the list, then its entries).
        let read = &session[session.len() - steps_read(blend.decay, session.len())..];
        for &p in read {
            prefetch_row(std::slice::from_ref(&model.seq[p as usize]));
            prefetch_row(std::slice::from_ref(&model.cooc[p as usize]));
        }
        for &p in read {
            prefetch_row(&model.seq[p as usize]);
            prefetch_row(&model.cooc[p as usize]);
        }
        let mut weight = 1.0f32;
        for &p in session.iter().rev() {
            let p = p as usize;
            for (list, w) in [
                (&model.seq[p], blend.sequence),
                (&model.cooc[p], blend.cooccurrence),
            ] {
                let Some(top) = list.first().map(|x| x.1) else {
                    continue;
                };
                if w <= 0.0 || top <= 0.0 {
                    continue;
                }
                let scale = weight * w / top;
                self.room(list.len());
                for &(b, s) in list {
                    self.add(b, scale * s);
                }
            }
            if blend.repeat > 0.0 {
                self.room(1);
                self.add(p as u32, weight * blend.repeat);
            }
            weight *= blend.decay;
            // Steps this far back no longer move a list (`steps_read`
            // counts the steps read with the same arithmetic).
            if weight < MIN_STEP_WEIGHT {
                break;
            }
        }
        // Best first, ties by index: as keys, the score's bits (positive
        // floats order as their bits) complemented, then the index, so
        // the k smallest keys are the list (no comparison closure).
        self.keys.clear();
        self.keys
            .extend(self.touched[..self.n_touched].iter().filter_map(|&b| {
                let s = self.scores[b as usize];
                (Some(b) != last && s > 0.0).then(|| (u64::from(!s.to_bits()) << 32) | u64::from(b))
            }));
        if self.keys.len() > k {
            self.keys.select_nth_unstable(k);
            self.keys.truncate(k);
        }
        self.keys.sort_unstable();
        let mut list: Vec<(u32, f32, Source)> = Vec::with_capacity(self.keys.len());
        list.extend(self.keys.iter().map(|&key| {
            let b = key as u32;
            (b, self.scores[b as usize], Source::Items)
        }));
        for &b in &self.touched[..self.n_touched] {
            self.scores[b as usize] = 0.0;
        }
        self.n_touched = 0;
        for &b in popular {
            if list.len() >= k {
                break;
            }
            if Some(b) != last && !list.iter().any(|x| x.0 == b) {
                list.push((b, 0.0, Source::Popular));
            }
        }
        list
    }

    /// Makes room in `touched` for `more` products.
    fn room(&mut self, more: usize) {
        if self.touched.len() < self.n_touched + more {
            self.touched.resize(self.n_touched + more, 0);
        }
    }

    /// Adds `x` to the score of `b`, listing `b` as touched when its score
    /// was 0 (written either way, counted only then: no branch on the
    /// score, which no predictor guesses). Needs [`room`](Self::room).
    fn add(&mut self, b: u32, x: f32) {
        let s = &mut self.scores[b as usize];
        self.touched[self.n_touched] = b;
        self.n_touched += usize::from(*s == 0.0);
        *s += x;
    }
}

/// What each step of `session` adds to candidate `b`'s score in
/// [`Scorer::recommend`] (the same weights, in the same float steps):
/// `(step product, part)` for the steps that add something, the latest
/// first; the parts sum to the score.
pub fn step_parts(
    model: &ItemModel,
    session: &[u32],
    blend: &SessionBlend,
    b: u32,
) -> Vec<(u32, f32)> {
    let mut parts = Vec::new();
    let mut weight = 1.0f32;
    for &p in session.iter().rev() {
        let mut part = 0.0f32;
        for (list, w) in [
            (&model.seq[p as usize], blend.sequence),
            (&model.cooc[p as usize], blend.cooccurrence),
        ] {
            let Some(top) = list.first().map(|x| x.1) else {
                continue;
            };
            if w <= 0.0 || top <= 0.0 {
                continue;
            }
            let scale = weight * w / top;
            part += list
                .iter()
                .filter(|x| x.0 == b)
                .map(|x| scale * x.1)
                .sum::<f32>();
        }
        if blend.repeat > 0.0 && p == b {
            part += weight * blend.repeat;
        }
        if part != 0.0 {
            parts.push((p, part));
        }
        weight *= blend.decay;
        if weight < MIN_STEP_WEIGHT {
            break;
        }
    }
    parts
}

/// Product indices by descending step count (ties: smaller id first).
pub fn popular_order(counts: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..counts.len() as u32).collect();
    order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Products 0..5; 0 is followed by 1 (score 2) and 2 (score 1), 3 by 4.
    fn model() -> ItemModel {
        ItemModel {
            product_ids: vec![10, 11, 12, 13, 14],
            cooc: vec![
                vec![(1, 4.0), (3, 2.0)],
                vec![],
                vec![],
                vec![(4, 1.0)],
                vec![],
            ],
            seq: vec![
                vec![(1, 2.0), (2, 1.0)],
                vec![],
                vec![],
                vec![(4, 1.0)],
                vec![],
            ],
            counts: vec![5, 1, 2, 9, 0],
        }
    }

    #[test]
    fn scores_by_hand() {
        let m = model();
        let pop = popular_order(&m.counts);
        assert_eq!(pop, vec![3, 0, 2, 1, 4]);
        let blend = SessionBlend {
            sequence: 1.0,
            cooccurrence: 0.5,
            repeat: 0.25,
            decay: 0.5,
        };
        // Session 3 then 0: step 0 weighs 1, step 3 weighs 0.5.
        // 1: seq 2/2 + cooc 0.5 * 4/4 = 1.5; 2: seq 1/2 = 0.5;
        // 3: cooc 0.5 * 2/4 = 0.25 plus repeat 0.5 * 0.25 = 0.375;
        // 4: 0.5 * (1/1 + 0.5 * 1/1) = 0.75; 0 is the last product.
        let got = Scorer::default().recommend(&m, &pop, &[3, 0], Some(0), &blend, 3);
        let want = [(1, 1.5), (4, 0.75), (2, 0.5)];
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!((g.1 - w.1).abs() < 1e-6, "{got:?}");
            assert_eq!(g.2, Source::Items);
        }
        let all = Scorer::default().recommend(&m, &pop, &[3, 0], Some(0), &blend, 5);
        assert_eq!(all[3].0, 3);
        assert!((all[3].1 - 0.375).abs() < 1e-6);
        // The same scores split by step, the latest first: 3 gets 0.25 from
        // step 0 and 0.125 from itself (step 3, repeat); 4 only from step 3;
        // each score is the sum of its parts.
        assert_eq!(
            step_parts(&m, &[3, 0], &blend, 3),
            vec![(0, 0.25), (3, 0.125)]
        );
        assert_eq!(step_parts(&m, &[3, 0], &blend, 4), vec![(3, 0.75)]);
        assert!(step_parts(&m, &[3, 0], &blend, 2).len() == 1);
        for (b, score, _) in &all {
            let sum: f32 = step_parts(&m, &[3, 0], &blend, *b)
                .iter()
                .map(|x| x.1)
                .sum();
            assert!((sum - score).abs() < 1e-6, "{b}: {sum} vs {score}");
        }
    }

    #[test]
    fn steps_read_are_the_steps_that_move_a_list() {
        assert_eq!(steps_read(0.5, 100), 10);
        assert_eq!(steps_read(0.0, 100), 1);
        assert_eq!(steps_read(0.8, 100), 31);
        assert_eq!(steps_read(1.0, 32), 32);
        assert_eq!(steps_read(f32::NAN, 32), 32);
        // A long session scores as its last steps_read steps do: products
        // 0..5 cycling with no neighbours, only re-offering (repeat), so
        // every step read adds its weight to its own product.
        let m = model();
        let blend = SessionBlend {
            sequence: 1.0,
            cooccurrence: 0.5,
            repeat: 1.0,
            decay: 0.5,
        };
        let long: Vec<u32> = (0..40).map(|i| [1, 2, 4][i % 3]).collect();
        let n = steps_read(blend.decay, 100);
        let all = Scorer::default().recommend(&m, &[], &long, None, &blend, 5);
        let tail = Scorer::default().recommend(&m, &[], &long[long.len() - n..], None, &blend, 5);
        let shorter =
            Scorer::default().recommend(&m, &[], &long[long.len() - n + 1..], None, &blend, 5);
        assert_eq!(all, tail);
        assert_ne!(all, shorter);
    }

    #[test]
    fn unknown_or_lone_products_get_popular_ones() {
        let m = model();
        let pop = popular_order(&m.counts);
        let blend = SessionBlend::default();
        // Product 4 has no neighbours: popular products, 4 itself left out.
        let got = Scorer::default().recommend(&m, &pop, &[4], Some(4), &blend, 3);
        assert_eq!(
            got.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
            vec![
                (3, Source::Popular),
                (0, Source::Popular),
                (2, Source::Popular)
            ]
        );
        // Filled after the scored ones, never twice.
        let got = Scorer::default().recommend(&m, &pop, &[3], Some(3), &blend, 3);
        assert_eq!(got[0].0, 4);
        assert_eq!(got[0].2, Source::Items);
        assert_eq!((got[1].0, got[1].2), (0, Source::Popular));
        assert_eq!((got[2].0, got[2].2), (2, Source::Popular));
        // A session on a product the model does not know offers its known
        // products again, the one before last included.
        let got = Scorer::default().recommend(&m, &pop, &[3, 0], None, &blend, 5);
        assert!(got.iter().any(|x| x.0 == 0 && x.2 == Source::Items));
    }
}
