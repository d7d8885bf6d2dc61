//! The generator's row order: users one after the other, each user's events
//! in time order, produced on demand so that memory does not grow with
//! `events` (`FROM ecoreco_synth(events := 10000000000) LIMIT 1` holds the
//! catalogue, one user's history and a fixed-size block of weights).

use super::{user_events, Catalogue, Event, SynthParams};
use crate::rng::Rng;

/// A user's Pareto(alpha = 1.3) activity weight, capped to keep one user
/// from taking a visible share of a small data set. A function of the seed
/// and the user alone, so it can be computed twice instead of stored.
fn activity_weight(seed: u64, user: u64) -> f64 {
    let mut rng = Rng::for_stream(seed ^ 0xB0D6E7, user);
    (1.0 - rng.next_f64()).powf(-1.0 / 1.3).min(2_000.0)
}

/// Users whose weights are computed at once (in parallel) before they are
/// added in user order: 8 MB.
const WEIGHT_BLOCK: u64 = 1 << 20;

/// Users that share events in proportion to their weights. The events are
/// first split between blocks of this many users in proportion to their
/// sizes, so the weights of only one block must be summed before its first
/// row: a bounded wait (about 0.4 s) whatever `events` is. A call with at
/// most this many users is one block, which is how budgets were computed
/// before the generator streamed, so its rows are unchanged.
const SHARE_BLOCK: u64 = 1 << 24;

/// The sum of the weights of users `first..end`, added in user order (the
/// sum is part of the rows' definition, so it must not depend on how the
/// work is split). The weights are computed in parallel; only the
/// additions are sequential.
fn weight_sum(seed: u64, first: u64, end: u64) -> anyhow::Result<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    if end - first < WEIGHT_BLOCK || threads == 1 {
        return Ok((first..end).map(|u| activity_weight(seed, u)).sum());
    }
    let mut block = Vec::new();
    block
        .try_reserve_exact(WEIGHT_BLOCK as usize)
        .map_err(|_| {
            anyhow::anyhow!(
                "ecoreco_synth: no memory for a block of user weights, retry with fewer users"
            )
        })?;
    let mut total = 0.0f64;
    let mut start = first;
    while start < end {
        let len = WEIGHT_BLOCK.min(end - start);
        block.clear();
        block.resize(len as usize, 0.0);
        let per_thread = len.div_ceil(threads) as usize;
        std::thread::scope(|scope| {
            for (part, slots) in block.chunks_mut(per_thread).enumerate() {
                let from = start + (part * per_thread) as u64;
                scope.spawn(move || {
                    for (i, w) in slots.iter_mut().enumerate() {
                        *w = activity_weight(seed, from + i as u64);
                    }
                });
            }
        });
        total = block.iter().fold(total, |acc, w| acc + w);
        start += len;
    }
    Ok(total)
}

/// Per-user event budgets, one at a time: every user gets at least one
/// event (when there are enough events), the rest shared in proportion to
/// the activity weight within the user's block of `SHARE_BLOCK` users, so a
/// few users are very active and most are not. Running sums are rounded, so
/// the budgets add up to `events` exactly.
pub struct Budgets {
    seed: u64,
    users: u64,
    /// Events beyond the one every user gets.
    extra: u64,
    next: u64,
    block_start: u64,
    block_end: u64,
    /// The current block's extra events, and where the blocks before it end.
    block_extra: u64,
    extra_before: u64,
    block_weight: f64,
    cum: f64,
    given: u64,
}

impl Budgets {
    pub fn new(params: &SynthParams) -> anyhow::Result<Self> {
        let users = if params.events == 0 {
            0
        } else {
            params.users.max(1).min(params.events)
        };
        let mut budgets = Budgets {
            seed: params.seed,
            users,
            extra: params.events - users,
            next: 0,
            block_start: 0,
            block_end: 0,
            block_extra: 0,
            extra_before: 0,
            block_weight: 0.0,
            cum: 0.0,
            given: 0,
        };
        if users > 0 {
            budgets.start_block()?;
        }
        Ok(budgets)
    }

    /// Enters the block that starts at `self.next`.
    fn start_block(&mut self) -> anyhow::Result<()> {
        let start = self.next;
        self.block_start = start;
        self.extra_before += self.block_extra;
        self.block_end = (start + SHARE_BLOCK).min(self.users);
        let extra_upto = if self.block_end == self.users {
            self.extra
        } else {
            let share = self.block_end as f64 / self.users as f64;
            ((self.extra as f64 * share).round() as u64).clamp(self.extra_before, self.extra)
        };
        self.block_extra = extra_upto - self.extra_before;
        self.block_weight = weight_sum(self.seed, start, self.block_end)?;
        self.cum = 0.0;
        self.given = 0;
        Ok(())
    }

    /// The next user's budget, `None` after the last user.
    pub fn next_budget(&mut self) -> anyhow::Result<Option<u64>> {
        if self.next >= self.users {
            return Ok(None);
        }
        if self.next == self.block_end {
            self.start_block()?;
        }
        let w = activity_weight(self.seed, self.next);
        self.cum += self.block_extra as f64 * w / self.block_weight;
        let upto = self.cum.round() as u64;
        let mut budget = 1 + upto - self.given;
        self.given = upto;
        self.next += 1;
        if self.next == self.block_end {
            // Every budget of the block is 1 + its share: the shares
            // telescope, and the last user takes the rounding remainder.
            let block_users = self.block_end - self.block_start;
            let (assigned, wanted) = (block_users + upto, block_users + self.block_extra);
            if assigned != wanted {
                budget = (budget + wanted).saturating_sub(assigned).max(1);
            }
        }
        Ok(Some(budget))
    }
}

/// Streams all users' events in user order.
pub struct EventStream {
    params: SynthParams,
    catalogue: Catalogue,
    budgets: Budgets,
    next_user: u32,
    buffer: Vec<Event>,
    position: usize,
}

impl EventStream {
    pub fn new(params: SynthParams) -> anyhow::Result<Self> {
        let catalogue = Catalogue::new(&params)?;
        let budgets = Budgets::new(&params)?;
        Ok(EventStream {
            params,
            catalogue,
            budgets,
            next_user: 0,
            buffer: Vec::new(),
            position: 0,
        })
    }
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }
    pub fn user_id(&self, user: u32) -> i64 {
        // Real user ids are 9-digit numbers from about 5.1e8.
        512_000_000
            + (crate::rng::mix64(user as u64 ^ self.params.seed) % 97) as i64
            + user as i64 * 101
    }

    /// The next event, `None` at the end; an error when a user's history
    /// does not fit in memory.
    #[inline]
    pub fn next_event(&mut self) -> anyhow::Result<Option<Event>> {
        while self.position >= self.buffer.len() {
            let Some(budget) = self.budgets.next_budget()? else {
                return Ok(None);
            };
            user_events(
                &self.params,
                &self.catalogue,
                self.next_user,
                budget,
                &mut self.buffer,
            )?;
            self.next_user += 1;
            self.position = 0;
        }
        self.position += 1;
        Ok(Some(self.buffer[self.position - 1]))
    }
}

/// For tests and benches: the events, panicking where `next_event` errs.
impl Iterator for EventStream {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.next_event().expect("generator out of memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budgets as they were computed before streaming: all weights in
    /// memory, then the running sum.
    fn materialised_budgets(params: &SynthParams) -> Vec<u64> {
        let users = params.users.max(1).min(params.events.max(1)) as usize;
        let weights: Vec<f64> = (0..users)
            .map(|u| activity_weight(params.seed, u as u64))
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let extra = params.events.saturating_sub(users as u64) as f64;
        let mut budgets = Vec::with_capacity(users);
        let (mut cum, mut given) = (0.0f64, 0u64);
        for w in &weights {
            cum += extra * w / total_weight;
            let upto = cum.round() as u64;
            budgets.push(1 + upto - given);
            given = upto;
        }
        let assigned: u64 = budgets.iter().sum();
        if assigned != params.events && !budgets.is_empty() {
            let last = budgets.len() - 1;
            budgets[last] = (budgets[last] + params.events)
                .saturating_sub(assigned)
                .max(1);
        }
        budgets
    }

    fn all_budgets(params: &SynthParams) -> Vec<u64> {
        let mut budgets = Budgets::new(params).unwrap();
        std::iter::from_fn(|| budgets.next_budget().unwrap()).collect()
    }

    #[test]
    fn streamed_budgets_are_the_materialised_ones() {
        let mut cases = vec![];
        for events in [1u64, 2, 7, 1_000, 54_321, 3_000_000] {
            for seed in [3u64, 42] {
                cases.push(SynthParams::for_events(events, seed));
            }
        }
        let mut few_users = SynthParams::for_events(20_000, 1);
        few_users.users = 300;
        let mut one_user = SynthParams::for_events(10, 1);
        one_user.users = 1;
        let mut more_users_than_events = SynthParams::for_events(5_000, 1);
        more_users_than_events.users = 100_000;
        // More users than one weight block: the parallel sum.
        let mut many_users = SynthParams::for_events(30_000_000, 9);
        many_users.users = 2_500_000;
        let mut last_share_block = SynthParams::for_events(40_000_000, 9);
        last_share_block.users = SHARE_BLOCK;
        cases.extend([
            few_users,
            one_user,
            more_users_than_events,
            many_users,
            last_share_block,
        ]);
        for params in &cases {
            let streamed = all_budgets(params);
            let materialised = materialised_budgets(params);
            assert_eq!(streamed, materialised, "{params:?}");
            assert_eq!(streamed.iter().sum::<u64>(), params.events, "{params:?}");
        }
        let none = SynthParams::for_events(0, 1);
        assert!(all_budgets(&none).is_empty());
    }

    #[test]
    fn blocks_of_users_share_all_events() {
        let users = 2 * SHARE_BLOCK + 3;
        let mut params = SynthParams::for_events(3 * users + 7, 5);
        params.users = users;
        let budgets = all_budgets(&params);
        assert_eq!(budgets.len() as u64, users);
        assert_eq!(budgets.iter().sum::<u64>(), params.events);
        assert!(budgets.iter().all(|&b| b >= 1));
        // Each block gets its share of the events (3 per user, plus
        // rounding), not the blocks' weights.
        let first: u64 = budgets[..SHARE_BLOCK as usize].iter().sum();
        assert!(first.abs_diff(3 * SHARE_BLOCK) <= 3, "{first}");
    }

    #[test]
    fn the_first_rows_of_a_huge_call_come_without_huge_memory() {
        // 10^10 events: 714 million users. Only the first block's weights
        // are summed before the first row; nothing is stored per user.
        let params = SynthParams::for_events(10_000_000_000, 42);
        let mut stream = EventStream::new(params).unwrap();
        let first: Vec<Event> = (0..5)
            .map(|_| stream.next_event().unwrap().unwrap())
            .collect();
        assert!(first.iter().all(|e| e.user <= 1), "{first:?}");
        assert_eq!(stream.budgets.users, 714_285_714);
    }
}
