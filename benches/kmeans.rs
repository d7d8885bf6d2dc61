//! Criterion benchmarks of the K-Means kernel: 200K rows × 8 standardised
//! columns, k = 5, a fixed 20 Lloyd iterations (tol = 0 on unstructured data
//! so every sample does the same amount of work), plus the silhouette on a
//! 5 000-row sample; and the same on 1M rows × 8 normal columns (the size
//! of the `kmeans_segments` floor in the README) with the silhouette on a
//! 10 000-row sample. `cargo bench --features bench --bench kmeans`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ecoreco::rng::Rng;
use ecoreco::segment::kmeans::{kmeans, silhouette, KMeansParams, Standardizer};
use std::time::Duration;

const N_ROWS: usize = 200_000;
const N_COLS: usize = 8;

/// Skewed, differently scaled columns resembling customer features (counts,
/// spend, recency), standardised as the extension does before clustering.
fn customer_like_features() -> Vec<f64> {
    let mut rng = Rng::new(7);
    let mut data = Vec::with_capacity(N_ROWS * N_COLS);
    for _ in 0..N_ROWS {
        for col in 0..N_COLS {
            let scale = 10f64.powi(col as i32 % 4);
            data.push((rng.normal() * 0.8).exp() * scale);
        }
    }
    Standardizer::fit(&data, N_COLS).transform_in_place(&mut data);
    data
}

fn bench_kmeans(c: &mut Criterion) {
    let data = customer_like_features();
    let params = KMeansParams {
        k: 5,
        max_iter: 20,
        seed: 42,
        tol: 0.0,
    };

    let mut group = c.benchmark_group("kmeans");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("200k_x8_k5_20iter", |b| {
        b.iter(|| kmeans(black_box(&data), N_COLS, &params).expect("kmeans"))
    });

    let model = kmeans(&data, N_COLS, &params).expect("kmeans");
    group.bench_function("silhouette_5k_sample", |b| {
        b.iter(|| {
            silhouette(black_box(&data), N_COLS, &model.assignments, 5, 5_000, 1)
                .expect("silhouette")
        })
    });
    group.finish();
}

/// 1M rows × 8 columns, k = 5, exactly 20 Lloyd iterations (tol = 0 and
/// well-mixed data so it cannot stop early).
fn bench_kmeans_one_million(c: &mut Criterion) {
    let (n_rows, n_cols) = (1_000_000, 8);
    let mut rng = Rng::new(2024);
    let data: Vec<f64> = (0..n_rows * n_cols).map(|_| rng.normal()).collect();
    let params = KMeansParams {
        k: 5,
        max_iter: 20,
        seed: 42,
        tol: 0.0,
    };
    let mut group = c.benchmark_group("kmeans");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("1m_x8_k5_20iter", |b| {
        b.iter(|| kmeans(black_box(&data), n_cols, &params).expect("kmeans"))
    });
    let model = kmeans(&data, n_cols, &params).expect("kmeans");
    assert_eq!(
        model.iterations, 20,
        "the benchmark must run all 20 iterations"
    );
    group.bench_function("silhouette_10k_sample_of_1m", |b| {
        b.iter(|| {
            silhouette(black_box(&data), n_cols, &model.assignments, 5, 10_000, 1)
                .expect("silhouette")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_kmeans, bench_kmeans_one_million);
criterion_main!(benches);
