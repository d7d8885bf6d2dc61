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

pub(super) const MIN: i64 = 60_000_000;

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
pub(super) type EmittedList = (usize, i64, Vec<(u32, u32, Source)>);
/// A window's start (minutes after the first) and its counters.
type WindowCounts = (i64, u64, u64, u64, u64, u64, u64, u64);

/// `evs` trained at raw confidence with `params` (the loss tracked) and
/// indexed for serving.
fn serve_raw(evs: &[GeneratedEvent], params: &AlsParams) -> ServingModel {
    let trained = train_pairs(
        pairs(evs, &Weights::default()),
        params,
        Confidence::Raw,
        0.0,
        true,
        &Budget::from_setting(""),
        &Progress::new("test", "off"),
    )
    .unwrap();
    ServingModel::new(trained.model).unwrap()
}

pub(super) fn trained(seed: u64) -> (ServingModel, Vec<GeneratedEvent>, AlsParams) {
    let evs = events(seed);
    let params = AlsParams {
        factors: 6,
        iterations: 8,
        regularization: 0.1,
        alpha: 2.0,
        cg_steps: 3,
        seed: 9,
    };
    let model = serve_raw(&evs, &params);
    (model, evs, params)
}

/// The acceptance check of the fold-in: a user the model knows, given all
/// of their training events one by one, gets one exact ALS half-step
/// against the final product factors:
/// `x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u`, `C = 1 + α·weight`.
/// The stream's fold-in of `model`, trained with `params`.
pub(super) fn fold_of(model: &ServingModel, params: &AlsParams) -> FoldIn {
    FoldIn::new(
        model.item_factors(),
        model.factors,
        params.regularization as f64,
        params.alpha as f64,
    )
    .unwrap()
}

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

        let user_pairs: Vec<Pair> = pairs(&evs, &w)
            .into_iter()
            .filter(|p| p.user == user)
            .collect();
        let raw = |i: usize| {
            user_pairs
                .iter()
                .find(|p| model.product(p.product) == Some(i as u32))
                .map_or(0.0, |p| p.weight as f64)
        };
        assert_one_exact_half_step(&model, &params, user, &got, raw, "");
    }
}

/// The acceptance check of `got`, the fold-in of a `user` the model knows
/// (`what` names the case in messages): one exact ALS half-step against the
/// final product factors, written out densely in f64, for the raw weights
/// `raw(i)` of the user's products (0: not touched),
/// `x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u`, `C = 1 + α·raw`; and
/// the trainer's CG factors of the user approach the same point.
pub(super) fn assert_one_exact_half_step(
    model: &ServingModel,
    params: &AlsParams,
    user: i64,
    got: &[f32],
    raw: impl Fn(usize) -> f64,
    what: &str,
) {
    let (y, f) = (model.item_factors(), model.factors);
    let mut a = vec![0f64; f * f];
    let mut b = vec![0f64; f];
    for i in 0..model.n_products() {
        let yi = &y[i * f..(i + 1) * f];
        let r = raw(i);
        let c = 1.0 + params.alpha as f64 * r;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
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
            "{what}user {user}: {got:?} vs {b:?}"
        );
    }
    let u = model.user(user).unwrap() as usize;
    let trained_row = &model.user_factors[u * f..(u + 1) * f];
    let distance: f32 = trained_row
        .iter()
        .zip(got)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        .sqrt();
    let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(
        distance < 0.25 * norm,
        "{what}user {user}: trained {trained_row:?} folded {got:?}"
    );
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

pub(super) fn config(threads: usize, seed: u64, speed: f64) -> Config {
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
        rules: Default::default(),
        item_weight: None,
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

pub(super) fn run(
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
    let fold = fold_of(&model, &params);
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
    let fold = fold_of(&model, &params);
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

/// The timing tests' model: 300,000 generated events (20,000 users with a
/// long tail, 4,000 products, one cart in 30) and a 50-factor fit of them.
fn timing_model() -> (Vec<GeneratedEvent>, ServingModel) {
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
    let model = serve_raw(&evs, &params);
    (evs, model)
}

/// Where a refresh's time goes, on a trained model of generated data
/// (`cargo test --release --lib stream::tests::timing -- --ignored --nocapture`).
#[test]
#[ignore]
fn timing() {
    let (evs, model) = timing_model();
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
    let (_, model) = timing_model();
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
