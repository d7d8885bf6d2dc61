//! The item-to-item signal in the lists of sessions: a model whose table
//! keeps `neighbour` rows ([`crate::model::neighbours`]) scores a session's
//! products through them ([`crate::covisit::session`]) as well as through
//! its factors, and blends the two lists.
//!
//! The blend: the model's own list of the session (collaborative fold-in,
//! category interest, popular fill: [`base_length`] products, best first)
//! and the item-to-item scores of up to [`EXTRA`] products. A product at
//! position `r` (from 0) of the model's list of length `L` scores
//! `(L − r) / L` there (0 when absent), an item-to-item product `s / s_max`;
//! the session's list is the `k` best of
//!
//! ```text
//! (1 − w) · model part + w · item-to-item part
//! ```
//!
//! with `w` the model's `item_weight` (chosen on the validation split by
//! `als_train`; 0 leaves the signal out). Ranks, not scores, for the
//! model's part: its list mixes collaborative, interest and popularity
//! scores of different scales. Ties: the model's order, then product id.
//! A product's source is `item-to-item` when that part is the larger.
//!
//! Known users (`recommend`, `recommend_all`) get the same blend: their
//! list of [`user_base_length`] (collaborative, category interest, popular
//! fill) and the item-to-item scores of their latest products (the
//! model's `recent` rows, [`crate::model::recent`], scored as a session of
//! them, oldest first, with no product "on screen", so a latest product
//! may come back), at the model's `user_item_weight` (0, or a model
//! without it: today's list). Products the user bought stay excluded from
//! both parts. Under serving rules the list is the ruled list alone (the
//! item-to-item products would not have passed the rules).

use super::rules::Rules;
use super::serving::{Recommendation, ServingModel, SessionItems, Source, UserRecent};
use crate::binding::{Args, Check, Param, SqlType, Value};
use crate::covisit::session::{Scorer, SessionBlend, Source as ItemSource};
use crate::covisit::ItemModel;
use crate::model::neighbours::{NeighbourRow, PARAMS};
use crate::model::recent::{self, RecentRow};
use crate::model::table::{from_rows, ModelRows};
use std::cell::RefCell;

/// The item-to-item products scored per session, and how many products
/// past `k` the model's own list offers the blend.
pub const EXTRA: usize = 50;

/// The serving model of a table's rows, with its item-to-item signal when
/// the table keeps one (and the known users' part of it when the table
/// has a `user_item_weight`).
pub fn serving_of_rows(mut rows: ModelRows, model_id: i64) -> anyhow::Result<ServingModel> {
    let neighbours = rows.take_neighbours();
    let latest = rows.take_recent();
    let params: Vec<Option<f64>> = PARAMS.iter().map(|name| rows.param(name)).collect();
    let user_weights = [recent::PARAM, recent::NEW_PARAM].map(|name| rows.param(name));
    let mut served = ServingModel::new(from_rows(rows, model_id)?)?;
    with_signal(&mut served, neighbours, &params, latest, user_weights)?;
    Ok(served)
}

/// `served` given the item-to-item signal of the neighbour rows
/// `neighbours` ([`items_of_rows`], with the [`PARAMS`] values `params`)
/// and, when there is one, the known users' part of it: their latest
/// products `latest` at the weights `user_weights` (`user_item_weight`,
/// `user_new_item_weight`: [`users_of_rows`]; the second, absent, is the
/// first).
pub fn with_signal(
    served: &mut ServingModel,
    neighbours: Vec<NeighbourRow>,
    params: &[Option<f64>],
    latest: Vec<RecentRow>,
    user_weights: [Option<f64>; 2],
) -> anyhow::Result<()> {
    served.items = items_of_rows(served, &neighbours, params)?;
    drop(neighbours);
    if served.items.is_some() {
        let (weight, latest) = users_of_rows(served, latest, user_weights[0])?;
        let new_weight = match user_weights[1] {
            Some(w) => users_of_rows(served, Vec::new(), Some(w))?.0,
            None => weight,
        };
        if let Some(items) = served.items.as_mut() {
            items.user_weight = weight;
            items.user_new_weight = new_weight;
            items.recent = latest;
        }
    }
    Ok(())
}

/// The known users' weight (`user_item_weight`, 0 when absent) and their
/// latest products on `model`'s indices (rows of users or products the
/// model does not know are left out).
pub fn users_of_rows(
    model: &ServingModel,
    rows: Vec<RecentRow>,
    weight: Option<f64>,
) -> anyhow::Result<(f32, UserRecent)> {
    let weight = weight.unwrap_or(0.0);
    anyhow::ensure!(
        (0.0..=1.0).contains(&weight),
        "the model's {} is {weight}, outside 0..1; the model table is damaged",
        recent::PARAM
    );
    let entries = rows
        .into_iter()
        .filter_map(|r| Some((model.user(r.user)?, r.rank, model.product(r.product)?)))
        .collect();
    Ok((
        weight as f32,
        UserRecent::new(entries, model.user_ids.len())?,
    ))
}

/// The signal of `rows` on `model`'s products (rows of products the model
/// does not know are left out), with the [`PARAMS`] values `params`;
/// `None` without rows.
pub fn items_of_rows(
    model: &ServingModel,
    rows: &[NeighbourRow],
    params: &[Option<f64>],
) -> anyhow::Result<Option<SessionItems>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let param = |i: usize| params.get(i).copied().flatten();
    let weight = param(0).ok_or_else(|| {
        anyhow::anyhow!(
            "the model has neighbour rows but no item_weight param row; the model table is damaged"
        )
    })?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&weight),
        "the model's item_weight is {weight}, outside 0..1; the model table is damaged"
    );
    let d = SessionBlend::default();
    let value = |i: usize, default: f32| param(i).map_or(default, |v| v as f32);
    let blend = SessionBlend {
        sequence: value(1, d.sequence),
        cooccurrence: value(2, d.cooccurrence),
        repeat: value(3, d.repeat),
        decay: value(4, d.decay),
    };
    let n = model.n_products();
    let mut items = ItemModel {
        product_ids: model.product_ids.clone(),
        cooc: vec![Vec::new(); n],
        seq: vec![Vec::new(); n],
        counts: vec![0; n],
    };
    for r in rows {
        let (Some(a), Some(b)) = (model.product(r.product), model.product(r.neighbour)) else {
            continue;
        };
        let list = if r.sequence {
            &mut items.seq[a as usize]
        } else {
            &mut items.cooc[a as usize]
        };
        list.push((b, r.score));
    }
    for list in items.cooc.iter_mut().chain(items.seq.iter_mut()) {
        list.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    }
    Ok(Some(SessionItems {
        model: items,
        blend,
        weight: weight as f32,
        user_weight: 0.0,
        user_new_weight: 0.0,
        recent: UserRecent::default(),
    }))
}

/// The session functions' `item_weight` parameter.
pub fn weight_param() -> Param {
    Param::named(
        "item_weight",
        SqlType::Double,
        Value::Null,
        "a number between 0 (the item-to-item signal left out) and 1; NULL: the model's item_weight",
    )
    .check(Check::Range(0.0, 1.0))
    .nullable()
}

/// The call's `item_weight` (checked by its declaration); `None`: the model's.
pub fn call_weight(call: &Args) -> anyhow::Result<Option<f32>> {
    Ok(call.opt_double("item_weight")?.map(|w| w as f32))
}

/// The signal and its weight (`weight`, else the model's) when the model
/// keeps one and the weight is above 0.
pub fn active(model: &ServingModel, weight: Option<f32>) -> Option<(&SessionItems, f32)> {
    let items = model.items.as_ref()?;
    let w = weight.unwrap_or(items.weight);
    (w > 0.0).then_some((items, w))
}

/// How long the model's own list of a session must be for a list of `k`.
pub fn base_length(model: &ServingModel, weight: Option<f32>, k: usize) -> usize {
    if active(model, weight).is_some() {
        k + EXTRA
    } else {
        k
    }
}

/// How many collaborative candidates the model's own list of a session
/// blends, for a list of `k`: those of the plain list of `k` (4k), however
/// long the list ([`base_length`]); its positions past them come from the
/// category interest and the popular fill. Four times the longer list's
/// length would make the collaborative top six times as deep at k = 10,
/// most of a replayed event's cost, for positions that weigh little once
/// blended.
pub fn base_candidates(k: usize) -> usize {
    ServingModel::collaborative_candidates(k)
}

thread_local! {
    static SCORER: RefCell<Scorer> = RefCell::new(Scorer::default());
}

/// A session's steps as the item-to-item part reads them: its products
/// (ids in event order) the model knows, as dense indices, repeats of one
/// product in a row merged into one step (as in training).
pub fn steps_of(model: &ServingModel, products: &[i64]) -> Vec<u32> {
    let mut steps: Vec<u32> = Vec::with_capacity(products.len());
    for i in products.iter().filter_map(|&p| model.product(p)) {
        if steps.last() != Some(&i) {
            steps.push(i);
        }
    }
    steps
}

/// The item-to-item scores of a session (its product ids in event order),
/// best first, at most [`EXTRA`]: products in `excluded` (sorted) left out,
/// as is the product the session is on.
pub fn item_scores(
    model: &ServingModel,
    items: &SessionItems,
    products: &[i64],
    excluded: &[u32],
) -> Vec<(u32, f32)> {
    let last = products.last().and_then(|&p| model.product(p));
    step_scores(items, &steps_of(model, products), last, excluded)
}

/// [`item_scores`] of a session given as its steps ([`steps_of`]; only the
/// latest [`crate::covisit::session::steps_read`] are read) and the product
/// it is on (`last`, `None` when the model does not know it).
pub fn step_scores(
    items: &SessionItems,
    steps: &[u32],
    last: Option<u32>,
    excluded: &[u32],
) -> Vec<(u32, f32)> {
    let mut scored = SCORER.with(|s| {
        s.borrow_mut().recommend(
            &items.model,
            &[],
            steps,
            last,
            &items.blend,
            EXTRA + excluded.len().min(EXTRA),
        )
    });
    // Without a popular fill every product scored is an item-to-item one.
    scored.retain(|x| x.2 == ItemSource::Items && excluded.binary_search(&x.0).is_err());
    scored.truncate(EXTRA);
    scored.into_iter().map(|x| (x.0, x.1)).collect()
}

/// Reusable per-thread marks of [`blend_lists`]: per product, the stamp
/// of the last call that listed it among the item-to-item scores (with
/// its part) and among the model's list.
#[derive(Default)]
struct BlendMarks {
    stamp: u32,
    item: Vec<(u32, f32)>,
    base: Vec<u32>,
}

impl BlendMarks {
    /// A fresh stamp for a model of `n` products.
    fn next(&mut self, n: usize) -> u32 {
        if self.item.len() != n || self.stamp == u32::MAX {
            self.item = vec![(0, 0.0); n];
            self.base = vec![0; n];
            self.stamp = 0;
        }
        self.stamp += 1;
        self.stamp
    }
}

thread_local! {
    static MARKS: RefCell<BlendMarks> = RefCell::new(BlendMarks::default());
}

/// A float's place in `total_cmp`'s order, as an unsigned integer.
fn total_order_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Lists longer than this are collected, then selected and sorted, by
/// [`blend_lists`]; shorter ones kept sorted as the candidates come.
const SHORT_BLEND: usize = 64;

/// The `k` best of the blend of the module documentation: `base` the
/// model's list, `items` the item-to-item scores (best first), `weight`
/// the item-to-item share.
pub fn blend_lists(
    model: &ServingModel,
    base: &[Recommendation],
    items: &[(u32, f32)],
    weight: f32,
    k: usize,
) -> Vec<Recommendation> {
    MARKS.with(|m| {
        blend_marked(
            &mut m.borrow_mut(),
            model,
            base,
            items,
            weight,
            |_| weight,
            k,
        )
    })
}

fn blend_marked(
    marks: &mut BlendMarks,
    model: &ServingModel,
    base: &[Recommendation],
    items: &[(u32, f32)],
    weight: f32,
    item_weight: impl Fn(u32) -> f32,
    k: usize,
) -> Vec<Recommendation> {
    let len = base.len().max(1) as f32;
    let top = items.first().map_or(0.0, |x| x.1);
    let item_part = |p: u32, s: f32| {
        if top > 0.0 {
            item_weight(p) * s / top
        } else {
            0.0
        }
    };
    // Each list looked up for every product of the other: marked per
    // product (a product is scored once by the item-to-item part).
    let stamp = marks.next(model.n_products());
    for &(p, s) in items {
        marks.item[p as usize] = (stamp, item_part(p, s));
    }
    for rec in base {
        marks.base[rec.product as usize] = stamp;
    }
    // Best first; ties: the model's order (position, `base.len()` for
    // the item-to-item products), then product id. The score and the
    // position as one key, the id compared only on equal keys.
    let key =
        |score: f32, position: usize| (u64::from(!total_order_bits(score)) << 32) | position as u64;
    let ids = &model.product_ids;
    let before = |a: &(u64, Recommendation), b: &(u64, Recommendation)| {
        a.0.cmp(&b.0)
            .then(ids[a.1.product as usize].cmp(&ids[b.1.product as usize]))
    };
    let base_entries = base.iter().enumerate().map(|(r, rec)| {
        let b = (1.0 - weight) * (len - r as f32) / len;
        let (seen, part) = marks.item[rec.product as usize];
        let i = if seen == stamp { part } else { 0.0 };
        let source = if i > b {
            Source::ItemToItem
        } else {
            rec.source
        };
        let rec = Recommendation {
            product: rec.product,
            score: b + i,
            source,
        };
        (key(b + i, r), rec)
    });
    let item_entries = items
        .iter()
        .filter(|x| marks.base[x.0 as usize] != stamp)
        .map(|&(p, s)| {
            let i = item_part(p, s);
            let rec = Recommendation {
                product: p,
                score: i,
                source: Source::ItemToItem,
            };
            (key(i, base.len()), rec)
        });
    let entries = base_entries.chain(item_entries);
    if k <= SHORT_BLEND {
        // Most candidates turned away by one comparison with the last kept.
        let mut kept: Vec<(u64, Recommendation)> = Vec::with_capacity(k + 1);
        for e in entries {
            if kept.len() == k && (k == 0 || before(&e, &kept[k - 1]).is_ge()) {
                continue;
            }
            let at = kept.partition_point(|q| before(q, &e).is_lt());
            kept.insert(at, e);
            kept.truncate(k);
        }
        return kept.into_iter().map(|x| x.1).collect();
    }
    let mut all: Vec<(u64, Recommendation)> = entries.collect();
    // A total order (product ids are distinct): the k best, then sorted.
    if all.len() > k {
        all.select_nth_unstable_by(k, before);
        all.truncate(k);
    }
    all.sort_unstable_by(before);
    all.into_iter().map(|x| x.1).collect()
}

/// A session's list of `k` from the model's own list of it (`base`,
/// [`base_length`] long): blended with the item-to-item scores when the
/// model keeps the signal (at `weight`, else the model's), else `base`
/// cut to `k`.
pub fn session_list(
    model: &ServingModel,
    base: Vec<Recommendation>,
    products: &[i64],
    excluded: &[u32],
    weight: Option<f32>,
    k: usize,
) -> Vec<Recommendation> {
    let (steps, last) = match active(model, weight) {
        Some(_) => (
            steps_of(model, products),
            products.last().and_then(|&p| model.product(p)),
        ),
        None => (Vec::new(), None),
    };
    steps_list(model, base, &steps, last, excluded, weight, k)
}

/// [`session_list`] of a session given as its steps ([`steps_of`]) and the
/// product it is on: the one recipe of every list the signal enters (the
/// session functions, the replay, `similar_products`).
pub fn steps_list(
    model: &ServingModel,
    mut base: Vec<Recommendation>,
    steps: &[u32],
    last: Option<u32>,
    excluded: &[u32],
    weight: Option<f32>,
    k: usize,
) -> Vec<Recommendation> {
    let Some((items, w)) = active(model, weight) else {
        base.truncate(k);
        return base;
    };
    let scored = step_scores(items, steps, last, excluded);
    blend_lists(model, &base, &scored, w, k)
}

/// `similar_products`' list of `k` for the product `item`: its nearest
/// products by factor cosine (`similar`, best first, [`base_length`] long)
/// as the model's own list, blended with the item-to-item scores of the
/// one-product session `[item]` when the model keeps the signal (at
/// `weight`, else the model's); else the `k` nearest with their cosines.
pub fn similar_list(
    model: &ServingModel,
    similar: &[(u32, f32)],
    item: u32,
    weight: Option<f32>,
    k: usize,
) -> Vec<Recommendation> {
    let base = similar
        .iter()
        .map(|&(product, score)| Recommendation {
            product,
            score,
            source: Source::Similar,
        })
        .collect();
    steps_list(model, base, &[item], Some(item), &[], weight, k)
}

/// The signal and the known users' weight (`weight`, else the model's)
/// when the model keeps the signal and that weight is above 0.
/// The known users' signal and its two weights ([`user_share`]): the
/// model's, or the caller's `weight` for both.
fn user_active(model: &ServingModel, weight: Option<f32>) -> Option<(&SessionItems, f32, f32)> {
    let items = model.items.as_ref()?;
    let (w, new_w) = weight.map_or((items.user_weight, items.user_new_weight), |w| (w, w));
    (w > 0.0).then_some((items, w, new_w))
}

/// A known user's two weights ([`user_share`]) and item-to-item scores
/// (best first).
pub type UserItemSide = (f32, f32, Vec<(u32, f32)>);

/// A known user's item-to-item side of the blend, as [`known_users_lists`]
/// serves it with no rule and the model's weight: the two weights
/// ([`user_share`]) and the scores of [`user_list`] (best first); `None`
/// when their list is not blended (no weight, or nothing scored).
pub fn user_item_scores(
    model: &ServingModel,
    user: u32,
    also: &[u32],
    exclude_purchased: bool,
    weight: Option<f32>,
) -> Option<UserItemSide> {
    let (items, w, new_w) = user_active(model, weight)?;
    let excluded = model.excluded_for(Some(user), also, exclude_purchased);
    let scored = step_scores(items, items.recent.of(user), None, &excluded);
    (!scored.is_empty()).then_some((w, new_w, scored))
}

/// How long a known user's own list must be for a blended list of `k`:
/// twice `k` (at most `k +` [`EXTRA`]). Shorter than a session's (`k +
/// EXTRA`): `recommend_all` makes one for every user, and the collaborative
/// scan's cost grows with its length (its candidates are 4 × the length).
pub fn user_base_length(k: usize) -> usize {
    k + k.min(EXTRA)
}

/// The item-to-item share of `product` in a known user's blend at weights
/// `w` and `new_w` (`latest`: the user's latest products): `w` for a
/// latest product (its own part weighs `1 − w`); for any other product,
/// the share that puts its item-to-item part against the same own part
/// `1 − w` in the ratio `new_w : (1 − new_w)`, `(1 − w) · new_w / (1 −
/// new_w)`. So the products other than the latest are ranked among
/// themselves as the blend at `new_w` ranks them, and the latest come back
/// as the blend at `w` brings them. `new_w = w` is the blend at `w`.
pub fn user_share(latest: &[u32], product: u32, w: f32, new_w: f32) -> f32 {
    if new_w == w || latest.contains(&product) || new_w >= 1.0 {
        w
    } else {
        (1.0 - w) * new_w / (1.0 - new_w)
    }
}

/// A known user's list of `k` from their own list of [`user_base_length`]
/// (`base`) blended with the item-to-item scores of their latest products
/// at weights `w` and `new_w` ([`user_share`]; `excluded`: sorted, never
/// offered); the first `k` of `base` when their latest products score
/// nothing.
#[allow(clippy::too_many_arguments)]
pub fn user_list(
    model: &ServingModel,
    items: &SessionItems,
    user: u32,
    base: &[Recommendation],
    excluded: &[u32],
    w: f32,
    new_w: f32,
    k: usize,
) -> Vec<Recommendation> {
    let scored = step_scores(items, items.recent.of(user), None, excluded);
    if scored.is_empty() {
        // Nothing to blend (no latest product, or none with neighbours):
        // the user's own list, with its own scores.
        return base.iter().take(k).copied().collect();
    }
    let latest = items.recent.of(user);
    MARKS.with(|m| {
        blend_marked(
            &mut m.borrow_mut(),
            model,
            base,
            &scored,
            w,
            |p| user_share(latest, p, w, new_w),
            k,
        )
    })
}

/// The lists of known users (model indices) of `recommend` and
/// `recommend_all`: with no rule and the known users' signal on (at
/// `weight`, else the model's), each the blend of [`user_list`]; else
/// the plain or ruled lists ([`ServingModel::recommend_ruled`]).
/// `also`: products excluded besides the users' purchases in the model
/// (`recommend`'s, from the events table when it read one).
#[allow(clippy::too_many_arguments)]
pub fn known_users_lists(
    model: &ServingModel,
    users: &[u32],
    also: &[u32],
    k: usize,
    blend: f32,
    exclude_purchased: bool,
    rules: &Rules,
    weight: Option<f32>,
) -> Vec<Vec<Recommendation>> {
    let active = user_active(model, weight).filter(|_| rules.is_off());
    let Some((items, w, new_w)) = active else {
        if also.is_empty() {
            return model.recommend_users_ruled(users, k, blend, exclude_purchased, rules);
        }
        return users
            .iter()
            .map(|&u| model.recommend_ruled(Some(u), &[], also, k, blend, exclude_purchased, rules))
            .collect();
    };
    let bases = if also.is_empty() {
        model.recommend_users(users, user_base_length(k), blend, exclude_purchased)
    } else {
        let one = |&u: &u32| {
            model.recommend(
                Some(u),
                &[],
                also,
                user_base_length(k),
                blend,
                exclude_purchased,
            )
        };
        users.iter().map(one).collect()
    };
    users
        .iter()
        .zip(bases)
        .map(|(&u, base)| {
            let excluded = model.excluded_for(Some(u), also, exclude_purchased);
            user_list(model, items, u, &base, &excluded, w, new_w, k)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::serving::tests::serving_model;
    use super::*;
    use crate::model::csr::Csr;

    /// 1 user × 5 products (ids 10..50), 2 factors.
    fn model() -> ServingModel {
        serving_model(
            1,
            2,
            vec![7],
            vec![10, 20, 30, 40, 50],
            vec![1.0, 0.0],
            vec![1.0, 0.0, 0.8, 0.0, 0.6, 0.0, 0.4, 0.0, 0.2, 0.0],
            vec![1, 1, 1, 2, 2],
            vec![1.0; 5],
            Csr::from_triplets(1, 5, &[], &[], &[]).unwrap(),
            vec![vec![]],
        )
        .unwrap()
    }

    fn rec(product: u32, source: Source) -> Recommendation {
        Recommendation {
            product,
            score: 9.0,
            source,
        }
    }

    #[test]
    fn user_share_by_hand() {
        // w 0.5, new products 0.25: a latest product's share is 0.5; any
        // other's (1 − 0.5) · 0.25 / 0.75 = 1/6, so against the own part
        // 0.5 it stands as 0.25 : 0.75.
        assert_eq!(user_share(&[3, 7], 3, 0.5, 0.25), 0.5);
        assert!((user_share(&[3, 7], 4, 0.5, 0.25) - 1.0 / 6.0).abs() < 1e-7);
        // Equal weights: the blend at w for every product.
        assert_eq!(user_share(&[3], 4, 0.75, 0.75), 0.75);
        // New products at 0: no share.
        assert_eq!(user_share(&[3], 4, 0.9, 0.0), 0.0);
    }

    #[test]
    fn blend_by_hand() {
        let m = model();
        // The model's list 0, 1, 2, 3 (L = 4: parts 1, 0.75, 0.5, 0.25);
        // item-to-item scores 3: 2.0 (part 1), 4: 1.0 (part 0.5).
        let base: Vec<_> = (0..4).map(|i| rec(i, Source::Collaborative)).collect();
        let items = [(3, 2.0), (4, 1.0)];
        // w = 0.5: 0 -> 0.5, 1 -> 0.375, 2 -> 0.25, 3 -> 0.125 + 0.5 = 0.625,
        // 4 -> 0.25 (ties with 2: the model's list first).
        let got = blend_lists(&m, &base, &items, 0.5, 4);
        let want = [
            (3, 0.625, Source::ItemToItem),
            (0, 0.5, Source::Collaborative),
            (1, 0.375, Source::Collaborative),
            (2, 0.25, Source::Collaborative),
        ];
        assert_eq!(got.len(), 4);
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.product, g.source), (w.0, w.2), "{got:?}");
            assert!((g.score - w.1).abs() < 1e-6, "{got:?}");
        }
        let five = blend_lists(&m, &base, &items, 0.5, 5);
        assert_eq!((five[4].product, five[4].source), (4, Source::ItemToItem));
        assert!((five[4].score - 0.25).abs() < 1e-6);
        // w = 0 keeps the model's order; no item-to-item scores: the same.
        let order = |l: Vec<Recommendation>| l.iter().map(|r| r.product).collect::<Vec<_>>();
        assert_eq!(order(blend_lists(&m, &base, &items, 0.0, 4)), [0, 1, 2, 3]);
        assert_eq!(order(blend_lists(&m, &base, &[], 0.7, 4)), [0, 1, 2, 3]);
    }

    fn row(product: i64, neighbour: i64, score: f32, sequence: bool) -> NeighbourRow {
        NeighbourRow {
            product,
            neighbour,
            score,
            sequence,
        }
    }

    #[test]
    fn sessions_are_scored_through_the_rows_on_the_models_products() {
        let mut m = model();
        let rows = [
            row(10, 40, 1.0, true),
            row(10, 50, 3.0, true),
            row(10, 99, 5.0, true), // a product the model does not know
            row(20, 30, 2.0, false),
        ];
        let params = [
            Some(0.5),
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.5),
            Some(10.0),
        ];
        m.items = items_of_rows(&m, &rows, &params).unwrap();
        let items = m.items.as_ref().unwrap();
        assert_eq!(items.model.seq[0], vec![(4, 3.0), (3, 1.0)]);
        assert_eq!(items.weight, 0.5);
        // A session on 10: 50 then 40 (scores 1 and 1/3 of the best).
        let scored = item_scores(&m, items, &[10, 10], &[]);
        assert_eq!(scored.len(), 2);
        assert_eq!(scored[0].0, 4);
        assert!((scored[0].1 - 1.0).abs() < 1e-6 && (scored[1].1 - 1.0 / 3.0).abs() < 1e-6);
        // Excluded products are left out.
        assert_eq!(item_scores(&m, items, &[10], &[4]), vec![(3, 1.0 / 3.0)]);
        // The session list blends at the model's weight unless the call's
        // weight is 0; the base list is k + EXTRA long only then.
        assert_eq!(base_length(&m, None, 3), 3 + EXTRA);
        assert_eq!(base_length(&m, Some(0.0), 3), 3);
        let base: Vec<_> = (0..3).map(|i| rec(i, Source::Collaborative)).collect();
        let list = session_list(&m, base.clone(), &[10], &[], None, 2);
        assert_eq!(
            (list[0].product, list[0].source),
            (0, Source::Collaborative)
        );
        assert_eq!((list[1].product, list[1].source), (4, Source::ItemToItem));
        let plain = session_list(&m, base, &[10], &[], Some(0.0), 2);
        assert_eq!(plain.iter().map(|r| r.product).collect::<Vec<_>>(), [0, 1]);
        // Rows without an item_weight, or with one outside 0..1, are damage.
        let err = items_of_rows(&m, &rows, &[None]).unwrap_err().to_string();
        assert!(err.contains("no item_weight"), "{err}");
        assert!(items_of_rows(&m, &rows, &[Some(1.5)]).is_err());
        assert!(items_of_rows(&m, &[], &[]).unwrap().is_none());
    }
}
