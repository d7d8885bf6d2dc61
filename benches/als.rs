//! Criterion benchmarks of the recommendation kernels, sized so the whole run
//! takes about a minute: one ALS iteration (users + items half) on a
//! generated 20K users × 10K items matrix, and batch top-10 recommendation
//! for 10K users over 50K items at 50 factors.
//!
//! `cargo bench --bench als`. For the comparison with the `implicit` Python
//! library on a 100K × 50K matrix see `benches/implicit_compare.py`.

use criterion::{criterion_group, criterion_main, Criterion};
use ecoreco::als::solver::{synthetic_user_items, AlsParams, AlsTrainer};
use ecoreco::recommend::topk::{recommend_batch, PackedItems};
use ecoreco::rng::Rng;
use std::hint::black_box;
use std::time::Duration;

fn als_iteration(c: &mut Criterion) {
    let user_items = synthetic_user_items(20_000, 10_000, 20, 7);
    let params = AlsParams {
        factors: 50,
        ..AlsParams::default()
    };
    let mut trainer = AlsTrainer::new(&user_items, &params).expect("valid benchmark input");
    let mut group = c.benchmark_group("als");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function(
        format!("iteration_20k_users_10k_items_{}nnz_f50", user_items.nnz()),
        |b| {
            // Successive steps keep refining the same model; the cost per step is
            // the same, so each sample is simply the next iteration.
            b.iter(|| trainer.step())
        },
    );
    group.finish();
}

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
    let flat: Vec<f32> = (0..n_items * factors).map(|_| rng.normal() as f32).collect();
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
                packed.top_k(black_box(&users[next * factors..(next + 1) * factors]), 40, &[])
            })
        });
    }
    group.finish();
}

criterion_group!(benches, als_iteration, recommend, single_user);
criterion_main!(benches);
