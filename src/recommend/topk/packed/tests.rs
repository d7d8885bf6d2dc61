//! The tests of the packed single-user scan against the exact scan.

use super::super::recommend_batch;
use super::*;
use crate::model::csr::Csr;
use crate::rng::Rng;

#[test]
fn packed_single_user_equals_batch_bit_for_bit() {
    let (n_users, n_items, f) = (7, 9_000, 13);
    let mut rng = Rng::new(3);
    let users: Vec<f32> = (0..n_users * f).map(|_| rng.normal() as f32).collect();
    let items: Vec<f32> = (0..n_items * f).map(|_| rng.normal() as f32).collect();
    let exclude = Csr::from_triplets(
        n_users,
        n_items,
        &[0, 0, 3],
        &[5, 77, 8_999],
        &[1.0, 1.0, 1.0],
    )
    .unwrap();
    let ids: Vec<u32> = (0..n_users as u32).collect();
    let batch = recommend_batch(&users, &items, f, &ids, 25, Some(&exclude));
    let packed = PackedItems::new(items.clone(), f);
    for u in 0..n_users {
        let single = packed.top_k(&users[u * f..(u + 1) * f], 25, exclude.row(u).0);
        assert_eq!(single, batch[u], "user {u}");
    }
    // Trained-model-like factors, many users: the half-precision
    // candidate scan never loses an exact top-k item.
    let many: Vec<f32> = (0..500 * f).map(|_| rng.normal() as f32 * 0.3).collect();
    let ids: Vec<u32> = (0..500).collect();
    for k in [10, 40] {
        let exact = recommend_batch(&many, &items, f, &ids, k, None);
        for u in 0..500 {
            assert_eq!(
                packed.top_k(&many[u * f..(u + 1) * f], k, &[]),
                exact[u],
                "user {u}, k {k}"
            );
        }
    }
    assert!(packed.top_k(&users[..f], 0, &[]).is_empty());
    assert_eq!(packed.top_k(&users[..f], 100_000, &[]).len(), n_items);
}

/// Items whose norms fall off like a trained model's long tail.
fn long_tail_items(n_items: usize, f: usize, rng: &mut Rng) -> Vec<f32> {
    let mut items = Vec::with_capacity(n_items * f);
    for i in 0..n_items {
        // Item ids are not in norm order: the scan must sort them.
        let rank = (i * 7919) % n_items;
        let scale = 2.0 / (rank as f32 + 1.0).powf(0.8);
        items.extend((0..f).map(|_| rng.normal() as f32 * scale));
    }
    items
}

#[test]
fn half_scan_stops_early_on_a_long_tail_and_stays_exact() {
    let (n_items, f) = (40_000, 32);
    let mut rng = Rng::new(11);
    let items = long_tail_items(n_items, f, &mut rng);
    let packed = PackedItems::new(items.clone(), f);
    if !packed.uses_half_precision() {
        return; // no F16C: the exact scan is tested above
    }
    let n_users = 200;
    let users: Vec<f32> = (0..n_users * f).map(|_| rng.normal() as f32).collect();
    // Each user bought a few of the strongest items.
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    for u in 0..n_users as u32 {
        for i in [u % 50, 3 * u % 97, 7 * u] {
            rows.push(u);
            cols.push(i * 7919 % n_items as u32);
        }
    }
    let exclude =
        Csr::from_triplets(n_users, n_items, &rows, &cols, &vec![1.0; rows.len()]).unwrap();
    let ids: Vec<u32> = (0..n_users as u32).collect();
    for k in [1, 10, 40] {
        let exact = recommend_batch(&users, &items, f, &ids, k, Some(&exclude));
        let mut shares = Vec::new();
        for u in 0..n_users {
            let (top, share) = packed.top_k_counted(
                &users[u * f..(u + 1) * f],
                k,
                exclude.row(u).0,
                f32::NEG_INFINITY,
            );
            assert_eq!(top, exact[u], "user {u}, k {k}");
            shares.push(share);
        }
        shares.sort_by(f64::total_cmp);
        let median = shares[n_users / 2];
        assert!(
            median < 0.25,
            "k {k}: median share of panels scanned {median}"
        );
    }
}

#[test]
fn scores_of_many_items_equal_single_scores_bit_for_bit() {
    let mut rng = Rng::new(23);
    for f in [1, 7, 8, 13, 50, 64] {
        let n_items = 300;
        let items: Vec<f32> = (0..n_items * f)
            .map(|_| rng.normal() as f32 * 3.0)
            .collect();
        let packed = PackedItems::new(items, f);
        let user: Vec<f32> = (0..f).map(|_| rng.normal() as f32).collect();
        let picked: Vec<u32> = (0..101).map(|i| (i * 37 % n_items) as u32).collect();
        let mut out = Vec::new();
        packed.exact_scores(&user, &picked, &mut out);
        assert_eq!(out.len(), picked.len());
        for (&item, &score) in picked.iter().zip(&out) {
            assert_eq!(
                score.to_bits(),
                packed.exact_score(&user, item).to_bits(),
                "f {f}, item {item}"
            );
        }
    }
}

#[test]
fn many_users_at_once_get_each_their_own_list() {
    let f = 32;
    let mut rng = Rng::new(17);
    // A long tail (scans stop in the first tiles) and equal norms
    // (nothing to prune: every tile, then the parallel tasks).
    let long_tail = long_tail_items(40_000, f, &mut rng);
    let flat: Vec<f32> = (0..20_000 * f).map(|_| rng.normal() as f32).collect();
    for items in [long_tail, flat] {
        let packed = PackedItems::new(items, f);
        let mut users: Vec<Vec<f32>> = (0..70)
            .map(|_| (0..f).map(|_| rng.normal() as f32).collect())
            .collect();
        users[3][0] = f32::NAN;
        users[5] = vec![0.0; f];
        let excluded: Vec<Vec<u32>> = (0..70u32)
            .map(|u| {
                if u % 3 == 0 {
                    vec![u, 7 * u + 1, 19_999]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let rows: Vec<&[f32]> = users.iter().map(Vec::as_slice).collect();
        for k in [0, 1, 40] {
            let many = packed.top_k_many(&rows, k, &excluded);
            assert_eq!(many.len(), rows.len());
            for (u, top) in many.iter().enumerate() {
                assert_eq!(
                    top,
                    &packed.top_k(rows[u], k, &excluded[u]),
                    "user {u}, k {k}"
                );
            }
        }
    }
    assert!(
        cache_tile_panels(50).is_multiple_of(4)
            && cache_tile_panels(50) * TILE_ITEMS * 50 * 2 <= 192 << 10
    );
    assert_eq!(cache_tile_panels(100_000), 4);
}

/// A floor from any k distinct items' exact scores (the top's own
/// k-th score at best) leaves the list as it is; the scan starts above it.
#[test]
fn a_floor_from_any_k_items_gives_the_same_list() {
    let f = 24;
    let mut rng = Rng::new(29);
    let packed = PackedItems::new(long_tail_items(30_000, f, &mut rng), f);
    for u in 0..40u32 {
        let user: Vec<f32> = (0..f).map(|_| rng.normal() as f32).collect();
        let excluded: Vec<u32> = if u % 2 == 0 {
            vec![u, 5 * u + 3]
        } else {
            Vec::new()
        };
        for k in [1, 10, 40] {
            let want = packed.top_k(&user, k, &excluded);
            let kth = want.last().unwrap().1;
            // Random distinct items not excluded, and the top itself.
            let mut some = TopK::new(k);
            let mut seen = std::collections::BTreeSet::new();
            while seen.len() < k {
                let i = (rng.next_u64() % 30_000) as u32;
                if !excluded.contains(&i) && seen.insert(i) {
                    some.push(i, packed.exact_score(&user, i));
                }
            }
            for floor in [some.min_score(), kth, f32::NEG_INFINITY] {
                assert_eq!(
                    packed.top_k_above(&user, k, &excluded, floor),
                    want,
                    "user {u}, k {k}, floor {floor}"
                );
            }
        }
    }
}

#[test]
fn half_scan_is_exact_where_half_precision_cannot_tell_items_apart() {
    let f = 16;
    let mut rng = Rng::new(5);
    let base: Vec<f32> = (0..f).map(|_| rng.normal() as f32).collect();
    // 3000 items equal to `base` up to 2⁻¹⁸ relative: identical in half
    // precision, distinct (or exactly tied) in single precision.
    let n_items = 3000;
    let mut items = Vec::with_capacity(n_items * f);
    for i in 0..n_items {
        let nudge = 1.0 + ((i * 37) % 101) as f32 * 2f32.powi(-18);
        items.extend(base.iter().map(|&b| b * nudge));
    }
    let packed = PackedItems::new(items.clone(), f);
    let users: Vec<f32> = base
        .iter()
        .map(|&b| b * 0.5)
        .chain(base.iter().map(|&b| -b))
        .collect();
    let ids = [0u32, 1];
    for k in [1, 5, 60] {
        let exact = recommend_batch(&users, &items, f, &ids, k, None);
        for u in 0..2 {
            assert_eq!(
                packed.top_k(&users[u * f..(u + 1) * f], k, &[]),
                exact[u],
                "user {u}, k {k}"
            );
        }
    }
}

#[test]
fn factors_beyond_half_range_and_non_finite_users_are_scored_exactly() {
    let f = 4;
    let mut rng = Rng::new(9);
    let mut items: Vec<f32> = (0..500 * f).map(|_| rng.normal() as f32).collect();
    items[17] = 1e6; // beyond half precision: the exact scan is used
    let big = PackedItems::new(items.clone(), f);
    assert!(!big.uses_half_precision());
    let user = [0.5f32, -1.0, 2.0, 0.25];
    let exact = recommend_batch(&user, &items, f, &[0], 10, None);
    assert_eq!(big.top_k(&user, 10, &[]), exact[0]);

    items[17] = 1.0;
    let packed = PackedItems::new(items.clone(), f);
    for user in [
        [f32::NAN, 1.0, 0.0, 0.0],
        [f32::INFINITY, 1.0, 0.0, 0.0],
        [3e38, 3e38, 0.0, 0.0],
    ] {
        let exact = recommend_batch(&user, &items, f, &[0], 10, None);
        assert_eq!(packed.top_k(&user, 10, &[]), exact[0], "user {user:?}");
    }
    // Every score negative, more asked than remain after exclusions.
    let negative: Vec<f32> = items.iter().map(|v| -v.abs() - 0.1).collect();
    let packed = PackedItems::new(negative, f);
    let excluded: Vec<u32> = (0..495).collect();
    let top = packed.top_k(&[1.0, 1.0, 1.0, 1.0], 10, &excluded);
    assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>().len(), 5);
    assert!(top.iter().all(|t| t.0 >= 495));
}
