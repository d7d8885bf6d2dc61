//! The replay's lists with the model's item-to-item signal: each is the
//! list `recommend_session` gives for the user's events so far, and the
//! signal at weight 0 (or under rules) leaves the lists as they were.

use super::foldin::{FoldIn, Scratch};
use super::replay::{Event, MAX_RECENT_STEPS};
use super::sessions::SessionScorer;
use super::state::{Kind, Weights};
use super::tests::{config, run, trained, EmittedList, MIN};
use crate::covisit::session::steps_read;
use crate::model::neighbours::NeighbourRow;
use crate::recommend::items::items_of_rows;
use crate::recommend::rules::{RuleRequest, Rules};
use crate::recommend::serving::{ServingModel, Source};
use crate::rng::Rng;

/// The model of `tests::trained(8)` (25 products, ids 0..25, product p
/// in category 100 + p % 5) with neighbour rows: p is followed by p + 1
/// (score 3) and p + 7 (score 1), and co-occurs with p + 3 (score 2).
fn model_with_signal(weight: f64) -> (ServingModel, FoldIn) {
    let (mut model, _, params) = trained(8);
    let mut rows = Vec::new();
    for p in 0..25i64 {
        for (d, score, sequence) in [(1, 3.0, true), (7, 1.0, true), (3, 2.0, false)] {
            rows.push(NeighbourRow {
                product: p,
                neighbour: (p + d) % 25,
                score,
                sequence,
            });
        }
    }
    let params_rows = [weight, 1.0, 0.5, 2.0, 0.5, 100.0].map(Some);
    model.items = items_of_rows(&model, &rows, &params_rows).unwrap();
    let fold = super::tests::fold_of(&model, &params);
    (model, fold)
}

/// Four users the model does not know (1000..1004), their events
/// interleaved, one every 10 s (none late): 6 to 30 each, views mostly,
/// some carts and purchases, now and then an event of another type (which
/// the replay ignores), a product the model does not know (999, without a
/// category) or the same product twice in a row.
fn stream(seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let t0 = 1_570_000_000_000_000 / (5 * MIN) * (5 * MIN);
    let mut left: Vec<(i64, u64)> = (0..4)
        .map(|u| (1000 + u, 6 + rng.next_u64() % 25))
        .collect();
    let mut out = Vec::new();
    let mut previous = [0i64; 4];
    while left.iter().any(|u| u.1 > 0) {
        let at = (rng.next_u64() % 4) as usize;
        if left[at].1 == 0 {
            continue;
        }
        left[at].1 -= 1;
        let product = match rng.next_u64() % 10 {
            0 => 999,
            1 => previous[at],
            _ => (rng.next_u64() % 25) as i64,
        };
        previous[at] = product;
        let kind = match rng.next_u64() % 12 {
            0 => Some(Kind::Purchase),
            1 | 2 => Some(Kind::Cart),
            3 => None,
            _ => Some(Kind::View),
        };
        let n = out.len() as i64;
        out.push(Event {
            arrival: n + 1,
            time: t0 + n * 10_000_000,
            user: Some(left[at].0),
            product: Some(product),
            category: (product != 999).then_some(100 + product % 5),
            kind,
        });
    }
    out
}

/// The session functions' event code: 0 for another type (ignored).
fn code(kind: Option<Kind>) -> i64 {
    match kind {
        Some(Kind::View) => 1,
        Some(Kind::Cart) => 2,
        Some(Kind::Purchase) => 3,
        None => 0,
    }
}

#[test]
fn a_replayed_list_is_the_session_list_of_the_users_events_so_far() {
    let (model, fold) = model_with_signal(0.6);
    // The decay 0.5 reads 10 steps: the users' longer streams check that
    // keeping only those gives the whole stream's list.
    assert_eq!(steps_read(0.5, MAX_RECENT_STEPS), 10);
    let c = config(2, 42, 0.0);
    let rules = Rules::default();
    let scorer = SessionScorer {
        model: &model,
        fold: &fold,
        weights: Weights::default(),
        k: c.k,
        blend: c.blend,
        rules: &rules,
        item_weight: None,
        base: None,
    };
    let mut scratch = Scratch::default();
    let (mut lists, mut blended, mut long) = (0, 0, 0);
    for seed in [1, 2, 3] {
        let input = stream(seed);
        let (_, emitted) = run(&model, &fold, &input, &c);
        // No list after an event of another type.
        assert_eq!(
            emitted.len(),
            input.iter().filter(|e| e.kind.is_some()).count()
        );
        for (position, user, list) in &emitted {
            let (products, codes): (Vec<i64>, Vec<i64>) = input[..=*position]
                .iter()
                .filter(|e| e.user == Some(*user))
                .map(|e| (e.product.unwrap(), code(e.kind)))
                .unzip();
            let want: Vec<(u32, u32, Source)> = scorer
                .list(&products, &codes, &mut scratch)
                .unwrap()
                .iter()
                .map(|r| (r.product, r.score.to_bits(), r.source))
                .collect();
            assert_eq!(list, &want, "seed {seed}, event {position}, user {user}");
            lists += 1;
            blended += want.iter().any(|r| r.2 == Source::ItemToItem) as usize;
            long += (products.len() > 12) as usize;
        }
    }
    // The signal is in most lists, and many streams outgrow the steps kept.
    assert!(blended * 2 > lists, "{blended} of {lists}");
    assert!(long > 20, "{long}");
}

#[test]
fn weight_zero_or_rules_give_the_lists_without_the_signal() {
    let input = stream(4);
    let (mut model, fold) = model_with_signal(0.6);
    let plain = |model: &ServingModel, c: &super::replay::Config| -> Vec<EmittedList> {
        run(model, &fold, &input, c).1
    };
    let mut off = config(2, 42, 0.0);
    off.item_weight = Some(0.0);
    let with_signal = plain(&model, &config(2, 42, 0.0));
    let weight_zero = plain(&model, &off);
    // A rule that allows every product: the ruled lists, without the signal.
    let mut ruled = config(2, 42, 0.0);
    ruled.rules = std::sync::Arc::new(
        model
            .rules(&RuleRequest {
                include: None,
                exclude: vec![],
                min_price: None,
                max_price: None,
                max_per_category: Some(5),
                max_per_brand: None,
                diversity: 0.0,
            })
            .unwrap(),
    );
    let under_rules = plain(&model, &ruled);
    model.items = None;
    let without = plain(&model, &config(2, 42, 0.0));
    assert_eq!(weight_zero, without);
    assert_eq!(under_rules, plain(&model, &ruled));
    assert!(without
        .iter()
        .all(|l| l.2.iter().all(|r| r.2 != Source::ItemToItem)));
    assert_ne!(with_signal, without);
    // The call's weight overrides the model's: 1 on a model keeping 0.6.
    let (model, _) = model_with_signal(0.6);
    let mut one = config(2, 42, 0.0);
    one.item_weight = Some(1.0);
    assert_ne!(plain(&model, &one), with_signal);
}
