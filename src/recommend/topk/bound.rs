//! The proven error of a half-precision score, which keeps the scans of
//! [`super::packed`] exact.

/// The largest magnitude a half-precision value holds.
pub(super) const HALF_MAX: f32 = 65504.0;

/// A factor row's Euclidean norm, summed in double precision.
pub(crate) fn norm(row: &[f32]) -> f64 {
    row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt()
}

/// [`norm`] rounded up to single precision, so that it bounds the true one.
pub(crate) fn norm_rounded_up(row: &[f32]) -> f32 {
    (norm(row) * (1.0 + 1e-6)) as f32
}

/// How far a half-precision approximate score may be from the exact one,
/// for one user: `err(item) = scale · ‖item‖ + floor`.
///
/// With `u` the user's row, `y` an item's and `ŷ` its half-precision copy:
/// rounding to half moves each normal value by at most 2⁻¹¹ of itself and a
/// subnormal one by at most 2⁻²⁵, so `|u·ŷ − u·y| ≤ 2⁻¹¹ Σ|u_j y_j| + 2⁻²⁵
/// ‖u‖₁`; each of the two float sums (approximate and exact) adds at most
/// `γ_f Σ|u_j y_j|`, `γ_f = f·2⁻²⁴ / (1 − f·2⁻²⁴)`. Cauchy–Schwarz bounds
/// `Σ|u_j y_j|` by `‖u‖ ‖y‖` and `‖u‖₁` by `√f ‖u‖`; 1% on top covers the
/// rounding of the bound's own arithmetic.
#[derive(Clone, Copy, Debug)]
pub(super) struct ErrorBound {
    pub(super) scale: f32,
    pub(super) floor: f32,
    /// ‖u‖, rounded up.
    user_norm: f32,
}

impl ErrorBound {
    /// `None` when the user's factors are not finite, or so large that the
    /// scan's sums could overflow: no bound holds then.
    pub(super) fn new(user: &[f32]) -> Option<ErrorBound> {
        let f = user.len() as f64;
        let user_norm = norm(user);
        // Items hold at most HALF_MAX per factor, so ‖y‖ ≤ HALF_MAX·√f.
        if !user_norm.is_finite() || user_norm * HALF_MAX as f64 * f.sqrt() * 2.0 > f32::MAX as f64
        {
            return None;
        }
        let unit = 2f64.powi(-24);
        let gamma = f * unit / (1.0 - f * unit);
        let relative = (2f64.powi(-11) + 2.0 * gamma * (1.0 + 2f64.powi(-11))) * 1.01;
        let absolute =
            (2f64.powi(-25) * f.sqrt() * user_norm + f * f32::MIN_POSITIVE as f64) * 1.01;
        Some(ErrorBound {
            scale: (relative * user_norm) as f32 * (1.0 + 1e-6),
            floor: absolute as f32 * (1.0 + 1e-6),
            user_norm: norm_rounded_up(user),
        })
    }

    /// The largest approximate score an item of this norm can reach.
    #[inline]
    pub(super) fn upper(&self, item_norm: f32) -> f32 {
        // ‖u‖·‖y‖ bounds the exact score, err the approximation; 1% more
        // covers this sum's rounding.
        (self.user_norm * item_norm + self.scale * item_norm + self.floor) * 1.01
    }
}
