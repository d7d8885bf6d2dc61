//! Defaults chosen on the user's own data: a time split inside the training
//! data, a small greedy search over ALS hyper-parameters and the serving
//! blend on it, and the choice that the final fit on all the data uses.
//! Nothing here knows DuckDB.
//!
//! The validation split: the pairs' events before the cut (by default 80 %
//! of the training data's time span) are the validation training data; the
//! products a user carted or bought at or after the cut are the targets (for
//! an interactions table without event types: every pair at or after the
//! cut). Users evaluated are those with training pairs and at least one
//! target, at most [`MAX_VALIDATION_USERS`] of them (a seeded hash picks
//! which), scored by NDCG@10 exactly as `evaluate_recommendations` scores:
//! products bought before the cut are excluded, products only seen may be
//! recommended and count as hits.
//!
//! The search ([`greedy_search`]) starts from plain ALS with the caller's
//! parameters at blend 0 and tries, one group at a time, keeping a change
//! only when it raises validation NDCG strictly:
//! 1. alpha × 4 and × 16 (2 fits);
//! 2. confidence `log` and `bm25` (2 fits);
//! 3. regularization × 10 (1 fit);
//! 4. a recency decay with a half-life of a quarter of the span (1 fit);
//! 5. blends 0.1, 0.3, 0.5 and 0.8 on the best fit (no fit: scoring only).
//!
//! That is [`SEARCH_FITS`] = 7 fits of [`SEARCH_ITERATIONS`] iterations on
//! the validation training data, plus the final fit. Plain ALS at blend 0 is
//! the starting point and every step must beat the best so far, so the
//! choice is never worse than plain ALS on validation.

use super::solver::AlsParams;
use super::weighting::{self, Confidence};
use super::{train_pairs_with, Pair, Trained};
use crate::evaluate::metrics::ranking_metrics;
use std::collections::{HashMap, HashSet};

/// Fraction of the training time span held out for validation.
pub const VALIDATION_SHARE: f64 = 0.2;
/// Users scored per candidate, at most: bounds the scoring cost.
pub const MAX_VALIDATION_USERS: usize = 10_000;
/// Iterations of each search fit (the final fit uses the caller's).
pub const SEARCH_ITERATIONS: usize = 5;
/// Fits the search runs (each on the validation training data).
pub const SEARCH_FITS: usize = 7;
/// List length the validation scores.
pub const VALIDATION_K: usize = 10;
const ALPHA_STEPS: [f32; 2] = [4.0, 16.0];
const REGULARIZATION_STEP: f32 = 10.0;
/// Half-life tried, as a share of the training span.
const HALF_LIFE_SHARE: f64 = 0.25;
const BLENDS: [f32; 4] = [0.1, 0.3, 0.5, 0.8];

/// One set of training choices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub alpha: f32,
    pub regularization: f32,
    pub confidence: Confidence,
    /// Recency half-life in seconds; 0 = no decay.
    pub half_life: f64,
}

impl Candidate {
    /// Plain ALS with the caller's parameters.
    pub fn plain(params: &AlsParams) -> Candidate {
        Candidate {
            alpha: params.alpha,
            regularization: params.regularization,
            confidence: Confidence::Raw,
            half_life: 0.0,
        }
    }

    /// The ALS parameters of this candidate, the rest taken from `base`.
    pub fn params(&self, base: &AlsParams, iterations: usize) -> AlsParams {
        AlsParams {
            alpha: self.alpha,
            regularization: self.regularization,
            iterations,
            ..base.clone()
        }
    }
}

/// One scored (candidate, blend).
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    pub candidate: Candidate,
    pub blend: f32,
    pub ndcg: f64,
}

/// What the search chose, and how it scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub candidate: Candidate,
    pub blend: f32,
    /// Validation NDCG@10 of the choice and of plain ALS at blend 0.
    pub ndcg: f64,
    pub plain_ndcg: f64,
    pub fits: usize,
    /// Every trial in the order it ran (plain ALS first).
    pub trials: Vec<Trial>,
}

/// The greedy search of the module documentation. `fit` trains a candidate
/// on the validation training data; `score` gives a fitted model's
/// validation NDCG at a blend. The best fit so far is kept, so blends are
/// scored without refitting.
pub fn greedy_search<F>(
    plain: Candidate,
    span: f64,
    mut fit: impl FnMut(&Candidate) -> anyhow::Result<F>,
    score: impl Fn(&F, f32) -> f64,
) -> anyhow::Result<Choice> {
    let mut trials = Vec::new();
    let mut best_fit = fit(&plain)?;
    let plain_ndcg = score(&best_fit, 0.0);
    trials.push(Trial { candidate: plain, blend: 0.0, ndcg: plain_ndcg });
    let (mut best, mut best_ndcg, mut fits) = (plain, plain_ndcg, 1);
    let mut groups: Vec<Vec<Box<dyn Fn(Candidate) -> Candidate>>> = Vec::new();
    groups.push(
        ALPHA_STEPS
            .iter()
            .map(|&m| Box::new(move |c: Candidate| Candidate { alpha: plain.alpha * m, ..c }) as Box<dyn Fn(Candidate) -> Candidate>)
            .collect(),
    );
    groups.push(
        [Confidence::Log, Confidence::Bm25]
            .into_iter()
            .map(|confidence| Box::new(move |c: Candidate| Candidate { confidence, ..c }) as Box<dyn Fn(Candidate) -> Candidate>)
            .collect(),
    );
    groups.push(vec![Box::new(move |c: Candidate| Candidate {
        regularization: plain.regularization * REGULARIZATION_STEP,
        ..c
    })]);
    if span > 0.0 && span.is_finite() {
        groups.push(vec![Box::new(move |c: Candidate| Candidate { half_life: span * HALF_LIFE_SHARE, ..c })]);
    }
    for group in &groups {
        // Every option of a group starts from the best before the group.
        let start = best;
        for change in group {
            let candidate = change(start);
            if candidate == start {
                continue;
            }
            let fitted = fit(&candidate)?;
            fits += 1;
            let ndcg = score(&fitted, 0.0);
            trials.push(Trial { candidate, blend: 0.0, ndcg });
            if ndcg > best_ndcg {
                (best, best_ndcg, best_fit) = (candidate, ndcg, fitted);
            }
        }
    }
    let mut blend = 0.0;
    for b in BLENDS {
        let ndcg = score(&best_fit, b);
        trials.push(Trial { candidate: best, blend: b, ndcg });
        if ndcg > best_ndcg {
            (blend, best_ndcg) = (b, ndcg);
        }
    }
    Ok(Choice { candidate: best, blend, ndcg: best_ndcg, plain_ndcg, fits, trials })
}

/// The validation data: training pairs before the cut and targets after it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValidationSplit {
    /// Pairs with their weights and counts from the events before the cut.
    pub(crate) train: Vec<Pair>,
    /// Each training pair's latest time before the cut (seconds; NaN if none).
    pub train_times: Vec<f64>,
    /// (user, product) carted or bought at or after the cut.
    pub targets: Vec<(i64, i64)>,
    /// The cut (seconds): the reference time of the recency decay.
    pub cut: f64,
    /// The span from the first event to the cut (seconds).
    pub span: f64,
}

impl ValidationSplit {
    /// The split of pairs that each carry one time (an interactions table):
    /// a pair at or after the cut is a target and not training data.
    /// `times` are seconds, NaN where unknown (such a pair stays training
    /// data). `None` when no pair has a time or all share one.
    pub(crate) fn by_time(pairs: &[Pair], times: &[f64]) -> Option<ValidationSplit> {
        let known = times.iter().copied().filter(|t| !t.is_nan());
        let (lo, hi) = known.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| (lo.min(t), hi.max(t)));
        if !(hi > lo) {
            return None;
        }
        let cut = lo + (hi - lo) * (1.0 - VALIDATION_SHARE);
        let mut split = ValidationSplit { cut, span: cut - lo, ..Default::default() };
        for (p, &t) in pairs.iter().zip(times) {
            if t >= cut {
                split.targets.push((p.user, p.product));
            } else {
                split.train.push(*p);
                split.train_times.push(t);
            }
        }
        Some(split)
    }

    /// Users with training pairs and targets, at most `max` of them, picked
    /// by a seeded hash of the user id; sorted by id.
    pub fn evaluated_users(&self, max: usize, seed: u64) -> Vec<i64> {
        let trained: HashSet<i64> = self.train.iter().map(|p| p.user).collect();
        let mut users: Vec<i64> = self.targets.iter().map(|t| t.0).filter(|u| trained.contains(u)).collect();
        users.sort_unstable();
        users.dedup();
        if users.len() > max {
            users.sort_by_key(|&u| (crate::rng::mix64(u as u64 ^ seed), u));
            users.truncate(max);
            users.sort_unstable();
        }
        users
    }
}

/// A fit on the validation data with the model's users evaluated.
pub(crate) struct ValidationFit {
    trained: Trained,
    users: Vec<u32>,
    held_out: Vec<Vec<u32>>,
}

/// Trains `candidate` on the validation training pairs (recency decay
/// relative to the cut, `iterations` iterations).
pub(crate) fn fit_validation(
    split: &ValidationSplit,
    users: &[i64],
    base: &AlsParams,
    candidate: &Candidate,
    iterations: usize,
) -> anyhow::Result<ValidationFit> {
    let mut pairs = split.train.clone();
    if candidate.half_life > 0.0 {
        let mut weights: Vec<f32> = pairs.iter().map(|p| p.weight).collect();
        weighting::decay(&mut weights, &split.train_times, split.cut, candidate.half_life);
        for (p, w) in pairs.iter_mut().zip(weights) {
            p.weight = w;
        }
    }
    let trained = train_pairs_with(pairs, &candidate.params(base, iterations), candidate.confidence)?;
    let model = &trained.serving;
    let wanted: HashSet<i64> = users.iter().copied().collect();
    let mut relevant: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut unseen = model.n_products() as u32;
    for &(user, product) in &split.targets {
        if !wanted.contains(&user) {
            continue;
        }
        let Some(u) = model.user(user) else { continue };
        // A product the validation model never saw cannot be hit.
        let id = model.product(product).unwrap_or_else(|| {
            unseen += 1;
            unseen
        });
        relevant.entry(u).or_default().push(id);
    }
    let mut model_users: Vec<u32> = relevant.keys().copied().collect();
    model_users.sort_unstable();
    let held_out = model_users.iter().map(|u| relevant[u].clone()).collect();
    Ok(ValidationFit { trained, users: model_users, held_out })
}

/// Validation NDCG@10 of a fit at `blend` (0 with no user to evaluate).
pub(crate) fn score_validation(fit: &ValidationFit, blend: f32) -> f64 {
    let model = &fit.trained.serving;
    let lists: Vec<Vec<u32>> = model
        .recommend_users(&fit.users, VALIDATION_K, blend, true)
        .into_iter()
        .map(|r| r.into_iter().map(|x| x.product).collect())
        .collect();
    ranking_metrics(&lists, &fit.held_out, VALIDATION_K, model.n_products())
        .ndcg
        .unwrap_or(0.0)
}

/// The whole search on a validation split; `None` when no user can be
/// evaluated (then the caller keeps its fixed parameters).
pub(crate) fn choose(split: &ValidationSplit, base: &AlsParams) -> anyhow::Result<Option<(Choice, usize)>> {
    let users = split.evaluated_users(MAX_VALIDATION_USERS, base.seed);
    if users.is_empty() {
        return Ok(None);
    }
    let iterations = base.iterations.min(SEARCH_ITERATIONS);
    let choice = greedy_search(
        Candidate::plain(base),
        split.span,
        |c| fit_validation(split, &users, base, c, iterations),
        score_validation,
    )?;
    Ok(Some((choice, users.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AlsParams {
        AlsParams { factors: 4, iterations: 10, ..AlsParams::default() }
    }

    #[test]
    fn search_runs_the_documented_steps_and_keeps_only_improvements() {
        // A made-up validation surface: bm25 helps, alpha 4 helps, alpha 16
        // hurts, regularization and recency do nothing, blend 0.3 helps.
        let span = 1000.0;
        let mut fitted = Vec::new();
        let choice = greedy_search(
            Candidate::plain(&base()),
            span,
            |c| {
                fitted.push(*c);
                Ok(*c)
            },
            |c: &Candidate, blend| {
                let mut s = 0.20;
                s += match c.alpha as i32 { 4 => 0.02, 16 => -0.05, _ => 0.0 };
                if c.confidence == Confidence::Bm25 {
                    s += 0.01;
                }
                if (blend - 0.3).abs() < 1e-6 {
                    s += 0.005;
                }
                s
            },
        )
        .unwrap();
        assert_eq!(choice.fits, SEARCH_FITS);
        assert_eq!(fitted.len(), SEARCH_FITS);
        assert_eq!(fitted[0], Candidate::plain(&base()));
        assert_eq!(choice.candidate.alpha, 4.0);
        assert_eq!(choice.candidate.confidence, Confidence::Bm25);
        assert_eq!(choice.candidate.regularization, 0.1);
        assert_eq!(choice.candidate.half_life, 0.0);
        // The half-life trial used a quarter of the span.
        assert_eq!(fitted[6].half_life, 250.0);
        assert_eq!(choice.blend, 0.3);
        assert!((choice.ndcg - 0.235).abs() < 1e-12);
        assert!((choice.plain_ndcg - 0.20).abs() < 1e-12);
        assert_eq!(choice.trials.len(), SEARCH_FITS + BLENDS.len());
    }

    #[test]
    fn nothing_beats_plain_als_then_plain_als_is_chosen() {
        let choice = greedy_search(Candidate::plain(&base()), 0.0, |c| Ok(*c), |c: &Candidate, blend| {
            if *c == Candidate::plain(&base()) && blend == 0.0 { 0.3 } else { 0.3 - 1e-9 }
        })
        .unwrap();
        assert_eq!(choice.candidate, Candidate::plain(&base()));
        assert_eq!(choice.blend, 0.0);
        // No time span: no recency trial, one fit fewer.
        assert_eq!(choice.fits, SEARCH_FITS - 1);
    }

    fn pair(user: i64, product: i64, weight: f32, category: i64) -> Pair {
        Pair { user, product, weight, purchases: 0, interactions: 1, category }
    }

    #[test]
    fn split_by_time_holds_out_the_last_fifth() {
        // Times 0..=100: the cut is at 80.
        let pairs = [pair(1, 10, 1.0, 0), pair(1, 11, 1.0, 0), pair(2, 10, 1.0, 0), pair(3, 12, 1.0, 0), pair(4, 13, 1.0, 0)];
        let times = [0.0, 80.0, 50.0, 100.0, f64::NAN];
        let split = ValidationSplit::by_time(&pairs, &times).unwrap();
        assert_eq!(split.cut, 80.0);
        assert_eq!(split.span, 80.0);
        assert_eq!(split.targets, vec![(1, 11), (3, 12)]);
        assert_eq!(split.train.iter().map(|p| (p.user, p.product)).collect::<Vec<_>>(), vec![(1, 10), (2, 10), (4, 13)]);
        // User 3 has no training pair: only user 1 is evaluated.
        assert_eq!(split.evaluated_users(10, 42), vec![1]);
        assert!(ValidationSplit::by_time(&pairs, &[5.0; 5]).is_none());
        assert!(ValidationSplit::by_time(&pairs, &[f64::NAN; 5]).is_none());
    }

    #[test]
    fn evaluated_users_are_capped_deterministically() {
        let split = ValidationSplit {
            train: (0..100).map(|u| pair(u, 1, 1.0, 0)).collect(),
            train_times: vec![0.0; 100],
            targets: (0..100).map(|u| (u, 2)).collect(),
            cut: 1.0,
            span: 1.0,
        };
        let a = split.evaluated_users(10, 7);
        assert_eq!(a.len(), 10);
        assert_eq!(a, split.evaluated_users(10, 7));
        assert_ne!(a, split.evaluated_users(10, 8));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split.evaluated_users(1000, 7).len(), 100);
    }

    /// Two groups of users with disjoint tastes (products 0..5 and 5..10):
    /// each user touched three products of their group before the cut and
    /// carts another one of the group after it.
    fn two_tastes() -> ValidationSplit {
        let mut split = ValidationSplit { cut: 100.0, span: 100.0, ..Default::default() };
        for u in 0..40i64 {
            let group = u % 2;
            let own = |j: i64| group * 5 + (u / 2 + j) % 5;
            for j in 0..3 {
                split.train.push(pair(u, own(j), 1.0 + j as f32, group));
                split.train_times.push(10.0 * j as f64);
            }
            split.targets.push((u, own(3)));
        }
        split
    }

    #[test]
    fn real_fits_score_in_range_and_find_the_group_structure() {
        let split = two_tastes();
        let users = split.evaluated_users(100, 42);
        assert_eq!(users.len(), 40);
        let fit = fit_validation(&split, &users, &base(), &Candidate::plain(&base()), 10).unwrap();
        let ndcg = score_validation(&fit, 0.0);
        // The target is one of the 2 unseen products of the user's own group;
        // a model that learnt the groups ranks it within the top 5 (the
        // user's 3 seen products may come first). Random ranking over 10
        // products would give about 0.31.
        assert!(ndcg > 0.4 && ndcg <= 1.0, "{ndcg}");
        let (choice, evaluated) = choose(&split, &base()).unwrap().unwrap();
        assert_eq!(evaluated, 40);
        assert!(choice.ndcg >= choice.plain_ndcg);
        assert_eq!(choice.trials[0].candidate, Candidate::plain(&base()));
        // Deterministic: the same choice again.
        assert_eq!(choose(&split, &base()).unwrap().unwrap().0, choice);
    }

    #[test]
    fn no_evaluable_user_means_no_choice() {
        let mut split = two_tastes();
        split.targets.clear();
        assert!(choose(&split, &base()).unwrap().is_none());
    }
}
