//! Stage 3: user (RFM + behaviour) and product features, as SQL macros,
//! beside the analytics they share their SQL with.
//!
//! Same conventions as [`crate::analytics`] (documented in README.md, section
//! "Analytics"), bodies in `sql/macros/analytics/` beside its own: the events
//! table is read through `query_table`, views / carts / purchases are rows of
//! exactly that event_type, revenue and monetary sum the prices of purchase
//! rows. Rows with a NULL user_id are left
//! out of `rfm_features` and rows with a NULL product_id out of
//! `product_features` (a feature row needs a key); `rfm_features` has exactly
//! one row per user, as the k-means macros require.

use crate::analytics::{analytics_sql, with_product_labels};
use crate::binding::SqlMacro;
use crate::tables;

pub fn macros() -> Vec<SqlMacro> {
    vec![
        SqlMacro::table(
            "rfm_features",
            &["events"],
            analytics_sql!("rfm_features.sql"),
        )
        .checking("events", &tables::raw_events_and(&["date"])),
        SqlMacro::table(
            "product_features",
            &["events"],
            with_product_labels!("product_features.sql"),
        )
        .checking(
            "events",
            &tables::events(&[
                "event_type",
                "product_id",
                "category_code",
                "brand",
                "price",
                "user_id",
            ]),
        ),
    ]
}
