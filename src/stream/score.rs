//! The collaborative top-k of a folded-in user, after every event, without
//! scanning the catalogue's factors.
//!
//! A user with `n` products solved by the Woodbury identity has
//! `x = Σ_j β_j z_j` ([`super::foldin`]), so every product's score is
//! `x · y_i = Σ_j β_j (z_j · y_i)`: `n` rows of the product-by-product
//! scores [`FoldIn::columns`] keeps, `n · n_items` multiply-adds instead of
//! `factors · n_items` (a user with 3 products: 17 times less work at 50
//! factors). Those sums are rounded differently from the exact score
//! (`ServingModel::collaborative_score`, the one every list reports), but
//! by at most `‖y_i‖ · e` for a per-user `e` (below), so they bound it: keep
//! the `k` best lower bounds, rescore exactly the few items whose upper
//! bound reaches them. The result is the same top-k, scores and order as a
//! full scan's, bit for bit. Users solved directly, and catalogues too large
//! for the product scores, go through the scan.
//!
//! The bound `e`: with `S = Σ_j |β_j| ‖z_j‖`, each stored score is within
//! `γ_f ‖z_j‖ ‖y_i‖` of `z_j · y_i` (`γ_m = m u / (1 − m u)`, `u = 2⁻²⁴`),
//! rounding `β_j` to single precision moves a term by `u`, and the `n`-term
//! sum adds `γ_n`: together `S (γ_f + γ_n + 2u) ‖y_i‖`. The vector `x` the
//! exact score uses is `Σ β_j z_j` rounded to single precision (`u ‖x‖`,
//! plus the double-precision sum's `n 2⁻⁵² S`), and the exact score's own
//! sum is within `γ_f ‖x‖ ‖y_i‖`. 2% on top covers the bound's arithmetic.

use super::foldin::{FoldIn, Scratch};
use crate::recommend::serving::ServingModel;
use crate::isa::{dispatch, Isa};
use crate::recommend::topk::TopK;

/// `scores += b · row`.
#[inline(always)]
fn axpy(scores: &mut [f32], row: &[f32], b: f32) {
    for (score, &m) in scores.iter_mut().zip(row) {
        *score += b * m;
    }
}

/// Whether any item's upper bound `g + ‖y‖·pn + ab` reaches `t`.
#[inline(always)]
fn any_reaches(g: &[f32], y: &[f32], pn: f32, ab: f32, t: f32) -> bool {
    let mut any = false;
    for (&g, &y) in g.iter().zip(y) {
        any |= g + (y * pn + ab) >= t;
    }
    any
}

/// Reusable buffers of [`collaborative_top`].
#[derive(Default)]
pub struct ScoreScratch {
    scores: Vec<f32>,
    candidates: Vec<(u32, f32)>,
    /// Per product: whether it is already a candidate (the seeds).
    seeded: Vec<bool>,
}

fn gamma(m: usize) -> f64 {
    let u = 2f64.powi(-24);
    m as f64 * u / (1.0 - m as f64 * u)
}

/// The exact collaborative top `k` (product index, score; best first) of a
/// user whose folded-in vector `x` the last [`UserFold::solve`](super::foldin::UserFold::solve)
/// into `fold_scratch` produced, over `items` (the user's products);
/// `excluded` sorted. `previous`: the user's last top (any products: only
/// a hint that sets the bar early, so that the pass over the catalogue
/// keeps few candidates); replaced by this one's.
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
    let top = top_k(model, fold, items, fold_scratch, x, k, excluded, previous, scratch);
    previous.clear();
    previous.extend(top.iter().map(|t| t.0));
    top
}

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
) -> Vec<(u32, f32)> {
    let (Some(columns), Some(beta)) = (fold.columns(), fold_scratch.woodbury_weights()) else {
        return model.collaborative_top(x, k, excluded);
    };
    let n_items = fold.n_items();
    let x_norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    // n rows of scores cost n·n_items; the scan at most factors·n_items
    // (less when its norm bound stops it early): the rows while n ≤ f/2.
    let f = fold.factors;
    if k == 0 || n_items == 0 || beta.len() != items.len() || 2 * items.len() > f || !x_norm.is_finite() || beta.iter().any(|b| !b.is_finite()) {
        return model.collaborative_top(x, k, excluded);
    }
    let u = 2f64.powi(-24);
    let s: f64 = items.iter().zip(beta).map(|(&j, &b)| b.abs() * fold.z_norm(j) as f64).sum();
    let per_norm = (s * (gamma(f) + gamma(items.len()) + 2.0 * u + items.len() as f64 * 2f64.powi(-52))
        + x_norm * (u + gamma(f)))
        * 1.02;
    // Products of tiny values may underflow: f + n of them, each below the
    // smallest normal float.
    let absolute = (f + items.len() + 1) as f64 * f32::MIN_POSITIVE as f64 * 1.02;
    let (pn, ab) = ((per_norm * (1.0 + 1e-6)) as f32, (absolute * (1.0 + 1e-6)) as f32);
    let isa = Isa::detect();
    let scores = &mut scratch.scores;
    scores.clear();
    scores.resize(n_items, 0.0);
    for (&j, &b) in items.iter().zip(beta) {
        let row = &columns[j as usize * n_items..(j as usize + 1) * n_items];
        dispatch!(isa, (scores: &mut [f32] = scores, row: &[f32] = row, b: f32 = b as f32) {
            axpy(scores, row, b)
        });
    }
    // The k best lower bounds, and every item whose upper bound reaches them.
    let mut lower = TopK::new(k);
    let candidates = &mut scratch.candidates;
    candidates.clear();
    let norms = fold.item_norms();
    let seeded = &mut scratch.seeded;
    seeded.resize(n_items, false);
    for &i in previous {
        let at = i as usize;
        if at >= n_items || seeded[at] || excluded.binary_search(&i).is_ok() {
            continue;
        }
        seeded[at] = true;
        let err = norms[at] * pn + ab;
        lower.push(i, scores[at] - err);
        candidates.push((i, scores[at] + err));
    }
    let mut first = 0;
    while first < n_items {
        let end = (first + 8).min(n_items);
        let threshold = lower.min_score();
        let (g, y) = (&scores[first..end], &norms[first..end]);
        let reaches = dispatch!(isa, (g: &[f32] = g, y: &[f32] = y, pn: f32 = pn, ab: f32 = ab, t: f32 = threshold) -> bool {
            any_reaches(g, y, pn, ab, t)
        });
        if reaches {
            for i in first..end {
                let err = norms[i] * pn + ab;
                let upper = scores[i] + err;
                if upper < lower.min_score() || seeded[i] || excluded.binary_search(&(i as u32)).is_ok() {
                    continue;
                }
                lower.push(i as u32, scores[i] - err);
                candidates.push((i as u32, upper));
            }
        }
        first = end;
    }
    for &i in previous {
        if let Some(flag) = seeded.get_mut(i as usize) {
            *flag = false;
        }
    }
    let threshold = lower.min_score();
    let mut top = TopK::new(k);
    for &(i, upper) in candidates.iter() {
        if upper >= threshold {
            top.push(i, model.collaborative_score(x, i));
        }
    }
    top.into_sorted()
}
