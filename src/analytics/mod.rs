//! Stage 2: exploratory analytics over a cleaned events table, as SQL macros.
//!
//! Every macro takes the cleaned events table (the output of
//! `ecoreco.read_events` / `ecoreco.clean_events`, or any table with those
//! columns) as its first argument and reads it through `query_table`, so the
//! caller's TEMP tables work and no name is pasted into SQL. The bodies are
//! plain DuckDB SQL, one file each under `sql/macros/analytics/`, with as few
//! scans as the result allows (one for most; a per-user and a per-session
//! aggregation for `funnel`), later steps working on aggregated rows, and
//! window functions only over aggregated rows (never over the events).
//! benches/analytics.py times each against the same SQL written by hand.
//!
//! Conventions shared by all of them (and documented in README.md, section
//! "Analytics"):
//! - views / carts / purchases count rows whose event_type is exactly
//!   `view` / `cart` / `purchase`; other event types (`remove_from_cart` in
//!   the cosmetics files) count in totals only;
//! - revenue is the sum of `price` over purchase rows (a purchase with a NULL,
//!   i.e. missing or non-positive, price adds nothing), 0 when there is none;
//! - a ratio whose denominator is 0 is NULL (DuckDB 1.5+ would give inf);
//! - a session is a non-NULL `user_session` value; rows without one are left
//!   out of every session figure (and kept in every other one);
//! - parameters are checked when the query is bound, by a one-row
//!   `range(CASE WHEN <check> IS NOT TRUE THEN error(<message>) ... ELSE 1
//!   END) AS ecoreco_guard(ok)` in the FROM list (its arguments are folded
//!   before any row is read), so a bad value is an error even on an empty
//!   table; messages read "ecoreco.<function>: parameter \`<name>\` is
//!   <value>, pass <what is accepted>".

pub mod features;

use crate::binding::SqlMacro;
use crate::tables;

/// The macro bodies, one file each.
macro_rules! analytics_sql {
    ($file:literal) => {
        include_str!(concat!("../../sql/macros/analytics/", $file))
    };
}
pub(crate) use analytics_sql;

/// The opening of the WITH list shared by the macros that label products
/// (`label_counts`, `codes`, `brands`); each continues it after a comma.
macro_rules! with_product_labels {
    ($file:literal) => {
        concat!(
            crate::analytics::analytics_sql!("product_labels.sql"),
            ",\n",
            crate::analytics::analytics_sql!($file)
        )
    };
}
pub(crate) use with_product_labels;

pub fn macros() -> Vec<SqlMacro> {
    let events = |m: SqlMacro, columns: &[&str]| m.checking("events", &tables::events(columns));
    vec![
        events(
            SqlMacro::table("event_mix", &["events"], analytics_sql!("event_mix.sql")),
            &["event_type", "user_id"],
        ),
        SqlMacro::table(
            "missing_values",
            &["events"],
            analytics_sql!("missing_values.sql"),
        )
        .checking("events", &tables::raw_events_and(&[])),
        events(
            SqlMacro::table(
                "activity",
                &["events", "\"by\" := 'hour'"],
                analytics_sql!("activity.sql"),
            ),
            &[
                "event_type",
                "price",
                "user_id",
                "user_session",
                "hour",
                "day",
                "dayofweek",
                "date",
                "hour_bucket",
            ],
        ),
        events(
            SqlMacro::table(
                "price_stats",
                &["events"],
                analytics_sql!("price_stats.sql"),
            ),
            &["event_type", "price"],
        ),
        events(
            SqlMacro::table(
                "session_stats",
                &["events"],
                analytics_sql!("session_stats.sql"),
            ),
            &["event_time", "event_type", "user_session"],
        ),
        events(
            SqlMacro::table("funnel", &["events"], analytics_sql!("funnel.sql")),
            &["event_type", "user_id", "user_session"],
        ),
        events(
            SqlMacro::table(
                "top_products",
                &["events", "\"by\" := 'views'", "k := 10"],
                with_product_labels!("top_products.sql"),
            ),
            &[
                "event_type",
                "product_id",
                "category_code",
                "brand",
                "price",
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events table argument, as every macro reads it.
    const SRC: &str = "query_table(events)";

    #[test]
    fn every_macro_reads_its_table_argument_only_through_query_table() {
        let all: Vec<SqlMacro> = macros().into_iter().chain(features::macros()).collect();
        let mut names: Vec<&str> = all.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate macro names");
        for m in &all {
            assert!(m.table, "{} is a table macro", m.name);
            assert_eq!(m.params[0], "events", "{}: the table comes first", m.name);
            assert!(m.body.contains(SRC), "{} reads query_table(events)", m.name);
        }
    }

    #[test]
    fn error_messages_name_their_own_function_and_say_what_to_pass() {
        let mut messages = 0;
        for m in macros().into_iter().chain(features::macros()) {
            for (at, _) in m.body.match_indices("error('") {
                let message = &m.body[at + "error('".len()..];
                // The check of the table's columns (binding::sql::checked_table).
                if message.starts_with(&format!("ecoreco.{}' || ': '", m.name)) {
                    continue;
                }
                let expected = format!("ecoreco.{}: parameter `", m.name);
                assert!(message.starts_with(&expected), "{}: {message:.60}", m.name);
                let end = message.find("error('").unwrap_or(message.len());
                assert!(
                    message[..end].contains(", pass "),
                    "{}: {message:.120}",
                    m.name
                );
                messages += 1;
            }
        }
        // activity: the guard and the bucket CASE; top_products: `by` and `k`.
        assert_eq!(messages, 4);
    }
}
