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

use super::tune::{self, ValidationFit};
use crate::als::validation::ValidationSplit;
use crate::als::Pair;
use crate::metrics::ranking_metrics;
use crate::model::recent::{self, RecentRow, PER_USER};
use crate::recommend::items;
use crate::recommend::serving::SessionItems;
use rayon::prelude::*;
use std::collections::HashSet;

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
/// `weights`, the signal `signal` (whose `recent` holds the users' latest
/// products before the cut) at serving blend `blend`.
pub(crate) fn scores(
    fit: &ValidationFit,
    signal: &SessionItems,
    blend: f32,
    weights: &[f32],
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
                    products(items::user_list(model, signal, u, base, &excluded, w, k))
                })
                .collect();
            ndcg(&lists)
        })
        .collect()
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
/// blend, `weights` the weights tried (0 first). Returns the weight and
/// each weight's NDCG.
pub(crate) fn choose(
    fit: &ValidationFit,
    split: &ValidationSplit,
    signal: &mut SessionItems,
    blend: f32,
    weights: &[f32],
) -> anyhow::Result<(f32, Vec<f64>)> {
    if fit.users.is_empty() {
        return Ok((0.0, Vec::new()));
    }
    let model = &fit.model;
    let evaluated: HashSet<i64> = fit
        .users
        .iter()
        .map(|&u| model.user_ids[u as usize])
        .collect();
    let rows = recent_rows(&split.train, &split.train_times, |u| evaluated.contains(&u));
    signal.recent = items::users_of_rows(model, rows, None)?.1;
    let scored = scores(fit, signal, blend, weights);
    Ok((weights[best(&scored)], scored))
}

/// `id` with the users' latest products and their weight mixed in (two
/// models that differ only there are different models to the cache).
pub fn hash_into(rows: &[RecentRow], weight: f32, id: i64) -> i64 {
    if weight <= 0.0 && rows.is_empty() {
        return id;
    }
    let mut h = crate::rng::mix64(id as u64 ^ (weight.to_bits() as u64) << 7);
    for r in rows {
        h = crate::rng::mix64(h ^ r.user as u64);
        h = crate::rng::mix64(h ^ r.product as u64 ^ (r.rank as u64) << 40);
    }
    (h & ((1 << 52) - 1)) as i64
}

#[cfg(test)]
mod tests;
