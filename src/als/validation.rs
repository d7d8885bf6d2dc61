//! The validation split inside the training data: what the trainer's input
//! carries so that a layer above (`crate::train`) can choose parameters on
//! the user's own data. Plain data; nothing here scores or serves.

use super::Pair;
use std::collections::HashSet;

/// Fraction of the training time span held out for validation.
pub const VALIDATION_SHARE: f64 = 0.2;

/// The validation data: training pairs before the cut and targets after it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValidationSplit {
    /// Pairs with their weights and counts from the events before the cut.
    pub(crate) train: Vec<Pair>,
    /// Each training pair's latest time before the cut (seconds; NaN if none).
    pub train_times: Vec<f64>,
    /// (user, product) carted or bought at or after the cut.
    pub targets: Vec<(i64, i64)>,
    /// The cut (seconds): the reference time of the recency decay.
    pub cut: f64,
    /// The span from the first event to the cut (seconds).
    pub span: f64,
}

impl ValidationSplit {
    /// Adds another part of the same split (a parallel state's rows).
    pub(crate) fn extend(&mut self, other: ValidationSplit) -> anyhow::Result<()> {
        crate::budget::reserve(&mut self.train, other.train.len(), "validation pairs")?;
        self.train.extend(other.train);
        self.train_times.extend(other.train_times);
        self.targets.extend(other.targets);
        if other.span > 0.0 || self.cut == 0.0 {
            (self.cut, self.span) = (other.cut, other.span);
        }
        Ok(())
    }

    /// Users with training pairs and targets, at most `max` of them, picked
    /// by a seeded hash of the user id; sorted by id.
    pub fn evaluated_users(&self, max: usize, seed: u64) -> Vec<i64> {
        let trained: HashSet<i64> = self.train.iter().map(|p| p.user).collect();
        let mut users: Vec<i64> = self.targets.iter().map(|t| t.0).filter(|u| trained.contains(u)).collect();
        users.sort_unstable();
        users.dedup();
        if users.len() > max {
            users.sort_by_key(|&u| (crate::rng::mix64(u as u64 ^ seed), u));
            users.truncate(max);
            users.sort_unstable();
        }
        users
    }
}

