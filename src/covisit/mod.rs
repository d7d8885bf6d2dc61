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

impl Sessions {
    /// Groups `events` by session, orders each session by `order` (then
    /// product id), and merges repeats of one product in a row into one
    /// step (a view and then a cart of the product are one step).
    pub fn build(mut events: Vec<Event>, budget: &Budget) -> anyhow::Result<Sessions> {
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
        for (i, e) in events.iter().enumerate() {
            let p = sessions
                .product_ids
                .binary_search(&e.product)
                .expect("every product id was collected") as u32;
            let new_session = i == 0 || events[i - 1].session != e.session;
            if new_session {
                sessions.starts.push(sessions.products.len());
                sessions.keys.push(e.session);
                sessions.ends.push(e.order);
            } else {
                *sessions.ends.last_mut().expect("a session is open") = e.order;
                if sessions.products.last() == Some(&p) {
                    continue;
                }
            }
            sessions.products.push(p);
        }
        sessions.starts.push(sessions.products.len());
        Ok(sessions)
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
    fn too_little_memory_fails_clearly() {
        let events = (0..1000).map(|i| ev(i / 4, i as f64, i % 50)).collect();
        let err = Sessions::build(events, &Budget::from_setting("1000 bytes"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ordering the sessions needs about"), "{err}");
    }
}
