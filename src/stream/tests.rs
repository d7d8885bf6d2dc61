//! Tests across the stream's parts: the fold-in against a trained model,
//! the driver's determinism and its window figures.

use super::foldin::{FoldIn, Scratch};
use super::replay::{replay, Config, Event, LateRule, WindowRow};
use super::state::{Kind, Touch, UserState, Weights};
use crate::als::solver::AlsParams;
use crate::als::weighting::Confidence;
use crate::als::{train_pairs, Pair};
use crate::budget::Budget;
use crate::progress::Progress;
use crate::recommend::serving::{ServingModel, Source};
use crate::rng::Rng;
use std::collections::BTreeMap;

const MIN: i64 = 60_000_000;

/// Random events: 30 users, 25 products in 5 categories (product p in
/// category 100 + p % 5), each user favouring one category.
pub(super) fn events(seed: u64) -> Vec<(i64, i64, i64, Kind)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for user in 1..=30i64 {
        let favourite = user % 5;
        for _ in 0..(3 + rng.next_u64() % 12) {
            let product = if rng.next_f64() < 0.7 {
                favourite + 5 * (rng.next_u64() % 5) as i64
            } else {
                (rng.next_u64() % 25) as i64
            };
            let kind = match rng.next_u64() % 10 {
                0 => Kind::Purchase,
                1 | 2 => Kind::Cart,
                _ => Kind::View,
            };
            out.push((user, product, 100 + product % 5, kind));
        }
    }
    out
}

/// What `ecoreco.interactions` computes in SQL: weights summed per pair
/// and capped, counts, the category.
fn pairs(events: &[(i64, i64, i64, Kind)], w: &Weights) -> Vec<Pair> {
    let mut by_pair: BTreeMap<(i64, i64), Pair> = BTreeMap::new();
    for &(user, product, category, kind) in events {
        let p = by_pair.entry((user, product)).or_insert(Pair {
            user,
            product,
            weight: 0.0,
            purchases: 0,
            interactions: 0,
            category,
        });
        p.weight += w.of(kind);
        p.interactions += 1;
        p.purchases += (kind == Kind::Purchase) as u32;
    }
    by_pair
        .into_values()
        .map(|mut p| {
            p.weight = p.weight.min(w.cap);
            p
        })
        .collect()
}

/// (user, product, category, kind) of one generated event.
type GeneratedEvent = (i64, i64, i64, Kind);
/// (arrival position, user, the list's (product index, score bits, source)).
type EmittedList = (usize, i64, Vec<(u32, u32, Source)>);
/// A window's start (minutes after the first) and its counters.
type WindowCounts = (i64, u64, u64, u64, u64, u64, u64, u64);

fn trained(seed: u64) -> (ServingModel, Vec<GeneratedEvent>, AlsParams) {
    let evs = events(seed);
    let params = AlsParams {
        factors: 6,
        iterations: 8,
        regularization: 0.1,
        alpha: 2.0,
        cg_steps: 3,
        seed: 9,
    };
    let model = ServingModel::new(
        train_pairs(
            pairs(&evs, &Weights::default()),
            &params,
            Confidence::Raw,
            0.0,
            true,
            &Budget::from_setting(""),
            &Progress::new("test", "off"),
        )
        .unwrap()
        .model,
    )
    .unwrap();
    (model, evs, params)
}

/// The acceptance check of the fold-in: a user the model knows, given all
/// of their training events one by one, gets one exact ALS half-step
/// against the final product factors:
/// `x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u`, `C = 1 + α·weight`.
#[test]
fn folded_in_user_equals_one_als_half_step_against_the_final_factors() {
    let (model, evs, params) = trained(5);
    let y = model.item_factors();
    let f = model.factors;
    let w = Weights::default();
    let fold = FoldIn::new(y, f, params.regularization as f64, params.alpha as f64).unwrap();
    for user in [1i64, 7, 13, 30] {
        let mut state = UserState::new(&[]);
        for &(u, product, category, kind) in evs.iter().filter(|e| e.0 == user) {
            let touch = Touch {
                kind,
                time: None,
                item: model.product(product),
                category: Some(category),
            };
            assert_eq!(u, user);
            state.apply(&touch, &w, &fold, y).unwrap();
        }
        let mut got = vec![0f32; f];
        state
            .fold
            .solve(&fold, y, &mut Scratch::default(), &mut got)
            .unwrap();

        // The half-step written out densely, in f64.
        let user_pairs: Vec<Pair> = pairs(&evs, &w)
            .into_iter()
            .filter(|p| p.user == user)
            .collect();
        let mut a = vec![0f64; f * f];
        let mut b = vec![0f64; f];
        for i in 0..model.n_products() {
            let yi = &y[i * f..(i + 1) * f];
            let c = user_pairs
                .iter()
                .find(|p| model.product(p.product) == Some(i as u32))
                .map_or(1.0, |p| 1.0 + params.alpha as f64 * p.weight as f64);
            let preference = if c > 1.0 { 1.0 } else { 0.0 };
            for j in 0..f {
                b[j] += c * preference * yi[j] as f64;
                for k in 0..f {
                    a[j * f + k] += c * yi[j] as f64 * yi[k] as f64;
                }
            }
        }
        for j in 0..f {
            a[j * f + j] += params.regularization as f64;
        }
        super::foldin::cholesky(&mut a, f).unwrap();
        super::foldin::cholesky_solve(&a, f, &mut b);
        for (g, e) in got.iter().zip(&b) {
            assert!(
                (*g as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                "user {user}: {got:?} vs {b:?}"
            );
        }
        // The trainer's CG factors approach the same point.
        let u = model.user(user).unwrap() as usize;
        let trained_row = &model.user_factors[u * f..(u + 1) * f];
        let distance: f32 = trained_row
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt();
        let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            distance < 0.25 * norm,
            "user {user}: trained {trained_row:?} folded {got:?}"
        );
    }
}

#[test]
fn recommend_vector_with_a_model_row_is_recommend() {
    let (model, _, _) = trained(6);
    let f = model.factors;
    for user in [2i64, 9, 21] {
        let u = model.user(user).unwrap();
        let row = &model.user_factors[u as usize * f..(u as usize + 1) * f];
        let mut bought = model.purchased.row(u as usize).0.to_vec();
        bought.sort_unstable();
        for blend in [0.0f32, 0.8, 1.0] {
            let want = model.recommend(Some(u), &[], &[], 7, blend, true);
            let got =
                model.recommend_vector(Some(row), &model.interest[u as usize], &bought, 7, blend);
            assert_eq!(got, want, "user {user} blend {blend}");
        }
    }
}

fn config(threads: usize, seed: u64, speed: f64) -> Config {
    Config {
        window_us: 5 * MIN,
        watermark_us: 10 * MIN,
        speed,
        max_seconds: 60.0,
        k: 5,
        blend: 0.8,
        exclude_purchased: true,
        late: LateRule::Skip,
        weights: Weights::default(),
        threads,
        seed,
        keep_recommendations: true,
    }
}

fn stream(evs: &[(i64, i64, i64, Kind)]) -> Vec<Event> {
    // Interleave users, one event every 10 s, with every 17th event held
    // back 20 minutes (late).
    let mut out: Vec<Event> = evs
        .iter()
        .enumerate()
        .map(|(n, &(user, product, category, kind))| Event {
            arrival: n as i64 + 1,
            time: 1_570_000_000_000_000 + (n as i64 * 7919 % evs.len() as i64) * 10_000_000,
            user: Some(user),
            product: Some(product),
            category: Some(category),
            kind: Some(kind),
        })
        .collect();
    out.sort_by_key(|e| e.time);
    for (n, e) in out.iter_mut().enumerate() {
        e.arrival = n as i64 + 1;
        if n % 17 == 16 {
            e.time -= 20 * MIN;
        }
    }
    out
}

fn run(
    model: &ServingModel,
    fold: &FoldIn,
    evs: &[Event],
    c: &Config,
) -> (Vec<WindowRow>, Vec<EmittedList>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(c.threads)
        .build()
        .unwrap();
    let mut closed = Vec::new();
    let out = replay(evs, model, fold, c, &pool, &mut |rows| {
        closed.extend(rows.iter().map(|r| r.start));
        Ok(())
    })
    .unwrap();
    // Every window is reported at least once.
    for w in &out.windows {
        assert!(closed.contains(&w.start));
    }
    let lists = out
        .emitted
        .iter()
        .map(|e| {
            (
                e.position,
                e.user,
                e.recommendations
                    .iter()
                    .map(|r| (r.product, r.score.to_bits(), r.source))
                    .collect(),
            )
        })
        .collect();
    (out.windows, lists)
}

#[test]
fn the_same_input_gives_the_same_lists_whatever_the_threads_seed_and_speed() {
    let (model, evs, params) = trained(8);
    let fold = FoldIn::new(
        model.item_factors(),
        model.factors,
        params.regularization as f64,
        params.alpha as f64,
    )
    .unwrap();
    let input = stream(&evs);
    let (windows, reference) = run(&model, &fold, &input, &config(1, 42, 0.0));
    assert!(!reference.is_empty());
    for (threads, seed, speed) in [(2, 42, 0.0), (3, 7, 0.0), (2, 1, 1e6)] {
        let (w, lists) = run(&model, &fold, &input, &config(threads, seed, speed));
        assert_eq!(
            lists, reference,
            "threads {threads} seed {seed} speed {speed}"
        );
        let counts = |w: &[WindowRow]| {
            w.iter()
                .map(|r| {
                    (
                        r.start,
                        r.events,
                        r.late_events,
                        r.active_users,
                        r.new_users,
                        r.recommendations,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&w), counts(&windows));
    }
    let total: u64 = windows.iter().map(|w| w.events).sum();
    let late: u64 = windows.iter().map(|w| w.late_events).sum();
    assert_eq!(total as usize, input.len());
    assert!(late > 0);
    // Late events are skipped: one list per on-time event.
    assert_eq!(reference.len() as u64, total - late);
}

/// A hand-built stream: user 1000 (unknown to the model) first touches a
/// product the model does not know, without a category (nothing to go
/// on: popular fill), then a product it knows (folded in: collaborative
/// or category interest); an event without a user is ignored; one is late.
#[test]
fn unknown_users_start_popular_and_fold_in_on_their_first_known_product() {
    let (model, _, params) = trained(8);
    let fold = FoldIn::new(
        model.item_factors(),
        model.factors,
        params.regularization as f64,
        params.alpha as f64,
    )
    .unwrap();
    let t0 = 1_570_000_000_000_000 / (5 * MIN) * (5 * MIN);
    let ev = |arrival, minutes: i64, user, product, category, kind| Event {
        arrival,
        time: t0 + minutes * MIN,
        user,
        product,
        category,
        kind,
    };
    let input = vec![
        ev(1, 0, Some(1000), Some(999_999), None, Some(Kind::View)),
        ev(2, 1, Some(1000), Some(3), Some(103), Some(Kind::Cart)),
        ev(3, 2, None, Some(3), Some(103), Some(Kind::View)),
        ev(4, 6, Some(1), Some(4), Some(104), Some(Kind::View)),
        ev(5, 17, Some(2), Some(5), Some(100), Some(Kind::View)),
        ev(6, 3, Some(1000), Some(8), Some(103), Some(Kind::View)),
        ev(7, 18, Some(1000), Some(9), Some(104), Some(Kind::Purchase)),
    ];
    let (windows, lists) = run(&model, &fold, &input, &config(2, 42, 0.0));
    let rows: Vec<WindowCounts> = windows
        .iter()
        .map(|w| {
            (
                (w.start - t0) / MIN,
                w.events,
                w.late_events,
                w.ignored_events,
                w.active_users,
                w.new_users,
                w.unknown_users,
                w.recommendations,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (0, 4, 1, 1, 1, 1, 1, 2),
            (5, 1, 0, 0, 1, 1, 0, 1),
            (15, 2, 0, 0, 2, 1, 0, 2)
        ]
    );
    assert_eq!(
        windows[0].closed_by,
        Some(5),
        "the event at minute 17 moves the watermark to 7"
    );
    assert_eq!(windows[2].closed_by, None);
    let first = &lists[0].2;
    assert!(first.iter().all(|r| r.2 == Source::Popular), "{first:?}");
    assert_eq!(windows[0].fallback_share, Some(5.0 / 10.0));
    let second = &lists[1].2;
    assert!(
        second
            .iter()
            .any(|r| r.2 == Source::Collaborative || r.2 == Source::CategoryInterest),
        "{second:?}"
    );
    // The last list excludes what user 1000 just bought.
    let bought = model.product(9).unwrap();
    let last = lists.iter().rfind(|l| l.1 == 1000).unwrap();
    assert!(last.2.iter().all(|r| r.0 != bought));
}

/// Where a refresh's time goes, on a trained model of generated data
/// (`cargo test --release --lib stream::tests::timing -- --ignored --nocapture`).
#[test]
#[ignore]
fn timing() {
    let mut rng = Rng::new(3);
    let (n_users, n_products) = (20_000i64, 4000i64);
    let mut evs = Vec::new();
    for _ in 0..300_000 {
        let user = 1 + ((rng.next_f64().powi(3)) * n_users as f64) as i64;
        let product = ((rng.next_f64().powi(2)) * n_products as f64) as i64;
        evs.push((
            user,
            product,
            100 + product % 13,
            if rng.next_u64().is_multiple_of(30) {
                Kind::Cart
            } else {
                Kind::View
            },
        ));
    }
    let params = AlsParams {
        factors: 50,
        iterations: 5,
        regularization: 0.1,
        alpha: 1.0,
        cg_steps: 3,
        seed: 9,
    };
    let model = ServingModel::new(
        train_pairs(
            pairs(&evs, &Weights::default()),
            &params,
            Confidence::Raw,
            0.0,
            true,
            &Budget::from_setting(""),
            &Progress::new("test", "off"),
        )
        .unwrap()
        .model,
    )
    .unwrap();
    let fold = FoldIn::new(model.item_factors(), 50, 0.1, 1.0).unwrap();
    let y = model.item_factors();
    let mut users: std::collections::HashMap<i64, UserState> = Default::default();
    let (mut t_apply, mut t_solve, mut t_rec) = (0f64, 0f64, 0f64);
    let mut scratch = Scratch::default();
    let mut v = vec![0f32; 50];
    let n = 100_000;
    for &(user, product, category, kind) in evs.iter().take(n) {
        let t = std::time::Instant::now();
        let s = users.entry(user).or_default();
        s.apply(
            &Touch {
                kind,
                time: None,
                item: model.product(product),
                category: Some(category),
            },
            &Weights::default(),
            &fold,
            y,
        )
        .unwrap();
        let t1 = std::time::Instant::now();
        s.fold.solve(&fold, y, &mut scratch, &mut v).unwrap();
        let t2 = std::time::Instant::now();
        let interest = crate::model::top_categories_of(&s.categories);
        let recs = model.recommend_vector(Some(&v), &interest, &s.bought, 10, 0.8);
        assert_eq!(recs.len(), 10);
        let t3 = std::time::Instant::now();
        t_apply += (t1 - t).as_secs_f64();
        t_solve += (t2 - t1).as_secs_f64();
        t_rec += (t3 - t2).as_secs_f64();
    }
    let us = |t: f64| t * 1e6 / n as f64;
    eprintln!(
        "per event: apply {:.2} µs, solve {:.2} µs, recommend {:.2} µs",
        us(t_apply),
        us(t_solve),
        us(t_rec)
    );
}

#[test]
#[ignore]
fn timing_recommend() {
    let mut rng = Rng::new(3);
    let (n_users, n_products) = (20_000i64, 4000i64);
    let mut evs = Vec::new();
    for _ in 0..300_000 {
        let user = 1 + ((rng.next_f64().powi(3)) * n_users as f64) as i64;
        let product = ((rng.next_f64().powi(2)) * n_products as f64) as i64;
        evs.push((
            user,
            product,
            100 + product % 13,
            if rng.next_u64().is_multiple_of(30) {
                Kind::Cart
            } else {
                Kind::View
            },
        ));
    }
    let params = AlsParams {
        factors: 50,
        iterations: 5,
        regularization: 0.1,
        alpha: 1.0,
        cg_steps: 3,
        seed: 9,
    };
    let model = ServingModel::new(
        train_pairs(
            pairs(&evs, &Weights::default()),
            &params,
            Confidence::Raw,
            0.0,
            true,
            &Budget::from_setting(""),
            &Progress::new("test", "off"),
        )
        .unwrap()
        .model,
    )
    .unwrap();
    let n = model.user_ids.len().min(5000);
    for blend in [0.0f32, 0.8, 1.0] {
        let t = std::time::Instant::now();
        for u in 0..n as u32 {
            model.recommend(Some(u), &[], &[], 10, blend, true);
        }
        eprintln!(
            "recommend blend {blend}: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

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
