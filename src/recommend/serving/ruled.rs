//! Lists under serving rules ([`crate::recommend::rules`]): the same
//! scores as the plain blend, over candidates the rules allow, chosen
//! under the caps (in score order, or by maximal marginal relevance), then
//! filled from the popular products by the same rules.
//!
//! The collaborative scan goes past rejected products: it asks for the
//! `4k` products a plain list blends, or for as many as hold, on the
//! catalogue's share the filters allow, `2k` allowed ones on average, if
//! that is more; of those it keeps the best `4k` allowed, and it deepens
//! (×4, twice at most) while the list is short of `k`. The
//! popular fill then walks the whole catalogue, so a list is short of `k`
//! only when fewer than `k` products meet the rules (with both caps set,
//! the fill takes products greedily in popularity order).

use super::{Recommendation, ServingModel, Source};
use crate::recommend::rules::{
    augment_selection, greedy_select, mmr_select, Caps, RuleRequest, Rules,
};
use rayon::prelude::*;

/// How many times a short list deepens the collaborative scan.
const DEEPENINGS: usize = 2;

impl ServingModel {
    /// The rules of `request` against this model's products.
    pub fn rules(&self, request: &RuleRequest) -> anyhow::Result<Rules> {
        Rules::new(request, &self.product_price)
    }

    /// The model's indices of `product_ids`, those it knows, sorted.
    pub fn product_indices(&self, product_ids: &[i64]) -> Vec<u32> {
        let mut found: Vec<u32> = product_ids
            .iter()
            .filter_map(|&p| self.product(p))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// How deep a collaborative scan goes for at most `wanted` allowed
    /// candidates: `wanted`, and at least as deep as holds, on average,
    /// half of them on the share of products allowed (`k` of the plain
    /// list's `4k`: a list short of `k` deepens the scan anyway).
    fn ruled_depth(&self, wanted: usize, rules: &Rules) -> usize {
        let n = self.n_products();
        let allowed = rules.allowed_count().max(1);
        (wanted * n).div_ceil(2 * allowed).clamp(wanted.min(n), n)
    }

    /// [`recommend`](Self::recommend) under `rules` (no rule: that list).
    #[allow(clippy::too_many_arguments)]
    pub fn recommend_ruled(
        &self,
        user: Option<u32>,
        cold_interest: &[(i64, f32)],
        cold_purchased: &[u32],
        k: usize,
        blend: f32,
        exclude_purchased: bool,
        rules: &Rules,
    ) -> Vec<Recommendation> {
        if rules.is_off() {
            return self.recommend(
                user,
                cold_interest,
                cold_purchased,
                k,
                blend,
                exclude_purchased,
            );
        }
        let excluded = self.excluded_for(user, cold_purchased, exclude_purchased);
        let interest = match user {
            Some(u) => self.interest[u as usize].as_slice(),
            None => cold_interest,
        };
        let vector = user.filter(|_| blend < 1.0).map(|u| self.user_row(u));
        self.ruled_list(vector, None, interest, &excluded, k, blend, rules)
    }

    /// [`recommend_users`](Self::recommend_users) under `rules`; each list
    /// the one [`recommend_ruled`](Self::recommend_ruled) gives.
    pub fn recommend_users_ruled(
        &self,
        users: &[u32],
        k: usize,
        blend: f32,
        exclude_purchased: bool,
        rules: &Rules,
    ) -> Vec<Vec<Recommendation>> {
        if rules.is_off() {
            return self.recommend_users(users, k, blend, exclude_purchased);
        }
        if blend >= 1.0 {
            return users
                .par_iter()
                .map(|&u| {
                    self.recommend_ruled(Some(u), &[], &[], k, blend, exclude_purchased, rules)
                })
                .collect();
        }
        let depth = self.ruled_depth(Self::collaborative_candidates(k), rules);
        // The first scans of a group of users share cache tiles, as plain
        // lists' do; deeper scans, rarely needed, run alone.
        users
            .par_chunks(64)
            .flat_map_iter(|group| {
                let excluded: Vec<Vec<u32>> = group
                    .iter()
                    .map(|&u| self.excluded_for(Some(u), &[], exclude_purchased))
                    .collect();
                let rows: Vec<&[f32]> = group.iter().map(|&u| self.user_row(u)).collect();
                let tops = self.packed.top_k_many(&rows, depth, &excluded);
                group
                    .iter()
                    .zip(tops)
                    .zip(excluded)
                    .map(|((&u, top), excluded)| {
                        self.ruled_list(
                            Some(self.user_row(u)),
                            Some((top, depth)),
                            &self.interest[u as usize],
                            &excluded,
                            k,
                            blend,
                            rules,
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// One list under rules. `vector`: the user's factors (None: no
    /// collaborative part); `first`: a collaborative top already scanned
    /// with its depth; `excluded` sorted.
    #[allow(clippy::too_many_arguments)]
    pub fn ruled_list(
        &self,
        vector: Option<&[f32]>,
        first: Option<(Vec<(u32, f32)>, usize)>,
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        blend: f32,
        rules: &Rules,
    ) -> Vec<Recommendation> {
        let n = self.n_products();
        let mut wanted = Self::collaborative_candidates(k);
        let mut scanned = first;
        let mut picked = Vec::new();
        for round in 0..=DEEPENINGS {
            let mut exhausted = vector.is_none();
            let als_top: Vec<(u32, f32)> = match vector {
                Some(x) => {
                    let depth = self.ruled_depth(wanted, rules);
                    let (top, depth) = match scanned.take() {
                        Some((top, d)) if d >= depth || d == n => (top, d),
                        _ => (self.packed.top_k(x, depth, excluded), depth),
                    };
                    let allowed: Vec<(u32, f32)> = top
                        .iter()
                        .copied()
                        .filter(|&(i, _)| rules.allows(i))
                        .take(wanted)
                        .collect();
                    exhausted = top.len() < depth || depth == n;
                    scanned = Some((top, depth));
                    allowed
                }
                None => Vec::new(),
            };
            let pool = self.ruled_pool(&als_top, interest, excluded, k, blend, rules);
            picked = self.select(&pool, k, rules);
            if picked.len() == k || exhausted || round == DEEPENINGS {
                break;
            }
            wanted *= 4;
        }
        let mut caps = rules.caps();
        for r in &picked {
            caps.take(
                self.product_category[r.product as usize],
                self.product_brand[r.product as usize],
            );
        }
        self.fill_ruled(&mut picked, k, excluded, rules, &mut caps);
        picked
    }

    /// Every candidate of a ruled list, best first (ties by product id):
    /// the allowed collaborative top, then up to `k` allowed products of
    /// each interest category, scored as the plain blend scores them.
    fn ruled_pool(
        &self,
        als_top: &[(u32, f32)],
        interest: &[(i64, f32)],
        excluded: &[u32],
        k: usize,
        blend: f32,
        rules: &Rules,
    ) -> Vec<Recommendation> {
        let als_max = als_top.first().map_or(0.0, |t| t.1);
        let als_scale = if als_max > 0.0 { 1.0 / als_max } else { 0.0 };
        let mut pool: Vec<Recommendation> = als_top
            .iter()
            .filter_map(|&(i, s)| {
                let category = self.product_category[i as usize];
                self.blended(
                    i,
                    interest_of(interest, category),
                    s * als_scale,
                    true,
                    blend,
                )
            })
            .collect();
        if blend > 0.0 {
            for (at, &(category, _)) in interest.iter().enumerate() {
                if interest[..at].iter().any(|c| c.0 == category) {
                    continue;
                }
                let Some(items) = self.category_items.get(&category) else {
                    continue;
                };
                let category_interest = interest_of(interest, category);
                for &i in items
                    .iter()
                    .filter(|&&i| excluded.binary_search(&i).is_err() && rules.allows(i))
                    .take(k)
                {
                    if als_top.iter().any(|t| t.0 == i) {
                        continue;
                    }
                    pool.extend(self.blended(i, category_interest, 0.0, false, blend));
                }
            }
        }
        pool.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then_with(|| {
                self.product_ids[a.product as usize].cmp(&self.product_ids[b.product as usize])
            })
        });
        pool
    }

    /// The blended recommendation of product `i`, as the plain blend
    /// scores it (`None`: an interest candidate without interest: a product
    /// only the interest rule proposed needs a positive interest score to
    /// count; otherwise popularity fills in). The plain lists
    /// ([`ServingModel::recommend_from_top`]) score with it too.
    #[inline]
    pub(super) fn blended(
        &self,
        i: u32,
        category_interest: f32,
        als: f32,
        from_als: bool,
        blend: f32,
    ) -> Option<Recommendation> {
        let interest = category_interest * self.popularity_score(i);
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
    }

    /// Up to `k` of `pool` under the caps: in pool order, or by maximal
    /// marginal relevance on the product factors when `diversity` > 0.
    fn select(&self, pool: &[Recommendation], k: usize, rules: &Rules) -> Vec<Recommendation> {
        let groups: Vec<(i64, u32)> = pool
            .iter()
            .map(|r| {
                (
                    self.product_category[r.product as usize],
                    self.product_brand[r.product as usize],
                )
            })
            .collect();
        let mut caps = rules.caps();
        let order = if rules.diversity > 0.0 {
            let f = self.factors;
            let rows = self.item_factors();
            let mut vectors = Vec::with_capacity(pool.len() * f);
            for r in pool {
                let i = r.product as usize;
                vectors.extend_from_slice(&rows[i * f..(i + 1) * f]);
            }
            let relevance: Vec<f32> = pool.iter().map(|r| r.score).collect();
            mmr_select(
                &relevance,
                &vectors,
                f,
                &groups,
                rules.diversity,
                k,
                &mut caps,
            )
        } else {
            greedy_select(&groups, k, &mut caps)
        };
        order.into_iter().map(|at| pool[at]).collect()
    }

    /// `list` filled up to `k` with the most popular products the rules
    /// allow, not excluded nor listed, while the caps admit them.
    fn fill_ruled(
        &self,
        list: &mut Vec<Recommendation>,
        k: usize,
        excluded: &[u32],
        rules: &Rules,
        caps: &mut Caps,
    ) {
        for &i in &self.popular_order {
            if list.len() >= k {
                break;
            }
            let (category, brand) = (
                self.product_category[i as usize],
                self.product_brand[i as usize],
            );
            if !rules.allows(i)
                || excluded.binary_search(&i).is_ok()
                || list.iter().any(|r| r.product == i)
                || !caps.admits(category, brand)
            {
                continue;
            }
            caps.take(category, brand);
            list.push(Recommendation {
                product: i,
                score: self.popularity_score(i),
                source: Source::Popular,
            });
        }
        if let (true, Some(per_category), Some(per_brand)) =
            (list.len() < k, rules.max_per_category, rules.max_per_brand)
        {
            self.augment_ruled(list, k, excluded, rules, per_category, per_brand);
        }
    }

    /// Both caps left `list` short: the listed products and every other
    /// allowed one (in popularity order) as a bipartite graph of brands and
    /// categories, augmented to the most products both caps allow
    /// ([`augment_selection`]). Listed products kept stay in order; those
    /// added come after, from popularity.
    fn augment_ruled(
        &self,
        list: &mut Vec<Recommendation>,
        k: usize,
        excluded: &[u32],
        rules: &Rules,
        per_category: u32,
        per_brand: u32,
    ) {
        let mut products: Vec<u32> = list.iter().map(|r| r.product).collect();
        products.extend(self.popular_order.iter().copied().filter(|&i| {
            rules.allows(i)
                && excluded.binary_search(&i).is_err()
                && !list.iter().any(|r| r.product == i)
        }));
        let groups: Vec<(i64, u32)> = products
            .iter()
            .map(|&i| {
                (
                    self.product_category[i as usize],
                    self.product_brand[i as usize],
                )
            })
            .collect();
        let mut chosen: Vec<usize> = (0..list.len()).collect();
        augment_selection(&groups, &mut chosen, k, per_category, per_brand);
        let mut kept: Vec<bool> = vec![false; products.len()];
        for &at in &chosen {
            kept[at] = true;
        }
        let listed = list.len();
        let mut at = 0;
        list.retain(|_| {
            at += 1;
            kept[at - 1]
        });
        for (at, &i) in products.iter().enumerate().skip(listed) {
            if kept[at] {
                list.push(Recommendation {
                    product: i,
                    score: self.popularity_score(i),
                    source: Source::Popular,
                });
            }
        }
    }
}

/// A user's interest in `category` (the last entry listed counts).
fn interest_of(interest: &[(i64, f32)], category: i64) -> f32 {
    interest
        .iter()
        .fold(0.0, |v, c| if c.0 == category { c.1 } else { v })
}

#[cfg(test)]
mod tests {
    use super::super::tests::serving_model;
    use super::*;
    use crate::model::csr::Csr;
    use crate::recommend::rules::NO_BRAND;
    use crate::rng::Rng;

    /// 40 users × 300 products, 6 factors, 9 categories, 2 purchases each.
    fn model(rng: &mut Rng) -> ServingModel {
        let (n_users, n_items, f) = (40, 300, 6);
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for u in 0..n_users as u32 {
            rows.extend([u, u]);
            cols.extend([u % 11, (u * 17) % n_items as u32]);
        }
        let mut m = serving_model(
            1,
            f,
            (0..n_users as i64).collect(),
            (500..500 + n_items as i64).collect(),
            (0..n_users * f).map(|_| rng.normal() as f32).collect(),
            (0..n_items * f).map(|_| rng.normal() as f32).collect(),
            (0..n_items as i64).map(|i| i % 9).collect(),
            (0..n_items).map(|i| (i % 13) as f32).collect(),
            Csr::from_triplets(n_users, n_items, &rows, &cols, &vec![1.0; rows.len()]).unwrap(),
            (0..n_users)
                .map(|u| vec![(u as i64 % 9, 0.7), ((u as i64 + 4) % 9, 0.3)])
                .collect(),
        )
        .unwrap();
        // A few brands, some products without one.
        m.product_brand = (0..n_items as u32)
            .map(|i| if i % 7 == 0 { NO_BRAND } else { i % 5 })
            .collect();
        m
    }

    /// Allowing every product goes through the ruled path and gives the
    /// plain lists, for every blend.
    #[test]
    fn allowing_everything_gives_the_plain_lists() {
        let m = model(&mut Rng::new(8));
        let everything = m
            .rules(&RuleRequest {
                include: Some((0..m.n_products() as u32).collect()),
                ..Default::default()
            })
            .unwrap();
        assert!(!everything.is_off());
        let users: Vec<u32> = (0..40).collect();
        for blend in [0.0, 0.4, 1.0] {
            assert_eq!(
                m.recommend_users_ruled(&users, 10, blend, true, &everything),
                m.recommend_users(&users, 10, blend, true),
                "blend {blend}"
            );
        }
    }

    /// Under random allow-lists and brand caps, every list keeps the rules
    /// and is as long as the rules let it be: k, or every allowed product
    /// not bought that fits the cap (a single cap: taking greedily is best).
    #[test]
    fn lists_keep_the_rules_and_are_as_long_as_they_can_be() {
        let mut rng = Rng::new(12);
        let m = model(&mut rng);
        for trial in 0..30 {
            let share = 1 + rng.below(20);
            let include: Vec<u32> = (0..m.n_products() as u32)
                .filter(|_| rng.below(100) < share)
                .collect();
            let cap = 1 + rng.below(3) as u32;
            let diversity = [0.0, 0.3, 1.0][rng.below(3) as usize];
            let rules = m
                .rules(&RuleRequest {
                    include: Some(include.clone()),
                    max_per_brand: Some(cap),
                    diversity,
                    ..Default::default()
                })
                .unwrap();
            let users: Vec<u32> = (0..40).collect();
            let k = 10;
            let lists = m.recommend_users_ruled(&users, k, 0.3, true, &rules);
            for (&u, list) in users.iter().zip(&lists) {
                let bought = m.purchased.row(u as usize).0;
                let mut per_brand = std::collections::HashMap::new();
                let mut capacity = 0;
                for &i in include.iter().filter(|i| !bought.contains(i)) {
                    let b = m.product_brand[i as usize];
                    let n = per_brand.entry(b).or_insert(0u32);
                    *n += 1;
                    if b == NO_BRAND || *n <= cap {
                        capacity += 1;
                    }
                }
                assert_eq!(list.len(), k.min(capacity), "trial {trial} user {u}");
                let mut seen = std::collections::HashMap::new();
                for r in list {
                    assert!(include.contains(&r.product) && !bought.contains(&r.product));
                    let b = m.product_brand[r.product as usize];
                    let n = seen.entry(b).or_insert(0u32);
                    *n += 1;
                    assert!(b == NO_BRAND || *n <= cap, "trial {trial} user {u}");
                }
                let mut ids: Vec<u32> = list.iter().map(|r| r.product).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), list.len());
                // One at a time, the same list.
                assert_eq!(
                    list,
                    &m.recommend_ruled(Some(u), &[], &[], k, 0.3, true, &rules)
                );
            }
        }
    }
}
