//! The public trainer: hyper-parameters, the model, validation and the
//! alternation of user and item half-iterations.

use super::cg::{solve_rows, RowProblem};
use super::factors::{init_factors, padded_stride, FactorRows};
use super::gram::gram;
use super::loss::{loss_padded, normalised_loss};
use super::types::{AlsModel, AlsParams};
use crate::isa::Isa;
use crate::model::csr::Csr;
use anyhow::{bail, ensure, Result};

/// Trains a model on `user_items` (rows = users, columns = items, values =
/// raw non-negative interaction weights `r`, *not* confidences).
pub fn train(user_items: &Csr, params: &AlsParams) -> Result<AlsModel> {
    train_with_callback(user_items, params, |_, _| {})
}

/// [`train`], calling `on_iteration(iteration, loss)` after each iteration
/// (`iteration` counts from 0) — for progress reporting.
pub fn train_with_callback(
    user_items: &Csr,
    params: &AlsParams,
    on_iteration: impl FnMut(usize, f64),
) -> Result<AlsModel> {
    Ok(AlsTrainer::new(user_items, params)?.train(params.iterations, on_iteration))
}

/// Step-by-step training, for callers that want to time or interleave
/// iterations themselves: `new` validates and initialises, `step` runs one
/// iteration (users then items), `loss` evaluates [`loss`](super::loss) on the current
/// factors, `into_model` returns the unpadded model. `params.iterations` is
/// ignored here (the caller decides how many steps to run). Work runs on the
/// current rayon pool (wrap calls in `ThreadPool::install` to bound threads).
pub struct AlsTrainer<'a> {
    user_items: &'a Csr,
    item_users: Csr,
    params: AlsParams,
    stride: usize,
    /// `n_users × stride`, zero-padded.
    user_factors: FactorRows,
    /// `n_items × stride`, zero-padded.
    item_factors: FactorRows,
    /// `YᵀY` (unregularised, `stride × stride`) of the current item factors,
    /// shared by the loss and the next user half-iteration.
    item_gram: Option<Vec<f32>>,
    isa: Isa,
}

impl<'a> AlsTrainer<'a> {
    /// Validates `params` and `user_items`, transposes the matrix and draws
    /// the initial factors (`0.01 · N(0, 1)`, one random stream per row:
    /// stream `2u` for user `u`, `2i + 1` for item `i`).
    pub fn new(user_items: &'a Csr, params: &AlsParams) -> Result<AlsTrainer<'a>> {
        validate_params(params)?;
        validate_matrix(user_items)?;
        let f = params.factors;
        let stride = padded_stride(f);
        let n_users = user_items.n_rows;
        let n_items = user_items.n_cols;
        let user_len = n_users
            .checked_mul(stride)
            .ok_or_else(|| anyhow::anyhow!("user factor matrix too large"))?;
        let item_len = n_items
            .checked_mul(stride)
            .ok_or_else(|| anyhow::anyhow!("item factor matrix too large"))?;
        // The transpose runs on one thread: the factors are drawn on the others meanwhile.
        let (item_users, (user_factors, item_factors)) = rayon::join(
            || user_items.transpose(),
            || {
                (
                    init_factors(user_len, f, stride, params.seed, 0),
                    init_factors(item_len, f, stride, params.seed, 1),
                )
            },
        );
        Ok(AlsTrainer {
            user_items,
            item_users,
            params: params.clone(),
            stride,
            user_factors,
            item_factors,
            item_gram: None,
            isa: Isa::detect(),
        })
    }

    /// Starts from given factors (unpadded rows, e.g. a model trained on the
    /// same users and items with other weights) instead of the drawn ones.
    pub fn start_from(&mut self, user_factors: &[f32], item_factors: &[f32]) -> Result<()> {
        let f = self.params.factors;
        ensure!(
            user_factors.len() == self.user_items.n_rows * f
                && item_factors.len() == self.user_items.n_cols * f,
            "starting factors have {} and {} values; expected {} users and {} items of {f} factors",
            user_factors.len(),
            item_factors.len(),
            self.user_items.n_rows,
            self.user_items.n_cols
        );
        for (rows, start) in [
            (&mut self.user_factors, user_factors),
            (&mut self.item_factors, item_factors),
        ] {
            for (dst, src) in rows
                .chunks_exact_mut(self.stride)
                .zip(start.chunks_exact(f))
            {
                dst[..f].copy_from_slice(src);
            }
        }
        self.item_gram = None;
        Ok(())
    }

    /// One ALS iteration: solve all users against the item factors, then all
    /// items against the new user factors.
    pub fn step(&mut self) {
        self.step_with(None);
    }

    /// [`step`](Self::step), calling `previous_loss` with the
    /// [`loss`](super::loss) of the factors as they were before it (the first
    /// residuals of the user half give it at almost no cost; within rounding
    /// of [`loss`](Self::loss)) once the user half is done.
    pub fn step_reporting(&mut self, mut previous_loss: impl FnMut(f64)) {
        self.step_with(Some(&mut previous_loss));
    }

    /// Runs `iterations` steps and returns the model, calling
    /// `on_iteration(iteration, loss)` after each (`iteration` from 0).
    pub fn train(
        mut self,
        iterations: usize,
        mut on_iteration: impl FnMut(usize, f64),
    ) -> AlsModel {
        if iterations == 0 {
            return self.into_model(Vec::new());
        }
        let mut loss_per_iteration = Vec::with_capacity(iterations);
        for iteration in 0..iterations {
            // Each step's user half measures the loss the previous step left.
            self.step_reporting(|loss| {
                if iteration > 0 {
                    loss_per_iteration.push(loss);
                    on_iteration(iteration - 1, loss);
                }
            });
        }
        // The last step's loss needs a pass of its own.
        let loss = self.loss();
        loss_per_iteration.push(loss);
        on_iteration(iterations - 1, loss);
        self.into_model(loss_per_iteration)
    }

    /// The step; the loss is normalised (a pass over the item factors and
    /// the stored values) only when someone asked for it.
    fn step_with(&mut self, previous_loss: Option<&mut dyn FnMut(f64)>) {
        let f = self.params.factors;
        let item_gram = match self.item_gram.take() {
            Some(g) => g,
            None => gram(&self.item_factors, f, self.stride, self.isa),
        };
        let user_part = self.solve_half(true, &item_gram);
        if let Some(report) = previous_loss {
            report(normalised_loss(
                self.user_items,
                user_part,
                &self.item_factors,
                self.stride,
                self.params.regularization,
                self.params.alpha,
            ));
        }
        let user_gram = gram(&self.user_factors, f, self.stride, self.isa);
        self.solve_half(false, &user_gram);
    }

    /// [`loss`](super::loss) of the current factors (computes and caches `YᵀY`).
    pub fn loss(&mut self) -> f64 {
        let f = self.params.factors;
        if self.item_gram.is_none() {
            self.item_gram = Some(gram(&self.item_factors, f, self.stride, self.isa));
        }
        loss_padded(
            self.user_items,
            &self.user_factors,
            &self.item_factors,
            self.item_gram.as_ref().unwrap(),
            f,
            self.stride,
            self.params.regularization,
            self.params.alpha,
            self.isa,
        )
    }

    /// The trained model with unpadded factor rows.
    pub fn into_model(self, loss_per_iteration: Vec<f64>) -> AlsModel {
        let f = self.params.factors;
        AlsModel {
            factors: f,
            user_factors: self.user_factors.into_unpadded(f, self.stride),
            item_factors: self.item_factors.into_unpadded(f, self.stride),
            loss_per_iteration,
        }
    }

    /// Solves every row of one side given the other side's factors and Gram
    /// matrix; returns [`solve_rows`]'s loss term of the factors before.
    fn solve_half(&mut self, users: bool, other_gram: &[f32]) -> f64 {
        let (matrix, solved, fixed) = if users {
            (
                self.user_items,
                &mut *self.user_factors,
                &*self.item_factors,
            )
        } else {
            (
                &self.item_users,
                &mut *self.item_factors,
                &*self.user_factors,
            )
        };
        // The item half changes Y, invalidating the cached YᵀY.
        if !users {
            self.item_gram = None;
        }
        let problem = RowProblem {
            fixed_factors: fixed,
            gram: other_gram,
            factors: self.params.factors,
            stride: self.stride,
            regularization: self.params.regularization,
            alpha: self.params.alpha,
            cg_steps: self.params.cg_steps,
        };
        solve_rows(matrix, solved, &problem, self.isa)
    }
}

fn validate_params(params: &AlsParams) -> Result<()> {
    ensure!(params.factors > 0, "ALS factors must be > 0");
    ensure!(params.iterations > 0, "ALS iterations must be > 0");
    ensure!(params.cg_steps > 0, "ALS cg_steps must be > 0");
    ensure!(
        params.regularization.is_finite() && params.regularization >= 0.0,
        "ALS regularization must be finite and >= 0, got {}",
        params.regularization
    );
    ensure!(
        params.alpha.is_finite() && params.alpha >= 0.0,
        "ALS alpha must be finite and >= 0, got {}",
        params.alpha
    );
    Ok(())
}

fn validate_matrix(user_items: &Csr) -> Result<()> {
    ensure!(
        user_items.n_rows > 0 && user_items.n_cols > 0 && user_items.nnz() > 0,
        "ALS needs a non-empty interaction matrix (got {} users × {} items, {} interactions)",
        user_items.n_rows,
        user_items.n_cols,
        user_items.nnz()
    );
    user_items.validate()?;
    if let Some(k) = user_items
        .values
        .iter()
        .position(|v| !(v.is_finite() && *v >= 0.0))
    {
        bail!(
            "ALS interaction weights must be finite and >= 0, found {} (entry {k})",
            user_items.values[k]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::loss;
    use super::super::reference::{small_params, solve_exact};
    use super::*;
    use crate::bench_support::synthetic_user_items;
    use crate::rng::Rng;

    #[test]
    fn a_warm_start_continues_from_the_given_factors() {
        let m = synthetic_user_items(300, 80, 6, 4);
        let params = AlsParams {
            factors: 8,
            iterations: 8,
            ..Default::default()
        };
        let trained = train(&m, &params).unwrap();
        let converged = *trained.loss_per_iteration.last().unwrap();
        let one_step = |warm: bool| {
            let mut trainer = AlsTrainer::new(&m, &params).unwrap();
            if warm {
                trainer
                    .start_from(&trained.user_factors, &trained.item_factors)
                    .unwrap();
            }
            trainer.step();
            trainer.loss()
        };
        // One step from the trained factors stays at the trained loss (ALS
        // never raises it, up to the CG's inexact solves); one step from
        // drawn factors is far above it.
        let (warm, cold) = (one_step(true), one_step(false));
        assert!(warm <= converged * 1.001, "{warm} vs {converged}");
        assert!(cold > converged * 1.05, "{cold} vs {converged}");
        let mut trainer = AlsTrainer::new(&m, &params).unwrap();
        let error = trainer
            .start_from(&trained.user_factors[8..], &trained.item_factors)
            .unwrap_err();
        assert!(error
            .to_string()
            .contains("expected 300 users and 80 items"));
    }

    #[test]
    fn default_params() {
        let p = AlsParams::default();
        assert_eq!(
            (p.factors, p.iterations, p.cg_steps, p.seed),
            (50, 15, 3, 42)
        );
        assert_eq!((p.regularization, p.alpha), (0.1, 1.0));
    }

    #[test]
    fn invalid_params_are_rejected_with_clear_errors() {
        let m = synthetic_user_items(20, 10, 3, 1);
        let cases: Vec<(AlsParams, &str)> = vec![
            (
                AlsParams {
                    factors: 0,
                    ..Default::default()
                },
                "factors",
            ),
            (
                AlsParams {
                    iterations: 0,
                    ..Default::default()
                },
                "iterations",
            ),
            (
                AlsParams {
                    cg_steps: 0,
                    ..Default::default()
                },
                "cg_steps",
            ),
            (
                AlsParams {
                    regularization: -0.1,
                    ..Default::default()
                },
                "regularization",
            ),
            (
                AlsParams {
                    regularization: f32::NAN,
                    ..Default::default()
                },
                "regularization",
            ),
            (
                AlsParams {
                    alpha: -1.0,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                AlsParams {
                    alpha: f32::INFINITY,
                    ..Default::default()
                },
                "alpha",
            ),
        ];
        for (params, needle) in cases {
            let err = train(&m, &params).unwrap_err().to_string();
            assert!(err.contains(needle), "{params:?}: {err}");
        }
    }

    #[test]
    fn invalid_matrices_are_rejected() {
        let p = small_params(4);
        let neg = Csr::from_triplets(2, 2, &[0, 1], &[0, 1], &[1.0, -1.0]).unwrap();
        assert!(train(&neg, &p).unwrap_err().to_string().contains(">= 0"));
        let nan = Csr::from_triplets(2, 2, &[0], &[0], &[f32::NAN]).unwrap();
        assert!(train(&nan, &p).unwrap_err().to_string().contains("finite"));
        let inf = Csr::from_triplets(2, 2, &[0], &[0], &[f32::INFINITY]).unwrap();
        assert!(train(&inf, &p).is_err());
        for empty in [
            Csr::from_triplets(0, 0, &[], &[], &[]).unwrap(),
            Csr::from_triplets(3, 3, &[], &[], &[]).unwrap(),
        ] {
            assert!(train(&empty, &p)
                .unwrap_err()
                .to_string()
                .contains("non-empty"));
        }
        let mut broken = Csr::from_triplets(2, 2, &[0], &[0], &[1.0]).unwrap();
        broken.indices[0] = 7;
        assert!(train(&broken, &p)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn training_reduces_loss_and_trainer_loss_matches_public_loss() {
        let m = synthetic_user_items(300, 120, 8, 21);
        let params = small_params(10);
        let model = train(&m, &params).unwrap();
        let l = &model.loss_per_iteration;
        assert_eq!(l.len(), params.iterations);
        assert!(l.iter().all(|v| v.is_finite()));
        assert!(l[l.len() - 1] < l[0], "{l:?}");
        assert!(l[l.len() - 1] < 0.8 * l[0], "{l:?}");
        let recomputed = loss(&m, &model, params.regularization, params.alpha);
        assert!(
            (recomputed - l[l.len() - 1]).abs() <= 1e-9 * recomputed,
            "{recomputed} vs {}",
            l[l.len() - 1]
        );
    }

    #[test]
    fn the_loss_a_step_measures_is_the_loss_of_the_factors_before_it() {
        // Rows without entries included (their term is x·(YᵀY + λI)x).
        let dense = synthetic_user_items(400, 90, 7, 33);
        let rows: Vec<u32> = (0..dense.n_rows)
            .flat_map(|u| std::iter::repeat_n(u as u32 + 3, dense.row(u).0.len()))
            .collect();
        let m = Csr::from_triplets(
            dense.n_rows + 3,
            dense.n_cols,
            &rows,
            &dense.indices,
            &dense.values,
        )
        .unwrap();
        let params = small_params(12);
        let mut trainer = AlsTrainer::new(&m, &params).unwrap();
        for _ in 0..4 {
            let before = trainer.loss();
            let mut measured = f64::NAN;
            trainer.step_reporting(|loss| measured = loss);
            // Summed in another order, partly in single precision.
            assert!(
                (measured - before).abs() <= 1e-6 * before,
                "{measured} vs {before}"
            );
            assert!(trainer.loss() < before);
        }
    }

    #[test]
    fn callback_sees_every_iteration() {
        let m = synthetic_user_items(50, 20, 4, 2);
        let mut seen = vec![];
        let model =
            train_with_callback(&m, &small_params(4), |it, loss| seen.push((it, loss))).unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            model.loss_per_iteration
        );
    }

    #[test]
    fn bit_identical_across_thread_counts_and_instruction_sets() {
        let m = synthetic_user_items(3000, 700, 6, 4);
        let params = AlsParams {
            iterations: 3,
            ..small_params(13)
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train(&m, &params).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one, two);
        assert_eq!(one, run(3));
        // Same seed, same model; another seed, another model.
        assert_eq!(one, train(&m, &params).unwrap());
        assert_ne!(
            one.user_factors,
            train(
                &m,
                &AlsParams {
                    seed: 8,
                    ..params.clone()
                }
            )
            .unwrap()
            .user_factors
        );

        // The portable compilation of the kernels gives the same bits as the dispatched one.
        let mut portable = AlsTrainer::new(&m, &params).unwrap();
        portable.isa = Isa::Portable;
        let mut losses = vec![];
        for iteration in 0..params.iterations {
            portable.step_reporting(|loss| {
                if iteration > 0 {
                    losses.push(loss)
                }
            });
        }
        losses.push(portable.loss());
        assert_eq!(portable.into_model(losses), one);
    }

    #[test]
    fn rows_without_interactions_get_zero_factors() {
        // Users 1 and 3, items 2 and 4 have no interactions.
        let m = Csr::from_triplets(
            4,
            5,
            &[0, 0, 2, 2, 0],
            &[0, 1, 1, 3, 3],
            &[1.0, 3.0, 2.0, 1.0, 5.0],
        )
        .unwrap();
        let f = 3;
        let model = train(
            &m,
            &AlsParams {
                factors: f,
                ..small_params(f)
            },
        )
        .unwrap();
        assert!(model
            .user_factors
            .iter()
            .chain(&model.item_factors)
            .all(|v| v.is_finite()));
        for u in [1, 3] {
            assert!(model.user_factors[u * f..(u + 1) * f]
                .iter()
                .all(|&v| v == 0.0));
        }
        for i in [2, 4] {
            assert!(model.item_factors[i * f..(i + 1) * f]
                .iter()
                .all(|&v| v == 0.0));
        }
        assert!(model.loss_per_iteration.iter().all(|l| l.is_finite()));
    }

    #[test]
    fn zero_regularization_zero_alpha_and_explicit_zeros_stay_finite() {
        let m =
            Csr::from_triplets(3, 3, &[0, 1, 2, 2], &[0, 1, 2, 0], &[1.0, 0.0, 4.0, 2.0]).unwrap();
        for (reg, alpha) in [(0.0, 1.0), (0.1, 0.0), (0.0, 0.0)] {
            let p = AlsParams {
                regularization: reg,
                alpha,
                ..small_params(4)
            };
            let model = train(&m, &p).unwrap();
            assert!(
                model
                    .user_factors
                    .iter()
                    .chain(&model.item_factors)
                    .all(|v| v.is_finite()),
                "{reg} {alpha}"
            );
            assert!(model.loss_per_iteration.iter().all(|l| l.is_finite()));
        }
    }

    #[test]
    fn learns_block_structure() {
        // Users 0..20 interact with items 0..10, users 20..40 with items 10..20
        // (each user with 6 random items of its block).
        let mut rng = Rng::new(3);
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 10 };
            for _ in 0..6 {
                rows.push(u);
                cols.push(base + rng.below(10) as u32);
                vals.push(1.0);
            }
        }
        let m = Csr::from_triplets(40, 20, &rows, &cols, &vals).unwrap();
        let f = 4;
        let model = train(
            &m,
            &AlsParams {
                factors: f,
                iterations: 15,
                ..small_params(f)
            },
        )
        .unwrap();
        let score = |u: usize, i: usize| -> f32 {
            (0..f)
                .map(|k| model.user_factors[u * f + k] * model.item_factors[i * f + k])
                .sum()
        };
        for u in 0..40 {
            let own: f32 = (0..20)
                .filter(|&i| (i < 10) == (u < 20))
                .map(|i| score(u, i))
                .sum::<f32>()
                / 10.0;
            let other: f32 = (0..20)
                .filter(|&i| (i < 10) != (u < 20))
                .map(|i| score(u, i))
                .sum::<f32>()
                / 10.0;
            assert!(
                own > other + 0.3,
                "user {u}: own block {own}, other block {other}"
            );
        }
    }

    #[test]
    fn three_cg_steps_from_a_warm_start_get_close() {
        // After training converges, one more half-iteration with 3 steps
        // should already be near the exact per-user solution.
        let m = synthetic_user_items(60, 30, 6, 5);
        let params = AlsParams {
            factors: 8,
            iterations: 15,
            ..small_params(8)
        };
        let model = train(&m, &params).unwrap();
        let mut worst = 0f32;
        for u in 0..m.n_rows {
            let (cols, vals) = m.row(u);
            let exact = solve_exact(
                &model.item_factors,
                8,
                cols,
                vals,
                params.regularization,
                params.alpha,
            )
            .unwrap();
            let norm = exact.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-3);
            let diff = (0..8)
                .map(|k| (exact[k] - model.user_factors[u * 8 + k]).powi(2))
                .sum::<f32>()
                .sqrt();
            worst = worst.max(diff / norm);
        }
        assert!(
            worst < 0.05,
            "worst relative distance to exact solution {worst}"
        );
    }
}
