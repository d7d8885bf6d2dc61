//! Serving recommendations from a trained model: collaborative (ALS),
//! category interest and popularity, blended; nothing here knows DuckDB.
//!
//! Scores, for user `u` and product `i`:
//! - `als(i) = x_u · y_i / max_j (x_u · y_j)` (0 when that maximum is not
//!   positive), the collaborative score scaled to at most 1;
//! - `interest(i) = w_u(c(i)) · popularity(i) / max popularity`, where
//!   `w_u` is the share of the user's interactions in each of their top-3
//!   categories (0 outside them): the original pipeline's streaming score,
//!   "top-3 categories by interaction count × product purchases";
//! - `score(i) = (1 − blend) · als(i) + blend · interest(i)`.
//!
//! Candidates are the ALS top `4k` plus, for each interest category, its `k`
//! most popular products; the best `k` candidates by `score` are returned,
//! after excluding products the user already bought (optional). A user the
//! model does not know gets interest recommendations from their own events
//! (if the caller passes any), then the most popular products: every user
//! gets `k` rows as long as the catalogue has `k` products left to offer.

mod ruled;

use crate::model::csr::Csr;
use crate::model::{FactorModel, ModelParts};
use crate::recommend::topk::{recommend_batch, PackedItems};
use crate::rng::FastMap;
use rayon::prelude::*;
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Collaborative,
    CategoryInterest,
    Popular,
    /// Nearest products by factor cosine (`similar_products`).
    Similar,
    /// Scored through a session's products by the item-to-item rows.
    ItemToItem,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Collaborative => "collaborative",
            Source::CategoryInterest => "category_interest",
            Source::Popular => "popular",
            Source::Similar => "similar",
            Source::ItemToItem => "item-to-item",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    pub product: u32,
    pub score: f32,
    pub source: Source,
}

/// Everything needed to serve a model, indexed.
#[derive(Debug)]
pub struct ServingModel {
    pub model_id: i64,
    pub factors: usize,
    pub user_ids: Vec<i64>,
    pub product_ids: Vec<i64>,
    pub user_factors: Vec<f32>,
    /// category_id per product.
    pub product_category: Vec<i64>,
    /// Purchases (plus a tie-break below 1 from interaction weight) per product.
    pub popularity: Vec<f32>,
    /// Products each user bought in the training data.
    pub purchased: Csr,
    /// Each user's top-3 categories with their share of the user's interactions.
    pub interest: Vec<Vec<(i64, f32)>>,
    /// The blend the model was trained to be served with.
    pub blend: f32,
    /// Brand per product, as an index into the model's brands
    /// ([`rules::NO_BRAND`](crate::recommend::rules::NO_BRAND): unknown).
    pub product_brand: Vec<u32>,
    /// Last seen price per product (NaN: unknown).
    pub product_price: Vec<f64>,
    /// How its weights were transformed (the fold-in repeats it).
    pub weighting: crate::model::confidence::Weighting,
    /// The item-to-item signal of session lists, in models that keep it
    /// ([`crate::recommend::items`]).
    pub items: Option<SessionItems>,
    // Looked up for every request and every replayed event: the crate's
    // fast hasher, not SipHash (the ids come from the user's own data).
    user_index: FastMap<i64, u32>,
    product_index: FastMap<i64, u32>,
    packed: PackedItems,
    popular_order: Vec<u32>,
    category_items: FastMap<i64, Vec<u32>>,
    /// `popularity / max(popularity)` per product (0 when no product has
    /// any): divided once here, not for every candidate of every list.
    relative_popularity: Vec<f32>,
}

/// Longest list `recommend_from_top` keeps sorted as it goes (longer ones
/// select, then sort).
const SHORT_LIST: usize = 32;

/// Users whose scans share each cache tile in `recommend_users`.
const USERS_PER_SCAN: usize = 64;

/// The item-to-item signal of a served model (read from its table's
/// neighbour rows by [`crate::recommend::items`]).
#[derive(Debug)]
pub struct SessionItems {
    /// The neighbours, on the serving model's product indices.
    pub model: crate::covisit::ItemModel,
    pub blend: crate::covisit::session::SessionBlend,
    /// The item-to-item share `w` of the blend.
    pub weight: f32,
}

impl ServingModel {
    /// Indexes a model for serving (its sizes were checked when it was made).
    pub fn new(model: FactorModel) -> anyhow::Result<Self> {
        let (
            model_id,
            ModelParts {
                factors,
                user_ids,
                product_ids,
                user_factors,
                item_factors,
                product_category,
                popularity,
                purchased,
                interest,
                blend,
                attributes,
                weighting,
            },
        ) = model.into_parts();
        let n_items = product_ids.len();
        // Brands as small indices: the caps count them for every list.
        let mut brands: std::collections::HashMap<String, u32> = Default::default();
        let product_brand = attributes
            .brand
            .into_iter()
            .map(|b| match b {
                Some(b) => {
                    let next = brands.len() as u32;
                    *brands.entry(b).or_insert(next)
                }
                None => crate::recommend::rules::NO_BRAND,
            })
            .collect();
        let product_price = attributes.price;
        let user_index = user_ids
            .iter()
            .enumerate()
            .map(|(i, &u)| (u, i as u32))
            .collect();
        let product_index = product_ids
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, i as u32))
            .collect();
        let mut popular_order: Vec<u32> = (0..n_items as u32).collect();
        popular_order.sort_by(|&a, &b| {
            popularity[b as usize]
                .total_cmp(&popularity[a as usize])
                .then(product_ids[a as usize].cmp(&product_ids[b as usize]))
        });
        let mut category_items: FastMap<i64, Vec<u32>> = FastMap::default();
        for &i in &popular_order {
            category_items
                .entry(product_category[i as usize])
                .or_default()
                .push(i);
        }
        let max_popularity = popularity.iter().copied().fold(0.0f32, f32::max);
        let relative_popularity = popularity
            .iter()
            .map(|&p| {
                if max_popularity > 0.0 {
                    p / max_popularity
                } else {
                    0.0
                }
            })
            .collect();
        let packed = PackedItems::new(item_factors, factors);
        Ok(ServingModel {
            packed,
            model_id,
            factors,
            user_ids,
            product_ids,
            user_factors,
            product_category,
            popularity,
            purchased,
            interest,
            blend,
            product_brand,
            product_price,
            weighting,
            items: None,
            user_index,
            product_index,
            popular_order,
            category_items,
            relative_popularity,
        })
    }

    pub fn user(&self, user_id: i64) -> Option<u32> {
        self.user_index.get(&user_id).copied()
    }
    pub fn product(&self, product_id: i64) -> Option<u32> {
        self.product_index.get(&product_id).copied()
    }
    /// Product factors, row-major (kept once, by the scanner).
    pub fn item_factors(&self) -> &[f32] {
        self.packed.rows()
    }
    pub fn n_products(&self) -> usize {
        self.product_ids.len()
    }
    fn user_row(&self, u: u32) -> &[f32] {
        &self.user_factors[u as usize * self.factors..(u as usize + 1) * self.factors]
    }

    /// The exclusion list of the serving functions: with
    /// `exclude_purchased`, the products `user` bought in the training data
    /// plus `also`, sorted and distinct; else none.
    fn excluded_for(&self, user: Option<u32>, also: &[u32], exclude_purchased: bool) -> Vec<u32> {
        if !exclude_purchased {
            return Vec::new();
        }
        let mut products = also.to_vec();
        if let Some(u) = user {
            products.extend_from_slice(self.purchased.row(u as usize).0);
        }
        products.sort_unstable();
        products.dedup();
        products
    }

    /// Recommendations for one user, known to the model (`user`) or not (then
    /// `cold_interest` and `cold_purchased`, from the user's own events, are
    /// used). `exclude` adds products never to recommend.
    pub fn recommend(
        &self,
        user: Option<u32>,
        cold_interest: &[(i64, f32)],
        cold_purchased: &[u32],
        k: usize,
        blend: f32,
        exclude_purchased: bool,
    ) -> Vec<Recommendation> {
        let excluded = self.excluded_for(user, cold_purchased, exclude_purchased);
        let als_top = match user {
            Some(u) if blend < 1.0 => self.packed.top_k(
                self.user_row(u),
                Self::collaborative_candidates(k),
                &excluded,
            ),
            _ => Vec::new(),
        };
        let interest = match user {
            Some(u) => self.interest[u as usize].as_slice(),
            None => cold_interest,
        };
        self.recommend_from_top(&als_top, interest, &excluded, k, blend)
    }

    /// Recommendations for a user given by a factor vector computed by the
    /// caller (the real-time fold-in, `crate::stream`) instead of a model
    /// row: the same candidates, blend and popular fill as
    /// [`recommend`](Self::recommend). `vector: None`: no collaborative
    /// part. `excluded`: product indices never to recommend, sorted.
    pub fn recommend_vector(
        &self,
        vector: Option<&[f32]>,
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        blend: f32,
    ) -> Vec<Recommendation> {
        let als_top = match vector {
            Some(x) if blend < 1.0 => {
                self.collaborative_top(x, Self::collaborative_candidates(k), excluded)
            }
            _ => Vec::new(),
        };
        self.recommend_from_top(&als_top, interest, excluded, k, blend)
    }

    /// The exact collaborative top `k` for a factor vector: product index
    /// and score `x · y_i`, best first; `excluded` sorted.
    pub fn collaborative_top(&self, x: &[f32], k: usize, excluded: &[u32]) -> Vec<(u32, f32)> {
        self.packed.top_k(x, k, excluded)
    }

    /// [`collaborative_top`](Self::collaborative_top), the same list, given a
    /// score the `k`-th best product reaches (see [`PackedItems::top_k_above`]).
    pub fn collaborative_top_above(
        &self,
        x: &[f32],
        k: usize,
        excluded: &[u32],
        floor: f32,
    ) -> Vec<(u32, f32)> {
        self.packed.top_k_above(x, k, excluded, floor)
    }

    /// The exact collaborative score of one product, bit for bit the one
    /// [`collaborative_top`](Self::collaborative_top) reports.
    pub fn collaborative_score(&self, x: &[f32], item: u32) -> f32 {
        self.packed.exact_score(x, item)
    }

    /// [`collaborative_score`](Self::collaborative_score) of many products.
    pub fn collaborative_scores(&self, x: &[f32], items: &[u32], out: &mut Vec<f32>) {
        self.packed.exact_scores(x, items, out)
    }

    /// How many collaborative candidates a list of `k` blends.
    pub fn collaborative_candidates(k: usize) -> usize {
        4 * k
    }

    /// Recommendations for every user of the model, in user order.
    pub fn recommend_all(
        &self,
        k: usize,
        blend: f32,
        exclude_purchased: bool,
    ) -> Vec<Vec<Recommendation>> {
        let users: Vec<u32> = (0..self.user_ids.len() as u32).collect();
        self.recommend_users(&users, k, blend, exclude_purchased)
    }

    /// Recommendations for the given model users, in the order given;
    /// the same lists as [`recommend`](Self::recommend) gives one by one.
    pub fn recommend_users(
        &self,
        users: &[u32],
        k: usize,
        blend: f32,
        exclude_purchased: bool,
    ) -> Vec<Vec<Recommendation>> {
        if blend >= 1.0 {
            return users
                .par_iter()
                .map(|&u| self.recommend(Some(u), &[], &[], k, blend, exclude_purchased))
                .collect();
        }
        if self.packed.uses_half_precision() {
            // Each user's norm-bounded scan stops after a few percent of a
            // trained model's catalogue: far less work than scoring every
            // product, even with the batch kernel's shared panels. A group
            // of users scans together, a cache tile at a time; each list is
            // the one `recommend` gives.
            return users
                .par_chunks(USERS_PER_SCAN)
                .flat_map_iter(|group| {
                    let excluded: Vec<Vec<u32>> = group
                        .iter()
                        .map(|&u| self.excluded_for(Some(u), &[], exclude_purchased))
                        .collect();
                    let rows: Vec<&[f32]> = group.iter().map(|&u| self.user_row(u)).collect();
                    let tops =
                        self.packed
                            .top_k_many(&rows, Self::collaborative_candidates(k), &excluded);
                    group
                        .iter()
                        .zip(tops)
                        .zip(excluded)
                        .map(|((&u, top), excluded)| {
                            self.recommend_from_top(
                                &top,
                                &self.interest[u as usize],
                                &excluded,
                                k,
                                blend,
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        // Exact single-precision scans see every product: then the batch
        // kernel, which scores 64 users per pass over the products, is faster.
        let exclude = exclude_purchased.then_some(&self.purchased);
        let als_top = recommend_batch(
            &self.user_factors,
            self.item_factors(),
            self.factors,
            users,
            Self::collaborative_candidates(k),
            exclude,
        );
        als_top
            .into_par_iter()
            .zip(users.par_iter())
            .map(|(top, &u)| {
                let excluded = self.excluded_for(Some(u), &[], exclude_purchased);
                self.recommend_from_top(&top, &self.interest[u as usize], &excluded, k, blend)
            })
            .collect()
    }

    /// The most popular products, for the popularity baseline.
    pub fn popular(&self, k: usize, excluded: &HashSet<u32>) -> Vec<Recommendation> {
        self.popular_order
            .iter()
            .filter(|i| !excluded.contains(i))
            .take(k)
            .map(|&i| Recommendation {
                product: i,
                score: self.popularity_score(i),
                source: Source::Popular,
            })
            .collect()
    }

    fn popularity_score(&self, i: u32) -> f32 {
        self.relative_popularity[i as usize]
    }

    /// The list of `k` from a collaborative top (`collaborative_candidates(k)`
    /// of them, exact, best first), the interest categories and the popular
    /// fill: the last step of every serving function, also called by the
    /// real-time scorer, which finds that top its own way. `excluded`:
    /// sorted ascending.
    pub fn recommend_from_top(
        &self,
        als_top: &[(u32, f32)],
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        blend: f32,
    ) -> Vec<Recommendation> {
        let is_excluded = |i: &u32| excluded.binary_search(i).is_ok();
        let als_max = als_top.first().map_or(0.0, |t| t.1);
        let als_scale = if als_max > 0.0 { 1.0 / als_max } else { 0.0 };
        // A few categories: a scan beats a map (the last entry of a
        // category counts, as a map built from the list would keep it).
        // Every entry compared, no early exit: a few selects, no branches.
        let interest_of = |category: i64| {
            interest
                .iter()
                .fold(0.0, |v, c| if c.0 == category { c.1 } else { v })
        };
        let score_of = |i: u32, category_interest: f32, als: f32, from_als: bool| {
            let interest = category_interest * self.popularity_score(i);
            let (a, b) = ((1.0 - blend) * als, blend * interest);
            let source = if b > a || !from_als {
                Source::CategoryInterest
            } else {
                Source::Collaborative
            };
            // A product only the interest rule proposed needs a positive
            // interest score to count; otherwise popularity fills in.
            (from_als || b > 0.0).then_some(Recommendation {
                product: i,
                score: a + b,
                source,
            })
        };
        // Best first, ties by product id: a total order, so keeping the k
        // best as candidates come is the same list as sorting all of them.
        let order = |a: &Recommendation, b: &Recommendation| {
            b.score.total_cmp(&a.score).then_with(|| {
                self.product_ids[a.product as usize].cmp(&self.product_ids[b.product as usize])
            })
        };
        let mut best = Best::new(k, order);
        // Candidates: ALS's (scaled by the best), then the first k
        // products not excluded of each interest category that ALS did not
        // propose.
        for &(i, s) in als_top {
            if let Some(r) = score_of(
                i,
                interest_of(self.product_category[i as usize]),
                s * als_scale,
                true,
            ) {
                best.offer(r);
            }
        }
        if blend > 0.0 {
            // ALS's products by id alone, contiguous: each category product
            // is looked up in them, compared in vector lanes.
            let als_products: Vec<u32> = als_top.iter().map(|t| t.0).collect();
            for (at, &(category, _)) in interest.iter().enumerate() {
                // A category listed twice proposes its products once.
                if interest[..at].iter().any(|c| c.0 == category) {
                    continue;
                }
                let Some(items) = self.category_items.get(&category) else {
                    continue;
                };
                // A category's products come in descending popularity, so
                // with an interest >= 0 their scores never rise: once one
                // ranks after the k-th kept, so do the rest.
                let category_interest = interest_of(category);
                let descending = category_interest >= 0.0;
                for &i in items.iter().filter(|i| !is_excluded(i)).take(k) {
                    if contains(&als_products, i) {
                        continue;
                    }
                    let Some(r) = score_of(i, category_interest, 0.0, false) else {
                        continue;
                    };
                    if descending && best.bar().is_some_and(|last| r.score < last.score) {
                        break;
                    }
                    best.offer(r);
                }
            }
        }
        let mut scored = best.into_sorted();
        self.fill_with_popular(&mut scored, k, excluded);
        scored
    }

    /// Never leaves a user short: `scored` filled up to `k` with the most
    /// popular products not excluded (sorted ascending) nor listed.
    fn fill_with_popular(&self, scored: &mut Vec<Recommendation>, k: usize, excluded: &[u32]) {
        if scored.len() < k {
            let missing = k - scored.len();
            let fill: Vec<Recommendation> = self
                .popular_order
                .iter()
                .filter(|i| {
                    excluded.binary_search(i).is_err() && !scored.iter().any(|r| r.product == **i)
                })
                .take(missing)
                .map(|&i| Recommendation {
                    product: i,
                    score: self.popularity_score(i),
                    source: Source::Popular,
                })
                .collect();
            scored.extend(fill);
        }
    }
}

/// Whether `items` holds `item`: eight compared at a time without an early
/// exit inside the eight, so the compiler puts them in vector lanes.
fn contains(items: &[u32], item: u32) -> bool {
    let mut chunks = items.chunks_exact(8);
    let found = chunks
        .by_ref()
        .any(|c| c.iter().fold(false, |f, &x| f | (x == item)));
    found || chunks.remainder().contains(&item)
}

/// The `k` best of the candidates offered, under the total order `order`
/// (`Less`: better), best first: kept sorted as they come when `k` is
/// short (most turned away by one comparison with the last kept), else
/// collected, then selected and sorted.
struct Best<T, F> {
    k: usize,
    kept: Vec<T>,
    order: F,
}

impl<T, F: Fn(&T, &T) -> std::cmp::Ordering> Best<T, F> {
    fn new(k: usize, order: F) -> Self {
        Best {
            k,
            kept: Vec::with_capacity(if k > SHORT_LIST { 4 * k } else { k + 1 }),
            order,
        }
    }

    fn offer(&mut self, item: T) {
        let k = self.k;
        if k > SHORT_LIST {
            self.kept.push(item);
            return;
        }
        if self.kept.len() == k && (k == 0 || (self.order)(&item, &self.kept[k - 1]).is_ge()) {
            return;
        }
        let at = self
            .kept
            .partition_point(|q| (self.order)(q, &item).is_lt());
        self.kept.insert(at, item);
        self.kept.truncate(k);
    }

    /// The k-th best so far, when the list is short and full: a candidate
    /// that ranks after it cannot enter.
    fn bar(&self) -> Option<&T> {
        (self.k <= SHORT_LIST && self.k > 0 && self.kept.len() == self.k)
            .then(|| &self.kept[self.k - 1])
    }

    fn into_sorted(mut self) -> Vec<T> {
        if self.k > SHORT_LIST {
            if self.kept.len() > self.k {
                self.kept.select_nth_unstable_by(self.k - 1, &self.order);
            }
            self.kept.truncate(self.k);
            self.kept.sort_by(&self.order);
        }
        self.kept
    }
}

/// The `k` best of `items` under `order`, best first ([`Best`]).
#[cfg(test)]
fn best_k<T>(items: Vec<T>, k: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    let mut best = Best::new(k, order);
    for item in items {
        best.offer(item);
    }
    best.into_sorted()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Both ways of `best_k` (short lists kept sorted as they come, longer
    /// ones selected) give the first `k` of the sorted list, with ties.
    #[test]
    fn best_k_is_the_sorted_prefix() {
        let mut rng = crate::rng::Rng::new(5);
        for trial in 0..400 {
            let n = (rng.next_u64() % 90) as usize;
            let items: Vec<(u32, u32)> = (0..n)
                .map(|i| ((rng.next_u64() % 12) as u32, i as u32))
                .collect();
            let order = |a: &(u32, u32), b: &(u32, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
            let mut sorted = items.clone();
            sorted.sort_by(order);
            for k in [0, 1, 2, 9, 10, SHORT_LIST, SHORT_LIST + 1, 64, 100] {
                assert_eq!(
                    best_k(items.clone(), k, order),
                    sorted[..k.min(n)],
                    "trial {trial} k {k}"
                );
            }
        }
    }

    /// The blend as first written: every candidate collected (ALS's, then
    /// the first k not excluded of each interest category, deduplicated),
    /// then the k best of all of them.
    fn blend_by_collecting(
        m: &ServingModel,
        als_top: &[(u32, f32)],
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        blend: f32,
    ) -> Vec<Recommendation> {
        let is_excluded = |i: &u32| excluded.binary_search(i).is_ok();
        let als_max = als_top.first().map_or(0.0, |t| t.1);
        let als_scale = if als_max > 0.0 { 1.0 / als_max } else { 0.0 };
        let interest_of = |category: i64| {
            interest
                .iter()
                .rfind(|c| c.0 == category)
                .map_or(0.0, |c| c.1)
        };
        let score_of = |i: u32, als: f32, from_als: bool| {
            let interest = interest_of(m.product_category[i as usize]) * m.popularity_score(i);
            let (a, b) = ((1.0 - blend) * als, blend * interest);
            let source = if b > a || !from_als {
                Source::CategoryInterest
            } else {
                Source::Collaborative
            };
            (from_als || b > 0.0).then_some(Recommendation {
                product: i,
                score: a + b,
                source,
            })
        };
        let mut scored: Vec<Recommendation> = als_top
            .iter()
            .filter_map(|&(i, s)| score_of(i, s * als_scale, true))
            .collect();
        if blend > 0.0 {
            let mut products: Vec<u32> = als_top.iter().map(|t| t.0).collect();
            for &(category, _) in interest {
                for &i in m
                    .category_items
                    .get(&category)
                    .into_iter()
                    .flatten()
                    .filter(|i| !is_excluded(i))
                    .take(k)
                {
                    if !products.contains(&i) {
                        products.push(i);
                        scored.extend(score_of(i, 0.0, false));
                    }
                }
            }
        }
        scored.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(m.product_ids[a.product as usize].cmp(&m.product_ids[b.product as usize]))
        });
        scored.truncate(k);
        m.fill_with_popular(&mut scored, k, excluded);
        scored
    }

    /// The blend that stops a category at the first product below the
    /// k-th kept gives the lists of collecting every candidate: random
    /// catalogues with few popularity values (ties), few categories,
    /// exclusions, categories listed twice or with zero interest, and k
    /// on both sides of the short-list bound.
    #[test]
    fn blend_stopping_early_equals_collecting_every_candidate() {
        let mut rng = crate::rng::Rng::new(17);
        for trial in 0..300 {
            let n = 1 + rng.below(60) as usize;
            let categories = 1 + rng.below(6) as i64;
            let product_ids: Vec<i64> = (0..n as i64).map(|i| 1000 + (i * 7919) % 10007).collect();
            let product_category: Vec<i64> = (0..n)
                .map(|_| rng.below(categories as u64) as i64)
                .collect();
            let popularity: Vec<f32> = (0..n).map(|_| rng.below(5) as f32).collect();
            let m = serving_model(
                1,
                1,
                vec![1],
                product_ids,
                vec![1.0],
                vec![1.0; n],
                product_category,
                popularity,
                Csr::from_triplets(1, n, &[], &[], &[]).unwrap(),
                vec![vec![]],
            )
            .unwrap();
            let mut als_top: Vec<(u32, f32)> = Vec::new();
            for _ in 0..rng.below(n as u64 + 1) {
                let i = rng.below(n as u64) as u32;
                if !als_top.iter().any(|t| t.0 == i) {
                    als_top.push((i, (rng.below(8) as f32 - 2.0) / 3.0));
                }
            }
            als_top.sort_by(|a, b| b.1.total_cmp(&a.1));
            let interest: Vec<(i64, f32)> = (0..rng.below(4))
                .map(|_| {
                    (
                        rng.below(categories as u64 + 1) as i64,
                        rng.below(4) as f32 / 4.0,
                    )
                })
                .collect();
            let mut excluded: Vec<u32> = (0..rng.below(6))
                .map(|_| rng.below(n as u64) as u32)
                .collect();
            excluded.sort_unstable();
            excluded.dedup();
            for k in [1, 3, 10, SHORT_LIST, SHORT_LIST + 5] {
                for blend in [0.0, 0.25, 0.5, 1.0] {
                    assert_eq!(
                        m.recommend_from_top(&als_top, &interest, &excluded, k, blend),
                        blend_by_collecting(&m, &als_top, &interest, &excluded, k, blend),
                        "trial {trial} k {k} blend {blend}"
                    );
                }
            }
        }
    }

    /// A serving model from its parts, in `FactorModel`'s field order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serving_model(
        model_id: i64,
        factors: usize,
        user_ids: Vec<i64>,
        product_ids: Vec<i64>,
        user_factors: Vec<f32>,
        item_factors: Vec<f32>,
        product_category: Vec<i64>,
        popularity: Vec<f32>,
        purchased: Csr,
        interest: Vec<Vec<(i64, f32)>>,
    ) -> anyhow::Result<ServingModel> {
        let n = product_ids.len();
        let parts = ModelParts {
            factors,
            user_ids,
            product_ids,
            user_factors,
            item_factors,
            product_category,
            popularity,
            purchased,
            interest,
            blend: crate::model::LEGACY_BLEND,
            attributes: crate::model::ProductAttributes::unknown(n),
            weighting: Default::default(),
        };
        ServingModel::new(FactorModel::from_table(parts, model_id)?)
    }

    /// 2 users × 4 products, 2 factors. Categories: products 0,1 in 10;
    /// 2,3 in 20. User 0 likes factor 0 (products 0 and 2), bought product 0.
    fn model() -> ServingModel {
        let user_factors = vec![1.0, 0.0, 0.0, 1.0];
        let item_factors = vec![0.9, 0.1, 0.5, 0.0, 0.8, 0.2, 0.0, 1.0];
        let purchased = Csr::from_triplets(2, 4, &[0], &[0], &[1.0]).unwrap();
        serving_model(
            7,
            2,
            vec![100, 200],
            vec![1000, 1001, 1002, 1003],
            user_factors,
            item_factors,
            vec![10, 10, 20, 20],
            vec![5.0, 1.0, 0.0, 2.0],
            purchased,
            vec![vec![(10, 1.0)], vec![(20, 0.75), (10, 0.25)]],
        )
        .unwrap()
    }

    #[test]
    fn collaborative_ranks_by_dot_product_and_excludes_purchases() {
        let m = model();
        // User 0 scores: 0.9, 0.5, 0.8, 0.0; product 0 bought -> 2, 1, 3.
        let recs = m.recommend(Some(0), &[], &[], 3, 0.0, true);
        let products: Vec<u32> = recs.iter().map(|r| r.product).collect();
        assert_eq!(products, [2, 1, 3]);
        // Scaled by the best score 0.8: 1.0, 0.625, 0.0.
        assert!((recs[0].score - 1.0).abs() < 1e-6 && (recs[1].score - 0.625).abs() < 1e-6);
        assert!(recs.iter().all(|r| r.source == Source::Collaborative));
        let kept = m.recommend(Some(0), &[], &[], 1, 0.0, false);
        assert_eq!(kept[0].product, 0);
    }

    #[test]
    fn blend_mixes_category_interest() {
        let m = model();
        // User 1: als = [0.1, 0, 0.2, 1.0] / 1.0; interest: 20 -> 0.75, 10 -> 0.25;
        // popularity / 5 = [1, 0.2, 0, 0.4]. blend 0.5:
        // p0: 0.5*0.1 + 0.5*0.25*1 = 0.175; p1: 0 + 0.5*0.25*0.2 = 0.025;
        // p2: 0.5*0.2 + 0 = 0.1; p3: 0.5*1.0 + 0.5*0.75*0.4 = 0.65.
        let recs = m.recommend(Some(1), &[], &[], 4, 0.5, true);
        let got: Vec<(u32, f32)> = recs.iter().map(|r| (r.product, r.score)).collect();
        let expected = [(3, 0.65), (0, 0.175), (2, 0.1), (1, 0.025)];
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(g.0, e.0);
            assert!((g.1 - e.1).abs() < 1e-6, "{got:?}");
        }
        assert_eq!(recs[1].source, Source::CategoryInterest);
        assert_eq!(recs[0].source, Source::Collaborative);
    }

    #[test]
    fn unknown_users_get_interest_then_popular_and_always_k_rows() {
        let m = model();
        let recs = m.recommend(None, &[(20, 1.0)], &[3], 4, 0.3, true);
        // Interest in 20 (products 2, 3; 3 bought): product 2 has popularity 0
        // so no interest score; all come from popularity: 0, 1, 2.
        let products: Vec<u32> = recs.iter().map(|r| r.product).collect();
        assert_eq!(products, [0, 1, 2]);
        assert!(recs.iter().all(|r| r.source == Source::Popular));
        let recs = m.recommend(None, &[(10, 1.0)], &[], 2, 0.3, true);
        assert_eq!(
            recs.iter()
                .map(|r| (r.product, r.source))
                .collect::<Vec<_>>(),
            [(0, Source::CategoryInterest), (1, Source::CategoryInterest)]
        );
        let nothing = m.recommend(None, &[], &[], 2, 0.3, true);
        assert_eq!(
            nothing.iter().map(|r| r.product).collect::<Vec<_>>(),
            [0, 3]
        );
    }

    #[test]
    fn batch_equals_single_user_calls() {
        let m = model();
        for blend in [0.0, 0.3, 1.0] {
            let all = m.recommend_all(3, blend, true);
            for u in 0..2u32 {
                let single = m.recommend(Some(u), &[], &[], 3, blend, true);
                let key = |r: &Vec<Recommendation>| {
                    r.iter().map(|x| (x.product, x.source)).collect::<Vec<_>>()
                };
                assert_eq!(
                    key(&all[u as usize]),
                    key(&single),
                    "user {u} blend {blend}"
                );
                for (a, b) in all[u as usize].iter().zip(&single) {
                    assert!((a.score - b.score).abs() < 1e-5);
                }
            }
        }
    }

    /// Both ways `recommend_all` works (per-user norm-bounded scans, or the
    /// batch kernel when factors do not fit half precision) give exactly
    /// the lists of single calls.
    #[test]
    fn recommend_all_equals_single_calls_on_both_scan_paths() {
        use crate::rng::Rng;
        let (n_users, n_items, f) = (60, 400, 8);
        let mut rng = Rng::new(21);
        let user_factors: Vec<f32> = (0..n_users * f).map(|_| rng.normal() as f32).collect();
        let base: Vec<f32> = (0..n_items * f)
            .map(|v| rng.normal() as f32 / ((v / f) as f32 + 1.0).sqrt())
            .collect();
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for u in 0..n_users as u32 {
            rows.extend([u, u]);
            cols.extend([u % 7, (u * 13) % n_items as u32]);
        }
        for huge in [false, true] {
            let mut item_factors = base.clone();
            if huge {
                item_factors[5 * f] = 1e5;
            }
            let m = serving_model(
                1,
                f,
                (0..n_users as i64).collect(),
                (100..100 + n_items as i64).collect(),
                user_factors.clone(),
                item_factors,
                (0..n_items as i64).map(|i| i % 9).collect(),
                (0..n_items).map(|i| (i % 17) as f32).collect(),
                Csr::from_triplets(n_users, n_items, &rows, &cols, &vec![1.0; rows.len()]).unwrap(),
                (0..n_users)
                    .map(|u| vec![(u as i64 % 9, 0.6), ((u as i64 + 1) % 9, 0.4)])
                    .collect(),
            )
            .unwrap();
            if huge {
                assert!(!m.packed.uses_half_precision());
            }
            for blend in [0.0, 0.5] {
                for exclude in [true, false] {
                    let all = m.recommend_all(10, blend, exclude);
                    for u in 0..n_users as u32 {
                        assert_eq!(
                            all[u as usize],
                            m.recommend(Some(u), &[], &[], 10, blend, exclude),
                            "user {u}, huge {huge}"
                        );
                    }
                }
            }
        }
    }
}
