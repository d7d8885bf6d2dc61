//! The item-to-item signal in known users' lists: the weight
//! `user_item_weight` ([`crate::model::recent`]) at which `recommend` and
//! `recommend_all` blend a user's list with the item-to-item scores of
//! their latest products ([`crate::recommend::items`]), chosen on the
//! parameter search's validation split ([`super::tune`]) with its targets
//! and metric:
//!
//! 1. the search's fit of its chosen candidate, its evaluated users and
//!    their targets (products carted or bought at or after the cut; the
//!    next touched products in a log without carts and purchases), and
//!    the neighbours counted on the session steps before the cut
//!    ([`super::items`]);
//! 2. each evaluated user's latest products before the cut (at most
//!    [`PER_USER`]);
//! 3. at each weight tried (the session signal's, `super::items::WEIGHTS`,
//!    0 first), every user's list of
//!    [`tune::VALIDATION_K`] (weight 0: the list the search scored; else
//!    the blend of their list of [`items::user_base_length`] with the item-to-item
//!    scores of their latest products), scored by NDCG@10 as the search
//!    scores;
//! 4. the weight with the largest NDCG wins; ties keep the smaller weight,
//!    so 0 (the signal left out of users' lists) stands unless a weight
//!    beats it.
//!
//! Before step 3, the weight of products other than the user's latest
//! (`user_new_item_weight`, [`items::user_share`]) is chosen the same way
//! on what a user did not know yet: each user's targets they never touched
//! before the cut, against their lists without the products they touched
//! (the own list asked without them; the blend at each weight, where the
//! latest products, touched, never come back), ties keeping the smaller
//! weight. Step 3 then blends at each weight with the new products at that
//! choice. Repeat interest (latest products coming back) and new interest
//! can want different weights: a shop whose users revisit half the time
//! wants the item-to-item part strong for the first and weak for the
//! second.

use super::tune::{self, ValidationFit};
use crate::als::validation::ValidationSplit;
use crate::als::Pair;
use crate::metrics::ranking_metrics;
use crate::model::recent::{self, RecentRow, PER_USER};
use crate::recommend::items;
use crate::recommend::serving::SessionItems;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// The `recent` rows of `pairs` (their latest times `times`) of the users
/// `keep` accepts: per user, their latest [`PER_USER`] products.
pub(crate) fn recent_rows(
    pairs: &[Pair],
    times: &[f64],
    keep: impl Fn(i64) -> bool,
) -> Vec<RecentRow> {
    let touches: Vec<(i64, i64, f64)> = pairs
        .iter()
        .zip(times)
        .filter(|(p, _)| keep(p.user))
        .map(|(p, &t)| (p.user, p.product, t))
        .collect();
    recent::of_touches(touches, PER_USER)
}

/// Validation NDCG@10 of the fit's evaluated users at each weight of
/// `weights` (products other than the latest at `new_weight`), the signal
/// `signal` (whose `recent` holds the users' latest products before the
/// cut) at serving blend `blend`.
pub(crate) fn scores(
    fit: &ValidationFit,
    signal: &SessionItems,
    blend: f32,
    weights: &[f32],
    new_weight: f32,
) -> Vec<f64> {
    let model = &fit.model;
    let k = tune::VALIDATION_K;
    let ndcg = |lists: &[Vec<u32>]| {
        ranking_metrics(lists, &fit.held_out, k, model.n_products())
            .ndcg
            .unwrap_or(0.0)
    };
    let products = |l: Vec<crate::recommend::serving::Recommendation>| -> Vec<u32> {
        l.into_iter().map(|r| r.product).collect()
    };
    let mut bases = None;
    weights
        .iter()
        .map(|&w| {
            if w <= 0.0 {
                return ndcg(&fit.lists(blend));
            }
            let bases = bases.get_or_insert_with(|| {
                model.recommend_users(&fit.users, items::user_base_length(k), blend, true)
            });
            let lists: Vec<Vec<u32>> = fit
                .users
                .par_iter()
                .zip(bases.par_iter())
                .map(|(&u, base)| {
                    let excluded = model.excluded_for(Some(u), &[], true);
                    products(items::user_list(
                        model, signal, u, base, &excluded, w, new_weight, k,
                    ))
                })
                .collect();
            ndcg(&lists)
        })
        .collect()
}

/// Validation NDCG@10 of the new targets at each weight of `weights`:
/// the evaluated users with a target they never touched before the cut
/// (`touched[i]`: user `fit.users[i]`'s products before the cut, sorted),
/// their lists without the products they touched, those targets alone.
pub(crate) fn new_scores(
    fit: &ValidationFit,
    signal: &SessionItems,
    blend: f32,
    weights: &[f32],
    touched: &[Vec<u32>],
) -> Vec<f64> {
    let model = &fit.model;
    let k = tune::VALIDATION_K;
    let judged: Vec<(u32, &[u32], Vec<u32>)> = fit
        .users
        .iter()
        .zip(&fit.held_out)
        .zip(touched)
        .filter_map(|((&u, targets), touched)| {
            let new: Vec<u32> = targets
                .iter()
                .copied()
                .filter(|t| touched.binary_search(t).is_err())
                .collect();
            (!new.is_empty()).then_some((u, touched.as_slice(), new))
        })
        .collect();
    if judged.is_empty() {
        return vec![0.0; weights.len()];
    }
    let held_out: Vec<Vec<u32>> = judged.iter().map(|j| j.2.clone()).collect();
    let bases: Vec<_> = judged
        .par_iter()
        .map(|&(u, touched, _)| {
            let base = model.recommend(
                Some(u),
                &[],
                touched,
                items::user_base_length(k),
                blend,
                true,
            );
            (base, model.excluded_for(Some(u), touched, true))
        })
        .collect();
    weights
        .iter()
        .map(|&w| {
            let lists: Vec<Vec<u32>> = judged
                .par_iter()
                .zip(bases.par_iter())
                .map(|(&(u, _, _), (base, excluded))| {
                    let list = if w <= 0.0 {
                        base.iter().take(k).copied().collect()
                    } else {
                        items::user_list(model, signal, u, base, excluded, w, w, k)
                    };
                    list.into_iter().map(|r| r.product).collect()
                })
                .collect();
            ranking_metrics(&lists, &held_out, k, model.n_products())
                .ndcg
                .unwrap_or(0.0)
        })
        .collect()
}

/// The known users' weights [`choose`] found, and the NDCG of each weight
/// tried (all targets; new targets).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chosen {
    pub weight: f32,
    pub new_weight: f32,
    pub scores: Vec<f64>,
    pub new_scores: Vec<f64>,
}

/// The index of the best score (ties: the earlier).
pub fn best(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// The known users' weight of the module documentation: `signal` the
/// item-to-item signal counted before the cut on `fit`'s products (its
/// `recent` is set here from `split`'s pairs), `blend` the chosen serving
/// blend, `weights` the weights tried (0 first).
pub(crate) fn choose(
    fit: &ValidationFit,
    split: &ValidationSplit,
    signal: &mut SessionItems,
    blend: f32,
    weights: &[f32],
) -> anyhow::Result<Chosen> {
    if fit.users.is_empty() {
        return Ok(Chosen {
            weight: 0.0,
            new_weight: 0.0,
            scores: Vec::new(),
            new_scores: Vec::new(),
        });
    }
    let model = &fit.model;
    let evaluated: HashSet<i64> = fit
        .users
        .iter()
        .map(|&u| model.user_ids[u as usize])
        .collect();
    let rows = recent_rows(&split.train, &split.train_times, |u| evaluated.contains(&u));
    signal.recent = items::users_of_rows(model, rows, None)?.1;
    let mut touched: HashMap<i64, Vec<u32>> = HashMap::new();
    for p in split.train.iter().filter(|p| evaluated.contains(&p.user)) {
        if let Some(i) = model.product(p.product) {
            touched.entry(p.user).or_default().push(i);
        }
    }
    let touched: Vec<Vec<u32>> = fit
        .users
        .iter()
        .map(|&u| {
            let mut t = touched
                .remove(&model.user_ids[u as usize])
                .unwrap_or_default();
            t.sort_unstable();
            t.dedup();
            t
        })
        .collect();
    let new_scored = new_scores(fit, signal, blend, weights, &touched);
    let new_weight = weights[best(&new_scored)];
    let scored = scores(fit, signal, blend, weights, new_weight);
    Ok(Chosen {
        weight: weights[best(&scored)],
        new_weight,
        scores: scored,
        new_scores: new_scored,
    })
}

/// `id` with the users' latest products and their weights mixed in (two
/// models that differ only there are different models to the cache; the
/// new products' weight only where it differs from `weight`).
pub fn hash_into(rows: &[RecentRow], weight: f32, new_weight: f32, id: i64) -> i64 {
    if weight <= 0.0 && rows.is_empty() {
        return id;
    }
    let mut h = crate::rng::mix64(id as u64 ^ (weight.to_bits() as u64) << 7);
    if new_weight != weight {
        h = crate::rng::mix64(h ^ new_weight.to_bits() as u64);
    }
    for r in rows {
        h = crate::rng::mix64(h ^ r.user as u64);
        h = crate::rng::mix64(h ^ r.product as u64 ^ (r.rank as u64) << 40);
    }
    (h & ((1 << 52) - 1)) as i64
}

#[cfg(test)]
mod tests;
