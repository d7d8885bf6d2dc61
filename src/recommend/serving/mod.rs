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
    /// Per product, the rank of its id among the model's (ids are
    /// distinct): lists break ties by id, compared as these in sort keys.
    id_rank: Vec<u32>,
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
    /// The item-to-item share of a known user's list (the model's
    /// `user_item_weight`; 0: their lists are not blended).
    pub user_weight: f32,
    /// The item-to-item share, against the same own part, of products
    /// other than the user's latest (the model's `user_new_item_weight`,
    /// else `user_weight`): see [`crate::recommend::items::user_share`].
    pub user_new_weight: f32,
    /// Each model user's latest products, which their item-to-item scores
    /// come from.
    pub recent: UserRecent,
}

/// Each model user's latest products (product indices, the oldest first,
/// as a session's steps come), from the model table's `recent` rows
/// ([`crate::model::recent`]): user `u`'s are
/// `products[start[u]..start[u + 1]]`.
#[derive(Debug, Default)]
pub struct UserRecent {
    start: Vec<u32>,
    products: Vec<u32>,
}

impl UserRecent {
    /// From `(user index, rank, product index)` entries (any order; rank 1
    /// the latest) of a model with `n_users` users.
    pub fn new(mut entries: Vec<(u32, u32, u32)>, n_users: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            entries.len() < u32::MAX as usize,
            "the model has too many recent rows"
        );
        // By user, the oldest (largest rank) first.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut start = Vec::with_capacity(n_users + 1);
        let mut at = 0;
        for u in 0..n_users as u32 {
            start.push(at as u32);
            while at < entries.len() && entries[at].0 == u {
                at += 1;
            }
        }
        start.push(at as u32);
        Ok(UserRecent {
            start,
            products: entries.into_iter().map(|e| e.2).collect(),
        })
    }

    /// User `u`'s latest products, the oldest first (none for a user
    /// without rows).
    pub fn of(&self, u: u32) -> &[u32] {
        let u = u as usize;
        if u + 1 >= self.start.len() {
            return &[];
        }
        &self.products[self.start[u] as usize..self.start[u + 1] as usize]
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.start.len() + self.products.len()) * 4
    }
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
        let mut by_id: Vec<u32> = (0..n_items as u32).collect();
        by_id.sort_unstable_by_key(|&i| product_ids[i as usize]);
        let mut id_rank = vec![0u32; n_items];
        for (rank, &i) in by_id.iter().enumerate() {
            id_rank[i as usize] = rank as u32;
        }
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
            id_rank,
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
    pub(crate) fn excluded_for(
        &self,
        user: Option<u32>,
        also: &[u32],
        exclude_purchased: bool,
    ) -> Vec<u32> {
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
        let candidates = Self::collaborative_candidates(k);
        self.recommend_vector_from(vector, interest, excluded, k, candidates, blend)
    }

    /// [`recommend_vector`](Self::recommend_vector) from `candidates`
    /// collaborative candidates instead of those of a list of `k` (the
    /// longer lists the item-to-item blend starts from keep the plain
    /// list's: `crate::recommend::items::base_candidates`).
    pub fn recommend_vector_from(
        &self,
        vector: Option<&[f32]>,
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        candidates: usize,
        blend: f32,
    ) -> Vec<Recommendation> {
        let als_top = match vector {
            Some(x) if blend < 1.0 => self.collaborative_top(x, candidates, excluded),
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
            // A group's tops are blended as soon as they are found: the
            // tops of all users at once would be 40 candidates per user.
            return users
                .par_chunks(USERS_PER_SCAN)
                .flat_map_iter(|group| {
                    let tops = self.scan_tops(group, k, exclude_purchased);
                    self.recommend_from_tops(group, &tops, k, blend, exclude_purchased)
                })
                .collect();
        }
        let tops = self.collaborative_tops(users, k, exclude_purchased);
        self.recommend_from_tops(users, &tops, k, blend, exclude_purchased)
    }

    /// The collaborative top of each user (model indices) that
    /// [`recommend_users`](Self::recommend_users) blends into lists of `k`:
    /// it does not depend on the blend, so lists at several blends need
    /// one scan ([`recommend_from_tops`](Self::recommend_from_tops)).
    pub fn collaborative_tops(
        &self,
        users: &[u32],
        k: usize,
        exclude_purchased: bool,
    ) -> Vec<Vec<(u32, f32)>> {
        if self.packed.uses_half_precision() {
            // Each user's norm-bounded scan stops after a few percent of a
            // trained model's catalogue: far less work than scoring every
            // product, even with the batch kernel's shared panels. A group
            // of users scans together, a cache tile at a time; each top is
            // the one `recommend` finds.
            return users
                .par_chunks(USERS_PER_SCAN)
                .flat_map_iter(|group| self.scan_tops(group, k, exclude_purchased))
                .collect();
        }
        // Exact single-precision scans see every product: then the batch
        // kernel, which scores 64 users per pass over the products, is faster.
        let exclude = exclude_purchased.then_some(&self.purchased);
        recommend_batch(
            &self.user_factors,
            self.item_factors(),
            self.factors,
            users,
            Self::collaborative_candidates(k),
            exclude,
        )
    }

    /// The tops of one group of users scanned together.
    fn scan_tops(&self, group: &[u32], k: usize, exclude_purchased: bool) -> Vec<Vec<(u32, f32)>> {
        let excluded: Vec<Vec<u32>> = group
            .iter()
            .map(|&u| self.excluded_for(Some(u), &[], exclude_purchased))
            .collect();
        let rows: Vec<&[f32]> = group.iter().map(|&u| self.user_row(u)).collect();
        self.packed
            .top_k_many(&rows, Self::collaborative_candidates(k), &excluded)
    }

    /// The lists of `k` at `blend` (below 1) of `users` from their
    /// [`collaborative_tops`](Self::collaborative_tops): the lists
    /// [`recommend_users`](Self::recommend_users) gives.
    pub fn recommend_from_tops(
        &self,
        users: &[u32],
        tops: &[Vec<(u32, f32)>],
        k: usize,
        blend: f32,
        exclude_purchased: bool,
    ) -> Vec<Vec<Recommendation>> {
        tops.par_iter()
            .zip(users.par_iter())
            .map(|(top, &u)| {
                let excluded = self.excluded_for(Some(u), &[], exclude_purchased);
                self.recommend_from_top(top, &self.interest[u as usize], &excluded, k, blend)
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

    pub(crate) fn popularity_score(&self, i: u32) -> f32 {
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
            self.blended(i, category_interest, als, from_als, blend)
        };
        // Best first, ties by product id: a total order, so keeping the k
        // best as candidates come is the same list as sorting all of them.
        // Compared as one key: the score's place in `total_cmp`'s order
        // complemented, then the id's rank.
        let key = |r: Recommendation| {
            let bits = r.score.to_bits();
            let total = if bits >> 31 == 1 {
                !bits
            } else {
                bits | 0x8000_0000
            };
            (
                (u64::from(!total) << 32) | u64::from(self.id_rank[r.product as usize]),
                r,
            )
        };
        let order = |a: &(u64, Recommendation), b: &(u64, Recommendation)| a.0.cmp(&b.0);
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
                best.offer(key(r));
            }
        }
        if blend > 0.0 {
            // ALS's products marked (this call's stamp): each category
            // product is looked up in them.
            let mut marks = ALS_MARKS.with(|m| std::mem::take(&mut *m.borrow_mut()));
            let stamp = marks.next(self.n_products());
            for &(i, _) in als_top {
                marks.marks[i as usize] = stamp;
            }
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
                    if marks.marks[i as usize] == stamp {
                        continue;
                    }
                    let Some(r) = score_of(i, category_interest, 0.0, false) else {
                        continue;
                    };
                    if descending && best.bar().is_some_and(|last| r.score < last.1.score) {
                        break;
                    }
                    best.offer(key(r));
                }
            }
            ALS_MARKS.with(|m| *m.borrow_mut() = marks);
        }
        let mut scored: Vec<Recommendation> = best.into_sorted().into_iter().map(|x| x.1).collect();
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

/// Per-thread marks of the products of a call (`recommend_from_top`'s
/// collaborative candidates): a product is marked when its entry holds
/// the call's stamp, so nothing is cleared between calls.
#[derive(Default)]
struct Marks {
    stamp: u32,
    marks: Vec<u32>,
}

impl Marks {
    /// A fresh stamp for a model of `n` products.
    fn next(&mut self, n: usize) -> u32 {
        if self.marks.len() != n || self.stamp == u32::MAX {
            self.marks = vec![0; n];
            self.stamp = 0;
        }
        self.stamp += 1;
        self.stamp
    }
}

thread_local! {
    static ALS_MARKS: std::cell::RefCell<Marks> = std::cell::RefCell::new(Marks::default());
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

    #[inline]
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
            // A total order: no two candidates equal, so no order to keep.
            self.kept.sort_unstable_by(&self.order);
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
pub(crate) mod tests;
