//! The fold-in against models trained under every weighting: raw, log and
//! bm25 confidence, each with and without a recency half-life.

use super::foldin::{FoldIn, Scratch, UserFold};
use super::state::{Touch, UserState, Weights};
use super::tests::{assert_one_exact_half_step, events};
use crate::als::solver::AlsParams;
use crate::als::weighting::{self, Confidence};
use crate::als::Pair;
use crate::budget::Budget;
use crate::model::csr::Csr;
use crate::progress::Progress;
use crate::recommend::serving::ServingModel;
use crate::train::tune::{fit_all, Candidate};
use std::collections::BTreeMap;

/// Event `n` of [`events`] happens at this time plus `n` five-hour steps
/// (seconds): about 60 days in all, so a 7-day half-life matters.
const T0: i64 = 1_570_000_000;
const STEP: i64 = 5 * 3600;

/// The pairs `ecoreco.interactions` makes of the events (summed, capped)
/// with their last times in seconds, as `als_train` reads them.
fn timed_pairs(evs: &[(i64, i64, i64, super::state::Kind)], w: &Weights) -> (Vec<Pair>, Vec<f64>) {
    let mut by_pair: BTreeMap<(i64, i64), (Pair, f64)> = BTreeMap::new();
    for (n, &(user, product, category, kind)) in evs.iter().enumerate() {
        let entry = by_pair.entry((user, product)).or_insert((
            Pair {
                user,
                product,
                weight: 0.0,
                purchases: 0,
                interactions: 0,
                category,
            },
            f64::NEG_INFINITY,
        ));
        entry.0.weight += w.of(kind);
        entry.0.interactions += 1;
        entry.0.purchases += (kind == super::state::Kind::Purchase) as u32;
        entry.1 = entry.1.max((T0 + n as i64 * STEP) as f64);
    }
    by_pair
        .into_values()
        .map(|(mut p, t)| {
            p.weight = p.weight.min(w.cap);
            (p, t)
        })
        .unzip()
}

/// The acceptance check of the fold-in under every weighting: a user the
/// model knows, given all of their training events one by one with their
/// times, gets one exact ALS half-step against the final product factors,
/// `x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u` with `C = 1 + α·r` and
/// `r` the entries of the trainer's own transformed matrix (decayed from
/// each pair's last time to the latest event, then raw, log or bm25).
#[test]
fn folded_in_user_equals_one_als_half_step_under_every_weighting() {
    let evs = events(5);
    let w = Weights::default();
    let (pairs, times) = timed_pairs(&evs, &w);
    let latest = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let params = AlsParams {
        factors: 6,
        iterations: 8,
        regularization: 0.1,
        alpha: 2.0,
        cg_steps: 3,
        seed: 9,
    };
    for confidence in Confidence::ALL {
        for half_life_days in [0.0, 7.0] {
            let candidate = Candidate {
                alpha: params.alpha,
                regularization: params.regularization,
                confidence,
                half_life: half_life_days * 86_400.0,
            };
            let trained = fit_all(
                pairs.clone(),
                &times,
                &params,
                &candidate,
                params.iterations,
                0.0,
                false,
                &Budget::from_setting(""),
                &Progress::new("test", "off"),
            )
            .unwrap();
            let model = ServingModel::new(trained.model).unwrap();
            let weighting = model.weighting.clone();
            assert_eq!(weighting.confidence, confidence);
            assert_eq!(weighting.half_life, candidate.half_life);
            assert_eq!(
                weighting.reference,
                (half_life_days > 0.0).then_some(latest)
            );
            let (y, f) = (model.item_factors(), model.factors);
            let fold = FoldIn::new(y, f, params.regularization as f64, params.alpha as f64)
                .unwrap()
                .with_weighting(weighting)
                .unwrap();

            // The trainer's matrix, written out again: decayed pairs,
            // then the transform over the whole matrix.
            let mut weights: Vec<f32> = pairs.iter().map(|p| p.weight).collect();
            if half_life_days > 0.0 {
                weighting::decay(&mut weights, &times, latest, candidate.half_life);
            }
            let rows: Vec<u32> = pairs.iter().map(|p| model.user(p.user).unwrap()).collect();
            let cols: Vec<u32> = pairs
                .iter()
                .map(|p| model.product(p.product).unwrap())
                .collect();
            let mut matrix = Csr::from_triplets(
                model.user_ids.len(),
                model.n_products(),
                &rows,
                &cols,
                &weights,
            )
            .unwrap();
            weighting::apply(&mut matrix, confidence);

            let mut past_woodbury = 0;
            for user in 1..=30i64 {
                let mut state = UserState::new(&[]);
                for (n, &(u, product, category, kind)) in evs.iter().enumerate() {
                    if u != user {
                        continue;
                    }
                    let touch = Touch {
                        kind,
                        time: Some((T0 + n as i64 * STEP) * 1_000_000),
                        item: model.product(product),
                        category: Some(category),
                    };
                    state.apply(&touch, &w, &fold, y).unwrap();
                }
                let mut scratch = Scratch::default();
                let mut got = vec![0f32; f];
                state.fold.solve(&fold, y, &mut scratch, &mut got).unwrap();
                past_woodbury += scratch.woodbury_weights().is_none() as usize;

                let (products, values) = matrix.row(model.user(user).unwrap() as usize);
                let raw = |i: usize| {
                    products
                        .iter()
                        .position(|&p| p as usize == i)
                        .map_or(0.0, |at| values[at] as f64)
                };
                let what = format!("{confidence:?}, half-life {half_life_days}: ");
                assert_one_exact_half_step(&model, &params, user, &got, raw, &what);
            }
            // Both solves are checked: some users have more products than
            // the Woodbury identity keeps (6 here).
            assert!(
                past_woodbury > 0 && past_woodbury < 30,
                "{confidence:?}: {past_woodbury} users past the Woodbury identity"
            );
        }
    }
}

/// Under a decay, the stream's later events count undecayed (age 0 after
/// the reference time), as do a session's events without times; earlier
/// ones decay exactly as the trainer decays them.
#[test]
fn events_after_the_reference_time_are_not_decayed() {
    let y: Vec<f32> = vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
    let weighting = crate::model::confidence::Weighting {
        half_life: 10.0,
        reference: Some(100.0),
        ..Default::default()
    };
    let fold = FoldIn::new(&y, 2, 0.1, 1.0)
        .unwrap()
        .with_weighting(weighting)
        .unwrap();
    let w = Weights::default();
    let solve = |times: &[Option<i64>]| {
        let mut user = UserState::new(&[]);
        for (item, &time) in times.iter().enumerate() {
            let touch = Touch {
                kind: super::state::Kind::Cart,
                time,
                item: Some(item as u32),
                category: None,
            };
            user.apply(&touch, &w, &fold, &y).unwrap();
        }
        let mut x = vec![0f32; 2];
        user.fold
            .solve(&fold, &y, &mut Scratch::default(), &mut x)
            .unwrap();
        x
    };
    let later = solve(&[Some(150_000_000), Some(200_000_000), None]);
    let untimed = solve(&[None, None, None]);
    assert_eq!(later, untimed);
    // The first product 10 s (one half-life) before the reference: its
    // cart weight 3 counts 1.5, as a 1.5-weight product without decay.
    let decayed = solve(&[Some(90_000_000), None, None]);
    let raw = FoldIn::new(&y, 2, 0.1, 1.0).unwrap();
    let mut user = UserFold::default();
    for (item, weight) in [(0u32, 1.5f32), (1, 3.0), (2, 3.0)] {
        user.set_weight(&raw, &y, item, weight).unwrap();
    }
    let mut x = vec![0f32; 2];
    user.solve(&raw, &y, &mut Scratch::default(), &mut x)
        .unwrap();
    assert_eq!(decayed, x);
    assert_ne!(decayed, untimed);
}
