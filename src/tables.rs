//! The pipeline's tables as inputs of its functions: the columns each holds
//! (with the SQL type a missing one stands in as while the query binds), and
//! what a function asks for when it gets another table. A function requires
//! only the columns it reads ([`crate::binding::sql::Expect::of`]), so any
//! table with those columns works, as the documentation says.

use crate::binding::sql::Expect;

/// The nine columns of the REES46 files, in their order, with `event_time`
/// of the type given (text in the raw files, a timestamp once cleaned),
/// followed by `more`: the raw table and the cleaned events share them.
macro_rules! rees46_columns {
    ($event_time:literal $(, $more:expr)*) => {
        &[
            ("event_time", $event_time),
            ("event_type", "VARCHAR"),
            ("product_id", "BIGINT"),
            ("category_id", "BIGINT"),
            ("category_code", "VARCHAR"),
            ("brand", "VARCHAR"),
            ("price", "DOUBLE"),
            ("user_id", "BIGINT"),
            ("user_session", "VARCHAR"),
            $($more,)*
        ]
    };
}

/// The cleaned events (`ecoreco.read_events`, `ecoreco.clean_events`).
pub const EVENTS: &[(&str, &str)] = rees46_columns!(
    "TIMESTAMP",
    ("hour", "INTEGER"),
    ("day", "INTEGER"),
    ("dayofweek", "INTEGER"),
    ("date", "DATE"),
    ("hour_bucket", "TIMESTAMP")
);
pub const PASS_EVENTS: &str =
    "pass the events: the output of ecoreco.read_events(path) or ecoreco.clean_events(raw_table)";

/// The nine raw REES46 columns `ecoreco.clean_events` cleans.
pub const RAW: &[(&str, &str)] = rees46_columns!("VARCHAR");
pub const PASS_RAW: &str = "pass a table with the nine raw REES46 columns (event_time, event_type, product_id, \
     category_id, category_code, brand, price, user_id, user_session), such as ecoreco_synth(...) output";

/// One row per user (`ecoreco.rfm_features`).
pub const USERS: &[(&str, &str)] = &[
    ("user_id", "BIGINT"),
    ("recency", "DOUBLE"),
    ("frequency", "BIGINT"),
    ("monetary", "DOUBLE"),
];
pub const PASS_USERS: &str = "pass the output of ecoreco.rfm_features(events)";

/// An ALS model (`ecoreco.als_train`, `ecoreco.als_import_spark`).
pub const MODEL: &[(&str, &str)] = &[
    ("seq", "BIGINT"),
    ("model_id", "BIGINT"),
    ("side", "VARCHAR"),
    ("id", "BIGINT"),
    ("item", "BIGINT"),
    ("name", "VARCHAR"),
    ("value", "DOUBLE"),
    ("factors", "FLOAT[]"),
];
pub const PASS_MODEL: &str =
    "pass a model made by ecoreco.als_train(events) (CREATE TABLE model AS FROM ecoreco.als_train(events))";

/// A k-means model (`ecoreco.kmeans_model`).
pub const KMODEL: &[(&str, &str)] = &[
    ("kind", "VARCHAR"),
    ("user_id", "BIGINT"),
    ("segment_id", "INTEGER"),
    ("segment", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("value", "DOUBLE"),
    ("distance", "DOUBLE"),
    ("users", "BIGINT"),
    ("within_ss", "DOUBLE"),
    ("silhouette", "DOUBLE"),
    ("silhouette_metric", "VARCHAR"),
    ("sample_size", "BIGINT"),
    ("iterations", "INTEGER"),
];
pub const PASS_KMODEL: &str =
    "pass a model made by ecoreco.kmeans_model(users) (CREATE TABLE kmodel AS FROM ecoreco.kmeans_model(users))";

/// The windows of a replay (`ecoreco.replay`).
pub const WINDOWS: &[(&str, &str)] = &[
    ("window_start", "TIMESTAMP"),
    ("events", "BIGINT"),
    ("late_events", "BIGINT"),
    ("ignored_events", "BIGINT"),
    ("active_users", "BIGINT"),
    ("new_users", "BIGINT"),
    ("unknown_users", "BIGINT"),
    ("recommendations", "BIGINT"),
    ("fallback_share", "DOUBLE"),
    ("processing_ms", "DOUBLE"),
    ("events_per_s", "DOUBLE"),
    ("p50_ms", "DOUBLE"),
    ("p95_ms", "DOUBLE"),
    ("p99_ms", "DOUBLE"),
];
pub const PASS_WINDOWS: &str = "pass the output of ecoreco.replay(events, ...)";

/// The events columns that ALS training, the fold-in (replay, als_update)
/// and explain read: who touched which product of which category, how and
/// when.
pub const INTERACTION_COLUMNS: [&str; 5] = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "user_id",
];

/// The events table of the columns `names`.
pub fn events(names: &[&str]) -> Expect {
    Expect::of(EVENTS, names, PASS_EVENTS)
}

/// The events table of the nine raw REES46 columns (as cleaned) and `more`.
pub fn raw_events_and(more: &[&str]) -> Expect {
    let names: Vec<&str> = RAW
        .iter()
        .map(|c| c.0)
        .chain(more.iter().copied())
        .collect();
    events(&names)
}

/// A users table: the columns `names` of `rfm_features`.
pub fn users(names: &[&str]) -> Expect {
    Expect::of(USERS, names, PASS_USERS)
}

/// A model table of the columns `names`.
pub fn model(names: &[&str]) -> Expect {
    Expect::of(MODEL, names, PASS_MODEL)
}

/// The clustering features of `rfm_features` (the default `columns` of the
/// k-means functions), standing in while a call binds.
pub const USER_FEATURES: &[(&str, &str)] = &[
    ("recency", "DOUBLE"),
    ("frequency", "BIGINT"),
    ("monetary", "DOUBLE"),
    ("total_events", "BIGINT"),
    ("purchases", "BIGINT"),
    ("conversion_rate", "DOUBLE"),
    ("cart_abandonment", "DOUBLE"),
    ("unique_products", "BIGINT"),
];

/// A features table: `user_id` and the columns the call's `columns` names.
pub fn features() -> Expect {
    users(&["user_id"]).and_named_by("columns", USER_FEATURES)
}

/// A k-means model table of the columns `names`.
pub fn kmeans_model(names: &[&str]) -> Expect {
    Expect::of(KMODEL, names, PASS_KMODEL)
}

/// Each user's segment (`ecoreco.kmeans_segments`).
pub const SEGMENTS: &[(&str, &str)] = &[
    ("user_id", "BIGINT"),
    ("segment_id", "INTEGER"),
    ("segment", "VARCHAR"),
];
pub const PASS_SEGMENTS: &str = "pass the output of ecoreco.kmeans_segments(users)";

/// The scores of `ecoreco.evaluate_recommendations`.
pub const EVALUATION: &[(&str, &str)] = &[
    ("model", "VARCHAR"),
    ("k", "BIGINT"),
    ("precision", "DOUBLE"),
    ("recall", "DOUBLE"),
    ("ndcg", "DOUBLE"),
    ("map", "DOUBLE"),
    ("coverage", "DOUBLE"),
    ("users_evaluated", "BIGINT"),
];
pub const PASS_EVALUATION: &str = "pass the output of ecoreco.evaluate_recommendations(events)";

/// What `ecoreco.als_train` and `ecoreco.evaluate_recommendations` learn
/// from: events, or any table of (user, product[, weight][, time]) rows whose
/// columns `user_col` and `item_col` name.
pub fn interactions_source() -> Expect {
    Expect::of(EVENTS, &[], PASS_SOURCE).and_named_by(
        "[user_col, item_col]",
        &[("user_id", "BIGINT"), ("product_id", "BIGINT")],
    )
}
pub const PASS_SOURCE: &str =
    "pass the events (the output of ecoreco.read_events) or a table of interactions, \
     naming its user and product columns with user_col := '...' and item_col := '...'";

/// The line-protocol lines `ecoreco.influx_write` sends.
pub fn lines() -> Expect {
    Expect::of(
        &[("line", "VARCHAR")],
        &["line"],
        "pass the output of ecoreco.influx_lines(windows)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_are_the_raw_columns_cleaned_and_five_more() {
        assert_eq!((RAW.len(), EVENTS.len()), (9, 14));
        assert_eq!(RAW[0], ("event_time", "VARCHAR"));
        assert_eq!(EVENTS[0], ("event_time", "TIMESTAMP"));
        assert_eq!(EVENTS[1..9], RAW[1..9]);
        assert_eq!(RAW[8], ("user_session", "VARCHAR"));
        assert_eq!(EVENTS[13], ("hour_bucket", "TIMESTAMP"));
    }

    #[test]
    fn a_model_table_is_what_the_model_layer_writes() {
        let names: Vec<&str> = MODEL.iter().map(|c| c.0).collect();
        assert_eq!(names, crate::model::table::COLUMNS);
        let types: Vec<String> = crate::binding::model_table::columns()
            .iter()
            .map(|c| c.ty.sql_name())
            .collect();
        let declared: Vec<&str> = MODEL.iter().map(|c| c.1).collect();
        assert_eq!(types, declared);
    }
}
