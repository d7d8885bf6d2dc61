//! Tests of the per-event scorer: the collaborative top from the product
//! rows equals the full scan's, and the row hints.

use super::foldin::{FoldIn, Scratch};
use super::state::{Kind, Touch, UserState, Weights};
use crate::als::solver::AlsParams;
use crate::als::weighting::Confidence;
use crate::als::{train_pairs, Pair};
use crate::budget::Budget;
use crate::progress::Progress;
use crate::recommend::serving::ServingModel;
use crate::rng::Rng;

/// The per-event scorer's shortcut (a folded-in user's scores from their
/// products' rows of product-by-product scores, bounded, then rescored)
/// gives exactly the full scan's top: same products, same score bits, same
/// order, with exclusions and with any hint.
/// A model of 400 products with skewed popularity (so norms spread as in
/// trained models), 16 factors, and its parameters.
fn skewed_model() -> (crate::model::FactorModel, AlsParams) {
    let mut rng = Rng::new(21);
    let mut pairs = Vec::new();
    for user in 0..300i64 {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..(2 + rng.next_u64() % 12) {
            let product = ((rng.next_f64().powi(3)) * 400.0) as i64;
            if seen.insert(product) {
                pairs.push(Pair {
                    user,
                    product,
                    weight: 1.0 + (rng.next_u64() % 5) as f32,
                    purchases: 0,
                    interactions: 1,
                    category: product % 7,
                });
            }
        }
    }
    let params = AlsParams {
        factors: 16,
        iterations: 6,
        regularization: 0.05,
        alpha: 3.0,
        cg_steps: 3,
        seed: 4,
    };
    let trained = train_pairs(
        pairs,
        &params,
        Confidence::Raw,
        0.0,
        false,
        &Budget::from_setting(""),
        &Progress::new("test", "off"),
    )
    .unwrap();
    (trained.model, params)
}

#[test]
fn collaborative_top_from_product_rows_equals_the_scan_bit_for_bit() {
    let mut rng = Rng::new(21);
    let (trained, params) = skewed_model();
    // The trained factors, and scaled so far that the stored scores' scale
    // σ is large (tiny factors, products of subnormal size) or below one.
    for (scale, trials) in [(1.0f32, 200), (1e-9, 60), (3e6, 60)] {
        let (id, mut factors) = trained.clone().into_parts();
        factors.item_factors.iter_mut().for_each(|v| *v *= scale);
        factors.user_factors.iter_mut().for_each(|v| *v *= scale);
        let model =
            ServingModel::new(crate::model::FactorModel::from_table(factors, id).unwrap()).unwrap();
        // Regularization scaled with the Gram matrix keeps the fold-in's
        // vectors of the same shape.
        let reg = params.regularization as f64 * (scale as f64).powi(2);
        products_rows_equal_the_scan(&model, reg, params.alpha as f64, trials, &mut rng, scale);
    }
}

fn products_rows_equal_the_scan(
    model: &ServingModel,
    regularization: f64,
    alpha: f64,
    trials: usize,
    rng: &mut Rng,
    scale: f32,
) {
    let y = model.item_factors();
    // Half precision where the CPU has F16C, and single precision.
    for fold in [
        FoldIn::new(y, model.factors, regularization, alpha).unwrap(),
        FoldIn::new(y, model.factors, regularization, alpha)
            .unwrap()
            .with_single_precision_scores(y),
    ] {
        rows_equal_the_scan(model, &fold, trials, rng, scale);
    }
}

fn rows_equal_the_scan(
    model: &ServingModel,
    fold: &FoldIn,
    trials: usize,
    rng: &mut Rng,
    scale: f32,
) {
    use super::score::{collaborative_top, ScoreScratch, UserTop};
    let y = model.item_factors();
    assert!(fold.product_scores().is_some());
    let (mut scratch, mut scores) = (Scratch::default(), ScoreScratch::default());
    let mut x = vec![0f32; model.factors];
    let mut shortcut = 0;
    for trial in 0..trials {
        let mut user = UserState::new(&[]);
        // Any products as the first hint (its scores are never read), or
        // none: a new user's first product's row hints.
        let mut memory = UserTop::default();
        if trial % 3 != 0 {
            memory.top = (0..40)
                .map(|_| ((rng.next_u64() % 420) as u32, f32::NAN))
                .collect();
        }
        for step in 0..(1 + trial % 10) {
            let item = (rng.next_u64() % model.n_products() as u64) as u32;
            let kind = if step % 4 == 3 {
                Kind::Purchase
            } else {
                Kind::View
            };
            user.apply(
                &Touch {
                    kind,
                    time: Some(step as i64),
                    item: Some(item),
                    category: None,
                },
                &Weights::default(),
                fold,
                y,
            )
            .unwrap();
            user.fold.solve(fold, y, &mut scratch, &mut x).unwrap();
            shortcut += scratch.woodbury_weights().is_some() as usize;
            for k in [1, 10, 40] {
                collaborative_top(
                    model,
                    fold,
                    user.fold.items(),
                    &scratch,
                    &x,
                    k,
                    &user.bought,
                    &mut memory,
                    &mut scores,
                );
                let want = model.collaborative_top(&x, k, &user.bought);
                let bits =
                    |v: &[(u32, f32)]| v.iter().map(|t| (t.0, t.1.to_bits())).collect::<Vec<_>>();
                assert_eq!(
                    bits(&memory.top),
                    bits(&want),
                    "scale {scale} trial {trial} step {step} k {k}"
                );
            }
        }
    }
    assert!(shortcut > 2 * trials, "the shortcut ran {shortcut} times");
}

/// A product's row hints are the products of its largest `z_j · y_i`, in
/// order: what a new user of that product alone is recommended first.
#[test]
fn row_hints_are_a_rows_best_products() {
    let (trained, params) = skewed_model();
    let model = ServingModel::new(trained).unwrap();
    let (y, f) = (model.item_factors(), model.factors);
    let fold = FoldIn::new(y, f, params.regularization as f64, params.alpha as f64).unwrap();
    let table = fold.product_scores().unwrap();
    let n = model.n_products();
    let mut x = vec![0f32; f];
    let (mut scratch, mut user) = (Scratch::default(), UserState::new(&[]));
    for j in [0u32, 7, (n - 1) as u32] {
        let hints = table.row_hints(j);
        assert_eq!(hints.len(), 64.min(n));
        // z_j is the solve's x for a user of j alone, up to its weight β > 0.
        user.fold = Default::default();
        user.apply(
            &Touch {
                kind: Kind::View,
                time: None,
                item: Some(j),
                category: None,
            },
            &Weights::default(),
            &fold,
            y,
        )
        .unwrap();
        user.fold.solve(&fold, y, &mut scratch, &mut x).unwrap();
        assert!(scratch
            .woodbury_weights()
            .is_some_and(|b| b.len() == 1 && b[0] > 0.0));
        let scores: Vec<f32> = (0..n)
            .map(|i| {
                x.iter()
                    .zip(&y[i * f..(i + 1) * f])
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let hinted: Vec<f32> = hints.iter().map(|&i| scores[i as usize]).collect();
        let mut sorted = scores.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        // Rounding aside (z_j scaled by β), the hints are the row's best.
        for (got, want) in hinted.iter().zip(&sorted) {
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1e-6),
                "row {j}: {got} vs {want}"
            );
        }
    }
}

/// An anchor answers only when its kept products must hold the top, and
/// then with the scan's list, bit for bit: vectors moved a little from the
/// anchor's (it answers), a lot (it declines), with products excluded
/// since it was taken.
#[test]
fn an_anchored_top_is_the_scan_or_declines() {
    use super::anchor::Anchor;
    let (factors, params) = skewed_model();
    let model = ServingModel::new(factors).unwrap();
    let y = model.item_factors();
    let (f, n) = (model.factors, model.n_products());
    let fold = FoldIn::new(y, f, params.regularization as f64, params.alpha as f64).unwrap();
    let mut rng = Rng::new(33);
    let bits = |v: &[(u32, f32)]| v.iter().map(|t| (t.0, t.1.to_bits())).collect::<Vec<_>>();
    let (mut answered, mut declined, mut exact) = (0, 0, Vec::new());
    for trial in 0..300 {
        let k = [1, 5, 10][trial % 3];
        // A vector as a fold-in makes them: a few products' factors summed.
        let mut x0 = vec![0f32; f];
        for _ in 0..(1 + rng.next_u64() % 6) {
            let i = (rng.next_f64().powi(2) * n as f64) as usize;
            x0.iter_mut()
                .zip(&y[i * f..(i + 1) * f])
                .for_each(|(a, b)| *a += b);
        }
        let mut excluded: Vec<u32> = (0..rng.next_u64() % 4)
            .map(|_| (rng.next_u64() % 60) as u32)
            .collect();
        excluded.sort_unstable();
        excluded.dedup();
        let (anchor, top0) = Anchor::scan(&model, &fold, &x0, k, &excluded, None, &mut exact);
        assert_eq!(
            bits(&top0),
            bits(&model.collaborative_top(&x0, k, &excluded))
        );
        let x_norm = x0.iter().map(|v| v * v).sum::<f32>().sqrt();
        // The largest-norm product the anchor did not keep (nor excluded):
        // moving toward it is what brings a product from outside the kept
        // ones into the top, the case the bound of the rest must see.
        let kept: Vec<u32> = model
            .collaborative_top(&x0, super::anchor::KEPT_PER_LISTED * k, &excluded)
            .iter()
            .map(|t| t.0)
            .collect();
        let outside = fold
            .by_norm
            .iter()
            .map(|t| t.0)
            .find(|i| !kept.contains(i) && excluded.binary_search(i).is_err());
        let toward = outside.map_or(vec![0f32; f], |r| {
            y[r as usize * f..(r as usize + 1) * f].to_vec()
        });
        for (step, toward_outside) in [1e-5f32, 1e-3, 1e-2, 0.1, 0.5, 2.0]
            .into_iter()
            .flat_map(|s| [(s, false), (s, true)])
        {
            let x: Vec<f32> = x0
                .iter()
                .zip(&toward)
                .map(|(&v, &t)| {
                    v + step
                        * x_norm
                        * if toward_outside {
                            t
                        } else {
                            rng.next_f64() as f32 - 0.5
                        }
                })
                .collect();
            // Exclusions only grow: one of the anchor's top, now and then.
            let mut now = excluded.clone();
            if rng.next_u64().is_multiple_of(3) {
                now.push(top0[0].0);
                now.sort_unstable();
                now.dedup();
            }
            let mut hinted = vec![false; n];
            let hints: Vec<(u32, f32)> = top0
                .iter()
                .filter(|t| now.binary_search(&t.0).is_err())
                .map(|t| {
                    hinted[t.0 as usize] = true;
                    (t.0, model.collaborative_score(&x, t.0))
                })
                .collect();
            match anchor.top(&model, &x, k, &now, &hints, &hinted, &mut exact) {
                Some(top) => {
                    answered += 1;
                    assert_eq!(
                        bits(&top),
                        bits(&model.collaborative_top(&x, k, &now)),
                        "trial {trial} step {step}"
                    );
                }
                None => declined += 1,
            }
        }
    }
    assert!(
        answered > 300 && declined > 300,
        "answered {answered}, declined {declined}"
    );
}

/// Users with more products than the product rows serve, event after
/// event: the anchor, its re-anchoring scans and the lists kept while an
/// event changes nothing give the scan's top every time.
#[test]
fn heavy_users_get_the_scans_top_after_every_event() {
    use super::score::{collaborative_top, ScoreScratch};
    let (factors, params) = skewed_model();
    let model = ServingModel::new(factors).unwrap();
    let y = model.item_factors();
    let fold = FoldIn::new(
        y,
        model.factors,
        params.regularization as f64,
        params.alpha as f64,
    )
    .unwrap();
    let mut rng = Rng::new(8);
    let (mut scratch, mut scores) = (Scratch::default(), ScoreScratch::default());
    let mut x = vec![0f32; model.factors];
    let (mut heavy, mut kept) = (0, 0);
    for _ in 0..12 {
        let mut user = UserState::new(&[]);
        for step in 0..90 {
            // A few favourite products, seen again and again (up to the cap).
            let item = if rng.next_u64().is_multiple_of(3) {
                (rng.next_u64() % 4) as u32
            } else {
                (rng.next_f64().powi(2) * model.n_products() as f64) as u32
            };
            let kind = if rng.next_u64().is_multiple_of(15) {
                Kind::Purchase
            } else {
                Kind::View
            };
            user.apply(
                &Touch {
                    kind,
                    time: Some(step),
                    item: Some(item),
                    category: None,
                },
                &Weights::default(),
                &fold,
                y,
            )
            .unwrap();
            if user.top.current {
                kept += 1;
            } else {
                user.fold.solve(&fold, y, &mut scratch, &mut x).unwrap();
                heavy += (2 * user.fold.products() > model.factors) as usize;
                collaborative_top(
                    &model,
                    &fold,
                    user.fold.items(),
                    &scratch,
                    &x,
                    10,
                    &user.bought,
                    &mut user.top,
                    &mut scores,
                );
            }
            user.fold.solve(&fold, y, &mut scratch, &mut x).unwrap();
            let bits =
                |v: &[(u32, f32)]| v.iter().map(|t| (t.0, t.1.to_bits())).collect::<Vec<_>>();
            assert_eq!(
                bits(&user.top.top),
                bits(&model.collaborative_top(&x, 10, &user.bought)),
                "step {step}"
            );
        }
    }
    assert!(heavy > 500 && kept > 50, "heavy {heavy}, kept {kept}");
}
