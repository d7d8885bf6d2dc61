//! Updating a model with new events, without retraining: the kernel of
//! `ecoreco.als_update` (nothing here knows DuckDB; the SQL function is in
//! [`super::update_sql`]).
//!
//! - A user with an event after the model's data (`since`) is re-solved
//!   from their whole history in the events given, against the model's
//!   product factors held fixed: one exact ALS user half-step, the
//!   fold-in's solve ([`crate::stream::foldin`]), with the trainer's weights
//!   (summed per product, capped, decayed from the model's reference time,
//!   transformed by its confidence). Users the model did not know join the
//!   same way when they touched at least one product of the model.
//! - A product the model did not know gets one exact product half-step
//!   against the updated user factors:
//!   `y = (XᵀX + λI + Σ_u α t_u x_u x_uᵀ)⁻¹ Σ_u (1 + α t_u) x_u` over the
//!   users who touched it.
//! - Everything else (other users' rows, the products' rows, purchases,
//!   interests, prices, the weighting statistics) is copied bit for bit by
//!   the SQL function, which hands the kernel only what it reads: every
//!   product, the rows of the users with new events, and every user's
//!   factors only when a product is new (its half-step needs `XᵀX`).

use crate::model::confidence::{bm25_entry, bm25_idf, log_entry, rescaled, Confidence};
use crate::model::csr::Csr;
use crate::model::{FactorModel, ModelParts, ProductAttributes};
use crate::rng::FastMap;
use crate::stream::foldin::{cholesky, cholesky_solve, FoldIn, Scratch};
use crate::stream::state::{Kind, Weights};
use anyhow::{bail, ensure, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Events of one user on one product in one category: how many of each
/// kind and the last one's time. The SQL function passes each event as a
/// pair of one; the kernel sums a user's pairs per product after one sort
/// (the result does not depend on the order they arrive in).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdatePair {
    pub user: i64,
    pub product: i64,
    pub category: Option<i64>,
    pub views: u32,
    pub carts: u32,
    pub purchases: u32,
    /// The last event's time, epoch seconds.
    pub last: f64,
}

impl UpdatePair {
    /// One event of `kind` at `time`.
    pub fn event(user: i64, product: i64, category: Option<i64>, kind: Kind, time: f64) -> Self {
        let at = |k: Kind| u32::from(kind == k);
        UpdatePair {
            user,
            product,
            category,
            views: at(Kind::View),
            carts: at(Kind::Cart),
            purchases: at(Kind::Purchase),
            last: time,
        }
    }

    fn events(&self) -> u32 {
        self.views + self.carts + self.purchases
    }
}

/// What the update needs besides the model and the events.
#[derive(Clone, Copy, Debug)]
pub struct UpdateParams {
    pub regularization: f64,
    pub alpha: f64,
    pub weights: Weights,
    /// Epoch seconds: the end of the model's data; later events are new.
    pub since: f64,
    /// The model's users, whether their rows were given or not (the old
    /// model holds every product but may hold only some users).
    pub model_users: usize,
}

/// The updated model and what changed. `model` holds the users given and
/// added and every product; its id is its parent's (the caller names the
/// new model, [`crate::model::updated_model_id`]).
#[derive(Debug)]
pub struct Updated {
    pub model: FactorModel,
    /// Indices in `model.user_ids` of the users with events after `since`
    /// that have a row: every row of theirs is rewritten.
    pub replaced: Vec<usize>,
    /// Indices in `model.product_ids` of the products added.
    pub added: Vec<usize>,
    /// Users of the new model.
    pub users: usize,
    /// Users re-solved (known before) and added (new).
    pub users_resolved: usize,
    pub users_added: usize,
    pub products_added: usize,
    /// The latest event time, epoch seconds.
    pub data_end: f64,
}

/// One product of a user's history: the summed event weight (not yet
/// capped), the last event's time and the purchases.
#[derive(Clone, Copy, Debug)]
struct PairSum {
    product: i64,
    weight: f32,
    last: f64,
    purchases: u32,
}

/// The products of one user's pairs (sorted by product), summed over
/// their categories. The weight is summed from the counts in double
/// precision, as training sums a pair's event weights.
fn pair_sums(pairs: &[UpdatePair], w: &Weights, out: &mut Vec<PairSum>) {
    out.clear();
    let mut at = 0;
    while at < pairs.len() {
        let product = pairs[at].product;
        let (mut weight, mut last, mut purchases) = (0f64, f64::NEG_INFINITY, 0u32);
        while at < pairs.len() && pairs[at].product == product {
            let e = &pairs[at];
            weight += e.views as f64 * w.view as f64
                + e.carts as f64 * w.cart as f64
                + e.purchases as f64 * w.purchase as f64;
            last = last.max(e.last);
            purchases += e.purchases;
            at += 1;
        }
        out.push(PairSum {
            product,
            weight: weight as f32,
            last,
            purchases,
        });
    }
}

fn solve_spd(mut a: Vec<f64>, f: usize, b: &mut [f64]) -> Result<()> {
    cholesky(&mut a, f)?;
    cholesky_solve(&a, f, b);
    Ok(())
}

/// The model updated with `pairs` (each user's whole history, summed per
/// product and category; see the module's description). `attributes`: (product_id, brand, price) of the
/// products in the events, the latest of each as training keeps them; the
/// new products take theirs.
pub fn update(
    old: &FactorModel,
    mut pairs: Vec<UpdatePair>,
    p: &UpdateParams,
    attributes: Vec<(i64, Option<String>, f64)>,
) -> Result<Updated> {
    let f = old.factors;
    let w = &p.weights;
    let data_end = pairs
        .iter()
        .map(|e| e.last)
        .fold(f64::NEG_INFINITY, f64::max);
    ensure!(
        data_end > p.since,
        "the events end at {} (epoch seconds), not after the model's data, which ends at {}; pass events that include what came after the model",
        data_end,
        p.since
    );
    // Each user's pairs, users in id order, each user's by product.
    pairs.par_sort_unstable_by_key(|e| (e.user, e.product));
    let by_user: Vec<(i64, &[UpdatePair])> = pairs
        .chunk_by(|a, b| a.user == b.user)
        .map(|evs| (evs[0].user, evs))
        .collect();
    let old_product = |id: i64| old.product_ids.binary_search(&id).ok();
    let old_user = |id: i64| old.user_ids.binary_search(&id).ok();
    let changed: Vec<(i64, &[UpdatePair])> = by_user
        .iter()
        .filter(|(_, evs)| evs.iter().any(|e| e.last > p.since))
        .copied()
        .collect();

    // Users: one half-step against the fixed product factors.
    let fold = FoldIn::solver(&old.item_factors, f, p.regularization, p.alpha)?
        .with_weighting(old.weighting.clone())?;
    let solved: Vec<Option<(i64, Vec<f32>)>> = changed
        .par_iter()
        .map_init(
            || (Scratch::default(), Vec::new(), Vec::new(), Vec::new()),
            |(scratch, sums, items, weights), (u, evs)| -> Result<Option<(i64, Vec<f32>)>> {
                items.clear();
                weights.clear();
                pair_sums(evs, w, sums);
                for s in sums.iter() {
                    if let Some(i) = old_product(s.product) {
                        items.push(i as u32);
                        weights.push(fold.weighting().decay(s.weight.min(w.cap), s.last));
                    }
                }
                if items.is_empty() {
                    // No product of the model: nothing to solve from.
                    return Ok(None);
                }
                let mut x = vec![0f32; f];
                fold.solve_once(&old.item_factors, items, weights, scratch, &mut x)?;
                Ok(Some((*u, x)))
            },
        )
        .collect::<Result<_>>()?;
    drop(fold);
    let solved: FastMap<i64, Vec<f32>> = solved.into_iter().flatten().collect();

    // The new id lists, sorted as the model keeps them.
    let mut user_ids = old.user_ids.clone();
    let users_added = solved.keys().filter(|u| old_user(**u).is_none()).count();
    user_ids.extend(solved.keys().filter(|u| old_user(**u).is_none()));
    user_ids.sort_unstable();
    // Products the model lacks that have events after `since` (one the
    // model lacks from before was not in its data: ignored, like any
    // product the model does not know), with the smallest category of
    // their events, as the trainer keeps.
    let mut new_products: BTreeMap<i64, Option<i64>> = pairs
        .iter()
        .filter(|e| e.last > p.since && old_product(e.product).is_none())
        .map(|e| (e.product, None))
        .collect();
    for e in &pairs {
        if let (Some(c), Some(cat)) = (new_products.get_mut(&e.product), e.category) {
            *c = Some(c.map_or(cat, |v: i64| v.min(cat)));
        }
    }
    ensure!(
        new_products.is_empty() || old.user_ids.len() == p.model_users,
        "internal error: products are new but the update was given {} of the model's {} users",
        old.user_ids.len(),
        p.model_users
    );
    let new_ids: Vec<i64> = new_products.keys().copied().collect();
    let new_attributes = ProductAttributes::of_products(&new_ids, attributes);
    let mut product_ids = old.product_ids.clone();
    product_ids.extend(new_products.keys());
    product_ids.sort_unstable();

    let mut user_factors = Vec::with_capacity(user_ids.len() * f);
    for &u in &user_ids {
        match (solved.get(&u), old_user(u)) {
            (Some(x), _) => user_factors.extend_from_slice(x),
            (None, Some(i)) => user_factors.extend_from_slice(old.user_row(i)),
            (None, None) => bail!("internal error: user {u} has no row"),
        }
    }

    // New products: one half-step against the updated user factors.
    let mut gram = vec![0f64; f * f];
    // XᵀX only when a product is new (it costs a pass over every user).
    let users_for_gram = if new_products.is_empty() {
        0
    } else {
        user_ids.len()
    };
    for x in user_factors.chunks_exact(f).take(users_for_gram) {
        for r in 0..f {
            for c in 0..=r {
                gram[r * f + c] += x[r] as f64 * x[c] as f64;
            }
        }
    }
    for d in 0..f {
        gram[d * f + d] += p.regularization;
    }
    let new_user = |id: i64| user_ids.binary_search(&id).ok();
    // Per new product: (user index, decayed weight, the user's row sum).
    let mut touching: BTreeMap<i64, Vec<(usize, f32, f64)>> = BTreeMap::new();
    let mut new_weight: BTreeMap<i64, (f32, f32)> = BTreeMap::new();
    let mut sums = Vec::new();
    for &(u, evs) in &by_user {
        if !evs.iter().any(|e| new_products.contains_key(&e.product)) {
            continue;
        }
        pair_sums(evs, w, &mut sums);
        let decayed: Vec<f32> = sums
            .iter()
            .map(|s| old.weighting.decay(s.weight.min(w.cap), s.last))
            .collect();
        let row_sum: f64 = decayed.iter().map(|&d| d as f64).sum();
        for (s, &weight) in sums.iter().zip(&decayed) {
            if !new_products.contains_key(&s.product) {
                continue;
            }
            let t = new_weight.entry(s.product).or_default();
            t.0 += s.purchases as f32;
            t.1 += s.weight.min(w.cap);
            if let Some(ui) = new_user(u) {
                touching
                    .entry(s.product)
                    .or_default()
                    .push((ui, weight, row_sum));
            }
        }
    }
    let bm25 = old.weighting.bm25.as_ref();
    let mut new_rows: FastMap<i64, (Vec<f32>, u32)> = FastMap::default();
    for &pid in new_products.keys() {
        let pairs = touching.get(&pid).map_or(&[][..], Vec::as_slice);
        let users = pairs.len() as u32;
        let mut a = gram.clone();
        let mut b = vec![0f64; f];
        for &(ui, weight, row_sum) in pairs {
            let t = match (old.weighting.confidence, bm25) {
                (Confidence::Raw, _) => weight,
                (Confidence::Log, _) => rescaled(log_entry(weight), old.weighting.scale),
                (Confidence::Bm25, Some(s)) => rescaled(
                    bm25_entry(
                        weight,
                        row_sum,
                        s.mean_length,
                        bm25_idf(s.users, users as f64),
                        s.k1,
                        s.b,
                    ),
                    old.weighting.scale,
                ),
                (Confidence::Bm25, None) => bail!("the model was trained with confidence 'bm25' but has no bm25 statistics; train it again"),
            } as f64;
            let x = &user_factors[ui * f..(ui + 1) * f];
            let (c, d) = (1.0 + p.alpha * t, p.alpha * t);
            for r in 0..f {
                b[r] += c * x[r] as f64;
                for q in 0..=r {
                    a[r * f + q] += d * x[r] as f64 * x[q] as f64;
                }
            }
        }
        solve_spd(a, f, &mut b)?;
        new_rows.insert(pid, (b.iter().map(|&v| v as f32).collect(), users));
    }

    // Products in the new order: old rows copied, new rows appended in place.
    let n = product_ids.len();
    let mut item_factors = Vec::with_capacity(n * f);
    let mut product_category = Vec::with_capacity(n);
    let mut popularity = Vec::with_capacity(n);
    let mut attributes = ProductAttributes::unknown(n);
    let mut product_users = Vec::with_capacity(n);
    let max_new_weight = new_weight.values().map(|t| t.1).fold(0.0f32, f32::max);
    for (at, &pid) in product_ids.iter().enumerate() {
        match old_product(pid) {
            Some(i) => {
                item_factors.extend_from_slice(old.item_row(i));
                product_category.push(old.product_category[i]);
                popularity.push(old.popularity[i]);
                attributes.brand[at] = old.attributes.brand[i].clone();
                attributes.price[at] = old.attributes.price[i];
                if let Some(s) = bm25 {
                    product_users.push(s.product_users[i]);
                }
            }
            None => {
                if let Ok(k) = new_ids.binary_search(&pid) {
                    attributes.brand[at] = new_attributes.brand[k].clone();
                    attributes.price[at] = new_attributes.price[k];
                }
                let (y, users) = &new_rows[&pid];
                item_factors.extend_from_slice(y);
                product_category.push(new_products[&pid].unwrap_or(-1));
                // As the trainer's: purchases, plus a tie-break below 1.
                let (purchases, weight) = new_weight.get(&pid).copied().unwrap_or_default();
                popularity.push(purchases + weight / (1.0 + max_new_weight));
                product_users.push(*users);
            }
        }
    }
    let product_at = |id: i64| product_ids.binary_search(&id).ok();

    // Purchases and interests: copied, and redone for the users re-solved.
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    let mut interest = Vec::with_capacity(user_ids.len());
    for (ui, &u) in user_ids.iter().enumerate() {
        let mut bought: Vec<u32> = old_user(u)
            .map(|i| {
                old.purchased
                    .row(i)
                    .0
                    .iter()
                    .map(|&j| product_at(old.product_ids[j as usize]).unwrap_or(0) as u32)
                    .collect()
            })
            .unwrap_or_default();
        let evs = by_user
            .binary_search_by_key(&u, |b| b.0)
            .ok()
            .map(|at| by_user[at].1)
            .filter(|_| solved.contains_key(&u));
        match evs {
            Some(evs) => {
                bought.extend(
                    evs.iter()
                        .filter(|e| e.purchases > 0)
                        .filter_map(|e| product_at(e.product))
                        .map(|i| i as u32),
                );
                let mut counts: FastMap<i64, f32> = FastMap::default();
                for e in evs {
                    if let Some(c) = e.category {
                        *counts.entry(c).or_default() += e.events() as f32;
                    }
                }
                interest.push(crate::model::top_categories(&counts));
            }
            None => interest.push(old_user(u).map_or_else(Vec::new, |i| old.interest[i].clone())),
        }
        bought.sort_unstable();
        bought.dedup();
        rows.extend(std::iter::repeat_n(ui as u32, bought.len()));
        cols.extend(bought);
    }
    let ones = vec![1.0f32; rows.len()];
    let purchased = Csr::from_triplets(user_ids.len(), n, &rows, &cols, &ones)?;

    let mut weighting = old.weighting.clone();
    if let Some(s) = &mut weighting.bm25 {
        *s = crate::model::confidence::Bm25::new(s.k1, s.b, s.mean_length, s.users, product_users);
    }
    let replaced: Vec<usize> = changed
        .iter()
        .filter_map(|(u, _)| user_ids.binary_search(u).ok())
        .collect();
    let added: Vec<usize> = new_ids
        .iter()
        .filter_map(|pid| product_ids.binary_search(pid).ok())
        .collect();
    let users = p.model_users + users_added;
    // The parent's id: the caller names the new model from what it writes.
    let model = FactorModel::from_table(
        ModelParts {
            factors: f,
            user_ids,
            product_ids,
            user_factors,
            item_factors,
            product_category,
            popularity,
            purchased,
            interest,
            blend: old.blend,
            weighting,
            attributes,
        },
        old.id(),
    )?;
    Ok(Updated {
        model,
        replaced,
        added,
        users,
        users_resolved: solved.len() - users_added,
        users_added,
        products_added: new_products.len(),
        data_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::confidence::Weighting;

    /// Users 5 and 9, products 100 (y = (1, 0)) and 200 (y = (0, 1)).
    fn model() -> FactorModel {
        FactorModel::new(ModelParts {
            factors: 2,
            user_ids: vec![5, 9],
            product_ids: vec![100, 200],
            user_factors: vec![0.3, 0.1, 0.2, 0.7],
            item_factors: vec![1.0, 0.0, 0.0, 1.0],
            product_category: vec![7, 8],
            popularity: vec![1.0, 2.0],
            purchased: Csr::from_triplets(2, 2, &[], &[], &[]).unwrap(),
            interest: vec![vec![(7, 1.0)], vec![(8, 1.0)]],
            blend: 0.0,
            weighting: Weighting::raw(),
            attributes: ProductAttributes::unknown(2),
        })
        .unwrap()
    }

    /// The pair of `user`'s events on `product`: `[views, carts,
    /// purchases]`, the last at `last`.
    fn pair(user: i64, product: i64, counts: [u32; 3], last: f64) -> UpdatePair {
        UpdatePair {
            user,
            product,
            category: Some(if product == 300 { 9 } else { 7 }),
            views: counts[0],
            carts: counts[1],
            purchases: counts[2],
            last,
        }
    }

    /// λ = 1, α = 1, YᵀY + λI = 2I. User 5 viewed 100 before and carted
    /// 100 after `since` (weight 1 + 3 = 4): W⁻¹ = 2I + 4 e₀e₀ᵀ = diag(6, 2),
    /// x = W (1 + 4) e₀ = (5/6, 0). User 9 is copied. Product 300, viewed
    /// by user 5 after `since` (weight 1): with X = [(5/6, 0), (0.2, 0.7)],
    /// XᵀX + λI = [[1 + 25/36 + 0.04, 0.14], [0.14, 1.49]], plus
    /// 1·x₅x₅ᵀ; b = 2 x₅; checked against that system solved here.
    #[test]
    fn hand_checked_update() {
        let old = model();
        // User 5's view (time 10) and cart (30) of 100: one pair.
        let pairs = vec![
            pair(9, 200, [1, 0, 0], 5.0),
            pair(5, 300, [1, 0, 0], 31.0),
            pair(5, 100, [1, 1, 0], 30.0),
        ];
        let p = UpdateParams {
            regularization: 1.0,
            alpha: 1.0,
            weights: Weights::default(),
            since: 20.0,
            model_users: 2,
        };
        let facts = vec![
            (300, Some("acme".to_string()), 9.5),
            (100, Some("old".to_string()), 1.0),
        ];
        let up = update(&old, pairs, &p, facts).unwrap();
        let m = &up.model;
        assert_eq!(m.user_ids, vec![5, 9]);
        assert_eq!(m.product_ids, vec![100, 200, 300]);
        assert_eq!(
            (up.users_resolved, up.users_added, up.products_added),
            (1, 0, 1)
        );
        // User 5 is rewritten, product 300 added with its brand and price;
        // product 100 keeps what it had (nothing).
        assert_eq!(
            (up.replaced.clone(), up.added.clone(), up.users),
            (vec![0], vec![2], 2)
        );
        assert_eq!(
            m.attributes.brand,
            vec![None, None, Some("acme".to_string())]
        );
        assert_eq!(m.attributes.price[2], 9.5);
        assert!(m.attributes.price[0].is_nan());
        assert!((m.user_row(0)[0] - 5.0 / 6.0).abs() < 1e-6 && m.user_row(0)[1].abs() < 1e-6);
        assert_eq!(m.user_row(1).to_vec(), old.user_row(1).to_vec());
        assert_eq!(m.item_row(0).to_vec(), old.item_row(0).to_vec());
        let x5 = [5.0f64 / 6.0, 0.0];
        let x9 = [0.2f32 as f64, 0.7f32 as f64];
        let mut a = vec![0f64; 4];
        for x in [x5, x9] {
            for r in 0..2 {
                for c in 0..2 {
                    a[r * 2 + c] += x[r] * x[c];
                }
            }
        }
        for r in 0..2 {
            a[r * 2 + r] += 1.0;
            for c in 0..2 {
                a[r * 2 + c] += x5[r] * x5[c];
            }
        }
        let mut b = vec![2.0 * x5[0], 2.0 * x5[1]];
        solve_spd(a, 2, &mut b).unwrap();
        for (got, want) in m.item_row(2).iter().zip(&b) {
            assert!(
                (*got as f64 - want).abs() < 1e-5,
                "{:?} vs {b:?}",
                m.item_row(2)
            );
        }
        assert_eq!(m.product_category[2], 9);
        // User 5's interest: 3 events, all in category 7 or 9.
        assert_eq!(m.interest[0], vec![(7, 2.0 / 3.0), (9, 1.0 / 3.0)]);
        assert_eq!(m.interest[1], old.interest[1]);
    }

    /// The same history as one pair per event, shuffled, one event in
    /// another category: the same factors bit for bit (the kernel sums a
    /// product's pairs), the interest split by category, and a purchase
    /// makes a `purchased` row.
    #[test]
    fn pairs_of_single_events_sum_per_product() {
        let old = model();
        let p = UpdateParams {
            regularization: 1.0,
            alpha: 1.0,
            weights: Weights::default(),
            since: 20.0,
            model_users: 2,
        };
        let summed = vec![pair(5, 100, [2, 1, 0], 30.0), pair(5, 200, [0, 0, 1], 25.0)];
        let single = vec![
            UpdatePair::event(5, 200, Some(7), Kind::Purchase, 25.0),
            UpdatePair::event(5, 100, Some(7), Kind::View, 12.0),
            UpdatePair::event(5, 100, Some(8), Kind::Cart, 30.0),
            UpdatePair::event(5, 100, Some(7), Kind::View, 3.0),
        ];
        let a = update(&old, summed, &p, Vec::new()).unwrap();
        let b = update(&old, single, &p, Vec::new()).unwrap();
        assert_eq!(a.model.user_row(0).to_vec(), b.model.user_row(0).to_vec());
        // Weights 2 + 3 = 5 on 100 and 5 on 200: W⁻¹ = 2I + 5I = 7I, x = 6/7 (1, 1).
        for v in b.model.user_row(0) {
            assert!((v - 6.0 / 7.0).abs() < 1e-6, "{:?}", b.model.user_row(0));
        }
        assert_eq!(a.model.interest[0], vec![(7, 1.0)]);
        assert_eq!(b.model.interest[0], vec![(7, 0.75), (8, 0.25)]);
        for up in [&a, &b] {
            assert_eq!(up.model.purchased.row(0).0, &[1]);
            assert_eq!(up.model.purchased.row(1).0, &[] as &[u32]);
        }
    }

    /// docs/update.md's memory figure: 56 bytes per event read.
    #[test]
    fn an_event_read_is_56_bytes() {
        assert_eq!(std::mem::size_of::<UpdatePair>(), 56);
    }

    #[test]
    fn events_not_after_the_model_are_refused() {
        let pairs = vec![pair(5, 100, [1, 0, 0], 10.0)];
        let p = UpdateParams {
            regularization: 1.0,
            alpha: 1.0,
            weights: Weights::default(),
            since: 20.0,
            model_users: 2,
        };
        let e = update(&model(), pairs, &p, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not after the model's data"), "{e}");
    }
}
