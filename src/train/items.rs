//! The item-to-item signal of `als_train`'s model: the neighbours of the
//! training sessions ([`crate::covisit`]), kept in the model table
//! ([`crate::model::neighbours`]) when the validation split shows they
//! improve the lists of sessions, with the weight it chose.
//!
//! The sessions: the source's `user_session` column (each user's history
//! when it has none), steps in time order. The validation uses the same
//! time cut as the parameter search ([`super::tune`]):
//!
//! 1. the neighbours are counted on the steps before the cut, and the
//!    session blend inside the signal (sequence, co-occurrence, repeat
//!    interest, decay) is chosen on the latest of those sessions
//!    ([`crate::covisit::choose`]);
//! 2. the chosen ALS candidate's fit on the validation training data (the
//!    search's own, or a plain fit where no user could judge the search),
//!    and every held-out session (its steps at or after
//!    the cut; the latest first, at most [`MAX_PREFIXES`] prefixes) is
//!    revealed step by step: after each prefix, the model's list of the
//!    prefix (fold-in, category interest, popular fill) is blended with
//!    its item-to-item scores at each weight of [`WEIGHTS`]
//!    ([`crate::recommend::items`]), and the next step is the target;
//! 3. the weight with the largest HR@20 + MRR@20 over all targets plus
//!    the same over targets new to the session wins; ties keep the smaller
//!    weight, so 0 (the signal left out) stands unless a weight beats it.
//!
//! The same neighbours (counted before the cut) also judge the signal in
//! known users' lists on the search's own targets: [`super::user_items`]
//! chooses `user_item_weight`. The signal is kept (neighbour rows in the
//! model) when either weight is above 0; with too few held-out prefixes
//! the session weight is 0 and only the users' choice can keep it.
//!
//! The final neighbours are counted on all the sessions, at most
//! [`NEIGHBOURS`] of each kind per product, in the same pass over them as
//! the neighbours before the cut (each session's steps before the cut
//! counted into a second tally: [`crate::covisit::kernel`]).

use super::tune::{self, Candidate, ValidationFit};
use crate::als::solver::AlsParams;
use crate::als::validation::ValidationSplit;
use crate::budget::Budget;
use crate::covisit::choose::{self as session_choice, Tally, UNKNOWN};
use crate::covisit::kernel::Windows;
use crate::covisit::session::SessionBlend;
use crate::covisit::{Event, ItemModel, Sessions};
use crate::model::neighbours::{NeighbourRow, PARAMS};
use crate::model::recent;
use crate::progress::Progress;
use crate::recommend::items::{self, EXTRA};
use crate::recommend::serving::{ServingModel, SessionItems};
use crate::stream::foldin::{FoldIn, Scratch};
use crate::stream::sessions::SessionScorer;
use crate::stream::state::Weights;
use rayon::prelude::*;

/// The counting windows: following within 10 steps, co-occurring anywhere
/// in the session (`covisit_train`'s defaults).
pub const WINDOWS: Windows = Windows { cooc: 0, seq: 10 };
/// Neighbours of each kind kept per product in the model table.
pub const NEIGHBOURS: usize = 20;
/// The item-to-item weights tried, 0 (left out) first.
pub const WEIGHTS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 0.9];
/// Held-out prefixes scored, at most.
pub const MAX_PREFIXES: usize = 2_000;
/// Fewer held-out prefixes than this judge nothing (a handful of next
/// clicks would keep or drop the signal by chance): no choice, no signal.
pub const MIN_PREFIXES: usize = 50;
/// The list length the validation scores.
pub const VALIDATION_K: usize = 20;

/// What the validation chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    pub blend: SessionBlend,
    pub weight: f32,
    /// Held-out prefixes that judged it.
    pub prefixes: u64,
    /// The known users' weight ([`super::user_items`]).
    pub user_weight: f32,
    /// Their weight for products other than their latest
    /// ([`crate::recommend::items::user_share`]).
    pub user_new_weight: f32,
}

impl Choice {
    /// The [`PARAMS`] rows, then the known users' weights
    /// ([`recent::PARAM`], [`recent::NEW_PARAM`]).
    pub fn param_rows(&self) -> Vec<(String, f64)> {
        let b = &self.blend;
        let values = [self.weight, b.sequence, b.cooccurrence, b.repeat, b.decay]
            .map(crate::model::f32_decimal);
        let mut rows: Vec<(String, f64)> = PARAMS
            .iter()
            .zip(values.into_iter().chain([self.prefixes as f64]))
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        rows.push((
            recent::PARAM.to_string(),
            crate::model::f32_decimal(self.user_weight),
        ));
        rows.push((
            recent::NEW_PARAM.to_string(),
            crate::model::f32_decimal(self.user_new_weight),
        ));
        rows
    }

    /// Whether the model keeps the signal (for sessions, known users or both).
    pub fn keeps_signal(&self) -> bool {
        self.weight > 0.0 || self.user_weight > 0.0
    }
}

/// The neighbour rows of `model`: per product, its best [`NEIGHBOURS`]
/// of each kind.
pub fn neighbour_rows(model: &ItemModel) -> Vec<NeighbourRow> {
    let mut rows = Vec::new();
    for (a, (cooc, seq)) in model.cooc.iter().zip(&model.seq).enumerate() {
        for (list, sequence) in [(cooc, false), (seq, true)] {
            for &(b, score) in list.iter().take(NEIGHBOURS) {
                rows.push(NeighbourRow {
                    product: model.product_ids[a],
                    neighbour: model.product_ids[b as usize],
                    score,
                    sequence,
                });
            }
        }
    }
    rows
}

/// The held-out sessions' steps as product ids, the latest sessions first,
/// up to [`MAX_PREFIXES`] prefixes.
fn held_out(sessions: &Sessions) -> Vec<Vec<i64>> {
    let mut order: Vec<usize> = (0..sessions.len()).collect();
    order.sort_by(|&a, &b| {
        sessions.ends[b]
            .total_cmp(&sessions.ends[a])
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut prefixes = 0;
    for s in order {
        let steps = sessions.session(s);
        if steps.len() < 2 {
            continue;
        }
        if prefixes >= MAX_PREFIXES {
            break;
        }
        prefixes += steps.len() - 1;
        out.push(
            steps
                .iter()
                .map(|&p| sessions.product_ids[p as usize])
                .collect(),
        );
    }
    out
}

/// Each weight's tally over the prefixes of `sessions` (product ids),
/// with `model` (no item-to-item signal of its own) and `items` as the
/// signal, `events_weights` the event weights. Every step folds in as a view.
#[allow(clippy::too_many_arguments)]
pub fn tallies(
    model: &ServingModel,
    fold: &FoldIn,
    serving_blend: f32,
    events_weights: Weights,
    signal: &SessionItems,
    sessions: &[Vec<i64>],
    weights: &[f32],
) -> anyhow::Result<Vec<Tally>> {
    let scorer = SessionScorer {
        model,
        fold,
        weights: events_weights,
        k: VALIDATION_K + EXTRA,
        blend: serving_blend,
        item_weight: Some(0.0),
        // The base list serving blends a list of VALIDATION_K with.
        base: Some((VALIDATION_K + EXTRA, items::base_candidates(VALIDATION_K))),
        rules: &crate::recommend::rules::Rules::default(),
    };
    let prefixes: Vec<(&[i64], i64)> = sessions
        .iter()
        .flat_map(|s| (1..s.len()).map(move |t| (&s[..t], s[t])))
        .collect();
    let per_prefix: Vec<Vec<Tally>> = prefixes
        .par_iter()
        .map_init(Scratch::default, |scratch, &(prefix, target)| {
            let codes = vec![1i64; prefix.len()];
            let base = scorer.list(prefix, &codes, scratch)?;
            let scored = items::item_scores(model, signal, prefix, &[]);
            let target_index = model.product(target).unwrap_or(UNKNOWN);
            let new = !prefix.contains(&target);
            Ok(weights
                .iter()
                .map(|&w| {
                    let list: Vec<u32> = items::blend_lists(model, &base, &scored, w, VALIDATION_K)
                        .into_iter()
                        .map(|r| r.product)
                        .collect();
                    let mut t = Tally::default();
                    t.add(&list, target_index, new);
                    t
                })
                .collect())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((0..weights.len())
        .map(|w| {
            per_prefix
                .iter()
                .fold(Tally::default(), |acc, t| acc.merge(t[w]))
        })
        .collect())
}

/// The index of the best tally (ties: the earlier).
pub fn best(tallies: &[Tally]) -> usize {
    let mut best = 0;
    for (i, t) in tallies.iter().enumerate() {
        if t.score() > tallies[best].score() {
            best = i;
        }
    }
    best
}

/// The choice of the module documentation for the session steps `events`,
/// on the validation `split` with the search's chosen `candidate` (its
/// validation fit `fitted`, the search's own, which also judges the known
/// users' weight; fitted here when `None`, when no user could be
/// evaluated) and serving blend; `None` when there is too little to judge
/// it on (no step before the cut, or fewer than [`MIN_PREFIXES`]
/// held-out prefixes and no known users' weight above 0). With the choice,
/// the final neighbour rows (of all the sessions).
#[allow(clippy::too_many_arguments)]
pub(crate) fn choose(
    events: Vec<Event>,
    split: &ValidationSplit,
    base: &AlsParams,
    candidate: &Candidate,
    fitted: Option<ValidationFit>,
    serving_blend: f32,
    weights: Weights,
    threads: usize,
    budget: &Budget,
    progress: &Progress,
) -> anyhow::Result<Option<(Choice, Vec<NeighbourRow>)>> {
    let cut = split.cut;
    budget.check(
        "holding the session steps after the validation cut",
        events.iter().filter(|e| e.order >= cut).count() as u64 * crate::covisit::EVENT_BYTES,
        "24 bytes per step",
    )?;
    let after: Vec<Event> = events.iter().filter(|e| e.order >= cut).copied().collect();
    // All the sessions once: the final neighbours and those of the steps
    // before the cut come from one count over them.
    let (sessions, before_cut) = Sessions::build_cut(events, cut, budget)?;
    let before = sessions.before(&before_cut, budget)?;
    if before.is_empty() {
        return Ok(None);
    }
    let held = if after.is_empty() {
        Vec::new()
    } else {
        held_out(&Sessions::build(after, budget)?)
    };
    let sessions_judge = held.iter().map(|s| s.len() - 1).sum::<usize>() >= MIN_PREFIXES;
    if !sessions_judge && fitted.is_none() {
        return Ok(None);
    }
    progress.say("ordered the sessions");
    let blend = session_choice::choose(&before, WINDOWS, NEIGHBOURS, threads, budget)?.blend;
    drop(before);
    progress.say("chose the session blend");
    let (all, neighbours) = ItemModel::train_with_prefixes(
        &sessions,
        &before_cut,
        WINDOWS,
        NEIGHBOURS,
        threads,
        budget,
    )?;
    drop(sessions);
    let final_rows = neighbour_rows(&all);
    drop(all);
    progress.say("counted the neighbours of all the sessions and of the steps before the cut");
    let own;
    let model: &ServingModel = match &fitted {
        Some(fit) => &fit.model,
        None => {
            let users = split.evaluated_users(tune::MAX_VALIDATION_USERS, base.seed);
            let sample = split.sample(&users, tune::MAX_SEARCH_PAIRS, base.seed);
            let quiet = Progress::new("ecoreco.als_train", "off");
            own = tune::fit_validation(
                &sample,
                &users,
                base,
                candidate,
                base.iterations.min(tune::SEARCH_ITERATIONS),
                None,
                budget,
                &quiet,
            )?
            .model;
            &own
        }
    };
    let mut params: Vec<Option<f64>> = vec![Some(1.0)];
    params.extend(
        [
            blend.sequence,
            blend.cooccurrence,
            blend.repeat,
            blend.decay,
        ]
        .map(|v| Some(v as f64)),
    );
    let Some(mut signal) = items::items_of_rows(model, &neighbour_rows(&neighbours), &params)?
    else {
        return Ok(None);
    };
    drop(neighbours);
    let (weight, prefixes) = if sessions_judge {
        session_weight(
            model,
            candidate,
            serving_blend,
            weights,
            &signal,
            &held,
            progress,
        )?
    } else {
        let prefixes = held.iter().map(|s| s.len() as u64 - 1).sum();
        (0.0, prefixes)
    };
    let (user_weight, user_new_weight) = match &fitted {
        Some(fit) => {
            let chosen =
                super::user_items::choose(fit, split, &mut signal, serving_blend, &WEIGHTS)?;
            for (w, ndcg) in WEIGHTS.iter().zip(&chosen.new_scores) {
                progress.say(format!(
                    "known users' item-to-item weight {w} for new products: validation NDCG@10 of new targets {ndcg:.4}"
                ));
            }
            for (w, ndcg) in WEIGHTS.iter().zip(&chosen.scores) {
                progress.say(format!(
                    "known users' item-to-item weight {w}: validation NDCG@10 {ndcg:.4}"
                ));
            }
            (chosen.weight, chosen.new_weight)
        }
        None => (0.0, 0.0),
    };
    if !sessions_judge && user_weight <= 0.0 {
        return Ok(None);
    }
    Ok(Some((
        Choice {
            blend,
            weight,
            prefixes,
            user_weight,
            user_new_weight,
        },
        final_rows,
    )))
}

/// The session weight of step 2 and 3 of the module documentation, and
/// the held-out prefixes that chose it.
fn session_weight(
    model: &ServingModel,
    candidate: &Candidate,
    serving_blend: f32,
    weights: Weights,
    signal: &SessionItems,
    held: &[Vec<i64>],
    progress: &Progress,
) -> anyhow::Result<(f32, u64)> {
    // Solving only: the session lists scan the products, so the stream's
    // product-by-product scores (n² of them) would be built for nothing.
    let fold = FoldIn::solver(
        model.item_factors(),
        model.factors,
        candidate.regularization as f64,
        candidate.alpha as f64,
    )?
    .with_weighting(model.weighting.clone())?;
    let scored = tallies(model, &fold, serving_blend, weights, signal, held, &WEIGHTS)?;
    let at = best(&scored);
    for (w, t) in WEIGHTS.iter().zip(&scored) {
        progress.say(format!(
            "item-to-item weight {w}: held-out sessions HR@20 + MRR@20 (all + new) {:.4}",
            t.score()
        ));
    }
    Ok((WEIGHTS[at], scored[at].prefixes[0]))
}

/// `id` with the item-to-item rows and choice mixed in (two models that
/// differ only there are different models to the cache).
pub fn hash_into(rows: &[NeighbourRow], choice: Option<&Choice>, id: i64) -> i64 {
    let Some(choice) = choice else {
        return id;
    };
    let mut h = crate::rng::mix64(id as u64 ^ choice.weight.to_bits() as u64);
    for r in rows {
        h = crate::rng::mix64(h ^ r.product as u64);
        h = crate::rng::mix64(h ^ r.neighbour as u64 ^ (r.score.to_bits() as u64) << 1);
    }
    (h & ((1 << 52) - 1)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions `(end, products)`: the last step at order `end`.
    fn sessions(list: &[(i64, Vec<i64>)]) -> Sessions {
        Sessions::of_lists(
            list.iter()
                .map(|(end, p)| ((end + 1 - p.len() as i64) as f64, p.as_slice())),
        )
    }

    #[test]
    fn held_out_sessions_come_latest_first_with_two_steps_at_least() {
        // Session ends 10, 30, 20; the one-step session is no prefix.
        let s = sessions(&[(10, vec![1, 2]), (30, vec![3, 4, 5]), (20, vec![6])]);
        assert_eq!(held_out(&s), vec![vec![3, 4, 5], vec![1, 2]]);
    }

    #[test]
    fn the_smallest_weight_wins_ties_and_param_rows_name_the_choice() {
        let tally = |hits: u64| Tally {
            prefixes: [10, 0],
            hits: [hits, 0],
            reciprocal: [0.0, 0.0],
        };
        assert_eq!(best(&[tally(3), tally(3), tally(2)]), 0);
        assert_eq!(best(&[tally(3), tally(5), tally(5)]), 1);
        let choice = Choice {
            blend: SessionBlend::default(),
            weight: 0.25,
            prefixes: 321,
            user_weight: 0.0,
            user_new_weight: 0.25,
        };
        let rows = choice.param_rows();
        assert_eq!(
            rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            [PARAMS.as_slice(), &[recent::PARAM, recent::NEW_PARAM]].concat()
        );
        assert_eq!(rows[0].1, 0.25);
        assert_eq!(rows[3].1, 2.0);
        assert_eq!(rows[5].1, 321.0);
        assert_eq!(rows[6].1, 0.0);
        assert_eq!(rows[7].1, 0.25);
        assert!(choice.keeps_signal());
        let users_only = Choice {
            weight: 0.0,
            user_weight: 0.5,
            ..choice
        };
        assert!(users_only.keeps_signal());
        assert!(!Choice {
            user_weight: 0.0,
            ..users_only
        }
        .keeps_signal());
    }

    #[test]
    fn neighbour_rows_keep_the_best_of_each_kind() {
        let model = ItemModel {
            product_ids: vec![10, 20, 30],
            cooc: vec![vec![(1, 2.0)], vec![], vec![]],
            seq: vec![
                (0..30).map(|i| (1 + i % 2, 30.0 - i as f32)).collect(),
                vec![],
                vec![(0, 1.0)],
            ],
            counts: vec![0; 3],
        };
        let rows = neighbour_rows(&model);
        assert_eq!(rows.len(), 1 + NEIGHBOURS + 1);
        assert_eq!(
            (rows[0].product, rows[0].neighbour, rows[0].sequence),
            (10, 20, false)
        );
        assert_eq!(
            (rows[1].neighbour, rows[1].score, rows[1].sequence),
            (20, 30.0, true)
        );
        let last = rows.last().unwrap();
        assert_eq!((last.product, last.neighbour, last.score), (30, 10, 1.0));
    }
}
