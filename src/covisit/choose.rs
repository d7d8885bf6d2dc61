//! Choosing the session blend on a time split inside the training
//! sessions, and the next-click tally it is judged by.
//!
//! The sessions that end last ([`VALIDATION_SHARE`] of them) are held out;
//! the neighbours are counted on the others (the latest of them, up to
//! [`MAX_CHOICE_STEPS`] steps), and every candidate blend
//! ([`candidates`]) ranks the next step after each prefix of the held-out
//! sessions (at most [`MAX_PREFIXES`] prefixes, from the latest sessions).
//! The candidate with the largest HR@20 + MRR@20 over all targets plus the
//! same over targets new to the session wins; ties keep the earlier
//! candidate, the defaults first. A signal whose weight 0 wins is left out:
//! co-occurrence or re-offering the session's products are kept only where
//! the held-out sessions show they help.

use super::kernel::Windows;
use super::session::{popular_order, Scorer, SessionBlend};
use super::{ItemModel, Sessions};
use crate::budget::Budget;
use rayon::prelude::*;

/// The share of sessions (the latest by their last step) held out.
pub const VALIDATION_SHARE: f64 = 0.1;
/// At most this many held-out prefixes are scored (each by every
/// candidate: the choice's cost does not grow with the data).
pub const MAX_PREFIXES: usize = 5_000;
/// The neighbours the candidates are judged with are counted on at most
/// this many steps, those of the latest sessions before the held-out ones
/// (so the choice costs about the same on any amount of data).
pub const MAX_CHOICE_STEPS: usize = 1_000_000;
/// The list length the validation scores.
pub const VALIDATION_K: usize = 20;

/// A step's product unknown to the model (in the next-click evaluation).
pub const UNKNOWN: u32 = u32::MAX;

/// Hits and reciprocal ranks of one recommender over some prefixes:
/// `[all targets, new targets]`.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Tally {
    pub prefixes: [u64; 2],
    pub hits: [u64; 2],
    pub reciprocal: [f64; 2],
}

impl Tally {
    /// Counts one prefix whose next step is `target` (`new`: not in the
    /// prefix) against `list`.
    pub fn add(&mut self, list: &[u32], target: u32, new: bool) {
        let rank = list.iter().position(|&p| p == target && p != UNKNOWN);
        for class in [0, 1] {
            if class == 1 && !new {
                continue;
            }
            self.prefixes[class] += 1;
            if let Some(r) = rank {
                self.hits[class] += 1;
                self.reciprocal[class] += 1.0 / (r + 1) as f64;
            }
        }
    }

    pub fn merge(mut self, o: Tally) -> Tally {
        for c in 0..2 {
            self.prefixes[c] += o.prefixes[c];
            self.hits[c] += o.hits[c];
            self.reciprocal[c] += o.reciprocal[c];
        }
        self
    }

    /// HR + MRR over all targets plus over new ones (0 without prefixes).
    pub fn score(&self) -> f64 {
        (0..2)
            .filter(|&c| self.prefixes[c] > 0)
            .map(|c| (self.hits[c] as f64 + self.reciprocal[c]) / self.prefixes[c] as f64)
            .sum()
    }
}

/// The blends the validation chooses among, the defaults first: with and
/// without co-occurrence, with and without re-offering.
pub fn candidates() -> Vec<SessionBlend> {
    let d = SessionBlend::default();
    let mut list = vec![d];
    for cooccurrence in [0.0, 0.5] {
        for repeat in [0.0, 0.5, 2.0, 4.0] {
            let c = SessionBlend {
                cooccurrence,
                repeat,
                ..d
            };
            if c != d {
                list.push(c);
            }
        }
    }
    list
}

/// The chosen blend and how it was chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    pub blend: SessionBlend,
    /// How many held-out prefixes judged it (0: none, the defaults kept).
    pub prefixes: u64,
}

/// `sessions` split in time: the earlier ones (same product indices) and
/// the held-out ones' steps, latest first, up to `MAX_PREFIXES` prefixes.
fn split(sessions: &Sessions) -> (Sessions, Vec<Vec<u32>>) {
    let n = sessions.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        sessions.ends[a]
            .total_cmp(&sessions.ends[b])
            .then(a.cmp(&b))
    });
    let held = ((n as f64) * VALIDATION_SHARE).floor() as usize;
    let (earlier, later) = order.split_at(n - held);
    let mut train = Sessions {
        product_ids: Vec::new(),
        ..Sessions::default()
    };
    // The latest earlier sessions, up to MAX_CHOICE_STEPS steps.
    let mut steps = 0;
    let mut kept: Vec<usize> = earlier
        .iter()
        .rev()
        .copied()
        .take_while(|&s| {
            steps += sessions.starts[s + 1] - sessions.starts[s];
            steps <= MAX_CHOICE_STEPS
        })
        .collect();
    kept.sort_unstable();
    for &s in &kept {
        train.starts.push(train.products.len());
        train.products.extend_from_slice(sessions.session(s));
        train.keys.push(sessions.keys[s]);
        train.ends.push(sessions.ends[s]);
    }
    train.starts.push(train.products.len());
    let mut validation = Vec::new();
    let mut prefixes = 0;
    for &s in later.iter().rev() {
        let steps = sessions.session(s);
        if steps.len() < 2 {
            continue;
        }
        if prefixes >= MAX_PREFIXES {
            break;
        }
        prefixes += steps.len() - 1;
        validation.push(steps.to_vec());
    }
    (train, validation)
}

/// Each candidate's tally over `validation` with `model`.
pub fn tallies(model: &ItemModel, validation: &[Vec<u32>], blends: &[SessionBlend]) -> Vec<Tally> {
    let popular = popular_order(&model.counts);
    blends
        .par_iter()
        .map(|blend| {
            let mut scorer = Scorer::default();
            let mut tally = Tally::default();
            for session in validation {
                for t in 1..session.len() {
                    let (prefix, target) = (&session[..t], session[t]);
                    let list: Vec<u32> = scorer
                        .recommend(
                            model,
                            &popular,
                            prefix,
                            prefix.last().copied(),
                            blend,
                            VALIDATION_K,
                        )
                        .into_iter()
                        .map(|x| x.0)
                        .collect();
                    tally.add(&list, target, !prefix.contains(&target));
                }
            }
            tally
        })
        .collect()
}

/// The blend for `sessions`, chosen on their latest sessions; the defaults
/// when no held-out session has two steps.
pub fn choose(
    sessions: &Sessions,
    windows: Windows,
    neighbours: usize,
    threads: usize,
    budget: &Budget,
) -> anyhow::Result<Choice> {
    budget.check(
        "holding the validation split",
        sessions.products.len() as u64 * 8,
        "8 bytes per session step",
    )?;
    let (train, validation) = split(sessions);
    let defaults = Choice {
        blend: SessionBlend::default(),
        prefixes: 0,
    };
    if validation.is_empty() || train.is_empty() {
        return Ok(defaults);
    }
    let mut train = train;
    train.product_ids = sessions.product_ids.clone();
    let model = ItemModel::train(&train, windows, neighbours, threads, budget)?;
    drop(train);
    let blends = candidates();
    let scored = tallies(&model, &validation, &blends);
    let mut best = 0;
    for (i, t) in scored.iter().enumerate() {
        if t.score() > scored[best].score() {
            best = i;
        }
    }
    Ok(Choice {
        blend: blends[best],
        prefixes: scored[best].prefixes[0],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: Windows = Windows { cooc: 0, seq: 10 };

    /// Session `s` at orders `1000 s`, `1000 s + 1`, ...
    fn sessions(list: &[Vec<i64>]) -> Sessions {
        Sessions::of_lists(
            list.iter()
                .enumerate()
                .map(|(s, p)| ((s * 1000) as f64, p.as_slice())),
        )
    }

    #[test]
    fn tallies_count_hits_and_ranks() {
        let mut t = Tally::default();
        t.add(&[5, 6, 7], 6, true);
        t.add(&[5, 6, 7], 9, false);
        t.add(&[5, 6, 7], 7, false);
        assert_eq!(t.prefixes, [3, 1]);
        assert_eq!(t.hits, [2, 1]);
        assert!((t.reciprocal[0] - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        assert!((t.reciprocal[1] - 0.5).abs() < 1e-12);
        assert!((t.score() - ((2.0 + 0.5 + 1.0 / 3.0) / 3.0 + 1.5)).abs() < 1e-12);
        // An unknown target is never a hit, even against unknown steps.
        let mut u = Tally::default();
        u.add(&[UNKNOWN], UNKNOWN, true);
        assert_eq!(u.hits, [0, 0]);
    }

    #[test]
    fn the_split_holds_out_the_latest_sessions() {
        let list: Vec<Vec<i64>> = (0..20).map(|s| vec![s, s + 1, s]).collect();
        let s = sessions(&list);
        let (train, validation) = split(&s);
        assert_eq!(train.len(), 18);
        assert_eq!(validation.len(), 2);
        // Latest first: session 19 (products 19 20 19).
        let id = |i: u32| s.product_ids[i as usize];
        assert_eq!(
            validation[0].iter().map(|&p| id(p)).collect::<Vec<_>>(),
            vec![19, 20, 19]
        );
        assert!(train.ends.iter().all(|&e| e < 18_000.0));
    }

    /// With `revisit`: sessions a, r1, r2, a (a of 30 products, r1 and r2
    /// any of 30 others: only the return to a is predictable, and only by
    /// re-offering it). Without: a, 100 + a, r (the second step follows
    /// from the first; re-offering a only pushes the next step down).
    fn fixture(revisit: bool) -> Vec<Vec<i64>> {
        let mut rng = crate::rng::Rng::new(5);
        (0..400)
            .map(|_| {
                let a = rng.below(30) as i64;
                let mut r = || 300 + rng.below(30) as i64;
                if revisit {
                    vec![a, r(), r(), a]
                } else {
                    vec![a, 100 + a, r()]
                }
            })
            .collect()
    }

    #[test]
    fn re_offering_is_chosen_where_sessions_return_and_left_out_where_they_do_not() {
        let budget = Budget::from_setting("1 GB");
        let returning = sessions(&fixture(true));
        let with = choose(&returning, WINDOWS, 50, 1, &budget).unwrap();
        assert!(with.prefixes > 0);
        assert!(with.blend.repeat > 0.0, "{with:?}");
        // Won on the held-out sessions, not by a tie with the defaults.
        let (train, validation) = split(&returning);
        let train = Sessions {
            product_ids: returning.product_ids.clone(),
            ..train
        };
        let model = ItemModel::train(&train, WINDOWS, 50, 1, &budget).unwrap();
        let off = SessionBlend {
            repeat: 0.0,
            ..with.blend
        };
        let t = tallies(&model, &validation, &[with.blend, off]);
        assert!(t[0].score() > t[1].score() + 0.1, "{t:?}");
        // Without returns, re-offering the session's products only pushes
        // the right next product down: left out.
        let without = choose(&sessions(&fixture(false)), WINDOWS, 50, 1, &budget).unwrap();
        assert!(without.prefixes > 0);
        assert_eq!(without.blend.repeat, 0.0, "{without:?}");
    }

    #[test]
    fn too_few_sessions_keep_the_defaults() {
        let s = sessions(&[vec![1, 2], vec![2, 3]]);
        let c = choose(&s, WINDOWS, 10, 1, &Budget::from_setting("1 GB")).unwrap();
        assert_eq!(c.blend, SessionBlend::default());
        assert_eq!(c.prefixes, 0);
    }
}
