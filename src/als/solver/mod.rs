//! Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008,
//! "Collaborative Filtering for Implicit Feedback Datasets") solved per row
//! with a few conjugate-gradient steps, the scheme of benfred/implicit's CPU
//! `least_squares_cg` (Takács, Pilászy & Tikk 2011).
//!
//! # Model
//! For a raw interaction weight `r_ui >= 0` (a count or score from the
//! `user_items` matrix; unobserved cells have `r_ui = 0`):
//! * confidence `c_ui = 1 + alpha * r_ui`,
//! * preference `p_ui = 1` if `r_ui > 0`, else `0`.
//!
//! Training minimises
//! `Σ_{u,i} c_ui (p_ui − x_u·y_i)² + λ (Σ_u |x_u|² + Σ_i |y_i|²)`
//! by alternately fixing the item factors `Y` and solving every user's normal
//! equations `(YᵀY + Yᵀ(C_u − I)Y + λI) x_u = Yᵀ C_u p_u`, then the same for
//! items with the roles swapped. `YᵀY` is computed once per half-iteration, so
//! a user with `n_u` interactions costs `O(n_u·f + f²)` per CG step instead of
//! the `O(n_items·f²)` of forming the matrix naively. Each solve starts from
//! the row's previous factors and runs `cg_steps` CG iterations (3 is plenty
//! because the starting point is already close), stopping early when the
//! squared residual norm drops below `1e-20`. Rows without interactions get
//! all-zero factors, the exact solution of their equations.
//!
//! Note on `alpha`: recent versions of `implicit` take the matrix values as
//! the confidence itself (after multiplying by their `alpha`), i.e. `c = α·r`
//! rather than `1 + α·r`. Feeding `implicit` the values `1 + α·r` with its
//! `alpha = 1` reproduces the model here exactly.
//!
//! # Determinism
//! Initial factors come from per-row random streams (`Rng::for_stream`), each
//! row is solved independently, and every reduction (`YᵀY`, the loss) sums
//! fixed-size chunks in a fixed order, so for a given seed the result is bit
//! identical whatever the number of rayon threads. The vector kernels exist
//! twice — portable Rust and AVX2 intrinsics, picked at run time because the
//! crate is built for baseline x86-64 — and both use eight partial sums
//! reduced in the same fixed order without fused multiply-add, so a model is
//! also bit identical between machines with and without AVX2.
//!
//! # Layout
//! Internally each factor row is padded with zeros to a multiple of eight
//! floats (`stride`) so the kernels work on whole 8-lane chunks with no
//! remainder loop; the public [`AlsModel`] holds unpadded `n × factors` rows.

mod cg;
mod factors;
mod gram;
mod loss;
#[cfg(test)]
mod reference;
mod trainer;
mod types;

pub use loss::loss;
pub use trainer::{train, train_with_callback, AlsTrainer};
pub use types::{AlsModel, AlsParams};
