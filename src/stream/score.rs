//! The collaborative top-k of a folded-in user, after every event, without
//! scanning the catalogue's factors.
//!
//! A user with `n` products solved by the Woodbury identity has
//! `x = Σ_j β_j z_j` ([`super::foldin`]), so every product's score is
//! `x · y_i = Σ_j β_j (z_j · y_i)`: `n` rows of the product-by-product
//! scores [`ProductScores`](super::product_scores::ProductScores) keeps, `n · n_items` multiply-adds instead of
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
//! Where the CPU converts half precision (F16C), the scores are stored in
//! it, scaled by a power of two: each row is read from memory once per
//! event, so half the bytes is about half the time, and the bound grows by
//! the conversion's rounding ([`top_k`] spells it out).

use super::anchor::Anchor;
use super::foldin::{FoldIn, Scratch};
use super::product_scores::{gamma, Bar, Rows, SLOTS_PER_CHUNK};
use crate::recommend::serving::ServingModel;
use crate::recommend::topk::{best_of, TopK};

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
    /// A chunk's slots that reach the bar at its start.
    reaching: Vec<u32>,
    /// The hints (then the candidates rescored) and their exact scores.
    hints: Vec<u32>,
    exact: Vec<f32>,
}

/// What the scorer keeps of a user between events.
#[derive(Clone, Debug, Default)]
pub struct UserTop {
    /// The user's last collaborative top (product index, exact score).
    pub top: Vec<(u32, f32)>,
    /// Whether `top` is the top of the user's current fold-in and
    /// exclusions (cleared by the state when either changes): then it is
    /// the list a new solve and search would find, and is reused as is.
    pub current: bool,
    /// The last scan's, for a user the product scores do not serve.
    anchor: Option<Box<Anchor>>,
}

/// The exact collaborative top `k` (product index, score; best first) of a
/// user whose folded-in vector `x` the last [`UserFold::solve`](super::foldin::UserFold::solve)
/// into `fold_scratch` produced, over `items` (the user's products), into
/// `memory.top`; `excluded` sorted, and only ever grown between a user's
/// calls. The previous top (any products: only a hint that sets the bar
/// early) is `memory.top` as it comes in.
#[allow(clippy::too_many_arguments)]
pub fn collaborative_top(
    model: &ServingModel,
    fold: &FoldIn,
    items: &[u32],
    fold_scratch: &Scratch,
    x: &[f32],
    k: usize,
    excluded: &[u32],
    memory: &mut UserTop,
    scratch: &mut ScoreScratch,
) {
    let top = top_k(
        model,
        fold,
        items,
        fold_scratch,
        x,
        k,
        excluded,
        &memory.top,
        scratch,
    )
    .unwrap_or_else(|| {
        // The anchor's top when the vector is still near it; else the
        // scan, which anchors again.
        let hinted = score_hints(
            model,
            x,
            excluded,
            memory.top.iter().map(|t| t.0),
            0,
            scratch,
        );
        let anchored = memory.anchor.as_ref().and_then(|a| {
            a.top(
                model,
                x,
                k,
                excluded,
                &hinted,
                &scratch.seeded,
                &mut scratch.exact,
            )
        });
        for &(i, _) in &hinted {
            scratch.seeded[i as usize] = false;
        }
        anchored.unwrap_or_else(|| {
            let (anchor, top) = Anchor::scan(
                model,
                fold,
                x,
                k,
                excluded,
                memory.anchor.as_deref(),
                &mut scratch.exact,
            );
            memory.anchor = Some(Box::new(anchor));
            top
        })
    });
    memory.top = top;
    memory.current = true;
}

/// The hints of `previous` with their exact scores (room for `more`
/// after them): distinct products of the model, not excluded, listed in
/// `scratch.hints` and marked in `scratch.seeded` (the caller clears the
/// marks).
fn score_hints(
    model: &ServingModel,
    x: &[f32],
    excluded: &[u32],
    previous: impl Iterator<Item = u32>,
    more: usize,
    scratch: &mut ScoreScratch,
) -> Vec<(u32, f32)> {
    let n = model.n_products();
    scratch.seeded.resize(n, false);
    scratch.hints.clear();
    for i in previous {
        if (i as usize) < n && !scratch.seeded[i as usize] && excluded.binary_search(&i).is_err() {
            scratch.seeded[i as usize] = true;
            scratch.hints.push(i);
        }
    }
    model.collaborative_scores(x, &scratch.hints, &mut scratch.exact);
    let mut scored = Vec::with_capacity(scratch.hints.len() + more);
    scored.extend(
        scratch
            .hints
            .iter()
            .copied()
            .zip(scratch.exact.iter().copied()),
    );
    scored
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
    previous: &[(u32, f32)],
    scratch: &mut ScoreScratch,
) -> Option<Vec<(u32, f32)>> {
    let table = fold.product_scores()?;
    let beta = fold_scratch.woodbury_weights()?;
    let (n_items, f) = (table.n, fold.factors);
    let x_norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    // n rows of scores cost n·n_items; the scan at most factors·n_items
    // (less when its norm bound stops it early): the rows while n ≤ f/2.
    if k == 0
        || n_items == 0
        || beta.len() != items.len()
        || 2 * items.len() > f
        || !x_norm.is_finite()
        || beta.iter().any(|b| !b.is_finite())
    {
        return None;
    }
    let u = 2f64.powi(-24);
    let s: f64 = items
        .iter()
        .zip(beta)
        .map(|(&j, &b)| b.abs() * table.z_norms[j as usize] as f64)
        .sum();
    // Half-precision rows: each stored `σ s_ji` is within 2⁻¹¹ of itself
    // (2⁻²⁵ if subnormal) of its single-precision value, and
    // `|s_ji| ≤ ‖z_j‖ ‖y_i‖ (1 + γ_f)`: `S 2⁻¹¹ (1 + γ_f)` more per norm,
    // `Σ|β_j| 2⁻²⁵ / σ` more in all. The weights summed are `β_j / σ`.
    let (sigma, half_per_norm, half_absolute) = match &table.rows {
        Rows::Half { sigma, .. } => {
            let sigma = *sigma as f64;
            let beta_sum: f64 = beta.iter().map(|b| b.abs()).sum();
            (
                sigma,
                s * 2f64.powi(-11) * (1.0 + gamma(f)),
                beta_sum * 2f64.powi(-25) / sigma,
            )
        }
        Rows::Single(_) => (1.0, 0.0, 0.0),
    };
    let per_norm = (s
        * (gamma(f) + gamma(items.len()) + 2.0 * u + items.len() as f64 * 2f64.powi(-52))
        + half_per_norm
        + x_norm * (u + gamma(f)))
        * 1.02;
    // Products of tiny values may underflow: f + n of them, each below the
    // smallest normal float.
    let absolute = ((f + items.len() + 1) as f64 * f32::MIN_POSITIVE as f64 + half_absolute) * 1.02;
    let (pn, ab) = (
        (per_norm * (1.0 + 1e-6)) as f32,
        (absolute * (1.0 + 1e-6)) as f32,
    );
    // The first chunk of the user's rows is fetched while the hints are scored.
    table.prefetch(items);
    scratch.beta.clear();
    scratch
        .beta
        .extend(beta.iter().map(|&b| (b / sigma) as f32));
    // A weight rounded to a subnormal float loses its relative precision,
    // which the bound assumes.
    if scratch
        .beta
        .iter()
        .any(|b| *b != 0.0 && b.abs() < f32::MIN_POSITIVE)
        || !(pn.is_finite() && ab.is_finite())
    {
        return None;
    }
    // The hints first: their bounds set the bar for everything else. A
    // hint's exact score is its own lower bound (one pass over its
    // factors, where its product scores would be n scattered reads).
    // With no previous top, a user of one product with a positive weight
    // (x = β z_j) starts from that product's row's best.
    let mut scored = match (previous, items, beta) {
        (&[], &[j], &[b]) if b > 0.0 => score_hints(
            model,
            x,
            excluded,
            table.row_hints(j).iter().take(k).copied(),
            k,
            scratch,
        ),
        _ => score_hints(model, x, excluded, previous.iter().map(|t| t.0), k, scratch),
    };
    let mut lower = TopK::from_candidates(k, &scored);
    let (seeded, beta32, candidates) =
        (&mut scratch.seeded, &scratch.beta, &mut scratch.candidates);
    candidates.clear();
    // An exact score is at most ‖x‖ ‖y‖ (1 + γ_f) (plus underflows, and
    // err on top for the sums here).
    let reach_per_norm = (x_norm * (1.0 + 2.0 * gamma(f) + 1e-6)) as f32 * (1.0 + 1e-6);
    let reach = |norm: f32| reach_per_norm * norm + norm * pn + ab;
    // The slots in chunks, in order: each chunk's sums, then its slots
    // against the k-th best lower bound so far (listed as they are summed
    // against the bar at the chunk's start; then, as pushes raise the bar,
    // each tested again: the same tests, in the same order, as slot by
    // slot). The slots past the last norm that can reach the bar are never
    // summed, and that prefix is cut again as the bar rises.
    let prefix_of = |norms: &[f32], bar: f32| norms.partition_point(|&norm| reach(norm) >= bar);
    let mut bar = lower.min_score();
    let mut end = prefix_of(&table.norms, bar);
    let mut start = 0;
    let scores = &mut scratch.scores;
    let reaching = &mut scratch.reaching;
    while start < end {
        let stop = (start + SLOTS_PER_CHUNK).min(end);
        scores.clear();
        scores.resize(stop - start, 0.0);
        reaching.clear();
        let chunk_bar = Bar {
            pn,
            ab,
            t: lower.min_score(),
        };
        table.sum_rows(items, beta32, start, scores, &chunk_bar, reaching);
        for &at in reaching.iter() {
            let (at, slot) = (at as usize, start + at as usize);
            let err = chunk_bar.err(table.norms[slot]);
            let upper = scores[at] + err;
            if upper < lower.min_score() {
                continue;
            }
            let item = table.order[slot];
            if !seeded[item as usize] && excluded.binary_search(&item).is_err() {
                lower.push(item, scores[at] - err);
                candidates.push((item, upper));
            }
        }
        start = stop;
        if lower.min_score() > bar {
            bar = lower.min_score();
            end = start + prefix_of(&table.norms[start..end], bar);
        }
    }
    for &(i, _) in &scored {
        seeded[i as usize] = false;
    }
    // The top of the hints and of the candidates left, all scored exactly.
    let threshold = lower.min_score();
    scratch.hints.clear();
    scratch
        .hints
        .extend(candidates.iter().filter(|c| c.1 >= threshold).map(|c| c.0));
    model.collaborative_scores(x, &scratch.hints, &mut scratch.exact);
    scored.extend(
        scratch
            .hints
            .iter()
            .copied()
            .zip(scratch.exact.iter().copied()),
    );
    Some(best_of(scored, k))
}
