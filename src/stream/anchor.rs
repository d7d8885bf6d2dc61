//! A heavy user's collaborative top from the one scan that anchored it,
//! while their folded-in vector stays near the vector scanned.
//!
//! The users [`super::score`] leaves to the catalogue scan have many
//! products, and one event moves their vector little: one weight among
//! dozens. After a scan at `x₀` the anchor keeps the exact top `M` there
//! ([`KEPT_PER_LISTED`] times the list's length), each product `i` with its
//! score `s₀ᵢ = fl(x₀ · yᵢ)` and `‖yᵢ‖`. For any later `x` and any product,
//!
//! `fl(x · yᵢ) ≤ s₀ᵢ + ‖yᵢ‖ e + a`,  `e = ‖x − x₀‖ + γ_f (‖x‖ + ‖x₀‖)`:
//!
//! Cauchy–Schwarz on `(x − x₀) · yᵢ`, plus each single-precision sum's
//! rounding (`γ_f ‖x‖ ‖yᵢ‖`, [`ServingModel::collaborative_score`]) and `a`
//! for products of factors that underflow. A product not kept scored at most
//! the `M`-th kept score at `x₀` (the products excluded since are excluded
//! now too: exclusions only grow), and its norm is at most the largest
//! among the products not kept (the kept ones are mostly of large norm, so
//! this is below the catalogue's largest: norms are long-tailed). The
//! hints, the user's previous top scored exactly, give `k`
//! distinct scores whose `k`-th best the true `k`-th best reaches: the bar.
//! When the products not kept cannot reach the bar, the top is among the
//! kept ones whose bound reaches it, scored exactly: the scan's list, bit
//! for bit. Otherwise the scan runs again and re-anchors.

use super::foldin::FoldIn;
use super::product_scores::gamma;
use crate::recommend::serving::ServingModel;
use crate::recommend::topk::{best_of, norm, norm_rounded_up, TopK};

/// Products an anchor keeps per product of the list (`M = 3k`): enough that
/// a heavy user's next events mostly stay inside them, few enough that
/// checking them costs a small part of a scan.
pub const KEPT_PER_LISTED: usize = 3;

#[derive(Clone, Debug)]
struct Kept {
    item: u32,
    /// `fl(x₀ · y)`, the exact score at the anchor.
    score: f32,
    /// `‖y‖`, rounded up.
    norm: f32,
}

/// The vector of the last scan and its exact top `M`.
#[derive(Clone, Debug)]
pub struct Anchor {
    x: Vec<f32>,
    x_norm: f64,
    /// Best first.
    kept: Vec<Kept>,
    /// Bound of the score at `x₀` of every product not kept and not
    /// excluded: the last kept score (`-∞` when every product was kept).
    rest: f32,
    /// The largest norm among the products not kept and not excluded
    /// (0 when there are none), and among the kept ones.
    rest_norm: f32,
    kept_norm: f32,
}

impl Anchor {
    /// Scans for the exact top `KEPT_PER_LISTED · k` at `x` (`excluded`
    /// sorted): the anchor, and the top `k` (its first `k`, the ranking
    /// being a total order). `previous`: the anchor this one replaces,
    /// whose products scored at `x` give the scan a floor.
    pub fn scan(
        model: &ServingModel,
        fold: &FoldIn,
        x: &[f32],
        k: usize,
        excluded: &[u32],
        previous: Option<&Anchor>,
        exact: &mut Vec<f32>,
    ) -> (Anchor, Vec<(u32, f32)>) {
        let m = KEPT_PER_LISTED * k;
        // The m-th best exact score of m distinct products not excluded:
        // the m-th best of all reaches it.
        let floor = match previous {
            Some(p) => {
                let items: Vec<u32> = p
                    .kept
                    .iter()
                    .map(|c| c.item)
                    .filter(|i| excluded.binary_search(i).is_err())
                    .collect();
                model.collaborative_scores(x, &items, exact);
                let scored: Vec<(u32, f32)> =
                    items.into_iter().zip(exact.iter().copied()).collect();
                TopK::from_candidates(m, &scored).min_score()
            }
            None => f32::NEG_INFINITY,
        };
        let top = model.collaborative_top_above(x, m, excluded, floor);
        let f = model.factors;
        let y = model.item_factors();
        let rest = if top.len() < m {
            f32::NEG_INFINITY
        } else {
            top.last().map_or(f32::NEG_INFINITY, |t| t.1)
        };
        let kept: Vec<Kept> = top
            .iter()
            .map(|&(item, score)| Kept {
                item,
                score,
                norm: norm_rounded_up(&y[item as usize * f..(item as usize + 1) * f]),
            })
            .collect();
        let kept_norm = kept.iter().fold(0f32, |m, c| m.max(c.norm));
        // The first product in norm order neither kept nor excluded: at
        // most M + |excluded| steps.
        let mut kept_items: Vec<u32> = kept.iter().map(|c| c.item).collect();
        kept_items.sort_unstable();
        let rest_norm = fold
            .by_norm
            .iter()
            .find(|(i, _)| {
                kept_items.binary_search(i).is_err() && excluded.binary_search(i).is_err()
            })
            .map_or(0.0, |&(_, norm)| norm);
        let listed = top[..k.min(top.len())].to_vec();
        (
            Anchor {
                x: x.to_vec(),
                x_norm: norm(x),
                kept,
                rest,
                rest_norm,
                kept_norm,
            },
            listed,
        )
    }

    /// The exact top `k` at `x` (`excluded` sorted, a superset of the
    /// anchor's), given `hints`: distinct products not excluded with their
    /// exact scores at `x`, marked in `hinted`. `None` when the products
    /// not kept may reach the hints' bar (the caller scans and re-anchors).
    #[allow(clippy::too_many_arguments)]
    pub fn top(
        &self,
        model: &ServingModel,
        x: &[f32],
        k: usize,
        excluded: &[u32],
        hints: &[(u32, f32)],
        hinted: &[bool],
        exact: &mut Vec<f32>,
    ) -> Option<Vec<(u32, f32)>> {
        if k == 0 || hints.len() < k || x.len() != self.x.len() {
            return None;
        }
        let f = x.len();
        let bar = TopK::from_candidates(k, hints).min_score() as f64;
        let d = x
            .iter()
            .zip(&self.x)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        // 2 % on top covers this arithmetic's own rounding (in double
        // precision, far below the single-precision terms it bounds).
        let e = (d + gamma(f) * (norm(x) + self.x_norm)) * 1.02;
        let a = 2.0 * (f + 1) as f64 * f32::MIN_POSITIVE as f64 * 1.02;
        let reaches = |score: f32, norm: f32| score as f64 + norm as f64 * e + a >= bar;
        if !(bar.is_finite() && e.is_finite()) || reaches(self.rest, self.rest_norm) {
            return None;
        }
        // Kept best first, each norm at most kept_norm: past the first that
        // cannot reach the bar with it, none can.
        let candidates: Vec<u32> = self
            .kept
            .iter()
            .take_while(|c| reaches(c.score, self.kept_norm))
            .filter(|c| {
                reaches(c.score, c.norm)
                    && !hinted[c.item as usize]
                    && excluded.binary_search(&c.item).is_err()
            })
            .map(|c| c.item)
            .collect();
        model.collaborative_scores(x, &candidates, exact);
        let mut scored = Vec::with_capacity(hints.len() + candidates.len());
        scored.extend_from_slice(hints);
        scored.extend(candidates.into_iter().zip(exact.iter().copied()));
        Some(best_of(scored, k))
    }
}
