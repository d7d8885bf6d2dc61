//! Per-column standardisation before clustering, and its inverse for
//! reporting centroids in original units.

use super::{check_shape, BLOCK_ROWS};
use anyhow::Result;
use rayon::prelude::*;

/// Per-column standardisation: mean 0, population std 1. A constant column
/// (all values equal, or std == 0 or non-finite) gets std 1 so it becomes all
/// zeros: it then carries no weight in the distances.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits means and population standard deviations per column.
    ///
    /// Empty data gives the identity transform (mean 0, std 1).
    /// Panics if `n_cols == 0` or `data.len()` is not a multiple of `n_cols`;
    /// use [`Standardizer::try_fit`] to get an error instead (e.g. across FFI).
    /// Non-finite inputs propagate into `mean`; [`kmeans`] then rejects the
    /// transformed data with the offending row and column.
    pub fn fit(data: &[f64], n_cols: usize) -> Standardizer {
        match Standardizer::try_fit(data, n_cols) {
            Ok(standardizer) => standardizer,
            Err(error) => panic!("Standardizer::fit: {error}"),
        }
    }

    /// [`Standardizer::fit`] returning shape errors instead of panicking.
    pub fn try_fit(data: &[f64], n_cols: usize) -> Result<Standardizer> {
        let n_rows = check_shape(data, n_cols)?;
        if n_rows == 0 {
            return Ok(Standardizer {
                mean: vec![0.0; n_cols],
                std: vec![1.0; n_cols],
            });
        }
        let mut sum = vec![0.0; n_cols];
        let mut min = vec![f64::INFINITY; n_cols];
        let mut max = vec![f64::NEG_INFINITY; n_cols];
        for row in data.chunks_exact(n_cols) {
            for col in 0..n_cols {
                sum[col] += row[col];
                min[col] = min[col].min(row[col]);
                max[col] = max[col].max(row[col]);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n_rows as f64).collect();
        // Two-pass variance: sum of squared deviations from the mean avoids the
        // catastrophic cancellation of E[x²] − E[x]² on large-mean columns.
        let mut squared_deviations = vec![0.0; n_cols];
        for row in data.chunks_exact(n_cols) {
            for col in 0..n_cols {
                let deviation = row[col] - mean[col];
                squared_deviations[col] += deviation * deviation;
            }
        }
        let mut fitted_mean = mean;
        let mut std = vec![1.0; n_cols];
        for col in 0..n_cols {
            // A constant column is detected exactly (min == max) rather than by
            // std == 0: e.g. a column of 0.1s has a mean that is off by one ulp,
            // giving a std of ~1e-17 that would blow rounding noise up to ±1.
            if min[col] == max[col] {
                fitted_mean[col] = min[col];
                continue;
            }
            let column_std = (squared_deviations[col] / n_rows as f64).sqrt();
            if column_std.is_finite() && column_std > 0.0 {
                std[col] = column_std;
            }
        }
        Ok(Standardizer {
            mean: fitted_mean,
            std,
        })
    }

    /// Number of columns this standardiser was fitted on.
    pub fn n_cols(&self) -> usize {
        self.mean.len()
    }

    /// `x ← (x − mean) / std` for every value, in parallel over row blocks
    /// (element-wise, so the thread count cannot change the result).
    /// Panics if `data.len()` is not a multiple of the fitted column count.
    pub fn transform_in_place(&self, data: &mut [f64]) {
        let n_cols = self.n_cols();
        assert!(
            n_cols > 0 && data.len().is_multiple_of(n_cols),
            "Standardizer::transform_in_place: data length {} is not a multiple of {} columns",
            data.len(),
            n_cols
        );
        data.par_chunks_mut(BLOCK_ROWS * n_cols).for_each(|block| {
            for row in block.chunks_exact_mut(n_cols) {
                for ((value, mean), std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                    *value = (*value - mean) / std;
                }
            }
        });
    }

    /// Maps one standardised row (e.g. a centroid) back to original units.
    /// Constant columns come back as their constant value.
    pub fn inverse_row(&self, row: &[f64]) -> Vec<f64> {
        assert_eq!(
            row.len(),
            self.n_cols(),
            "Standardizer::inverse_row: row has {} values, expected {}",
            row.len(),
            self.n_cols()
        );
        row.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((value, mean), std)| value * std + mean)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizer_hand_example_with_constant_column() {
        // Column 0: [1, 2, 3] → mean 2, population variance 2/3.
        // Column 1: constant 5 → mean 5, std 1, all zeros after transform.
        // Column 2: [0, 0, 6] → mean 2, variance (4 + 4 + 16)/3 = 8, std 2√2.
        // Column 3: constant 0.1, whose computed mean is not exactly 0.1; it
        //           must still map to exact zeros rather than rounding noise.
        let mut data = vec![
            1.0, 5.0, 0.0, 0.1, //
            2.0, 5.0, 0.0, 0.1, //
            3.0, 5.0, 6.0, 0.1,
        ];
        let original = data.clone();
        let standardizer = Standardizer::fit(&data, 4);
        assert_eq!(standardizer.mean, vec![2.0, 5.0, 2.0, 0.1]);
        let std0 = (2.0f64 / 3.0).sqrt();
        let std2 = 8.0f64.sqrt();
        assert!((standardizer.std[0] - std0).abs() < 1e-15);
        assert_eq!(standardizer.std[1], 1.0);
        assert!((standardizer.std[2] - std2).abs() < 1e-15);
        assert_eq!(standardizer.std[3], 1.0);

        standardizer.transform_in_place(&mut data);
        let expected = [
            -1.0 / std0,
            0.0,
            -2.0 / std2,
            0.0, //
            0.0,
            0.0,
            -2.0 / std2,
            0.0, //
            1.0 / std0,
            0.0,
            4.0 / std2,
            0.0,
        ];
        for (value, want) in data.iter().zip(expected) {
            assert!((value - want).abs() < 1e-12, "{value} vs {want}");
        }
        // Each non-constant column now has mean 0 and population std 1.
        for col in [0, 2] {
            let column: Vec<f64> = data.iter().skip(col).step_by(4).copied().collect();
            let mean = column.iter().sum::<f64>() / 3.0;
            let variance = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
            assert!(mean.abs() < 1e-12 && (variance - 1.0).abs() < 1e-12);
        }
        for row in 0..3 {
            let back = standardizer.inverse_row(&data[row * 4..(row + 1) * 4]);
            for (value, want) in back.iter().zip(&original[row * 4..(row + 1) * 4]) {
                assert!((value - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn standardizer_shapes() {
        let empty = Standardizer::fit(&[], 2);
        assert_eq!(
            empty,
            Standardizer {
                mean: vec![0.0, 0.0],
                std: vec![1.0, 1.0]
            }
        );
        assert!(Standardizer::try_fit(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(Standardizer::try_fit(&[1.0], 0).is_err());
        // Many rows spanning several blocks, transformed in parallel.
        let mut data: Vec<f64> = (0..3 * BLOCK_ROWS + 17).map(|i| (i % 97) as f64).collect();
        let standardizer = Standardizer::fit(&data, 1);
        standardizer.transform_in_place(&mut data);
        let mean = data.iter().sum::<f64>() / data.len() as f64;
        let variance = data.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / data.len() as f64;
        assert!(mean.abs() < 1e-12 && (variance - 1.0).abs() < 1e-12);
    }
}
