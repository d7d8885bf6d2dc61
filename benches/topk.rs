//! Criterion benchmarks of the recommendation kernels: batch top-10 for 10K
//! users over 50K items at 50 factors, and one user's top 40 from a packed
//! catalogue of 160K items at 64 factors.
//!
//! `cargo bench --features bench --bench topk`.

use criterion::{criterion_group, criterion_main, Criterion};
use ecoreco::bench_support::synthetic_user_items;
use ecoreco::recommend::topk::{recommend_batch, PackedItems};
use ecoreco::rng::Rng;
use std::hint::black_box;
use std::time::Duration;

fn recommend(c: &mut Criterion) {
    let (n_users, n_items, factors) = (10_000usize, 50_000usize, 50usize);
    let mut rng = Rng::new(11);
    let user_factors: Vec<f32> = (0..n_users * factors)
        .map(|_| rng.normal() as f32)
        .collect();
    let item_factors: Vec<f32> = (0..n_items * factors)
        .map(|_| rng.normal() as f32)
        .collect();
    let users: Vec<u32> = (0..n_users as u32).collect();
    // Exclude ~20 "already seen" items per user, as in real use.
    let exclude = synthetic_user_items(n_users, n_items, 20, 12);
    let mut group = c.benchmark_group("recommend");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("batch_top10_10k_users_50k_items_f50", |b| {
        b.iter(|| {
            recommend_batch(
                black_box(&user_factors),
                black_box(&item_factors),
                factors,
                &users,
                10,
                Some(&exclude),
            )
        })
    });
    group.finish();
}

/// One user's top 40 (what `recommend` asks the scan for at k = 10) from
/// 160K products × 64 factors: with equal norms (nothing to prune, the
/// worst case) and with norms falling off like a trained model's long tail.
fn single_user(c: &mut Criterion) {
    let (n_items, factors) = (160_000usize, 64usize);
    let mut rng = Rng::new(5);
    let users: Vec<f32> = (0..100 * factors).map(|_| rng.normal() as f32).collect();
    let flat: Vec<f32> = (0..n_items * factors)
        .map(|_| rng.normal() as f32)
        .collect();
    let long_tail: Vec<f32> = flat
        .iter()
        .enumerate()
        .map(|(v, &x)| x / ((v / factors) as f32 + 1.0).sqrt())
        .collect();
    let mut group = c.benchmark_group("recommend");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, items) in [("flat_norms", &flat), ("long_tail", &long_tail)] {
        let packed = PackedItems::new(items.clone(), factors);
        let mut next = 0;
        group.bench_function(format!("one_user_top40_160k_items_f64_{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % 100;
                packed.top_k(
                    black_box(&users[next * factors..(next + 1) * factors]),
                    40,
                    &[],
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, recommend, single_user);
criterion_main!(benches);
