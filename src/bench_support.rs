//! Reproducible synthetic inputs for the criterion benches in `benches/` and
//! for unit tests. Not part of the extension: it is compiled only for the
//! unit tests and with the `bench` feature (which the benches require), and
//! public only because each bench is a separate crate that can reach nothing
//! else of this one.

use crate::model::csr::Csr;
use crate::rng::Rng;
use rayon::prelude::*;

/// A reproducible random `n_users × n_items` interaction matrix for
/// benchmarks: user `u` has `1..=2·mean_per_user − 1` interactions (uniform,
/// mean `mean_per_user`), items drawn with a popularity skew (`item =
/// ⌊n_items · U²⌋`, so low item ids are popular, like real catalogues), weights
/// uniform in 1..=10; repeated picks are summed by [`Csr::from_triplets`].
pub fn synthetic_user_items(
    n_users: usize,
    n_items: usize,
    mean_per_user: usize,
    seed: u64,
) -> Csr {
    assert!(n_users > 0 && n_items > 0 && mean_per_user > 0);
    let per_user: Vec<Vec<(u32, f32)>> = (0..n_users)
        .into_par_iter()
        .with_min_len(1024)
        .map(|u| {
            let mut rng = Rng::for_stream(seed, u as u64);
            let count = 1 + rng.below(2 * mean_per_user as u64 - 1) as usize;
            (0..count)
                .map(|_| {
                    let uniform = rng.next_f64();
                    let item = ((n_items as f64 * uniform * uniform) as usize).min(n_items - 1);
                    (item as u32, (1 + rng.below(10)) as f32)
                })
                .collect()
        })
        .collect();
    let total: usize = per_user.iter().map(Vec::len).sum();
    let (mut rows, mut cols, mut values) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    for (u, entries) in per_user.iter().enumerate() {
        for &(i, v) in entries {
            rows.push(u as u32);
            cols.push(i);
            values.push(v);
        }
    }
    Csr::from_triplets(n_users, n_items, &rows, &cols, &values)
        .expect("generated indices are in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_matrix_is_reproducible_and_skewed() {
        let a = synthetic_user_items(1000, 500, 10, 1);
        assert_eq!(a, synthetic_user_items(1000, 500, 10, 1));
        a.validate().unwrap();
        let t = a.transpose();
        let head = t.indptr[50];
        assert!(
            head > a.nnz() / 5,
            "first 10% of items should be popular: {head} of {}",
            a.nnz()
        );
    }
}
