//! Per-row conjugate gradient on the normal equations, never forming them.

use super::factors::stored_rows;
use super::gram::gram_matvec;
use crate::isa::vector::VectorOps;
use crate::isa::{dispatch, Isa};
use crate::model::csr::Csr;
use rayon::prelude::*;

/// Everything shared by the row solves of one half-iteration.
pub(super) struct RowProblem<'a> {
    /// Padded factors of the side held fixed (`Y` when solving users).
    pub(super) fixed_factors: &'a [f32],
    /// `YᵀY`, unregularised, `stride × stride`.
    pub(super) gram: &'a [f32],
    pub(super) factors: usize,
    pub(super) stride: usize,
    pub(super) regularization: f32,
    pub(super) alpha: f32,
    pub(super) cg_steps: usize,
}

/// Per-thread CG work vectors, allocated once per rayon job rather than per row.
struct CgScratch {
    residual: Vec<f32>,
    direction: Vec<f32>,
    a_direction: Vec<f32>,
}

/// Most rows per rayon task: large enough to amortise scheduling, small
/// enough to balance rows of very different lengths across two or more
/// threads.
const SOLVE_ROWS_PER_TASK: usize = 64;

/// The rows of each task of a half-iteration, in order: at most
/// [`SOLVE_ROWS_PER_TASK`] rows, and fewer where the rows are long, so that
/// each task's work (its stored entries, plus `row_cost` per row for the
/// Gram products) stays near that of [`SOLVE_ROWS_PER_TASK`] average rows.
/// With a fixed row count, a run of popular products (neighbours in id
/// order) made one task that a single thread worked through alone while
/// the other waited: a third of each half at 42M events. The ranges
/// depend only on the matrix, and so do the loss's partial sums (one per
/// task, added in task order): the same value for every thread count.
fn task_ranges(matrix: &Csr, row_cost: usize) -> Vec<std::ops::Range<usize>> {
    let n = matrix.n_rows;
    let target = SOLVE_ROWS_PER_TASK * (row_cost + matrix.nnz().div_ceil(n.max(1)));
    let mut ranges = Vec::with_capacity(n / SOLVE_ROWS_PER_TASK + 1);
    let (mut start, mut work) = (0, 0);
    for r in 0..n {
        work += row_cost + (matrix.indptr[r + 1] - matrix.indptr[r]);
        if r + 1 - start == SOLVE_ROWS_PER_TASK || work >= target {
            ranges.push(start..r + 1);
            (start, work) = (r + 1, 0);
        }
    }
    if start < n {
        ranges.push(start..n);
    }
    ranges
}

/// Solves every row of `matrix` (warm-starting from `solved`). Returns the
/// sum over rows of [`solve_row`]'s data term of the factors as they were
/// *before* this solve: with the user side solved against `Y`, the loss's
/// data term of `(X, Y)` at no extra pass over the entries.
pub(super) fn solve_rows(matrix: &Csr, solved: &mut [f32], problem: &RowProblem, isa: Isa) -> f64 {
    let stride = problem.stride;
    // A Gram product per CG step costs about stride / 2 entries' work.
    let ranges = task_ranges(matrix, stride / 2);
    let mut tasks: Vec<(&mut [f32], std::ops::Range<usize>)> = Vec::with_capacity(ranges.len());
    let mut rest = solved;
    for range in ranges {
        let (task, tail) = rest.split_at_mut(range.len() * stride);
        tasks.push((task, range));
        rest = tail;
    }
    let partials: Vec<f64> = tasks
        .into_par_iter()
        .map_init(
            || CgScratch {
                residual: vec![0.0; stride],
                direction: vec![0.0; stride],
                a_direction: vec![0.0; stride],
            },
            |scratch, (rows, range)| {
                let mut data_term = 0f64;
                for (x, r) in rows.chunks_exact_mut(stride).zip(range) {
                    let (cols, raw) = matrix.row(r);
                    data_term += dispatch!(isa, <K>(
                        problem: &RowProblem = problem,
                        cols: &[u32] = cols,
                        raw: &[f32] = raw,
                        x: &mut [f32] = x,
                        scratch: &mut CgScratch = scratch,
                    ) -> f64 {
                        solve_row::<K>(problem, cols, raw, x, scratch)
                    });
                }
                data_term
            },
        )
        .collect();
    partials.iter().sum()
}

/// Improves `x` (one padded factor row, the previous solution) towards the
/// solution of `(YᵀY + Yᵀ(C − I)Y + λI) x = YᵀCp` with `cg_steps` CG steps.
/// `A·v` is applied as `(YᵀY + λI)v + Σ_i (c_i − 1)(y_i·v) y_i` over the row's
/// stored entries only, never forming `A`.
///
/// Returns the row's term of the loss numerator for the `x` it was given
/// (see [`super::loss`]): `Σ_all c (p − s)² + λ|x|²` with `s = x·y_i`
/// equals `Σ c p − Σ c p s − x·r₀` for the first residual
/// `r₀ = b − A x` (expand `x·r₀ = Σ c p s − xᵀ(YᵀY + λI)x − Σ (c − 1) s²`),
/// all of which the first residual computes anyway.
#[inline(always)]
fn solve_row<K: VectorOps>(
    problem: &RowProblem,
    cols: &[u32],
    raw: &[f32],
    x: &mut [f32],
    scratch: &mut CgScratch,
) -> f64 {
    if cols.is_empty() {
        // A = YᵀY + λI, b = 0: x = 0 solves it (and is what implicit does).
        let term = {
            gram_matvec::<K>(
                problem.gram,
                x,
                &mut scratch.residual,
                problem.factors,
                problem.stride,
                problem.regularization,
            );
            K::dot(&scratch.residual, x) as f64
        };
        x.fill(0.0);
        return term;
    }
    let stride = problem.stride;
    let y = problem.fixed_factors;
    let alpha = problem.alpha;
    let CgScratch {
        residual,
        direction,
        a_direction,
    } = scratch;

    // residual = b − A x = Σ_i c_i p_i y_i − (YᵀY + λI) x − Σ_i (c_i − 1)(y_i·x) y_i
    gram_matvec::<K>(
        problem.gram,
        x,
        residual,
        problem.factors,
        stride,
        problem.regularization,
    );
    for v in residual.iter_mut() {
        *v = -*v;
    }
    // Σ c p and Σ c p s of the loss term.
    let (mut confidence_sum, mut confidence_score) = (0f64, 0f64);
    // First touch of this row's factor rows: prefetch ahead (later passes hit cache).
    for (y_i, r) in stored_rows(y, stride, cols, raw) {
        let confidence_minus_one = alpha * r;
        let preference = if r > 0.0 { 1.0 } else { 0.0 };
        let score = K::dot(y_i, x);
        let coefficient = preference * (1.0 + confidence_minus_one) - confidence_minus_one * score;
        K::axpy(coefficient, y_i, residual);
        let confidence_preference = (preference * (1.0 + confidence_minus_one)) as f64;
        confidence_sum += confidence_preference;
        confidence_score += confidence_preference * score as f64;
    }
    let term = confidence_sum - confidence_score - K::dot(x, residual) as f64;

    direction.copy_from_slice(residual);
    let mut residual_norm2 = K::dot(residual, residual);
    if residual_norm2 < 1e-20 {
        return term;
    }
    for _ in 0..problem.cg_steps {
        // a_direction = A · direction
        gram_matvec::<K>(
            problem.gram,
            direction,
            a_direction,
            problem.factors,
            stride,
            problem.regularization,
        );
        for (&i, &r) in cols.iter().zip(raw) {
            let confidence_minus_one = alpha * r;
            if confidence_minus_one != 0.0 {
                let y_i = &y[i as usize * stride..(i as usize + 1) * stride];
                K::axpy(
                    confidence_minus_one * K::dot(y_i, direction),
                    y_i,
                    a_direction,
                );
            }
        }
        let curvature = K::dot(direction, a_direction);
        // Guards the division: only a singular A (λ = 0) or an overflow gets here.
        if !(curvature > 0.0 && curvature.is_finite()) {
            break;
        }
        let step = residual_norm2 / curvature;
        K::axpy(step, direction, x);
        K::axpy(-step, a_direction, residual);
        let new_norm2 = K::dot(residual, residual);
        if new_norm2 < 1e-20 {
            break;
        }
        let beta = new_norm2 / residual_norm2;
        for (d, &r) in direction.iter_mut().zip(residual.iter()) {
            *d = r + beta * *d;
        }
        residual_norm2 = new_norm2;
    }
    term
}

#[cfg(test)]
mod tests {
    use super::super::factors::{pad_rows, padded_stride};
    use super::super::gram::gram;
    use super::super::reference::{random_factors, solve_exact};
    use super::*;
    use crate::bench_support::synthetic_user_items;

    #[test]
    fn long_rows_are_spread_over_tasks_of_bounded_work() {
        // 100 rows of 1 entry, then 10 rows of 500 (a run of popular
        // products), then 300 rows of 1: contiguous, in order, every row
        // once, never more than SOLVE_ROWS_PER_TASK rows, and the long run
        // not in one task.
        let mut rows = Vec::new();
        let lengths: Vec<usize> = (0..410)
            .map(|r| if (100..110).contains(&r) { 500 } else { 1 })
            .collect();
        for (r, &len) in lengths.iter().enumerate() {
            rows.extend(std::iter::repeat_n(r as u32, len));
        }
        let cols: Vec<u32> = lengths.iter().flat_map(|&len| 0..len as u32).collect();
        let m = Csr::from_triplets(410, 500, &rows, &cols, &vec![1.0; rows.len()]).unwrap();
        let ranges = task_ranges(&m, 4);
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, 410);
        assert!(ranges
            .windows(2)
            .all(|w| w[0].end == w[1].start && w[0].start < w[0].end));
        assert!(ranges.iter().all(|r| r.len() <= SOLVE_ROWS_PER_TASK));
        // Average row: 4 + ceil(5400 / 410) = 18 units, 64 of them = 1152:
        // two long rows (1008 units) fit, a third closes the task; after
        // the last two, 29 short rows (145) fill the task past 1152.
        assert_eq!(
            ranges
                .iter()
                .filter(|r| r.start < 110 && r.end > 100)
                .collect::<Vec<_>>(),
            [&(64..102), &(102..105), &(105..108), &(108..139)]
        );
        // Short rows alone still make full tasks.
        let after: Vec<usize> = ranges
            .iter()
            .filter(|r| r.start >= 139)
            .map(|r| r.len())
            .collect();
        assert_eq!(after, [64, 64, 64, 64, 15]);
    }

    #[test]
    fn cg_converges_to_the_exact_solution() {
        // Solve the user half once with many CG steps from zero and compare
        // each row to the dense Cholesky solution.
        let (n_users, n_items, f) = (40, 25, 6);
        let m = synthetic_user_items(n_users, n_items, 5, 3);
        let item_factors = random_factors(n_items, f, 11);
        let (reg, alpha) = (0.3f32, 2.0f32);
        let stride = padded_stride(f);
        let fixed = pad_rows(&item_factors, f, stride);
        for isa in [Isa::Portable, Isa::detect()] {
            let item_gram = gram(&fixed, f, stride, isa);
            let problem = RowProblem {
                fixed_factors: &fixed,
                gram: &item_gram,
                factors: f,
                stride,
                regularization: reg,
                alpha,
                cg_steps: 4 * f,
            };
            let mut solved = vec![0f32; n_users * stride];
            solve_rows(&m, &mut solved, &problem, isa);
            for u in 0..n_users {
                let (cols, vals) = m.row(u);
                let exact = solve_exact(&item_factors, f, cols, vals, reg, alpha).unwrap();
                let cg = &solved[u * stride..u * stride + f];
                let scale = exact.iter().map(|v| v.abs()).fold(1e-3, f32::max);
                for k in 0..f {
                    assert!(
                        (cg[k] - exact[k]).abs() <= 1e-3 * scale,
                        "user {u} factor {k}: cg {} vs exact {}",
                        cg[k],
                        exact[k]
                    );
                }
                assert!(
                    solved[u * stride + f..(u + 1) * stride]
                        .iter()
                        .all(|&v| v == 0.0),
                    "padding stays zero"
                );
            }
        }
    }
}
