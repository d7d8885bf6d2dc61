//! Real time: replaying events one by one against a trained model, with
//! incremental per-user state, the ALS fold-in, a fresh top-k after every
//! event, windowed metrics and InfluxDB monitoring.
//!
//! - [`clock`]: tumbling windows, the watermark, late events, pacing;
//! - [`state`]: per-user and per-product state;
//! - [`foldin`]: the exact least-squares fold-in (Woodbury / Cholesky);
//! - [`score`]: the exact collaborative top-k of a folded-in user from
//!   their products' rows of product-by-product scores; [`anchor`]: of a
//!   user with many products, from the last scan's while near its vector;
//! - [`replay`]: the driver, partitioned by user, with latency measurement;
//! - [`lineproto`]: InfluxDB line protocol; [`http`]: the writer;
//!   [`monitor`]: the metrics sent while a replay runs, the InfluxDB functions;
//! - [`functions`], [`outputs`]: the replay and session SQL functions;
//!   [`sessions`]: a session's list, and the lists of a table of sessions.

pub mod anchor;
pub mod clock;
pub mod foldin;
pub mod http;
pub mod lineproto;
pub mod monitor;
pub mod outputs;
mod product_scores;
pub mod replay;
pub mod rules;
pub mod score;
pub mod sessions;
pub mod state;

pub mod functions;
#[cfg(test)]
mod item_tests;
#[cfg(test)]
mod score_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod weighting_tests;

use crate::binding::aggregate;
use crate::binding::sql::Expect;
use crate::binding::SqlMacro;
use crate::tables;
use functions::{Output, Replay};
use outputs::{Products, Recommendations, Windows};

/// The replay macros' parameters: the table, the two intervals and the
/// arrival column (macro-only: `window` is an SQL keyword, written
/// `"window" := INTERVAL 1 MINUTE` in calls), then the declared ones.
fn replay_signature() -> Vec<String> {
    aggregate::signature::<Replay<Windows>>(
        &[
            "events",
            "\"window\" := INTERVAL 5 MINUTE",
            "watermark := INTERVAL 10 MINUTE",
            "arrival := NULL",
        ],
        &crate::recommend::rules::rule_table_params(),
    )
}

fn replay_macro<O: Output>(name: &'static str, projection: &str) -> SqlMacro {
    let signature = replay_signature();
    let signature: Vec<&str> = signature.iter().map(String::as_str).collect();
    SqlMacro::table(
        name,
        &signature,
        format!(
            "SELECT {projection} FROM ({}) w",
            functions::replay_sql::<Replay<O>>(O::FUNCTION)
        ),
    )
    .checking("events", &tables::events(&tables::INTERACTION_COLUMNS))
    .checking("model", &serving_model())
}

pub fn macros() -> Vec<SqlMacro> {
    // Result columns are qualified (`w.`): an unqualified `events` would
    // be the macro's table parameter.
    let windows = "make_timestamp(w.window_start_us) AS window_start, make_timestamp(w.window_end_us) AS window_end, \
         w.events AS events, w.late_events, w.ignored_events, w.active_users, w.new_users, w.unknown_users, w.recommendations, \
         w.fallback_share, w.processing_ms, w.events_per_s, w.p50_ms, w.p95_ms, w.p99_ms, w.closed_by";
    let recommendations = "w.event, make_timestamp(w.event_time_us) AS event_time, make_timestamp(w.window_start_us) AS window_start, \
         w.user_id, w.rank, w.product_id, w.score, w.source, w.latency_ms";
    // `model` comes first and positional here, as in the signature.
    let rule_tables = crate::recommend::rules::rule_table_params();
    let mut session = aggregate::signature::<sessions::RecommendSession>(
        &["model", "product_ids", "event_types"],
        &rule_tables,
    );
    session.retain(|p| !p.starts_with("model :="));
    let session: Vec<&str> = session.iter().map(String::as_str).collect();
    let mut sessions = aggregate::signature::<sessions::RecommendSessions>(
        &[
            "model",
            "sessions",
            "session_col := 'user_session'",
            "order_col := 'event_time'",
        ],
        &rule_tables,
    );
    sessions.retain(|p| !p.starts_with("model :="));
    let sessions: Vec<&str> = sessions.iter().map(String::as_str).collect();
    let write = aggregate::signature::<monitor::InfluxWrite>(&["lines"], &[]);
    let write: Vec<&str> = write.iter().map(String::as_str).collect();
    vec![
        replay_macro::<Windows>("replay", windows),
        replay_macro::<Recommendations>("replay_recommendations", recommendations),
        replay_macro::<Products>("replay_products", "w.*"),
        SqlMacro::table("recommend_session", &session, sessions::session_sql())
            .checking("model", &serving_model()),
        SqlMacro::table("recommend_sessions", &sessions, sessions::sessions_sql())
            .checking("model", &serving_model()),
        SqlMacro::scalar(
            "influx_line",
            &["measurement", "tags", "fields", "time_ns := NULL"],
            "ecoreco_influx_line(measurement, to_json(tags), to_json(fields), time_ns)",
        ),
        SqlMacro::table(
            "influx_lines",
            &["windows", "model := 'model'", "run := 'replay'"],
            include_str!("../../sql/macros/stream_influx_lines.sql"),
        )
        .checking(
            "windows",
            &Expect::of(
                tables::WINDOWS,
                &tables::WINDOWS.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
                tables::PASS_WINDOWS,
            ),
        ),
        SqlMacro::table("influx_write", &write, monitor::influx_write_sql())
            .checking("lines", &tables::lines()),
    ]
}

/// The model a replay or a session folds users into, named by a string.
fn serving_model() -> Expect {
    tables::model(&["model_id", "side", "id", "item", "name", "value", "factors"]).by_name()
}
