//! Business rules inside the top-k: which products a list may hold
//! (allow-list, block-list, price band), how many per category and per
//! brand, and maximal-marginal-relevance diversity. The selection kernels
//! here take plain slices; [`super::serving`] builds the candidate pools
//! they choose from and knows nothing of the rules' parameters.
//!
//! A product whose brand the model does not know is not counted by
//! `max_per_brand`, nor one of unknown category (-1) by
//! `max_per_category`; a product of unknown price fails any price bound
//! (a rule that cannot be checked is not met).

use crate::binding::{Check, Param, SqlType, Value};
use crate::rng::FastMap;

/// The rule parameters the serving aggregate reads (the include and
/// exclude tables are read by the serving query: [`rule_table_params`]).
pub fn rule_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named("max_per_category", BigInt, Value::Null, "the most products of one category in a list, e.g. max_per_category := 2 (NULL: no cap)")
            .check(Check::IntRange(1, 10_000))
            .nullable(),
        Param::named("max_per_brand", BigInt, Value::Null, "the most products of one brand in a list, e.g. max_per_brand := 2 (NULL: no cap)")
            .check(Check::IntRange(1, 10_000))
            .nullable(),
        Param::named("min_price", Double, Value::Null, "the lowest price a product may have, e.g. min_price := 10 (NULL: no bound)")
            .check(Check::Range(-1e300, 1e300))
            .nullable(),
        Param::named("max_price", Double, Value::Null, "the highest price a product may have, e.g. max_price := 100 (NULL: no bound)")
            .check(Check::Range(-1e300, 1e300))
            .nullable(),
        Param::named("diversity", Double, Value::Double(0.0), "the weight of diversity between 0 (off) and 1, e.g. diversity := 0.3")
            .check(Check::Range(0.0, 1.0)),
    ]
}

/// The table-valued rules: names DuckDB resolves, read by the serving query.
pub fn rule_table_params() -> Vec<Param> {
    use SqlType::*;
    vec![
        Param::named(
            "include",
            Varchar,
            Value::Null,
            "the name of a table or view of the product_ids allowed (NULL: every product)",
        )
        .nullable(),
        Param::named(
            "exclude",
            Varchar,
            Value::Null,
            "the name of a table or view of product_ids never to recommend (NULL: none)",
        )
        .nullable(),
    ]
}

/// The rules of one request, resolved against a model's products.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Per product index: whether it may be in a list (include, exclude
    /// and price bounds); `None`: every product.
    allowed: Option<Vec<bool>>,
    /// How many products are allowed.
    allowed_count: usize,
    pub max_per_category: Option<u32>,
    pub max_per_brand: Option<u32>,
    /// λ of maximal marginal relevance; 0: off.
    pub diversity: f32,
}

/// What a request asks for, before it meets a model: product indices of
/// the include (when given) and exclude tables, price bounds, caps and λ.
#[derive(Clone, Debug, Default)]
pub struct RuleRequest {
    pub include: Option<Vec<u32>>,
    pub exclude: Vec<u32>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub max_per_category: Option<u32>,
    pub max_per_brand: Option<u32>,
    pub diversity: f32,
}

impl Rules {
    /// The rules of `request` over products priced `prices` (NaN: unknown).
    pub fn new(request: &RuleRequest, prices: &[f64]) -> anyhow::Result<Rules> {
        let n = prices.len();
        if let (Some(lo), Some(hi)) = (request.min_price, request.max_price) {
            anyhow::ensure!(
                lo <= hi,
                "min_price {lo} is above max_price {hi}; pass min_price <= max_price"
            );
        }
        let filters = request.include.is_some()
            || !request.exclude.is_empty()
            || request.min_price.is_some()
            || request.max_price.is_some();
        let allowed = filters.then(|| {
            let mut allowed = match &request.include {
                Some(include) => {
                    let mut a = vec![false; n];
                    for &i in include {
                        a[i as usize] = true;
                    }
                    a
                }
                None => vec![true; n],
            };
            for &i in &request.exclude {
                allowed[i as usize] = false;
            }
            let (lo, hi) = (
                request.min_price.unwrap_or(f64::NEG_INFINITY),
                request.max_price.unwrap_or(f64::INFINITY),
            );
            if request.min_price.is_some() || request.max_price.is_some() {
                for (a, &p) in allowed.iter_mut().zip(prices) {
                    // NaN (unknown) fails both comparisons.
                    *a &= p >= lo && p <= hi;
                }
            }
            allowed
        });
        let allowed_count = allowed
            .as_ref()
            .map_or(n, |a| a.iter().filter(|&&x| x).count());
        Ok(Rules {
            allowed,
            allowed_count,
            max_per_category: request.max_per_category,
            max_per_brand: request.max_per_brand,
            diversity: request.diversity,
        })
    }

    /// No rule at all: the lists are today's, computed today's way.
    pub fn is_off(&self) -> bool {
        self.allowed.is_none()
            && self.max_per_category.is_none()
            && self.max_per_brand.is_none()
            && self.diversity == 0.0
    }

    #[inline]
    pub fn allows(&self, product: u32) -> bool {
        self.allowed.as_ref().is_none_or(|a| a[product as usize])
    }

    /// How many products the filters let through.
    pub fn allowed_count(&self) -> usize {
        self.allowed_count
    }

    /// A fresh count of what a list holds per category and brand.
    pub fn caps(&self) -> Caps {
        Caps {
            per_category: self.max_per_category,
            per_brand: self.max_per_brand,
            categories: FastMap::default(),
            brands: FastMap::default(),
        }
    }
}

/// A product's brand index when the model knows none.
pub const NO_BRAND: u32 = u32::MAX;

/// The category of unknown products.
pub const NO_CATEGORY: i64 = -1;

/// Counts per category and brand of the products taken into one list.
#[derive(Debug)]
pub struct Caps {
    per_category: Option<u32>,
    per_brand: Option<u32>,
    categories: FastMap<i64, u32>,
    brands: FastMap<u32, u32>,
}

impl Caps {
    /// Whether a product of `category` and `brand` may still be taken.
    pub fn admits(&self, category: i64, brand: u32) -> bool {
        let under = |limit: Option<u32>, count: Option<&u32>| {
            limit.is_none_or(|l| count.copied().unwrap_or(0) < l)
        };
        (category == NO_CATEGORY || under(self.per_category, self.categories.get(&category)))
            && (brand == NO_BRAND || under(self.per_brand, self.brands.get(&brand)))
    }

    /// Counts a product taken.
    pub fn take(&mut self, category: i64, brand: u32) {
        if self.per_category.is_some() && category != NO_CATEGORY {
            *self.categories.entry(category).or_default() += 1;
        }
        if self.per_brand.is_some() && brand != NO_BRAND {
            *self.brands.entry(brand).or_default() += 1;
        }
    }
}

/// Up to `k` of the candidates, in pool order (best first), each taken
/// when the caps still admit it: positions into `groups` ((category, brand)
/// per candidate).
pub fn greedy_select(groups: &[(i64, u32)], k: usize, caps: &mut Caps) -> Vec<usize> {
    let mut picked = Vec::with_capacity(k.min(groups.len()));
    for (at, &(category, brand)) in groups.iter().enumerate() {
        if picked.len() == k {
            break;
        }
        if caps.admits(category, brand) {
            caps.take(category, brand);
            picked.push(at);
        }
    }
    picked
}

/// Maximal marginal relevance (Carbonell and Goldstein, 1998): up to `k`
/// candidates, each the one not taken yet (and admitted by the caps) that
/// maximises `(1 − λ) · relevance − λ · max cosine to those taken`, ties
/// to the earlier in the pool. `vectors`: one row of `f` per candidate
/// (cosines of zero rows are 0). Positions into the pool, in pick order.
pub fn mmr_select(
    relevance: &[f32],
    vectors: &[f32],
    f: usize,
    groups: &[(i64, u32)],
    lambda: f32,
    k: usize,
    caps: &mut Caps,
) -> Vec<usize> {
    let n = relevance.len();
    assert_eq!(vectors.len(), n * f, "one vector per candidate");
    assert_eq!(groups.len(), n, "one group per candidate");
    // Unit rows, so a dot product is the cosine.
    let mut unit = vectors.to_vec();
    for row in unit.chunks_exact_mut(f.max(1)) {
        let norm = dot(row, row).sqrt();
        let scale = if norm > 0.0 && norm.is_finite() {
            1.0 / norm
        } else {
            0.0
        };
        row.iter_mut().for_each(|v| *v *= scale);
    }
    let mut closest = vec![f32::NEG_INFINITY; n];
    let mut open: Vec<usize> = (0..n).collect();
    let mut picked: Vec<usize> = Vec::with_capacity(k.min(n));
    while picked.len() < k {
        // A candidate the caps turn away stays turned away: counts only grow.
        open.retain(|&c| caps.admits(groups[c].0, groups[c].1));
        let mut best: Option<(usize, f32)> = None;
        for (slot, &c) in open.iter().enumerate() {
            let redundancy = if picked.is_empty() { 0.0 } else { closest[c] };
            let value = (1.0 - lambda) * relevance[c] - lambda * redundancy;
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((slot, value));
            }
        }
        let Some((slot, _)) = best else {
            break;
        };
        let chosen = open.remove(slot);
        caps.take(groups[chosen].0, groups[chosen].1);
        picked.push(chosen);
        let row = &unit[chosen * f..(chosen + 1) * f];
        for &c in &open {
            let other = &unit[c * f..(c + 1) * f];
            let cosine = dot(row, other);
            closest[c] = closest[c].max(cosine);
        }
    }
    picked
}

/// Grows `chosen` (positions into `groups`, a selection both caps admit)
/// towards `k` by augmenting paths: the products are the edges of a
/// bipartite graph between brands (at most `per_brand` each) and
/// categories (at most `per_category` each), and the largest selection is
/// a maximum flow through it. Each path takes one more product, possibly
/// trading products already chosen for others of the same groups, so a
/// list ends short only when no `k` products meet both caps. Unknown
/// brands and categories ([`NO_BRAND`], [`NO_CATEGORY`]) are not capped.
/// Breadth-first from the candidates in their order: earlier (more
/// popular) products are tried first.
pub fn augment_selection(
    groups: &[(i64, u32)],
    chosen: &mut Vec<usize>,
    k: usize,
    per_category: u32,
    per_brand: u32,
) {
    // Dense node ids: brands 0..nb, categories 0..nc.
    let mut brand_ids: FastMap<u32, usize> = FastMap::default();
    let mut category_ids: FastMap<i64, usize> = FastMap::default();
    let mut node = Vec::with_capacity(groups.len());
    for &(category, brand) in groups {
        let nb = brand_ids.len();
        let b = *brand_ids.entry(brand).or_insert(nb);
        let nc = category_ids.len();
        let c = *category_ids.entry(category).or_insert(nc);
        node.push((b, c));
    }
    let brand_cap: Vec<u32> = {
        let mut caps = vec![per_brand; brand_ids.len()];
        if let Some(&b) = brand_ids.get(&NO_BRAND) {
            caps[b] = u32::MAX;
        }
        caps
    };
    let category_cap: Vec<u32> = {
        let mut caps = vec![per_category; category_ids.len()];
        if let Some(&c) = category_ids.get(&NO_CATEGORY) {
            caps[c] = u32::MAX;
        }
        caps
    };
    let mut selected = vec![false; groups.len()];
    let (mut brand_used, mut category_used) =
        (vec![0u32; brand_ids.len()], vec![0u32; category_ids.len()]);
    for &at in chosen.iter() {
        selected[at] = true;
        brand_used[node[at].0] += 1;
        category_used[node[at].1] += 1;
    }
    let mut by_brand: Vec<Vec<usize>> = vec![Vec::new(); brand_ids.len()];
    let mut by_category: Vec<Vec<usize>> = vec![Vec::new(); category_ids.len()];
    for (at, &(b, c)) in node.iter().enumerate() {
        by_brand[b].push(at);
        by_category[c].push(at);
    }
    while chosen.len() < k {
        // Breadth-first: a brand is reached from the source (room left) or
        // back along a chosen product; a category along an unchosen one.
        let mut brand_from: Vec<Option<Option<usize>>> = vec![None; brand_ids.len()];
        let mut category_from: Vec<Option<usize>> = vec![None; category_ids.len()];
        let mut queue: std::collections::VecDeque<usize> = Default::default();
        for b in 0..brand_ids.len() {
            if brand_used[b] < brand_cap[b] {
                brand_from[b] = Some(None);
                queue.push_back(b);
            }
        }
        let mut end = None;
        'search: while let Some(b) = queue.pop_front() {
            for &p in &by_brand[b] {
                let c = node[p].1;
                if selected[p] || category_from[c].is_some() {
                    continue;
                }
                category_from[c] = Some(p);
                if category_used[c] < category_cap[c] {
                    end = Some(c);
                    break 'search;
                }
                for &q in &by_category[c] {
                    let b2 = node[q].0;
                    if selected[q] && brand_from[b2].is_none() {
                        brand_from[b2] = Some(Some(q));
                        queue.push_back(b2);
                    }
                }
            }
        }
        let Some(mut c) = end else {
            break;
        };
        category_used[c] += 1;
        loop {
            let p = category_from[c].expect("a category on the path was reached");
            selected[p] = true;
            chosen.push(p);
            let b = node[p].0;
            match brand_from[b].expect("a brand on the path was reached") {
                None => {
                    brand_used[b] += 1;
                    break;
                }
                Some(q) => {
                    // q leaves the selection: its category takes p's place.
                    selected[q] = false;
                    chosen.retain(|&x| x != q);
                    c = node[q].1;
                }
            }
        }
    }
}

/// `a · b` summed in eight lanes (the compiler keeps them in one vector
/// register; a single running sum cannot be reordered, so not vectorised).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_caps() -> Caps {
        Rules::default().caps()
    }

    fn caps(category: Option<u32>, brand: Option<u32>) -> Caps {
        Rules {
            max_per_category: category,
            max_per_brand: brand,
            ..Rules::default()
        }
        .caps()
    }

    #[test]
    fn filters_combine_include_exclude_and_prices() {
        let prices = [1.0, 5.0, f64::NAN, 10.0, 7.5];
        let request = RuleRequest {
            include: Some(vec![0, 1, 2, 3]),
            exclude: vec![3],
            ..Default::default()
        };
        let rules = Rules::new(&request, &prices).unwrap();
        assert_eq!(
            (0..5).map(|i| rules.allows(i)).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        assert_eq!(rules.allowed_count(), 3);
        assert!(!rules.is_off());
        // Bounds are inclusive; an unknown price fails them.
        let band = RuleRequest {
            min_price: Some(5.0),
            max_price: Some(10.0),
            ..Default::default()
        };
        let rules = Rules::new(&band, &prices).unwrap();
        assert_eq!(
            (0..5).map(|i| rules.allows(i)).collect::<Vec<_>>(),
            [false, true, false, true, true]
        );
        let upside_down = RuleRequest {
            min_price: Some(3.0),
            max_price: Some(2.0),
            ..Default::default()
        };
        assert!(Rules::new(&upside_down, &prices)
            .unwrap_err()
            .to_string()
            .contains("min_price 3 is above max_price 2"));
        let off = Rules::new(&RuleRequest::default(), &prices).unwrap();
        assert!(off.is_off() && off.allows(2) && off.allowed_count() == 5);
    }

    #[test]
    fn caps_count_known_groups_only() {
        let groups = [
            (1, 7),
            (1, 8),
            (1, 9),
            (2, 7),
            (2, 7),
            (NO_CATEGORY, 7),
            (NO_CATEGORY, NO_BRAND),
            (3, NO_BRAND),
        ];
        // Two per category: the third of category 1 is skipped.
        assert_eq!(
            greedy_select(&groups, 10, &mut caps(Some(2), None)),
            [0, 1, 3, 4, 5, 6, 7]
        );
        // One per brand: brand 7 once; products without a brand always.
        assert_eq!(
            greedy_select(&groups, 10, &mut caps(None, Some(1))),
            [0, 1, 2, 6, 7]
        );
        assert_eq!(greedy_select(&groups, 3, &mut no_caps()), [0, 1, 2]);
    }

    /// Three candidates: 0 and 1 point the same way, 2 is orthogonal.
    /// Relevance 1.0, 0.9, 0.5. λ = 0.5: after 0, candidate 1 is worth
    /// 0.5·0.9 − 0.5·1 = −0.05 and 2 is worth 0.5·0.5 − 0 = 0.25: 2 comes
    /// second. λ = 0 is the relevance order.
    #[test]
    fn mmr_trades_relevance_for_novelty() {
        let relevance = [1.0, 0.9, 0.5];
        let vectors = [1.0, 0.0, 2.0, 0.0, 0.0, 3.0];
        let groups = [(1, 1), (1, 2), (1, 3)];
        assert_eq!(
            mmr_select(&relevance, &vectors, 2, &groups, 0.5, 3, &mut no_caps()),
            [0, 2, 1]
        );
        assert_eq!(
            mmr_select(&relevance, &vectors, 2, &groups, 0.0, 3, &mut no_caps()),
            [0, 1, 2]
        );
        // Caps still hold: one per category leaves one product.
        assert_eq!(
            mmr_select(
                &relevance,
                &vectors,
                2,
                &groups,
                0.5,
                3,
                &mut caps(Some(1), None)
            ),
            [0]
        );
        // λ = 1: only novelty after the first; a zero vector has cosine 0.
        let vectors = [1.0, 0.0, 1.0, 0.1, 0.0, 0.0];
        assert_eq!(
            mmr_select(&relevance, &vectors, 2, &groups, 1.0, 2, &mut no_caps()),
            [0, 2]
        );
    }

    /// The greedy pick that blocks both caps (a1 takes brand a and
    /// category 1, leaving b1 and a2 no room) is traded for a larger one.
    #[test]
    fn augmenting_paths_reach_what_both_caps_allow() {
        // Products: 0 = (cat 1, brand 7), 1 = (cat 2, brand 7), 2 = (cat 1, brand 8).
        let groups = [(1, 7), (2, 7), (1, 8)];
        let mut c = caps(Some(1), Some(1));
        let mut chosen = greedy_select(&groups, 2, &mut c);
        assert_eq!(chosen, [0]);
        augment_selection(&groups, &mut chosen, 2, 1, 1);
        chosen.sort_unstable();
        assert_eq!(chosen, [1, 2]);
        // Random graphs: the result keeps both caps and has the size of a
        // brute-force maximum.
        let mut rng = crate::rng::Rng::new(9);
        for trial in 0..300 {
            let n = rng.below(9) as usize;
            let groups: Vec<(i64, u32)> = (0..n)
                .map(|_| {
                    let c = rng.below(4) as i64 - 1;
                    let b = rng.below(4) as u32;
                    (c, if b == 3 { NO_BRAND } else { b })
                })
                .collect();
            let (pc, pb) = (1 + rng.below(2) as u32, 1 + rng.below(2) as u32);
            let k = rng.below(8) as usize;
            let fits = |set: &[usize]| {
                let mut c = caps(Some(pc), Some(pb));
                set.iter().all(|&i| {
                    let ok = c.admits(groups[i].0, groups[i].1);
                    c.take(groups[i].0, groups[i].1);
                    ok
                })
            };
            let best = (0u32..1 << n)
                .map(|mask| (0..n).filter(|i| mask >> i & 1 == 1).collect::<Vec<_>>())
                .filter(|set| fits(set))
                .map(|set| set.len())
                .max()
                .unwrap_or(0);
            let mut c = caps(Some(pc), Some(pb));
            let mut chosen = greedy_select(&groups, k, &mut c);
            augment_selection(&groups, &mut chosen, k, pc, pb);
            assert!(fits(&chosen), "trial {trial}");
            assert_eq!(chosen.len(), best.min(k), "trial {trial} {groups:?}");
        }
    }

    /// λ = 0 and no caps: the pool's own order, for any pool.
    #[test]
    fn mmr_without_diversity_is_the_pool_order() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..50 {
            let n = rng.below(30) as usize;
            let mut relevance: Vec<f32> = (0..n).map(|_| rng.below(5) as f32).collect();
            relevance.sort_by(|a, b| b.total_cmp(a));
            let vectors: Vec<f32> = (0..n * 3).map(|_| rng.normal() as f32).collect();
            let groups = vec![(1, 1); n];
            let k = rng.below(12) as usize;
            let want: Vec<usize> = (0..k.min(n)).collect();
            assert_eq!(
                mmr_select(&relevance, &vectors, 3, &groups, 0.0, k, &mut no_caps()),
                want
            );
        }
    }
}
