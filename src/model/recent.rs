//! Each known user's most recent products, as `recent` rows of a model
//! table: what `recommend` and `recommend_all` score through the
//! item-to-item rows ([`super::neighbours`]) for a user the model knows,
//! so the default model (`recommend_all(model)`, no events table) carries
//! them itself.
//!
//! | side   | id      | item       | name | value                       |
//! |--------|---------|------------|------|-----------------------------|
//! | recent | user_id | product_id |      | rank (1: the latest product) |
//!
//! The products are the user's distinct training products by the time of
//! their last event, the latest first, at most [`PER_USER`] of them. Why
//! five: the item-to-item scorer weighs step `i` back by `decay^i`, and the
//! session blend's decay is at most 0.5 where it was chosen (the REES46
//! head and the Diginetica sample), so a sixth product would add under 3 %
//! to a score; and the rows cost: at 5M users, 25M rows (about 6 bytes
//! each in a DuckDB table once compressed, 150 MB; 4 bytes a product in
//! the served model, 100 MB beside the 1 GB of 50-factor user vectors).
//!
//! The rows, the [`PARAM`] row (`user_item_weight`, the item-to-item
//! share of a known user's list, chosen on the validation split) and the
//! [`NEW_PARAM`] row (the share for products other than the latest) are
//! written only in models whose validation chose a weight above 0.
//! Plain data: the trainer (`crate::train`) makes them, serving
//! (`crate::recommend::items`) reads them.

/// The `side` of the rows.
pub const SIDE: &str = "recent";

/// The param row of the known users' item-to-item weight.
pub const PARAM: &str = "user_item_weight";

/// The param row of the item-to-item share the blend gives a known user's
/// products other than their latest ones (`user_item_weight` where absent).
pub const NEW_PARAM: &str = "user_new_item_weight";

/// Products kept per user (see the module documentation).
pub const PER_USER: usize = 5;

/// One `recent` row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecentRow {
    pub user: i64,
    pub product: i64,
    /// 1 for the user's latest product, 2 for the one before, ...
    pub rank: u32,
}

impl RecentRow {
    /// A row as read back; NULLs or a rank that is not a whole number
    /// from 1 are an error naming the user.
    pub fn read(
        id: Option<i64>,
        item: Option<i64>,
        value: Option<f64>,
    ) -> anyhow::Result<RecentRow> {
        let (Some(user), Some(product), Some(rank)) = (id, item, value) else {
            anyhow::bail!(
                "a 'recent' row has a NULL id, item or value; the model table is damaged"
            );
        };
        anyhow::ensure!(
            rank >= 1.0 && rank <= u32::MAX as f64 && rank.fract() == 0.0,
            "the 'recent' row of user {user} has the rank {rank}; the model table is damaged"
        );
        Ok(RecentRow {
            user,
            product,
            rank: rank as u32,
        })
    }
}

/// The `recent` rows of `(user, product, time)` touches (any order; a
/// product touched twice counts at its latest time; NaN times come last):
/// per user, their latest `per_user` distinct products, ranked from 1.
/// Ties in time: the smaller product id first. Rows come by user id, then
/// rank.
pub fn of_touches(mut touches: Vec<(i64, i64, f64)>, per_user: usize) -> Vec<RecentRow> {
    // By user, then latest first (NaN after every time), then product id.
    touches.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| match (a.2.is_nan(), b.2.is_nan()) {
                (false, false) => b.2.total_cmp(&a.2),
                (x, y) => x.cmp(&y),
            })
            .then(a.1.cmp(&b.1))
    });
    let mut rows: Vec<RecentRow> = Vec::new();
    let mut start = 0;
    for (at, &(user, product, _)) in touches.iter().enumerate() {
        if at > 0 && touches[at - 1].0 != user {
            start = rows.len();
        }
        let own = &rows[start..];
        if own.len() >= per_user || own.iter().any(|r| r.product == product) {
            continue;
        }
        rows.push(RecentRow {
            user,
            product,
            rank: own.len() as u32 + 1,
        });
    }
    rows
}

/// `old` rows with newer touches `(user, product, time)` put before them:
/// each user with a touch gets their latest distinct products, the touches
/// first (latest first), then their old rows in rank order, at most
/// `per_user`; the other users keep theirs. Rows come by user, then rank.
pub fn merged(
    mut old: Vec<RecentRow>,
    newer: Vec<(i64, i64, f64)>,
    per_user: usize,
) -> Vec<RecentRow> {
    let fresh = of_touches(newer, per_user);
    old.sort_unstable_by_key(|r| (r.user, r.rank));
    let mut rows = Vec::with_capacity(old.len() + fresh.len());
    let (mut i, mut j) = (0, 0);
    // Both by user, then rank: one walk, a user at a time.
    while i < old.len() || j < fresh.len() {
        let user = match (old.get(i), fresh.get(j)) {
            (Some(a), Some(b)) => a.user.min(b.user),
            (Some(a), None) => a.user,
            (None, Some(b)) => b.user,
            (None, None) => break,
        };
        let start = rows.len();
        while j < fresh.len() && fresh[j].user == user {
            rows.push(fresh[j]);
            j += 1;
        }
        while i < old.len() && old[i].user == user {
            let own = rows.len() - start;
            if own < per_user && !rows[start..].iter().any(|x| x.product == old[i].product) {
                rows.push(RecentRow {
                    rank: own as u32 + 1,
                    ..old[i]
                });
            }
            i += 1;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_distinct_products_per_user() {
        let touches = vec![
            (7, 10, 1.0),
            (7, 11, 5.0),
            (7, 12, 3.0),
            (7, 10, 9.0), // 10 again, later: it is the latest
            (3, 20, f64::NAN),
            (3, 21, 2.0),
            (3, 22, 2.0), // a tie in time: 21 first
        ];
        let rows = of_touches(touches, 2);
        let got: Vec<(i64, i64, u32)> = rows.iter().map(|r| (r.user, r.product, r.rank)).collect();
        assert_eq!(got, [(3, 21, 1), (3, 22, 2), (7, 10, 1), (7, 11, 2)]);
    }

    #[test]
    fn newer_touches_go_first_and_other_users_keep_their_rows() {
        let row = |user, product, rank| RecentRow {
            user,
            product,
            rank,
        };
        let old = vec![row(1, 10, 1), row(1, 11, 2), row(1, 12, 3), row(2, 20, 1)];
        let got = merged(old, vec![(1, 11, 50.0), (1, 13, 40.0)], 3);
        assert_eq!(
            got,
            [row(1, 11, 1), row(1, 13, 2), row(1, 10, 3), row(2, 20, 1)]
        );
    }

    #[test]
    fn rows_read_back_and_bad_ones_are_named() {
        let r = RecentRow::read(Some(1), Some(2), Some(3.0)).unwrap();
        assert_eq!((r.user, r.product, r.rank), (1, 2, 3));
        let e = RecentRow::read(Some(7), Some(2), Some(0.5)).unwrap_err();
        assert!(e.to_string().contains("user 7 has the rank 0.5"), "{e}");
        let e = RecentRow::read(Some(7), None, Some(1.0)).unwrap_err();
        assert!(e.to_string().contains("NULL id, item or value"), "{e}");
    }
}
