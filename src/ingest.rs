//! Stage 1: ingest REES46 CSV files and clean them, as SQL macros.
//!
//! DuckDB's CSV reader is the fastest parser available to us (parallel,
//! typed, glob- and gzip-aware), so `read_events` is a macro over `read_csv`
//! with an explicit schema, plus the cleaning rules of the original pipeline.
//!
//! Bad lines are never lost silently. The reader runs with `store_rejects`,
//! so every line it cannot parse (wrong column count, a bad number or
//! timestamp, a truncated last line) is recorded with its line number and
//! reason in the caller's TEMP table `ecoreco_reject_errors`;
//! `ecoreco.rejects()` lists them one row per line. Rows in = rows kept +
//! rows rejected holds for every query shape because the cleaning filter
//! references every column: DuckDB only converts (and so only rejects) the
//! columns a query reads, and a plain `count(*)` would otherwise skip them.
//!
//! Rules for lines that parse but look odd (documented in the README):
//! - event types other than view/cart/purchase (e.g. `remove_from_cart` from
//!   the sister cosmetics files) are kept verbatim; later stages ignore them;
//! - an empty user_session, product_id or user_id is kept as NULL;
//! - exact duplicate rows are kept (the source has them; dedup is a choice).

use crate::binding::SqlMacro;

/// The raw REES46 columns with the types we read them as.
pub const RAW_COLUMNS: [(&str, &str); 9] = [
    ("event_time", "TIMESTAMP"),
    ("event_type", "VARCHAR"),
    ("product_id", "BIGINT"),
    // category_id reaches 2.2e18: BIGINT holds up to 9.2e18.
    ("category_id", "BIGINT"),
    ("category_code", "VARCHAR"),
    ("brand", "VARCHAR"),
    ("price", "DOUBLE"),
    ("user_id", "BIGINT"),
    ("user_session", "VARCHAR"),
];

/// The `event_time` text format: the literal ` UTC` suffix is part of it.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S UTC";

pub const REJECT_ERRORS_TABLE: &str = "ecoreco_reject_errors";
pub const REJECT_SCANS_TABLE: &str = "ecoreco_reject_scans";

/// 'unknown' for empty, NULL, blank or 'NaN' text (pandas wrote NaN for
/// empties). Cheap tests first: only short values are trimmed and
/// lower-cased, which matters at millions of rows.
fn unknown_when_missing(column: &str) -> String {
    format!(
        "CASE WHEN {column} IS NULL OR {column} = '' OR (length({column}) <= 5 AND \
         (trim({column}) = '' OR lower(trim({column})) = 'nan')) THEN 'unknown' ELSE {column} END AS {column}"
    )
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// The cleaning projection over a source that has the raw columns with
/// `event_time` already a TIMESTAMP. Time features come from the time of day
/// in microseconds (event time minus its midnight) with three integer
/// divisions, and one DATE cast: calendar date-part calls, or a modulo per
/// feature, would cost a third of the whole ingest.
fn clean_select(source: &str, text: fn(&str) -> String) -> String {
    format!(
        "SELECT event_time, event_type, product_id, category_id, {cc}, {brand}, \
         CASE WHEN price > 0 THEN price::DOUBLE END AS price, user_id, user_session, \
         hours::INTEGER AS hour, (minutes - hours * 60)::INTEGER AS minute, (seconds - minutes * 60)::INTEGER AS second, \
         day(d)::INTEGER AS day, month(d)::INTEGER AS month, \
         (isodow(d) % 7 + 1)::INTEGER AS dayofweek, d AS date, make_timestamp(midnight + hours * {MICROS_PER_HOUR}) AS hour_bucket \
         FROM (SELECT *, micros // {MICROS_PER_HOUR} AS hours, micros // 60000000 AS minutes, micros // 1000000 AS seconds \
         FROM (SELECT *, epoch_us(event_time) - epoch_us(d) AS micros, epoch_us(d) AS midnight \
         FROM (SELECT *, event_time::DATE AS d FROM {source} \
               WHERE hash(event_time, event_type, product_id, category_id, category_code, brand, price, user_id, user_session) IS NOT NULL)))",
        cc = text("category_code"),
        brand = text("brand"),
    )
}

/// For `read_events`, whose reader already turned empty and NaN fields into
/// NULL (`nullstr`), which is much cheaper than testing text afterwards.
fn unknown_when_null(column: &str) -> String {
    format!("coalesce({column}, 'unknown') AS {column}")
}

fn read_csv_call() -> String {
    let columns: Vec<String> = RAW_COLUMNS
        .iter()
        .map(|(n, t)| format!("'{n}': '{t}'"))
        .collect();
    format!(
        "read_csv(path, header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', \
         columns = {{{}}}, timestampformat = '{TIME_FORMAT}', nullstr = ['', 'NaN', 'nan'], store_rejects = true, \
         rejects_table = '{REJECT_ERRORS_TABLE}', rejects_scan = '{REJECT_SCANS_TABLE}')",
        columns.join(", ")
    )
}

pub fn macros() -> Vec<SqlMacro> {
    vec![
        // read_events(path): a file, a glob or a list of files, .csv or .csv.gz.
        SqlMacro::table("read_events", &["path"], clean_select(&read_csv_call(), unknown_when_null)),
        // clean_events(table): the same cleaning over a table that already has
        // the raw columns, e.g. ecoreco_synth output kept in DuckDB. Its
        // event_time may be the REES46 text or a TIMESTAMP.
        SqlMacro::table(
            "clean_events",
            &["raw_events"],
            clean_select(
                &format!(
                "(SELECT * REPLACE (coalesce(try_strptime(event_time::VARCHAR, '{TIME_FORMAT}'), \
                 try_cast(event_time::VARCHAR AS TIMESTAMP)) AS event_time, \
                 event_type::VARCHAR AS event_type, category_code::VARCHAR AS category_code, brand::VARCHAR AS brand, \
                 price::DOUBLE AS price, user_session::VARCHAR AS user_session) FROM query_table(raw_events))"
                ),
                unknown_when_missing,
            ),
        ),
        // rejects(): one row per rejected line of the most recent read of
        // each file in this connection.
        SqlMacro::table(
            "rejects",
            // Table names as parameters: a macro body is bound when created,
            // and these TEMP tables only exist once a read has run.
            &[&format!("errors_table := '{REJECT_ERRORS_TABLE}'"), &format!("scans_table := '{REJECT_SCANS_TABLE}'")],
            "WITH scans AS (FROM query_table(scans_table)), \
                 latest AS (SELECT file_path, max(scan_id) AS scan_id FROM scans GROUP BY file_path) \
                 SELECT s.file_path AS file, e.line, min(e.byte_position) AS byte_position, \
                 string_agg(DISTINCT e.error_type::VARCHAR, '; ' ORDER BY e.error_type::VARCHAR) AS error_type, \
                 first(e.error_message ORDER BY e.column_idx) AS reason, first(e.csv_line) AS csv_line, e.scan_id \
                 FROM query_table(errors_table) e \
                 JOIN scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id \
                 JOIN latest l ON l.file_path = s.file_path AND l.scan_id = s.scan_id \
                 GROUP BY s.file_path, e.scan_id, e.line ORDER BY file, e.line",
        ),
        // count_lines(path): data lines in the files (headers excluded), the
        // "rows in" of the accounting rows in = kept + rejected.
        SqlMacro::table(
            "count_lines",
            &["path"],
            "SELECT filename AS file, count(*) - 1 AS data_lines FROM read_text(path), \
             LATERAL (SELECT unnest(string_split(rtrim(replace(content, chr(13), ''), chr(10)), chr(10)))) \
             GROUP BY filename ORDER BY filename",
        ),
    ]
}
