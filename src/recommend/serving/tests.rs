//! Serving's tests: hand-built models, lists checked by hand and against the batch path.

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
