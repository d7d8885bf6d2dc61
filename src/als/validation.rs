//! The validation split inside the training data: what the trainer's input
//! carries so that a layer above (`crate::train`) can choose parameters on
//! the user's own data. Plain data; nothing here scores or serves.

use super::Pair;
use std::collections::HashSet;

/// Fraction of the training time span held out for validation.
pub const VALIDATION_SHARE: f64 = 0.2;

/// Mixed into the seed of [`ValidationSplit::sample`], so that the sample of
/// users is not the same hash order as the evaluated users'.
const SAMPLE_SALT: u64 = 0x5eed_5a3b_1e00_0001;

/// The validation data: training pairs before the cut and targets after it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValidationSplit {
    /// Pairs with their weights and counts from the events before the cut.
    pub(crate) train: Vec<Pair>,
    /// Each training pair's latest time before the cut (seconds; NaN if none).
    pub train_times: Vec<f64>,
    /// (user, product) carted or bought at or after the cut (touched at or
    /// after it, in a source without carts and purchases).
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

    /// The split restricted to `evaluated` users plus a seeded sample of the
    /// others, so that it holds about `max_pairs` training pairs (all of it
    /// when it holds no more). Every evaluated user keeps all their pairs and
    /// targets; the others are kept or left out whole, by a hash of the user
    /// id, so the sample is the same for the same seed whatever the order of
    /// the rows. The cut and span are the whole split's.
    pub fn sample(&self, evaluated: &[i64], max_pairs: usize, seed: u64) -> ValidationSplit {
        if self.train.len() <= max_pairs {
            return self.clone();
        }
        let wanted: HashSet<i64> = evaluated.iter().copied().collect();
        let kept_evaluated = self
            .train
            .iter()
            .filter(|p| wanted.contains(&p.user))
            .count();
        let others = self.train.len() - kept_evaluated;
        let share = max_pairs.saturating_sub(kept_evaluated) as f64 / others.max(1) as f64;
        // A user is kept when the top 53 bits of their hash fall below the share.
        let threshold = (share.clamp(0.0, 1.0) * (1u64 << 53) as f64) as u64;
        let keep = |user: i64| {
            wanted.contains(&user)
                || crate::rng::mix64(user as u64 ^ seed ^ SAMPLE_SALT) >> 11 < threshold
        };
        let mut sample = ValidationSplit {
            cut: self.cut,
            span: self.span,
            ..ValidationSplit::default()
        };
        for (pair, &time) in self.train.iter().zip(&self.train_times) {
            if keep(pair.user) {
                sample.train.push(*pair);
                sample.train_times.push(time);
            }
        }
        sample.targets = self
            .targets
            .iter()
            .copied()
            .filter(|t| wanted.contains(&t.0))
            .collect();
        sample
    }

    /// Users with training pairs and targets, at most `max` of them, picked
    /// by a seeded hash of the user id; sorted by id.
    pub fn evaluated_users(&self, max: usize, seed: u64) -> Vec<i64> {
        let trained: HashSet<i64> = self.train.iter().map(|p| p.user).collect();
        let mut users: Vec<i64> = self
            .targets
            .iter()
            .map(|t| t.0)
            .filter(|u| trained.contains(u))
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 users with 10 pairs each; users 0..5 have a target.
    fn split() -> ValidationSplit {
        let mut s = ValidationSplit {
            cut: 50.0,
            span: 50.0,
            ..ValidationSplit::default()
        };
        for user in 0..1000i64 {
            for product in 0..10i64 {
                s.train.push(Pair {
                    user,
                    product,
                    weight: 1.0,
                    purchases: 0,
                    interactions: 1,
                    category: 0,
                });
                s.train_times.push((user + product) as f64);
            }
        }
        s.targets = (0..5).map(|u| (u, 99)).collect();
        s
    }

    #[test]
    fn a_small_split_is_kept_whole() {
        let s = split();
        let same = s.sample(&[0, 1], 10_000, 7);
        assert_eq!(same.train.len(), 10_000);
        assert_eq!(same.targets.len(), 5);
    }

    #[test]
    fn the_sample_keeps_evaluated_users_and_whole_histories_near_the_cap() {
        let s = split();
        let evaluated = [0, 1, 2];
        let sample = s.sample(&evaluated, 2_000, 7);
        // About 200 of 1,000 users (binomial: 3 sd is about 38 users).
        let users: HashSet<i64> = sample.train.iter().map(|p| p.user).collect();
        assert!(
            (150..=250).contains(&users.len()),
            "{} users kept",
            users.len()
        );
        for u in &users {
            assert_eq!(
                sample.train.iter().filter(|p| p.user == *u).count(),
                10,
                "user {u} kept whole"
            );
        }
        assert!(evaluated.iter().all(|u| users.contains(u)));
        // Times travel with their pairs; targets only for evaluated users.
        for (p, t) in sample.train.iter().zip(&sample.train_times) {
            assert_eq!(*t, (p.user + p.product) as f64);
        }
        assert_eq!(sample.targets, vec![(0, 99), (1, 99), (2, 99)]);
        assert_eq!((sample.cut, sample.span), (50.0, 50.0));
        // Deterministic for a seed, different for another.
        let again: Vec<i64> = s
            .sample(&evaluated, 2_000, 7)
            .train
            .iter()
            .map(|p| p.user)
            .collect();
        assert_eq!(
            again,
            sample.train.iter().map(|p| p.user).collect::<Vec<_>>()
        );
        let other: HashSet<i64> = s
            .sample(&evaluated, 2_000, 8)
            .train
            .iter()
            .map(|p| p.user)
            .collect();
        assert_ne!(other, users);
    }
}
