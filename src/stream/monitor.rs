//! Monitoring: the InfluxDB side of the real-time stage. The replay's
//! window callback that sends closed windows from a writer thread, the
//! points of a window, and the SQL functions `ecoreco_influx_line` (one
//! point from JSON structs) and `ecoreco_influx_write` (lines to a server).

use super::http::{Target, Writer};
use super::lineproto::{self, FieldValue};
use super::replay::{self, WindowRow};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::scalar::ScalarFunction;
use crate::binding::{Args, Column, ColumnWriter, Param, SqlType, Value};
use crate::budget;
use anyhow::{anyhow, bail, ensure, Result};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long one InfluxDB request may take before it is an error.
const INFLUX_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `body` with a window callback that sends each closed window's
/// metrics to InfluxDB from a separate thread (so the replay never waits
/// for the network); the first failed write ends the call with its error.
pub(crate) fn with_metrics_writer(
    target: Option<Target>,
    tags: &[(&str, &str)],
    body: impl FnOnce(&mut dyn FnMut(&[WindowRow]) -> Result<()>) -> Result<replay::Outcome>,
) -> Result<replay::Outcome> {
    let Some(target) = target else {
        return body(&mut |_| Ok(()));
    };
    let (send, receive) = mpsc::channel::<String>();
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let failure = failed.clone();
    let writer = std::thread::spawn(move || {
        let mut writer = Writer::new(target, INFLUX_TIMEOUT);
        for body in receive {
            if let Err(e) = writer.post(&body) {
                *crate::threads::lock(&failure) = Some(format!("{e:#}"));
                return;
            }
        }
    });
    let first_failure = || crate::threads::lock(&failed).clone();
    let outcome = body(&mut |rows| {
        if let Some(e) = first_failure() {
            bail!("{e}");
        }
        let mut text = String::new();
        for row in rows {
            window_lines(&mut text, row, tags)?;
        }
        send.send(text)
            .map_err(|_| anyhow!("the metrics writer stopped"))
    });
    drop(send);
    writer
        .join()
        .map_err(|_| anyhow!("the metrics writer panicked"))?;
    let outcome = outcome?;
    if let Some(e) = first_failure() {
        bail!("{e}");
    }
    Ok(outcome)
}

/// The two points of one window, `ecoreco_events` and
/// `ecoreco_recommendations`, at the window's start (the same lines
/// `ecoreco.influx_lines` makes of the window rows).
pub fn window_lines(out: &mut String, w: &WindowRow, tags: &[(&str, &str)]) -> Result<()> {
    let tags: Vec<(String, Option<String>)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
    let int = |k: &str, v: u64| (k.to_string(), Some(FieldValue::Int(v as i64)));
    let float = |k: &str, v: Option<f64>| (k.to_string(), v.map(FieldValue::Float));
    let time = Some(w.start.saturating_mul(1000));
    lineproto::write_point(
        out,
        "ecoreco_events",
        &tags,
        &[
            int("events", w.events),
            int("late_events", w.late_events),
            int("ignored_events", w.ignored_events),
            int("active_users", w.active_users),
            int("new_users", w.new_users),
            int("unknown_users", w.unknown_users),
        ],
        time,
    )?;
    lineproto::write_point(
        out,
        "ecoreco_recommendations",
        &tags,
        &[
            int("recommendations", w.recommendations),
            float("fallback_share", w.fallback_share),
            float("processing_ms", w.processing_ms),
            float("events_per_s", w.events_per_s),
            float("p50_ms", w.p50_ms),
            float("p95_ms", w.p95_ms),
            float("p99_ms", w.p99_ms),
        ],
        time,
    )?;
    Ok(())
}

/// `ecoreco_influx_line(measurement, tags_json, fields_json, time_ns)`.
pub struct InfluxLine;
impl ScalarFunction for InfluxLine {
    const NAME: &'static str = "ecoreco_influx_line";
    fn params() -> Vec<SqlType> {
        vec![
            SqlType::Varchar,
            SqlType::Varchar,
            SqlType::Varchar,
            SqlType::BigInt,
        ]
    }
    fn returns() -> SqlType {
        SqlType::Varchar
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> Result<()> {
        for row in 0..input.rows() {
            let measurement = input.str(0, row).ok_or_else(|| {
                anyhow!("measurement is NULL, pass a name such as 'ecoreco_window'")
            })?;
            match lineproto::line_from_json(
                measurement,
                input.str(1, row),
                input.str(2, row),
                input.i64(3, row),
            )? {
                Some(line) => out.set_str(row, &line),
                None => out.set_null(row),
            }
        }
        Ok(())
    }
}

/// `ecoreco_influx_write`: sends the lines (NULLs skipped), returns
/// `lines, requests, bytes`.
#[derive(Default)]
pub struct WriteState {
    lines: Vec<String>,
}

pub struct InfluxWrite;
impl AggregateFunction for InfluxWrite {
    const NAME: &'static str = "ecoreco_influx_write";
    const FUNCTION: &'static str = "ecoreco.influx_write";
    const EMPTY: &'static str =
        "no lines to write; pass a table or view with a `line` column that has rows";
    type State = WriteState;
    fn inputs() -> Vec<Column> {
        vec![Column::new("line", SqlType::Varchar)]
    }
    fn params() -> Vec<Param> {
        use SqlType::*;
        vec![
            Param::named(
                "url",
                Varchar,
                Value::Text("http://127.0.0.1:8086".into()),
                "an InfluxDB address such as 'http://127.0.0.1:8086'",
            ),
            Param::named(
                "database",
                Varchar,
                Value::Text("ecoreco".into()),
                "an InfluxDB database name, e.g. 'ecoreco'",
            ),
            Param::supplied(
                "external_access",
                Boolean,
                "current_setting('enable_external_access')",
            ),
            Param::supplied("threads", BigInt, "current_setting('threads')"),
        ]
    }
    fn columns() -> Vec<Column> {
        ["lines", "requests", "bytes"]
            .iter()
            .map(|n| Column::new(n, SqlType::BigInt))
            .collect()
    }
    fn update(
        state: &mut WriteState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        let at = input.col("line")?;
        for row in rows {
            if let Some(line) = input.str(at, row) {
                ensure!(
                    !line.contains('\n'),
                    "a line contains a line break; pass one point per row"
                );
                budget::reserve(&mut state.lines, 1, "the lines")?;
                state.lines.push(line.to_string());
            }
        }
        Ok(())
    }
    fn combine(target: &mut WriteState, source: WriteState) -> Result<()> {
        budget::reserve(&mut target.lines, source.lines.len(), "the lines")?;
        target.lines.extend(source.lines);
        Ok(())
    }
    fn finalize(state: WriteState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        ensure!(
            call.boolean("external_access")?,
            "refused because enable_external_access is false; allow external access to send metrics"
        );
        let mut writer = Writer::new(
            Target::new(call.text("url")?, call.text("database")?)?,
            INFLUX_TIMEOUT,
        );
        writer.send(&state.lines)?;
        let w = writer.written;
        let mut rows = RowSet::for_columns(&Self::columns());
        let (lines, requests, bytes) = (
            rows.col("lines")?,
            rows.col("requests")?,
            rows.col("bytes")?,
        );
        rows.put(lines, Some(w.lines as i64));
        rows.put(requests, Some(w.requests as i64));
        rows.put(bytes, Some(w.bytes as i64));
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// The body of `ecoreco.influx_write`.
pub fn influx_write_sql() -> String {
    aggregate::rows_sql::<InfluxWrite>(
        "ecoreco.influx_write",
        &["line::VARCHAR"],
        &[],
        "query_table(lines)",
    )
}
