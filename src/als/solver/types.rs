//! What the solver's parts share: the hyper-parameters and the trained
//! model. Below the trainer, the CG step and the loss, so none of them
//! imports another for its types.

/// Hyper-parameters of [`train`](super::train).
#[derive(Clone, Debug, PartialEq)]
pub struct AlsParams {
    /// Latent dimension `f`.
    pub factors: usize,
    /// Number of full iterations (a user half followed by an item half).
    pub iterations: usize,
    /// L2 penalty `λ` added to the diagonal of every row's normal equations.
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha · r`.
    pub alpha: f32,
    /// Conjugate-gradient iterations per row and half-iteration.
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 50,
            iterations: 15,
            regularization: 0.1,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// A trained model. Factor matrices are row-major, one row of `factors`
/// floats per user (item), unpadded.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsModel {
    pub factors: usize,
    /// `n_users × factors`.
    pub user_factors: Vec<f32>,
    /// `n_items × factors`.
    pub item_factors: Vec<f32>,
    /// [`loss`](super::loss) after each iteration, in iteration order.
    pub loss_per_iteration: Vec<f64>,
}
