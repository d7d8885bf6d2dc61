//! Criterion benchmarks of the ALS trainer: one iteration (users + items
//! half) on a generated 20K users × 10K items matrix, and one iteration and
//! one loss evaluation on the 100K users × 50K items matrix (about 2M stored
//! entries) that `benches/implicit_compare.py` times the `implicit` library
//! on.
//!
//! `cargo bench --features bench --bench als`. With `ECORECO_ALS_CSV=<path>` the 100K × 50K
//! matrix is also written there as `user,item,value` CSV (header line,
//! 0-based ids, raw weights), the input of `benches/implicit_compare.py`.
//! Threads: the global rayon pool (`RAYON_NUM_THREADS` bounds it).

use criterion::{criterion_group, criterion_main, Criterion};
use ecoreco::als::solver::{AlsParams, AlsTrainer};
use ecoreco::bench_support::synthetic_user_items;
use ecoreco::model::csr::Csr;
use std::io::Write;
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

/// `user,item,value` CSV of `m`, for `benches/implicit_compare.py`.
fn write_triplets(m: &Csr, path: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "user,item,value")?;
    for u in 0..m.n_rows {
        let (cols, vals) = m.row(u);
        for (&i, &v) in cols.iter().zip(vals) {
            writeln!(out, "{u},{i},{v}")?;
        }
    }
    out.flush()
}

/// The matrix `implicit_compare.py` runs `implicit` on, with the parameters
/// it uses by default (50 factors, λ = 0.1, alpha = 1, 3 CG steps).
fn als_implicit_matrix(c: &mut Criterion) {
    let user_items = synthetic_user_items(100_000, 50_000, 20, 2024);
    if let Ok(path) = std::env::var("ECORECO_ALS_CSV") {
        write_triplets(&user_items, &path).expect("write the benchmark matrix");
        println!(
            "matrix {} users × {} items, nnz {}, written to {path}",
            user_items.n_rows,
            user_items.n_cols,
            user_items.nnz()
        );
    }
    let params = AlsParams {
        factors: 50,
        regularization: 0.1,
        alpha: 1.0,
        cg_steps: 3,
        ..Default::default()
    };
    let mut trainer = AlsTrainer::new(&user_items, &params).expect("valid benchmark input");
    let mut group = c.benchmark_group("als");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let name = format!("100k_users_50k_items_{}nnz_f50", user_items.nnz());
    group.bench_function(format!("iteration_{name}"), |b| b.iter(|| trainer.step()));
    // The loss after the last step; each evaluation after the first reuses
    // the cached YᵀY, as the trainer's per-iteration loss does.
    group.bench_function(format!("loss_{name}"), |b| b.iter(|| trainer.loss()));
    group.finish();
}

criterion_group!(benches, als_iteration, als_implicit_matrix);
criterion_main!(benches);
