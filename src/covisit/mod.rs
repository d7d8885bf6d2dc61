//! Stage 5b: the item-to-item model, learned from sessions.
//!
//! `ecoreco.covisit_train(events, ...)` reads any table of events with a
//! session (or user) column, a product column and an order column, and
//! returns each product's best neighbours as rows
//! `(product_id, neighbour_id, score, kind, rank)`: `kind` is
//! `cooccurrence` (events of both products in one session) or `sequence`
//! (the neighbour follows the product within a few steps, weighted
//! 1/distance), counted by the [`kernel`]; one more row per product of kind
//! `events` holds how many session steps it has (neighbour NULL), which
//! serving uses for popularity. [`session`] scores a session's products
//! through those rows, with a blend [`choose`]n on the latest training
//! sessions and stored as rows too; `ecoreco.covisit_recommend(model,
//! sessions)` ([`serve`]) makes one list per session of a table.
//!
//! The model is separate from `als_train`'s: it is built in a fraction of
//! an ALS fit, needs no factors, and works on logs ALS cannot use (a session
//! log without users). The rows are plain data like the ALS model.

pub mod choose;
pub mod kernel;
pub mod serve;
pub mod session;
pub mod train;

use crate::budget::{self, Budget};

/// One event as read: its session (a 63-bit hash of the session value),
/// its order within the session, its product.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub session: i64,
    pub order: f64,
    pub product: i64,
}

/// Bytes held per event while reading.
pub const EVENT_BYTES: u64 = std::mem::size_of::<Event>() as u64;

/// Events grouped by session in order, products as dense indices.
#[derive(Debug, Default)]
pub struct Sessions {
    /// The product id of each dense index, ascending.
    pub product_ids: Vec<i64>,
    /// Each step's product index, session after session.
    pub products: Vec<u32>,
    /// Where each session starts in `products`; one more entry for the end.
    pub starts: Vec<usize>,
    /// The session key of each session.
    pub keys: Vec<i64>,
    /// The order (time) of each session's last event.
    pub ends: Vec<f64>,
}

/// The steps before a time cut of [`Sessions::build_cut`], per session.
#[derive(Debug, Default)]
pub struct Cut {
    /// How many of the session's first steps come before the cut.
    pub steps: Vec<u32>,
    /// The order of the session's last event before the cut (-inf: none).
    pub ends: Vec<f64>,
}

impl Sessions {
    /// Groups `events` by session, orders each session by `order` (then
    /// product id), and merges repeats of one product in a row into one
    /// step (a view and then a cart of the product are one step).
    pub fn build(events: Vec<Event>, budget: &Budget) -> anyhow::Result<Sessions> {
        Ok(Sessions::build_cut(events, f64::NEG_INFINITY, budget)?.0)
    }

    /// [`build`](Self::build), and the sessions' steps before `cut`: how
    /// many of each session's first steps come before it (their events'
    /// `order < cut`), and the order of the last such event per session.
    pub fn build_cut(
        mut events: Vec<Event>,
        cut: f64,
        budget: &Budget,
    ) -> anyhow::Result<(Sessions, Cut)> {
        events.sort_unstable_by(|a, b| {
            a.session
                .cmp(&b.session)
                .then(a.order.total_cmp(&b.order))
                .then(a.product.cmp(&b.product))
        });
        let n_sessions = 1 + events
            .windows(2)
            .filter(|w| w[0].session != w[1].session)
            .count();
        // Held at once: the events read, their product ids while they are
        // deduplicated, the steps, and per session its start, key and end.
        budget.check(
            "ordering the sessions",
            events.len() as u64 * (EVENT_BYTES + 8 + 4) + n_sessions as u64 * 24,
            "36 bytes per event and 24 per session",
        )?;
        let mut product_ids: Vec<i64> = Vec::new();
        budget::reserve(&mut product_ids, events.len(), "the product ids")?;
        product_ids.extend(events.iter().map(|e| e.product));
        product_ids.sort_unstable();
        product_ids.dedup();
        product_ids.shrink_to_fit();
        let mut sessions = Sessions {
            product_ids,
            ..Sessions::default()
        };
        budget::reserve(&mut sessions.products, events.len(), "the session steps")?;
        budget::reserve(&mut sessions.starts, n_sessions + 1, "the session starts")?;
        budget::reserve(&mut sessions.keys, n_sessions, "the session keys")?;
        budget::reserve(&mut sessions.ends, n_sessions, "the session ends")?;
        let mut before = Cut::default();
        if cut > f64::NEG_INFINITY {
            budget::reserve(&mut before.steps, n_sessions, "the steps before the cut")?;
            budget::reserve(
                &mut before.ends,
                n_sessions,
                "the sessions' ends before the cut",
            )?;
        }
        for (i, e) in events.iter().enumerate() {
            let p = sessions
                .product_ids
                .binary_search(&e.product)
                .expect("every product id was collected") as u32;
            let new_session = i == 0 || events[i - 1].session != e.session;
            let early = e.order < cut;
            if new_session {
                sessions.starts.push(sessions.products.len());
                sessions.keys.push(e.session);
                sessions.ends.push(e.order);
                if cut > f64::NEG_INFINITY {
                    before.steps.push(0);
                    before.ends.push(f64::NEG_INFINITY);
                }
            } else {
                *sessions.ends.last_mut().expect("a session is open") = e.order;
            }
            if early {
                // Events come in order: the steps before the cut are the
                // session's first ones (a merged repeat ends them later).
                *before.ends.last_mut().expect("a session is open") = e.order;
            }
            if !new_session && sessions.products.last() == Some(&p) {
                continue;
            }
            if early {
                *before.steps.last_mut().expect("a session is open") += 1;
            }
            sessions.products.push(p);
        }
        sessions.starts.push(sessions.products.len());
        Ok((sessions, before))
    }

    /// The sessions of the events before the cut alone: what
    /// [`build`](Self::build) makes of them (only the products they step
    /// on, only the sessions with a step before the cut).
    pub fn before(&self, cut: &Cut, budget: &Budget) -> anyhow::Result<Sessions> {
        let steps: usize = cut.steps.iter().map(|&n| n as usize).sum();
        budget.check(
            "holding the sessions before the validation cut",
            steps as u64 * 4 + self.product_ids.len() as u64 * 12,
            "4 bytes per step and 12 per product",
        )?;
        let mut index = vec![u32::MAX; self.product_ids.len()];
        for s in 0..self.len() {
            for &p in &self.session(s)[..cut.steps[s] as usize] {
                index[p as usize] = 0;
            }
        }
        let mut out = Sessions::default();
        for (p, i) in index.iter_mut().enumerate() {
            if *i == 0 {
                *i = out.product_ids.len() as u32;
                out.product_ids.push(self.product_ids[p]);
            }
        }
        budget::reserve(&mut out.products, steps, "the session steps")?;
        for s in (0..self.len()).filter(|&s| cut.steps[s] > 0) {
            out.starts.push(out.products.len());
            let first = &self.session(s)[..cut.steps[s] as usize];
            out.products
                .extend(first.iter().map(|&p| index[p as usize]));
            out.keys.push(self.keys[s]);
            out.ends.push(cut.ends[s]);
        }
        out.starts.push(out.products.len());
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Session `s`'s products in order.
    pub fn session(&self, s: usize) -> &[u32] {
        &self.products[self.starts[s]..self.starts[s + 1]]
    }

    /// Test sessions from lists of product ids: session `s` (its key) is
    /// `(first, products)`, its steps ordered `first`, `first + 1`, ...
    #[cfg(test)]
    pub fn of_lists<'a>(lists: impl IntoIterator<Item = (f64, &'a [i64])>) -> Sessions {
        let mut events = Vec::new();
        for (s, (first, products)) in lists.into_iter().enumerate() {
            for (i, &product) in products.iter().enumerate() {
                events.push(Event {
                    session: s as i64,
                    order: first + i as f64,
                    product,
                });
            }
        }
        Sessions::build(events, &Budget::from_setting("1 GB")).unwrap()
    }

    /// How many steps each product has.
    pub fn counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.product_ids.len()];
        for &p in &self.products {
            counts[p as usize] += 1;
        }
        counts
    }
}

/// An item-to-item model in memory: per product its neighbours of both
/// kinds and its step count, on the dense indices of `product_ids`.
#[derive(Debug, Default)]
pub struct ItemModel {
    pub product_ids: Vec<i64>,
    pub cooc: Vec<kernel::Neighbours>,
    pub seq: Vec<kernel::Neighbours>,
    pub counts: Vec<u32>,
}

impl ItemModel {
    /// Counts the neighbours of `sessions` (the memory checked first).
    pub fn train(
        sessions: &Sessions,
        windows: kernel::Windows,
        neighbours: usize,
        threads: usize,
        budget: &Budget,
    ) -> anyhow::Result<ItemModel> {
        let n = sessions.product_ids.len();
        budget.check(
            "counting the item-to-item neighbours",
            kernel::memory_bytes(sessions.products.len(), n, neighbours, threads)
                + sessions.products.len() as u64 * 4
                + n as u64 * 12,
            "16 bytes per session step, 16 per product per thread, 16 per kept neighbour",
        )?;
        let lists =
            kernel::neighbours(&sessions.products, &sessions.starts, n, windows, neighbours);
        let (cooc, seq) = lists.into_iter().unzip();
        Ok(ItemModel {
            product_ids: sessions.product_ids.clone(),
            cooc,
            seq,
            counts: sessions.counts(),
        })
    }

    /// [`train`](Self::train) on `sessions` and, in the same pass, on the
    /// steps of each session before `cut` alone: `(all, before)`, `before`
    /// on the same product indices (products with no step before the cut
    /// have no neighbours and count 0).
    pub fn train_with_prefixes(
        sessions: &Sessions,
        cut: &Cut,
        windows: kernel::Windows,
        neighbours: usize,
        threads: usize,
        budget: &Budget,
    ) -> anyhow::Result<(ItemModel, ItemModel)> {
        let n = sessions.product_ids.len();
        budget.check(
            "counting the item-to-item neighbours",
            kernel::memory_bytes_with_prefixes(
                sessions.products.len(),
                sessions.len(),
                n,
                neighbours,
                threads,
            ) + sessions.products.len() as u64 * 4
                + n as u64 * 16,
            "16 bytes per session step, 32 per product per thread, 32 per kept neighbour",
        )?;
        let (all, before) = kernel::neighbours_and_prefixes(
            &sessions.products,
            &sessions.starts,
            &cut.steps,
            n,
            windows,
            neighbours,
        );
        let mut before_counts = vec![0u32; n];
        for s in 0..sessions.len() {
            for &p in &sessions.session(s)[..cut.steps[s] as usize] {
                before_counts[p as usize] += 1;
            }
        }
        let model = |lists: kernel::Lists, counts| {
            let (cooc, seq) = lists.into_iter().unzip();
            ItemModel {
                product_ids: sessions.product_ids.clone(),
                cooc,
                seq,
                counts,
            }
        };
        Ok((model(all, sessions.counts()), model(before, before_counts)))
    }

    /// The dense index of a product id.
    pub fn index(&self, product: i64) -> Option<u32> {
        self.product_ids
            .binary_search(&product)
            .ok()
            .map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(session: i64, order: f64, product: i64) -> Event {
        Event {
            session,
            order,
            product,
        }
    }

    #[test]
    fn sessions_are_ordered_and_repeats_merged() {
        let events = vec![
            ev(7, 2.0, 30),
            ev(5, 1.0, 10),
            ev(7, 1.0, 20),
            ev(5, 2.0, 10),
            ev(5, 3.0, 30),
            ev(7, 3.0, 30),
            ev(5, 4.0, 10),
        ];
        let s = Sessions::build(events, &Budget::from_setting("1 GB")).unwrap();
        assert_eq!(s.product_ids, vec![10, 20, 30]);
        assert_eq!(s.keys, vec![5, 7]);
        // Session 5: 10 10 30 10 -> 10 30 10; session 7: 20 30 30 -> 20 30.
        assert_eq!(s.session(0), &[0, 2, 0]);
        assert_eq!(s.session(1), &[1, 2]);
        assert_eq!(s.counts(), vec![2, 1, 2]);
        assert_eq!(s.ends, vec![4.0, 3.0]);
    }

    #[test]
    fn the_steps_before_a_cut_are_the_sessions_of_the_earlier_events() {
        // Cut at 5: session 1 wholly before, 2 across (10 at 4, 4.5 and 6:
        // one merged step, before the cut, which ends at 4.5; then 40
        // after), 3 wholly after (product 50 only there), 4 across.
        let events = vec![
            ev(1, 1.0, 20),
            ev(1, 2.0, 30),
            ev(2, 4.0, 10),
            ev(2, 6.0, 10),
            ev(2, 4.5, 10),
            ev(2, 7.0, 40),
            ev(3, 8.0, 50),
            ev(3, 9.0, 20),
            ev(4, 3.0, 40),
            ev(4, 5.0, 30),
        ];
        let budget = Budget::from_setting("1 GB");
        let (all, cut) = Sessions::build_cut(events.clone(), 5.0, &budget).unwrap();
        assert_eq!(cut.steps, vec![2, 1, 0, 1]);
        assert_eq!(cut.ends[..2], [2.0, 4.5]);
        assert_eq!(cut.ends[3], 3.0);
        let plain = Sessions::build(events.clone(), &budget).unwrap();
        assert_eq!(
            (&all.products, &all.starts),
            (&plain.products, &plain.starts)
        );
        let before = all.before(&cut, &budget).unwrap();
        let early: Vec<Event> = events.into_iter().filter(|e| e.order < 5.0).collect();
        let want = Sessions::build(early, &budget).unwrap();
        assert_eq!(before.product_ids, vec![10, 20, 30, 40]);
        assert_eq!(before.product_ids, want.product_ids);
        assert_eq!(before.products, want.products);
        assert_eq!(before.starts, want.starts);
        assert_eq!(before.keys, vec![1, 2, 4]);
        assert_eq!(before.keys, want.keys);
        // Session 2's merged repeat at 4.5 ends it there, as in `build`.
        assert_eq!(before.ends, vec![2.0, 4.5, 3.0]);
        assert_eq!(before.ends, want.ends);
    }

    #[test]
    fn too_little_memory_fails_clearly() {
        let events = (0..1000).map(|i| ev(i / 4, i as f64, i % 50)).collect();
        let err = Sessions::build(events, &Budget::from_setting("1000 bytes"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ordering the sessions needs about"), "{err}");
    }
}
