//! The known users' weight is chosen where the signal helps and left at 0
//! where it hurts, on hand-built fits whose lists can be worked out.

use super::*;
use crate::model::csr::Csr;
use crate::model::neighbours::NeighbourRow;
use crate::recommend::serving::tests::serving_model;

/// The weights tried (the session signal's).
const WEIGHTS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 0.9];

/// 10 users (ids 0..9, vector (1, 0)) × 30 products (ids 0..29): products
/// 0..9 score 1 − 0.05·i collaboratively, so every user's list of 10 is
/// 0, 1, …, 9; products 10..29 score 0 (after them, by id). No category,
/// no purchase. Each user `u` touched product 0 (time 1) and `10 + u`
/// (time 5) before the cut; `targets(u)` is what they carted after it.
fn fit(targets: impl Fn(i64) -> i64) -> (ValidationFit, ValidationSplit) {
    let mut item_factors = Vec::new();
    for i in 0..30 {
        let x = if i < 10 { 1.0 - 0.05 * i as f32 } else { 0.0 };
        item_factors.extend([x, 0.0]);
    }
    let model = serving_model(
        1,
        2,
        (0..10).collect(),
        (0..30).collect(),
        [1.0, 0.0].repeat(10),
        item_factors,
        vec![-1; 30],
        vec![0.0; 30],
        Csr::from_triplets(10, 30, &[], &[], &[]).unwrap(),
        vec![Vec::new(); 10],
    )
    .unwrap();
    let mut split = ValidationSplit {
        cut: 10.0,
        span: 10.0,
        ..Default::default()
    };
    for u in 0..10i64 {
        for (product, time) in [(0, 1.0), (10 + u, 5.0)] {
            split.train.push(Pair {
                user: u,
                product,
                weight: 1.0,
                purchases: 0,
                interactions: 1,
                category: -1,
            });
            split.train_times.push(time);
        }
        split.targets.push((u, targets(u)));
    }
    let fit = ValidationFit::new(
        model,
        (0..10).collect(),
        (0..10).map(|u| vec![targets(u) as u32]).collect(),
    );
    (fit, split)
}

/// The signal: product `10 + u` is followed by `next(u)` in the sessions
/// (sequence only: no co-occurrence, no repeat), item_weight 0.5.
fn signal(fit: &ValidationFit, next: impl Fn(i64) -> i64) -> SessionItems {
    let rows: Vec<NeighbourRow> = (0..10)
        .map(|u| NeighbourRow {
            product: 10 + u,
            neighbour: next(u),
            score: 3.0,
            sequence: true,
        })
        .collect();
    let params = [Some(0.5), Some(1.0), Some(0.0), Some(0.0), Some(0.5)];
    items::items_of_rows(&fit.model, &rows, &params)
        .unwrap()
        .unwrap()
}

#[test]
fn the_latest_products_of_the_evaluated_users_feed_the_signal() {
    let (fit, split) = fit(|u| 20 + u);
    let rows = recent_rows(&split.train, &split.train_times, |u| u < 2);
    let got: Vec<(i64, i64, u32)> = rows.iter().map(|r| (r.user, r.product, r.rank)).collect();
    assert_eq!(got, [(0, 10, 1), (0, 0, 2), (1, 11, 1), (1, 0, 2)]);
    let mut s = signal(&fit, |u| 20 + u);
    choose(&fit, &split, &mut s, 0.0, &WEIGHTS).unwrap();
    // Oldest first, as a session's steps.
    assert_eq!(s.recent.of(3), [0, 13]);
}

#[test]
fn the_weights_are_chosen_where_the_signal_helps() {
    // Each user carts 20 + u, which follows their latest product 10 + u:
    // outside every plain list of 10 (NDCG 0), and new to the user.
    let (fit, split) = fit(|u| 20 + u);
    let mut s = signal(&fit, |u| 20 + u);
    let chosen = choose(&fit, &split, &mut s, 0.0, &WEIGHTS).unwrap();
    // New targets: the own list without the touched 0 and 10 + u is
    // 1..9 then 10..21 but 10 + u (L = 20), so 20 + u is in it (the 19th)
    // for users 0 and 1 only. At 0.25 the target's 0.25 (+ its rank part)
    // stays under the 10th's 0.4125: NDCG 0. At 0.5 it leads for users 0
    // and 1 (0.5 plus its rank part) and ties with the first (0.5) for the
    // 8 others, coming second (the own list first). From 0.75 on it leads.
    let third = (2.0 + 8.0 / 3f64.log2()) / 10.0;
    let want = [0.0, 0.0, third, 1.0, 1.0];
    assert_eq!(chosen.new_scores.len(), WEIGHTS.len());
    for (g, w) in chosen.new_scores.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{:?}", chosen.new_scores);
    }
    // Ties keep the smaller weight.
    assert_eq!(chosen.new_weight, 0.75);
    // All targets, new products at 0.75: the target (not a latest
    // product) weighs (1 − w) · 0.75 / 0.25 = 3 (1 − w) against the first
    // own product's (1 − w): it leads at every weight above 0.
    assert_eq!(chosen.scores, [0.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(chosen.weight, 0.25);
}

#[test]
fn the_weights_stay_0_where_the_signal_hurts() {
    // Each user carts u, 1 + u-th of their plain list; the sessions
    // follow 10 + u with 20 + u, which no user carts.
    let (fit, split) = fit(|u| u);
    let mut s = signal(&fit, |u| 20 + u);
    let chosen = choose(&fit, &split, &mut s, 0.0, &WEIGHTS).unwrap();
    // New targets: users 1..9 (user 0 touched product 0), whose lists
    // without 0 put u at position u − 1.
    let plain_new: f64 = (0..9).map(|r| 1.0 / (r as f64 + 2.0).log2()).sum::<f64>() / 9.0;
    let n = &chosen.new_scores;
    // 0.25 changes no list (0.25 under the 10th's 0.4125); from 0.5 on
    // the item-to-item product comes first or second and pushes the
    // target down a place.
    assert!((n[0] - plain_new).abs() < 1e-12, "{n:?}");
    assert!((n[1] - plain_new).abs() < 1e-12, "{n:?}");
    assert!(
        n[2] < plain_new && n[3] < plain_new && n[4] < plain_new,
        "{n:?}"
    );
    assert_eq!(chosen.new_weight, 0.0);
    // New products at 0: the item-to-item product (not a latest one)
    // gets no share at any weight, so every list is the plain one.
    let plain: f64 = (0..10).map(|r| 1.0 / (r as f64 + 2.0).log2()).sum::<f64>() / 10.0;
    for g in &chosen.scores {
        assert!((g - plain).abs() < 1e-12, "{:?}", chosen.scores);
    }
    assert_eq!(chosen.weight, 0.0);
    assert_eq!(best(&[0.2, 0.2, 0.1]), 0);
    assert_eq!(best(&[0.1, 0.3, 0.3]), 1);
}

#[test]
fn the_id_changes_with_the_rows_and_the_weight() {
    let row = RecentRow {
        user: 1,
        product: 2,
        rank: 1,
    };
    assert_eq!(hash_into(&[], 0.0, 0.0, 77), 77);
    let a = hash_into(&[row], 0.5, 0.5, 77);
    assert_ne!(a, 77);
    assert_ne!(a, hash_into(&[row], 0.25, 0.25, 77));
    assert_ne!(a, hash_into(&[row], 0.5, 0.25, 77));
    assert_ne!(a, hash_into(&[RecentRow { rank: 2, ..row }], 0.5, 0.5, 77));
    assert_eq!((a as f64) as i64, a);
}
