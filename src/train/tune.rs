//! Defaults chosen on the user's own data: a time split inside the training
//! data, a small greedy search over ALS hyper-parameters and the serving
//! blend on it, and the choice that the final fit on all the data uses.
//! Nothing here knows DuckDB.
//!
//! The validation split: the pairs' events before the cut (by default 80 %
//! of the training data's time span) are the validation training data; the
//! products a user carted or bought at or after the cut are the targets (for
//! an interactions table without event types, and for a log without any
//! cart or purchase, such as a views-only clickstream: every product a user
//! touched at or after the cut, the next viewed products). Users evaluated are those with training pairs and at least one
//! target, at most [`MAX_VALIDATION_USERS`] of them (a seeded hash picks
//! which), scored by NDCG@10 exactly as `evaluate_recommendations` scores:
//! products bought before the cut are excluded, products only seen may be
//! recommended and count as hits.
//!
//! The search ([`greedy_search`]) starts from plain ALS with the caller's
//! parameters at blend 0 and tries, one group at a time, keeping a change
//! only when it raises validation NDCG strictly (a group is skipped when
//! the caller fixed its parameter):
//! 1. alpha × 4 and × 16 (2 fits);
//! 2. confidence `log` and `bm25` (2 fits);
//! 3. regularization × 10 (1 fit);
//! 4. a recency decay with a half-life of a quarter of the span (1 fit);
//! 5. blends 0.1, 0.3, 0.5 and 0.8 on the best fit (no fit: scoring only).
//!
//! The search fits see at most [`MAX_SEARCH_PAIRS`] (500,000) pairs: all
//! of the validation training data up to that size (about 1M events),
//! beyond it the evaluated users' pairs and a seeded sample of the other
//! users' (whole users, so each kept user's history is intact). The choice
//! compares candidates with each other, which half a million pairs of the
//! same shop rank as the whole data does; the final fit sees everything.
//!
//! That is [`SEARCH_FITS`] = 7 fits on the validation training data, plus
//! the final fit: plain ALS from drawn factors for [`SEARCH_ITERATIONS`]
//! iterations, then every other candidate from the factors of the best fit
//! so far for [`WARM_ITERATIONS`] (a warm start: same users and products,
//! neighbouring parameters). Plain ALS at blend 0 is the starting point and
//! every step must beat the best so far, so the choice is never worse than
//! plain ALS on validation.

use crate::als::solver::AlsParams;
use crate::als::validation::ValidationSplit;
use crate::als::weighting::{self, Confidence};
use crate::als::{train_pairs_from, Pair, Trained, WarmStart};
use crate::budget::Budget;
use crate::metrics::ranking_metrics;
use crate::progress::Progress;
use crate::recommend::serving::ServingModel;
use std::collections::{HashMap, HashSet};

/// Users scored per candidate, at most: bounds the scoring cost.
pub const MAX_VALIDATION_USERS: usize = 10_000;
/// Training pairs each search fit sees, at most: beyond, the fits use the
/// evaluated users plus a seeded sample of the others
/// ([`ValidationSplit::sample`]), so the search costs about the same at
/// 40M events as at 1M while the final fit sees everything.
pub const MAX_SEARCH_PAIRS: usize = 500_000;
/// Iterations of the search's first fit, plain ALS from drawn factors (the
/// final fit uses the caller's).
pub const SEARCH_ITERATIONS: usize = 5;
/// Iterations of every later search fit, which starts from the best fit so
/// far (a neighbouring optimum, same users and products): ALS re-solves
/// every row exactly at its first half-iteration, so two iterations from
/// there land about where five from drawn factors do.
pub const WARM_ITERATIONS: usize = 2;
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

/// Which parameters the search may change (the caller left them NULL).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Searched {
    pub alpha: bool,
    pub regularization: bool,
    pub confidence: bool,
    pub half_life: bool,
}

impl Searched {
    pub const ALL: Searched = Searched {
        alpha: true,
        regularization: true,
        confidence: true,
        half_life: true,
    };
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
/// on the validation training data, from scratch (plain ALS) or starting
/// from the best fit so far (every later candidate); `score` gives a fitted
/// model's validation NDCG at a blend. The best fit so far is kept, so
/// blends are scored without refitting.
pub fn greedy_search<F>(
    plain: Candidate,
    searched: Searched,
    span: f64,
    fit: impl FnMut(&Candidate, Option<&F>) -> anyhow::Result<F>,
    score: impl Fn(&F, f32) -> f64,
) -> anyhow::Result<Choice> {
    Ok(greedy_search_fit(plain, searched, span, fit, score)?.0)
}

/// [`greedy_search`], and the fit of its chosen candidate.
pub fn greedy_search_fit<F>(
    plain: Candidate,
    searched: Searched,
    span: f64,
    mut fit: impl FnMut(&Candidate, Option<&F>) -> anyhow::Result<F>,
    score: impl Fn(&F, f32) -> f64,
) -> anyhow::Result<(Choice, F)> {
    let mut trials = Vec::new();
    let mut best_fit = fit(&plain, None)?;
    let plain_ndcg = score(&best_fit, 0.0);
    trials.push(Trial {
        candidate: plain,
        blend: 0.0,
        ndcg: plain_ndcg,
    });
    let (mut best, mut best_ndcg, mut fits) = (plain, plain_ndcg, 1);
    type Change = Box<dyn Fn(Candidate) -> Candidate>;
    let mut groups: Vec<Vec<Change>> = Vec::new();
    if searched.alpha {
        groups.push(
            ALPHA_STEPS
                .iter()
                .map(|&m| {
                    Box::new(move |c: Candidate| Candidate {
                        alpha: plain.alpha * m,
                        ..c
                    }) as Change
                })
                .collect(),
        );
    }
    if searched.confidence {
        groups.push(
            [Confidence::Log, Confidence::Bm25]
                .into_iter()
                .map(|confidence| {
                    Box::new(move |c: Candidate| Candidate { confidence, ..c }) as Change
                })
                .collect(),
        );
    }
    if searched.regularization {
        groups.push(vec![Box::new(move |c: Candidate| Candidate {
            regularization: plain.regularization * REGULARIZATION_STEP,
            ..c
        })]);
    }
    if searched.half_life && span > 0.0 && span.is_finite() {
        groups.push(vec![Box::new(move |c: Candidate| Candidate {
            half_life: span * HALF_LIFE_SHARE,
            ..c
        })]);
    }
    for group in &groups {
        // Every option of a group starts from the best before the group.
        let start = best;
        for change in group {
            let candidate = change(start);
            if candidate == start {
                continue;
            }
            let fitted = fit(&candidate, Some(&best_fit))?;
            fits += 1;
            let ndcg = score(&fitted, 0.0);
            trials.push(Trial {
                candidate,
                blend: 0.0,
                ndcg,
            });
            if ndcg > best_ndcg {
                (best, best_ndcg, best_fit) = (candidate, ndcg, fitted);
            }
        }
    }
    let mut blend = 0.0;
    for b in BLENDS {
        let ndcg = score(&best_fit, b);
        trials.push(Trial {
            candidate: best,
            blend: b,
            ndcg,
        });
        if ndcg > best_ndcg {
            (blend, best_ndcg) = (b, ndcg);
        }
    }
    Ok((
        Choice {
            candidate: best,
            blend,
            ndcg: best_ndcg,
            plain_ndcg,
            fits,
            trials,
        },
        best_fit,
    ))
}

/// A fit on the validation data with the model's users evaluated.
pub(crate) struct ValidationFit {
    pub(crate) model: ServingModel,
    /// The evaluated users (model indices) and their targets.
    pub(crate) users: Vec<u32>,
    pub(crate) held_out: Vec<Vec<u32>>,
    /// The users' collaborative tops for lists of [`VALIDATION_K`], found
    /// once: every blend scored on this fit is blended from them.
    tops: Vec<Vec<(u32, f32)>>,
}

impl ValidationFit {
    pub(crate) fn new(model: ServingModel, users: Vec<u32>, held_out: Vec<Vec<u32>>) -> Self {
        let tops = model.collaborative_tops(&users, VALIDATION_K, true);
        ValidationFit {
            model,
            users,
            held_out,
            tops,
        }
    }

    /// The evaluated users' lists of [`VALIDATION_K`] at `blend`: those
    /// `recommend_users` gives.
    pub(crate) fn lists(&self, blend: f32) -> Vec<Vec<u32>> {
        let lists = if blend >= 1.0 {
            self.model
                .recommend_users(&self.users, VALIDATION_K, blend, true)
        } else {
            self.model
                .recommend_from_tops(&self.users, &self.tops, VALIDATION_K, blend, true)
        };
        lists
            .into_iter()
            .map(|r| r.into_iter().map(|x| x.product).collect())
            .collect()
    }
}

/// Trains `candidate` on `pairs` whose last times are `times`: recency
/// decay relative to the latest time, `iterations` iterations, `blend`
/// stored with the model.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_all(
    pairs: Vec<Pair>,
    times: &[f64],
    base: &AlsParams,
    candidate: &Candidate,
    iterations: usize,
    blend: f32,
    record_loss: bool,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    fit_from(
        pairs,
        times,
        base,
        candidate,
        iterations,
        blend,
        record_loss,
        None,
        budget,
        progress,
    )
}

/// [`fit_all`] starting from `warm`'s factors (see [`WarmStart`]).
#[allow(clippy::too_many_arguments)]
fn fit_from(
    mut pairs: Vec<Pair>,
    times: &[f64],
    base: &AlsParams,
    candidate: &Candidate,
    iterations: usize,
    blend: f32,
    record_loss: bool,
    warm: Option<WarmStart>,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Trained> {
    let mut reference = None;
    if candidate.half_life > 0.0 {
        let latest = times
            .iter()
            .copied()
            .filter(|t| !t.is_nan())
            .fold(f64::NEG_INFINITY, f64::max);
        let mut weights: Vec<f32> = pairs.iter().map(|p| p.weight).collect();
        weighting::decay(&mut weights, times, latest, candidate.half_life);
        for (p, w) in pairs.iter_mut().zip(weights) {
            p.weight = w;
        }
        // With no time at all nothing decayed: no reference to record.
        reference = latest.is_finite().then_some(latest);
    }
    let trained = train_pairs_from(
        pairs,
        &candidate.params(base, iterations),
        candidate.confidence,
        blend,
        record_loss,
        warm,
        budget,
        progress,
    )?;
    Ok(match reference {
        Some(reference) => Trained {
            model: trained.model.with_decay(candidate.half_life, reference),
            ..trained
        },
        None => trained,
    })
}

/// Trains `candidate` on the validation training pairs ([`fit_all`] with
/// `iterations`, no loss; from `start`'s factors when given) and indexes the
/// evaluated users' targets.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_validation(
    split: &ValidationSplit,
    users: &[i64],
    base: &AlsParams,
    candidate: &Candidate,
    iterations: usize,
    start: Option<&ValidationFit>,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<ValidationFit> {
    let warm = start.map(|s| WarmStart {
        user_ids: &s.model.user_ids,
        product_ids: &s.model.product_ids,
        user_factors: &s.model.user_factors,
        item_factors: s.model.item_factors(),
    });
    let trained = fit_from(
        split.train.clone(),
        &split.train_times,
        base,
        candidate,
        iterations,
        0.0,
        false,
        warm,
        budget,
        progress,
    )?;
    let model = ServingModel::new(trained.model)?;
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
    Ok(ValidationFit::new(model, model_users, held_out))
}

/// Validation NDCG@10 of a fit at `blend` (0 with no user to evaluate).
pub(crate) fn score_validation(fit: &ValidationFit, blend: f32) -> f64 {
    ranking_metrics(
        &fit.lists(blend),
        &fit.held_out,
        VALIDATION_K,
        fit.model.n_products(),
    )
    .ndcg
    .unwrap_or(0.0)
}

/// A search that ran: its choice and how many users it scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub choice: Choice,
    pub users: usize,
}

impl Outcome {
    /// The search's `param` rows in the model table.
    pub fn param_rows(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("validation_users", self.users as f64),
            ("validation_ndcg", self.choice.ndcg),
            ("validation_ndcg_plain", self.choice.plain_ndcg),
            ("search_fits", self.choice.fits as f64),
        ]
    }
}

/// The whole search on a validation split, from `plain`; `None` when no
/// user can be evaluated (then the caller keeps `plain` at blend 0). The
/// tests' shorthand: `als_train` and `evaluate_recommendations` call
/// [`choose_fit`] through `crate::train::train_default`.
#[cfg(test)]
pub(crate) fn choose(
    split: &ValidationSplit,
    base: &AlsParams,
    plain: Candidate,
    searched: Searched,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Option<Outcome>> {
    Ok(choose_fit(split, base, plain, searched, budget, progress)?.map(|o| o.0))
}

/// [`choose`], and the validation fit of its chosen candidate (what the
/// item-to-item choice folds sessions into: [`super::items`]).
pub(crate) fn choose_fit(
    split: &ValidationSplit,
    base: &AlsParams,
    plain: Candidate,
    searched: Searched,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Option<(Outcome, ValidationFit)>> {
    let users = split.evaluated_users(MAX_VALIDATION_USERS, base.seed);
    if users.is_empty() {
        progress.say("no user has both validation training data and targets: training with the fixed parameters");
        return Ok(None);
    }
    let (iterations, warm_iterations) = (
        base.iterations.min(SEARCH_ITERATIONS),
        base.iterations.min(WARM_ITERATIONS),
    );
    let sample = split.sample(&users, MAX_SEARCH_PAIRS, base.seed);
    progress.say(format!(
        "choosing parameters on {} validation users ({} of the {} pairs before the validation cut)",
        users.len(),
        sample.train.len(),
        split.train.len()
    ));
    let split = &sample;
    let (choice, best_fit) = greedy_search_fit(
        plain,
        searched,
        split.span,
        |c, start| {
            let fitted = fit_validation(
                split,
                &users,
                base,
                c,
                if start.is_some() {
                    warm_iterations
                } else {
                    iterations
                },
                start,
                budget,
                &Progress::new("ecoreco.als_train", "off"),
            )?;
            progress.say(format!(
                "fitted alpha {}, regularization {}, confidence {}, half-life {:.2} days",
                c.alpha,
                c.regularization,
                c.confidence.name(),
                c.half_life / 86_400.0
            ));
            Ok(fitted)
        },
        |fitted, blend| {
            let ndcg = score_validation(fitted, blend);
            progress.say(format!(
                "scored blend {blend}: validation NDCG@10 {ndcg:.4}"
            ));
            ndcg
        },
    )?;
    progress.say(format!(
        "chose alpha {}, regularization {}, confidence {}, half-life {:.2} days, blend {}: validation NDCG@10 {:.4} (plain ALS {:.4})",
        choice.candidate.alpha,
        choice.candidate.regularization,
        choice.candidate.confidence.name(),
        choice.candidate.half_life / 86_400.0,
        choice.blend,
        choice.ndcg,
        choice.plain_ndcg
    ));
    Ok(Some((
        Outcome {
            choice,
            users: users.len(),
        },
        best_fit,
    )))
}

#[cfg(test)]
mod tests;
