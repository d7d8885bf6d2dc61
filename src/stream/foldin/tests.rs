//! The fold-in's tests: against the exact solve, the product scores and the scan.

use super::*;
use crate::rng::Rng;

/// The half-step written out: `(YᵀY + λI + Σ α w y yᵀ) x = Σ (1 + α w) y`,
/// formed densely over every product and solved in f64.
fn solve_exact(
    y: &[f32],
    f: usize,
    items: &[u32],
    weights: &[f32],
    reg: f32,
    alpha: f32,
) -> Vec<f32> {
    let mut a = vec![0f64; f * f];
    let mut b = vec![0f64; f];
    for (i, yi) in y.chunks_exact(f).enumerate() {
        let w = items
            .iter()
            .position(|&t| t as usize == i)
            .map_or(0.0, |at| weights[at] as f64);
        let c = 1.0 + alpha as f64 * w;
        for j in 0..f {
            if w > 0.0 {
                b[j] += c * yi[j] as f64;
            }
            for k in 0..f {
                a[j * f + k] += c * yi[j] as f64 * yi[k] as f64;
            }
        }
    }
    for j in 0..f {
        a[j * f + j] += reg as f64;
    }
    cholesky(&mut a, f).unwrap();
    cholesky_solve(&a, f, &mut b);
    b.into_iter().map(|v| v as f32).collect()
}

fn random_factors(n: usize, f: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * f)
        .map(|_| (rng.next_f64() as f32 - 0.5) * 0.8)
        .collect()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn cholesky_solves_a_hand_checked_system() {
    // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0].
    let mut a = vec![4.0, 2.0, 2.0, 3.0];
    cholesky(&mut a, 2).unwrap();
    assert!(
        (a[0] - 2.0).abs() < 1e-12
            && (a[2] - 1.0).abs() < 1e-12
            && (a[3] - 2f64.sqrt()).abs() < 1e-12
    );
    let mut b = vec![2.0, 1.0];
    cholesky_solve(&a, 2, &mut b);
    assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
    let mut singular = vec![1.0, 1.0, 1.0, 1.0];
    assert!(cholesky(&mut singular, 2)
        .unwrap_err()
        .to_string()
        .contains("pivot 1"));
}

/// Both paths (Woodbury while the user has at most `factors` products,
/// then the direct system) equal the trainer's exact row solve, after
/// every change, including weight changes of products already seen.
#[test]
fn fold_in_equals_the_exact_row_solve_after_every_event() {
    let (n_items, f) = (40, 6);
    let y = random_factors(n_items, f, 3);
    for &(reg, alpha) in &[(0.1, 1.0), (0.5, 4.0), (0.1, 0.0)] {
        let fold = FoldIn::new(&y, f, reg, alpha).unwrap();
        let mut user = UserFold::default();
        let mut scratch = Scratch::default();
        let mut weights: Vec<(u32, f32)> = Vec::new();
        let mut rng = Rng::new(11);
        for step in 0..25 {
            let item = if step % 4 == 3 {
                weights[0].0
            } else {
                (rng.next_u64() % n_items as u64) as u32
            };
            let w = match weights.iter_mut().find(|p| p.0 == item) {
                Some(p) => {
                    p.1 = (p.1 + 3.0).min(10.0);
                    p.1
                }
                None => {
                    weights.push((item, 1.0));
                    1.0
                }
            };
            user.set_weight(&fold, &y, item, w).unwrap();
            let mut got = vec![0f32; f];
            user.solve(&fold, &y, &mut scratch, &mut got).unwrap();
            let items: Vec<u32> = weights.iter().map(|p| p.0).collect();
            let raw: Vec<f32> = weights.iter().map(|p| p.1).collect();
            let want = solve_exact(&y, f, &items, &raw, reg as f32, alpha as f32);
            close(&got, &want, 2e-5);
        }
        assert!(
            user.products() > f.min(WOODBURY_MAX),
            "the test must reach the direct path"
        );
    }
}

/// The Cholesky in vector lanes factors as the plain one does (up to
/// rounding), and refuses what is not positive definite. A weighting
/// whose statistics are missing is refused.
#[test]
fn the_cholesky_in_lanes_factors_as_the_plain_one() {
    let f = 13;
    let y = random_factors(40, f, 8);
    let fold = FoldIn::new(&y, f, 0.1, 1.0).unwrap();
    let (mut plain, mut lanes) = (fold.a0.clone(), fold.a0.clone());
    cholesky(&mut plain, f).unwrap();
    cholesky_in_lanes(&mut lanes, f).unwrap();
    for r in 0..f {
        for c in 0..=r {
            let (p, l) = (plain[r * f + c], lanes[r * f + c]);
            assert!(
                (p - l).abs() <= 1e-12 * (1.0 + p.abs()),
                "{r},{c}: {p} vs {l}"
            );
        }
    }
    let mut singular = vec![1.0, 1.0, 1.0, 1.0];
    assert!(cholesky_in_lanes(&mut singular, 2)
        .unwrap_err()
        .to_string()
        .contains("pivot 1"));
    let unrecorded = Weighting {
        confidence: crate::model::confidence::Confidence::Log,
        scale: f64::NAN,
        ..Weighting::raw()
    };
    assert!(fold
        .with_weighting(unrecorded)
        .unwrap_err()
        .to_string()
        .contains("no confidence_scale"));
}

#[test]
fn a_user_with_no_product_folds_to_zero() {
    let y = random_factors(5, 3, 1);
    let fold = FoldIn::new(&y, 3, 0.1, 1.0).unwrap();
    let mut out = vec![1f32; 3];
    UserFold::default()
        .solve(&fold, &y, &mut Scratch::default(), &mut out)
        .unwrap();
    assert_eq!(out, [0.0, 0.0, 0.0]);
    assert!(FoldIn::new(&y, 3, f64::NAN, 1.0).is_err());
    // λ = 0 with fewer products than factors: YᵀY is singular.
    assert!(FoldIn::new(&y[..6], 3, 0.0, 1.0)
        .unwrap_err()
        .to_string()
        .contains("positive definite"));
}

#[test]
fn gram_is_the_same_whatever_the_thread_count() {
    let y = random_factors(3000, 8, 5);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let a = one.install(|| FoldIn::new(&y, 8, 0.1, 1.0).unwrap());
    let b = four.install(|| FoldIn::new(&y, 8, 0.1, 1.0).unwrap());
    assert_eq!(a.a0, b.a0);
    assert_eq!(a.z, b.z);
}

/// The solver-only fold-in (the update's) solves users bit for bit as the
/// stream's does, without building the product-by-product scores.
#[test]
fn the_solver_fold_in_solves_as_the_full_one() {
    let f = 6;
    let y = random_factors(50, f, 21);
    let full = FoldIn::new(&y, f, 0.1, 2.0).unwrap();
    let solver = FoldIn::solver(&y, f, 0.1, 2.0).unwrap();
    assert!(full.product_scores().is_some());
    assert!(solver.product_scores().is_none());
    for products in [3u32, 45] {
        let (mut a, mut b) = (UserFold::default(), UserFold::default());
        for i in 0..products {
            a.set_weight(&full, &y, i, 1.0 + (i % 3) as f32).unwrap();
            b.set_weight(&solver, &y, i, 1.0 + (i % 3) as f32).unwrap();
        }
        let (mut xa, mut xb) = (vec![0f32; f], vec![0f32; f]);
        a.solve(&full, &y, &mut Scratch::default(), &mut xa)
            .unwrap();
        b.solve(&solver, &y, &mut Scratch::default(), &mut xb)
            .unwrap();
        assert_eq!(xa, xb);
        assert!(xa.iter().any(|v| *v != 0.0));
    }
}
