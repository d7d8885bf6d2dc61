//! How a model's interaction weights became the `r` of ALS's confidence
//! `1 + α r`, and the statistics that repeat it for a user the model has
//! not seen: the trainer transforms the whole user × product matrix
//! (`crate::als::weighting`), the fold-in one user's row
//! (`crate::stream::foldin`), both with the formulas here, so one recipe
//! serves both. Plain slices only; nothing here knows DuckDB.
//!
//! A pair's weight (event weights summed and capped) is first decayed by
//! recency, `w · 0.5^(age / half_life)` with `age` from the pair's last
//! event to the reference time (the latest event of the training data; a
//! later event counts as age 0), then transformed:
//! * `raw`: as given;
//! * `log`: `ln(1 + r)`;
//! * `bm25`: Okapi BM25 of the user's row,
//!   `r (K1 + 1) / (K1 ((1 − B) + B L / L̄) + r) · idf`, `L` the row's sum,
//!   `L̄` the mean row sum of the training matrix, `idf = ln(1 + (N − df +
//!   0.5) / (df + 0.5))` with `N` users and `df` the users of the product;
//!
//! and `log` and `bm25` values multiplied by the training matrix's
//! `scale` (its raw mean over its transformed mean), at least
//! [`MIN_WEIGHT`].
//!
//! What the model table stores of it ([`Weighting`]): the `param` rows
//! `confidence` (0 raw, 1 log, 2 bm25), `half_life_days`,
//! `decay_reference_time` (epoch seconds, with a half-life),
//! `confidence_scale` (log, bm25), `bm25_k1`, `bm25_b`, `bm25_mean_length`
//! (bm25), and one `product_users` row per product (bm25: `df`); `N` is the
//! model's user rows.

use anyhow::{bail, ensure, Result};

/// The confidence transform applied to the user × product weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confidence {
    Raw,
    Log,
    Bm25,
}

/// implicit's `bm25_weight` defaults, what the trainer uses.
pub const BM25_K1: f64 = 100.0;
pub const BM25_B: f64 = 0.8;

/// The smallest weight a decayed or transformed pair keeps (still > 0, so
/// the preference `p = 1` of an interacting pair is never lost).
pub const MIN_WEIGHT: f32 = 1e-6;

impl Confidence {
    pub const ALL: [Confidence; 3] = [Confidence::Raw, Confidence::Log, Confidence::Bm25];

    pub fn name(self) -> &'static str {
        match self {
            Confidence::Raw => "raw",
            Confidence::Log => "log",
            Confidence::Bm25 => "bm25",
        }
    }

    /// Parses a user's choice (case-insensitive).
    pub fn parse(text: &str) -> Option<Confidence> {
        Confidence::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(text.trim()))
    }

    /// The code stored in a model's `param` rows (0 raw, 1 log, 2 bm25).
    pub fn code(self) -> f64 {
        match self {
            Confidence::Raw => 0.0,
            Confidence::Log => 1.0,
            Confidence::Bm25 => 2.0,
        }
    }

    pub fn from_code(code: f64) -> Option<Confidence> {
        Confidence::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// `log` of one entry, before the scale.
pub fn log_entry(r: f32) -> f32 {
    (r as f64).ln_1p() as f32
}

/// BM25's idf of a product `product_users` of `users` touched: always
/// positive (not implicit's `ln N − ln(1 + df)`, negative for a product
/// every user touched).
pub fn bm25_idf(users: f64, product_users: f64) -> f64 {
    (1.0 + (users - product_users + 0.5) / (product_users + 0.5)).ln()
}

/// BM25 of one entry `r` of a row summing to `row_sum`, before the scale.
pub fn bm25_entry(r: f32, row_sum: f64, mean_length: f64, idf: f64, k1: f64, b: f64) -> f32 {
    let r = r as f64;
    let length_norm = (1.0 - b) + b * row_sum / mean_length;
    (r * (k1 + 1.0) / (k1 * length_norm + r) * idf) as f32
}

/// A transformed entry times the matrix's scale, at least [`MIN_WEIGHT`].
pub fn rescaled(v: f32, scale: f64) -> f32 {
    ((v as f64 * scale) as f32).max(MIN_WEIGHT)
}

/// `w · 0.5^(age / half_life)`, at least [`MIN_WEIGHT`]; `age` is
/// `reference − time`, 0 for a later time. A NaN time (a pair without one)
/// is left undecayed. `half_life` must be > 0.
pub fn decayed(w: f32, time: f64, reference: f64, half_life: f64) -> f32 {
    if time.is_nan() {
        return w;
    }
    let age = (reference - time).max(0.0);
    (((w as f64) * 0.5f64.powf(age / half_life)) as f32).max(MIN_WEIGHT)
}

/// BM25's statistics of the training matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Bm25 {
    pub k1: f64,
    pub b: f64,
    /// `L̄`, the mean row sum.
    pub mean_length: f64,
    /// `N`, the users (rows).
    pub users: f64,
    /// `df` per product (model index).
    pub product_users: Vec<u32>,
    /// `idf` per product, from the two above.
    idf: Vec<f64>,
}

impl Bm25 {
    pub fn new(k1: f64, b: f64, mean_length: f64, users: f64, product_users: Vec<u32>) -> Bm25 {
        let idf = product_users
            .iter()
            .map(|&df| bm25_idf(users, df as f64))
            .collect();
        Bm25 {
            k1,
            b,
            mean_length,
            users,
            product_users,
            idf,
        }
    }

    pub fn idf(&self, product: u32) -> f64 {
        self.idf[product as usize]
    }
}

/// How a model's weights were transformed, as its rows record it.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighting {
    pub confidence: Confidence,
    /// The factor that gave the transformed entries the raw entries' mean
    /// (1 for raw; NaN when a log or bm25 table does not record it).
    pub scale: f64,
    /// Recency half-life in seconds (0: none).
    pub half_life: f64,
    /// What ages count from, epoch seconds (with a half-life).
    pub reference: Option<f64>,
    /// With bm25, when the table records its statistics.
    pub bm25: Option<Bm25>,
}

impl Default for Weighting {
    fn default() -> Self {
        Weighting::raw()
    }
}

impl Weighting {
    /// Raw weights, no decay: also what a table without `confidence` and
    /// `half_life_days` rows was trained with.
    pub fn raw() -> Weighting {
        Weighting {
            confidence: Confidence::Raw,
            scale: 1.0,
            half_life: 0.0,
            reference: None,
            bm25: None,
        }
    }

    /// Whether one entry's transform depends on the rest of its row
    /// (bm25's row sum): then a weight change moves every entry.
    pub fn is_row_coupled(&self) -> bool {
        self.confidence == Confidence::Bm25
    }

    /// Whether every statistic the transform needs is recorded, for a
    /// model of `n_products`: what is missing, for an error message.
    pub fn check(&self, n_products: usize) -> Result<()> {
        let retrain = "the model table does not record it (trained before models kept the statistics the fold-in repeats); train it again";
        if self.confidence != Confidence::Raw {
            ensure!(
                self.scale.is_finite() && self.scale > 0.0,
                "the model was trained with confidence '{}' but has no confidence_scale param row: {retrain}",
                self.confidence.name()
            );
        }
        if self.confidence == Confidence::Bm25 {
            let Some(bm25) = &self.bm25 else {
                bail!("the model was trained with confidence 'bm25' but has no bm25_k1, bm25_b or bm25_mean_length param row: {retrain}");
            };
            ensure!(
                bm25.product_users.len() == n_products,
                "the model was trained with confidence 'bm25' but has {} product_users rows for {n_products} products: {retrain}",
                bm25.product_users.len()
            );
            ensure!(
                [bm25.k1, bm25.b, bm25.mean_length, bm25.users]
                    .iter()
                    .all(|v| v.is_finite() && *v >= 0.0)
                    && bm25.mean_length > 0.0,
                "the model's bm25 param rows are not finite positive numbers; the model table is damaged"
            );
        }
        ensure!(
            self.half_life.is_finite() && self.half_life >= 0.0,
            "the model's half_life_days is {}; the model table is damaged",
            self.half_life / 86_400.0
        );
        if self.half_life > 0.0 {
            ensure!(
                self.reference.is_some_and(f64::is_finite),
                "the model was trained with a recency half-life of {} days but has no decay_reference_time param row: {retrain}",
                self.half_life / 86_400.0
            );
        }
        Ok(())
    }

    /// A pair's weight `w` (summed, capped) whose last event was at `time`
    /// (epoch seconds; NaN when unknown), decayed as in training.
    pub fn decay(&self, w: f32, time: f64) -> f32 {
        match self.reference {
            Some(reference) if self.half_life > 0.0 => decayed(w, time, reference, self.half_life),
            _ => w,
        }
    }

    /// The transformed entry of a decayed weight, for a transform that
    /// looks at the entry alone (not [`is_row_coupled`](Self::is_row_coupled)).
    pub fn entry(&self, w: f32) -> f32 {
        match self.confidence {
            Confidence::Raw => w,
            Confidence::Log => rescaled(log_entry(w), self.scale),
            Confidence::Bm25 => {
                debug_assert!(false, "bm25 transforms whole rows");
                w
            }
        }
    }

    /// The transformed row of one user: `products` (model indices) with
    /// their decayed weights, into `out` (cleared first).
    pub fn row(&self, products: &[u32], weights: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match (&self.bm25, self.confidence) {
            (Some(bm25), Confidence::Bm25) => {
                let row_sum: f64 = weights.iter().map(|&w| w as f64).sum();
                out.extend(products.iter().zip(weights).map(|(&p, &w)| {
                    rescaled(
                        bm25_entry(w, row_sum, bm25.mean_length, bm25.idf(p), bm25.k1, bm25.b),
                        self.scale,
                    )
                }));
            }
            _ => out.extend(weights.iter().map(|&w| self.entry(w))),
        }
    }

    /// The `param` rows that record it (after `confidence` and
    /// `half_life_days`, the others only when the transform uses them).
    pub fn param_rows(&self) -> Vec<(&'static str, f64)> {
        let mut rows = vec![
            ("confidence", self.confidence.code()),
            ("half_life_days", self.half_life / 86_400.0),
        ];
        if let Some(reference) = self.reference.filter(|_| self.half_life > 0.0) {
            rows.push(("decay_reference_time", reference));
        }
        if self.confidence != Confidence::Raw {
            rows.push(("confidence_scale", self.scale));
        }
        if let Some(bm25) = &self.bm25 {
            rows.extend([
                ("bm25_k1", bm25.k1),
                ("bm25_b", bm25.b),
                ("bm25_mean_length", bm25.mean_length),
            ]);
        }
        rows
    }

    /// From the `param` rows ([`param_rows`](Self::param_rows), looked up
    /// by `param`) and the `product_users` per product (model index; `None`
    /// where a product has no such row) of a model of `users` users. A
    /// table without the rows gets what it was trained with as far as it
    /// says ([`check`](Self::check) tells what is missing).
    pub fn from_rows(
        param: impl Fn(&str) -> Option<f64>,
        product_users: Vec<Option<u32>>,
        users: usize,
    ) -> Result<Weighting> {
        let code = param("confidence").unwrap_or(0.0);
        let confidence = Confidence::from_code(code).ok_or_else(|| {
            anyhow::anyhow!(
                "the model's confidence param row is {code}; the model table is damaged (0 raw, 1 log, 2 bm25)"
            )
        })?;
        let bm25 = match (
            confidence,
            param("bm25_k1"),
            param("bm25_b"),
            param("bm25_mean_length"),
        ) {
            (Confidence::Bm25, Some(k1), Some(b), Some(mean_length)) => {
                let found: Vec<u32> = product_users.iter().flatten().copied().collect();
                Some(Bm25::new(
                    k1,
                    b,
                    mean_length,
                    users as f64,
                    // Short when some product has no row: `check` says so.
                    if found.len() == product_users.len() {
                        found
                    } else {
                        Vec::new()
                    },
                ))
            }
            _ => None,
        };
        Ok(Weighting {
            confidence,
            scale: match confidence {
                Confidence::Raw => 1.0,
                _ => param("confidence_scale").unwrap_or(f64::NAN),
            },
            half_life: param("half_life_days").unwrap_or(0.0) * 86_400.0,
            reference: param("decay_reference_time"),
            bm25,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for c in Confidence::ALL {
            assert_eq!(Confidence::parse(&c.name().to_uppercase()), Some(c));
            assert_eq!(Confidence::from_code(c.code()), Some(c));
        }
        assert_eq!(Confidence::parse("tfidf"), None);
        assert_eq!(Confidence::from_code(7.0), None);
    }

    #[test]
    fn decay_halves_per_half_life() {
        // Ages 0, 10, 20, future (0), no time.
        let got: Vec<f32> = [100.0, 90.0, 80.0, 120.0, f64::NAN]
            .iter()
            .map(|&t| decayed(8.0, t, 100.0, 10.0))
            .collect();
        assert_eq!(got, vec![8.0, 4.0, 2.0, 8.0, 8.0]);
        // Very old pairs keep a tiny positive weight (still a preference).
        assert_eq!(decayed(1.0, 0.0, 1e6, 1.0), MIN_WEIGHT);
    }

    /// A bm25 row by hand: 2 products of a 4-user matrix with mean row sum
    /// 5, product 0 touched by 1 user, product 1 by all 4, scale 2.
    #[test]
    fn a_bm25_row_by_hand() {
        let w = Weighting {
            confidence: Confidence::Bm25,
            scale: 2.0,
            half_life: 0.0,
            reference: None,
            bm25: Some(Bm25::new(100.0, 0.8, 5.0, 4.0, vec![1, 4])),
        };
        w.check(2).unwrap();
        let mut out = Vec::new();
        w.row(&[0, 1], &[1.0, 9.0], &mut out);
        // L = 10, length_norm = 0.2 + 0.8 · 10 / 5 = 1.8.
        let idf0 = (1.0f64 + 3.5 / 1.5).ln();
        let idf1 = (1.0f64 + 0.5 / 4.5).ln();
        let want = [
            2.0 * 1.0 * 101.0 / (180.0 + 1.0) * idf0,
            2.0 * 9.0 * 101.0 / (180.0 + 9.0) * idf1,
        ];
        for (g, e) in out.iter().zip(want) {
            assert!((*g as f64 - e).abs() < 1e-6 * e, "{out:?} vs {want:?}");
        }
        // The row is coupled: a third product moves the others.
        let mut longer = Vec::new();
        w.row(&[0, 1, 0], &[1.0, 9.0, 5.0], &mut longer);
        assert!(longer[0] < out[0] && longer[1] < out[1]);
    }

    #[test]
    fn rows_round_trip_and_missing_statistics_are_named() {
        let w = Weighting {
            confidence: Confidence::Bm25,
            scale: 1.5,
            half_life: 7.0 * 86_400.0,
            reference: Some(1.5e9),
            bm25: Some(Bm25::new(100.0, 0.8, 5.0, 3.0, vec![2, 1])),
        };
        let params = w.param_rows();
        let param = |name: &str| params.iter().find(|p| p.0 == name).map(|p| p.1);
        let back = Weighting::from_rows(param, vec![Some(2), Some(1)], 3).unwrap();
        assert_eq!(back, w);
        // A product without its row, a table without the scale or the
        // reference (made before models recorded them).
        let short = Weighting::from_rows(param, vec![Some(2), None], 3).unwrap();
        assert!(short
            .check(2)
            .unwrap_err()
            .to_string()
            .contains("0 product_users rows for 2 products"));
        let without = |skip: &'static str| {
            Weighting::from_rows(
                |name: &str| if name == skip { None } else { param(name) },
                vec![Some(2), Some(1)],
                3,
            )
            .unwrap()
            .check(2)
            .unwrap_err()
            .to_string()
        };
        assert!(without("confidence_scale").contains("no confidence_scale param row"));
        assert!(without("decay_reference_time").contains("no decay_reference_time"));
        assert!(without("bm25_mean_length").contains("no bm25_k1, bm25_b or bm25_mean_length"));
        // No rows at all: raw, undecayed (what older tables were).
        let legacy = Weighting::from_rows(|_| None, vec![None, None], 3).unwrap();
        assert_eq!(legacy, Weighting::raw());
        legacy.check(2).unwrap();
        assert!(Weighting::from_rows(|_| Some(7.0), vec![], 3).is_err());
    }
}
