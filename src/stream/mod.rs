//! Real time: replaying events one by one against a trained model, with
//! incremental per-user state, the ALS fold-in, a fresh top-k after every
//! event, windowed metrics and InfluxDB monitoring.
//!
//! - [`clock`]: tumbling windows, the watermark, late events, pacing;
//! - [`state`]: per-user and per-product state;
//! - [`foldin`]: the exact least-squares fold-in (Woodbury / Cholesky);
//! - [`replay`]: the driver, partitioned by user, with latency measurement;
//! - [`lineproto`]: InfluxDB line protocol; [`http`]: the writer.

pub mod clock;
pub mod foldin;
pub mod http;
pub mod lineproto;
pub mod replay;
pub mod state;

#[cfg(test)]
mod tests;
pub mod functions;

use crate::binding::SqlMacro;

/// The replay's parameters, in macro syntax (names kept by the issue:
/// model, window, watermark, speed, k, seed, arrival).
const REPLAY_PARAMS: [&str; 18] = [
    "events",
    "model := 'model'",
    "\"window\" := INTERVAL 5 MINUTE",
    "watermark := INTERVAL 10 MINUTE",
    "speed := 0",
    "k := 10",
    "seed := 42",
    "arrival := NULL",
    "blend := 0.8",
    "exclude_purchased := true",
    "late := 'skip'",
    "view := 1",
    "cart := 3",
    "purchase := 5",
    "cap := 10",
    "influx := NULL",
    "influx_database := 'ecoreco'",
    "run := 'replay'",
];

/// The settings every replay aggregate takes first (see `functions`).
const REPLAY_SETTINGS: &str = "(epoch(\"window\"::INTERVAL) * 1000000)::BIGINT, (epoch(watermark::INTERVAL) * 1000000)::BIGINT, \
     speed, k, seed, blend, exclude_purchased, late, view, cart, purchase, cap, current_setting('threads')::BIGINT, \
     model, ecoreco_model_ready(model), influx, influx_database, run, current_setting('enable_external_access')::BOOLEAN";

const FEED_COLUMNS: &str = "f.ordinal, f.time_us, f.event_type, f.product_id, f.category_id, f.user_id, \
     f.side, f.id, f.item, f.name, f.value, f.factors, f.model_id";

fn replay_body(aggregate: &str, projection: &str) -> String {
    format!(
        "SELECT {projection} FROM (SELECT unnest({aggregate}({REPLAY_SETTINGS}, {FEED_COLUMNS}), recursive := true) FROM ({feed}) f)",
        feed = include_str!("../../sql/macros/stream_feed.sql"),
    )
}

pub fn macros() -> Vec<SqlMacro> {
    use functions::Output;
    let windows = "make_timestamp(window_start_us) AS window_start, make_timestamp(window_end_us) AS window_end, \
         events, late_events, ignored_events, active_users, new_users, unknown_users, recommendations, fallback_share, \
         processing_ms, events_per_s, p50_ms, p95_ms, p99_ms, closed_by";
    let recommendations = "event, make_timestamp(event_time_us) AS event_time, make_timestamp(window_start_us) AS window_start, \
         user_id, rank, product_id, score, source";
    vec![
        SqlMacro::table("replay", &REPLAY_PARAMS, replay_body(functions::Windows::NAME, windows)),
        SqlMacro::table(
            "replay_recommendations",
            &REPLAY_PARAMS,
            replay_body(functions::Recommendations::NAME, recommendations),
        ),
        SqlMacro::table("replay_products", &REPLAY_PARAMS, replay_body(functions::Products::NAME, "*")),
        SqlMacro::table(
            "recommend_session",
            &["model", "product_ids", "event_types", "k := 10", "blend := 0.8", "view := 1", "cart := 3", "purchase := 5", "cap := 10"],
            include_str!("../../sql/macros/stream_session.sql"),
        ),
        SqlMacro::scalar(
            "influx_line",
            &["measurement", "tags", "fields", "time_ns := NULL"],
            "ecoreco_influx_line(measurement, to_json(tags), to_json(fields), time_ns)",
        ),
        SqlMacro::table(
            "influx_lines",
            &["windows", "model := 'model'", "run := 'replay'"],
            include_str!("../../sql/macros/stream_influx_lines.sql"),
        ),
        SqlMacro::table(
            "influx_write",
            &["lines", "url := 'http://127.0.0.1:8086'", "database := 'ecoreco'"],
            "SELECT unnest(ecoreco_influx_write(line, url, database, current_setting('enable_external_access')::BOOLEAN), recursive := true) \
             FROM query_table(lines)",
        ),
    ]
}
