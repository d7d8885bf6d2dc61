//! The collaborative top-k of a folded-in user, after every event, without
//! scanning the catalogue's factors.
//!
//! A user with `n` products solved by the Woodbury identity has
//! `x = Σ_j β_j z_j` ([`super::foldin`]), so every product's score is
//! `x · y_i = Σ_j β_j (z_j · y_i)`: `n` rows of the product-by-product
//! scores [`ProductScores`] keeps, `n · n_items` multiply-adds instead of
//! `factors · n_items` (a user with 3 products: 17 times less work at 50
//! factors). The products are kept in descending order of `‖y_i‖`, and
//! `x · y_i ≤ ‖x‖ ‖y_i‖`: once the user's previous top (a hint) has set a
//! bar, only the products of large enough norm are summed at all.
//!
//! Those sums are rounded differently from the exact score
//! (`ServingModel::collaborative_score`, the one every list reports), but
//! by at most `‖y_i‖ · e` for a per-user `e` (below), so they bound it: keep
//! the `k` best lower bounds, rescore exactly the few products whose upper
//! bound reaches them. The result is the same top-k, scores and order as a
//! full scan's, bit for bit. Users solved directly, users with more than
//! `factors / 2` products, and catalogues too large for the product scores
//! go through the scan.
//!
//! The bound `e`: with `S = Σ_j |β_j| ‖z_j‖`, each stored score is within
//! `γ_f ‖z_j‖ ‖y_i‖` of `z_j · y_i` (`γ_m = m u / (1 − m u)`, `u = 2⁻²⁴`),
//! rounding `β_j` to single precision moves a term by `u`, and the `n`-term
//! sum adds `γ_n`: together `S (γ_f + γ_n + 2u) ‖y_i‖`. The vector `x` the
//! exact score uses is `Σ β_j z_j` rounded to single precision (`u ‖x‖`,
//! plus the double-precision sum's `n 2⁻⁵² S`), and the exact score's own
//! sum is within `γ_f ‖x‖ ‖y_i‖`. 2% on top covers the bound's arithmetic.

use super::foldin::{FoldIn, Scratch};
use crate::isa::{dispatch, Isa};
use crate::recommend::serving::ServingModel;
use crate::recommend::topk::{norm_rounded_up, TopK};
use anyhow::Result;
use rayon::prelude::*;

/// Largest catalogue whose product-by-product scores are kept: `n²`
/// floats, 256 MB at this size.
pub const MAX_SCORED_PRODUCTS: usize = 8192;

/// `z_j · y_i` for every pair of products, each row in descending order of
/// `‖y_i‖` (slot `s` holds product `order[s]`).
#[derive(Debug)]
pub struct ProductScores {
    n: usize,
    /// Row `j` (a product index), slot `s`: `z_j · y_order[s]`.
    rows: Vec<f32>,
    order: Vec<u32>,
    /// `‖y‖` per slot, rounded up: descending.
    norms: Vec<f32>,
    /// `‖z_j‖` per product, rounded up.
    z_norms: Vec<f32>,
}

impl ProductScores {
    /// From `z` and the product factors `y` (both `n × f`, row-major).
    pub fn new(z: &[f32], y: &[f32], f: usize) -> Result<ProductScores> {
        let n = y.len() / f;
        let item_norms: Vec<f32> = y.chunks_exact(f).map(norm_rounded_up).collect();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| item_norms[b as usize].total_cmp(&item_norms[a as usize]).then(a.cmp(&b)));
        let mut rows: Vec<f32> = Vec::new();
        rows.try_reserve_exact(n * n)
            .map_err(|_| anyhow::anyhow!("not enough memory for the product-by-product scores of {n} products"))?;
        // Rows of it are read at random, one per product of the user.
        crate::pages::advise_huge_pages(rows.spare_capacity_mut());
        rows.resize(n * n, 0.0);
        rows.par_chunks_mut(n.max(1)).zip(z.par_chunks(f)).for_each(|(row, zj)| {
            for (score, &i) in row.iter_mut().zip(&order) {
                let yi = &y[i as usize * f..(i as usize + 1) * f];
                let mut s = 0f32;
                for (a, b) in zj.iter().zip(yi) {
                    s += a * b;
                }
                *score = s;
            }
        });
        let norms = order.iter().map(|&i| item_norms[i as usize]).collect();
        Ok(ProductScores { n, rows, order, norms, z_norms: z.chunks_exact(f).map(norm_rounded_up).collect() })
    }

    /// Bytes kept for `n` products (0 above [`MAX_SCORED_PRODUCTS`]).
    pub fn bytes(n: usize) -> u64 {
        if n <= MAX_SCORED_PRODUCTS {
            (n * n * 4 + n * 12) as u64
        } else {
            0
        }
    }

    fn row(&self, j: u32) -> &[f32] {
        &self.rows[j as usize * self.n..(j as usize + 1) * self.n]
    }
}

/// `scores += b · row`.
#[inline(always)]
fn axpy(scores: &mut [f32], row: &[f32], b: f32) {
    for (score, &m) in scores.iter_mut().zip(row) {
        *score += b * m;
    }
}

/// The first slot, from `from`, whose upper bound `g + (‖y‖·pn + ab)`
/// reaches `t` (`g.len()` if none), in blocks of eight: most slots fall
/// short, so the test runs in vector lanes and the caller only sees the
/// slots that may enter the top.
#[inline(always)]
fn next_reaching(g: &[f32], y: &[f32], pn: f32, ab: f32, t: f32, from: usize) -> usize {
    let mut at = from;
    while at + 8 <= g.len() {
        let mut any = false;
        for (&g, &y) in g[at..at + 8].iter().zip(&y[at..at + 8]) {
            any |= g + (y * pn + ab) >= t;
        }
        if any {
            break;
        }
        at += 8;
    }
    while at < g.len() && g[at] + (y[at] * pn + ab) < t {
        at += 1;
    }
    at
}

/// Reusable buffers of [`collaborative_top`].
#[derive(Default)]
pub struct ScoreScratch {
    /// Per slot of the prefix summed.
    scores: Vec<f32>,
    /// `β` in single precision, the weights of the rows summed.
    beta: Vec<f32>,
    candidates: Vec<(u32, f32)>,
    /// Per product: whether it is already a candidate (the hints).
    seeded: Vec<bool>,
    /// The hints (then the candidates rescored) and their exact scores.
    hints: Vec<u32>,
    exact: Vec<f32>,
}

fn gamma(m: usize) -> f64 {
    let u = 2f64.powi(-24);
    m as f64 * u / (1.0 - m as f64 * u)
}

/// The exact collaborative top `k` (product index, score; best first) of a
/// user whose folded-in vector `x` the last [`UserFold::solve`](super::foldin::UserFold::solve)
/// into `fold_scratch` produced, over `items` (the user's products);
/// `excluded` sorted. `previous`: the user's last top (any products: only
/// a hint that sets the bar early); replaced by this one's.
#[allow(clippy::too_many_arguments)]
pub fn collaborative_top(
    model: &ServingModel,
    fold: &FoldIn,
    items: &[u32],
    fold_scratch: &Scratch,
    x: &[f32],
    k: usize,
    excluded: &[u32],
    previous: &mut Vec<u32>,
    scratch: &mut ScoreScratch,
) -> Vec<(u32, f32)> {
    let top = top_k(model, fold, items, fold_scratch, x, k, excluded, previous, scratch)
        .unwrap_or_else(|| model.collaborative_top(x, k, excluded));
    previous.clear();
    previous.extend(top.iter().map(|t| t.0));
    top
}

/// [`collaborative_top`] from the product scores; `None` when the user or
/// the catalogue is not one they serve.
#[allow(clippy::too_many_arguments)]
fn top_k(
    model: &ServingModel,
    fold: &FoldIn,
    items: &[u32],
    fold_scratch: &Scratch,
    x: &[f32],
    k: usize,
    excluded: &[u32],
    previous: &[u32],
    scratch: &mut ScoreScratch,
) -> Option<Vec<(u32, f32)>> {
    let table = fold.product_scores()?;
    let beta = fold_scratch.woodbury_weights()?;
    let (n_items, f) = (table.n, fold.factors);
    let x_norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    // n rows of scores cost n·n_items; the scan at most factors·n_items
    // (less when its norm bound stops it early): the rows while n ≤ f/2.
    if k == 0 || n_items == 0 || beta.len() != items.len() || 2 * items.len() > f || !x_norm.is_finite() || beta.iter().any(|b| !b.is_finite()) {
        return None;
    }
    let u = 2f64.powi(-24);
    let s: f64 = items.iter().zip(beta).map(|(&j, &b)| b.abs() * table.z_norms[j as usize] as f64).sum();
    let per_norm = (s * (gamma(f) + gamma(items.len()) + 2.0 * u + items.len() as f64 * 2f64.powi(-52))
        + x_norm * (u + gamma(f)))
        * 1.02;
    // Products of tiny values may underflow: f + n of them, each below the
    // smallest normal float.
    let absolute = (f + items.len() + 1) as f64 * f32::MIN_POSITIVE as f64 * 1.02;
    let (pn, ab) = ((per_norm * (1.0 + 1e-6)) as f32, (absolute * (1.0 + 1e-6)) as f32);
    let beta32 = &mut scratch.beta;
    beta32.clear();
    beta32.extend(beta.iter().map(|&b| b as f32));
    // The hints first: their bounds set the bar for everything else.
    let mut lower = TopK::new(k);
    let candidates = &mut scratch.candidates;
    candidates.clear();
    let seeded = &mut scratch.seeded;
    seeded.resize(model.n_products(), false);
    // A hint's exact score is its own lower bound (one pass over its
    // factors, where its product scores would be n scattered reads).
    let hints = &mut scratch.hints;
    hints.clear();
    for &i in previous {
        if (i as usize) < n_items && !seeded[i as usize] && excluded.binary_search(&i).is_err() {
            seeded[i as usize] = true;
            hints.push(i);
        }
    }
    model.collaborative_scores(x, hints, &mut scratch.exact);
    for (&i, &score) in hints.iter().zip(&scratch.exact) {
        lower.push(i, score);
    }
    // An exact score is at most ‖x‖ ‖y‖ (1 + γ_f) (plus underflows, and
    // err on top for the sums here): the slots past the last norm that can
    // reach the bar are never summed.
    let reach_per_norm = (x_norm * (1.0 + 2.0 * gamma(f) + 1e-6)) as f32 * (1.0 + 1e-6);
    let reach = |norm: f32| reach_per_norm * norm + norm * pn + ab;
    let bar = lower.min_score();
    let prefix = table.norms.partition_point(|&norm| reach(norm) >= bar);
    let isa = Isa::detect();
    let scores = &mut scratch.scores;
    scores.clear();
    scores.resize(prefix, 0.0);
    for (&j, &b) in items.iter().zip(beta32.iter()) {
        let row = &table.row(j)[..prefix];
        dispatch!(isa, (scores: &mut [f32] = scores, row: &[f32] = row, b: f32 = b) {
            axpy(scores, row, b)
        });
    }
    // Slot by slot, as the bar rises: each slot's upper bound against the
    // k-th best lower bound so far (the vector scan skips the slots whose
    // bound falls short of it, which only the pushes below can raise).
    let mut slot = 0;
    loop {
        let threshold = lower.min_score();
        let (g, y) = (&scores[..prefix], &table.norms[..prefix]);
        slot = dispatch!(isa, (g: &[f32] = g, y: &[f32] = y, pn: f32 = pn, ab: f32 = ab, t: f32 = threshold, from: usize = slot) -> usize {
            next_reaching(g, y, pn, ab, t, from)
        });
        if slot >= prefix {
            break;
        }
        let item = table.order[slot];
        let err = table.norms[slot] * pn + ab;
        let upper = scores[slot] + err;
        if !seeded[item as usize] && excluded.binary_search(&item).is_err() {
            lower.push(item, scores[slot] - err);
            candidates.push((item, upper));
        }
        slot += 1;
    }
    for &i in scratch.hints.iter() {
        seeded[i as usize] = false;
    }
    let threshold = lower.min_score();
    let mut top = TopK::new(k);
    for (&i, &score) in scratch.hints.iter().zip(&scratch.exact) {
        top.push(i, score);
    }
    scratch.hints.clear();
    scratch.hints.extend(candidates.iter().filter(|c| c.1 >= threshold).map(|c| c.0));
    model.collaborative_scores(x, &scratch.hints, &mut scratch.exact);
    for (&i, &score) in scratch.hints.iter().zip(&scratch.exact) {
        top.push(i, score);
    }
    Some(top.into_sorted())
}
