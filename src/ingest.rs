//! Stage 1: ingest REES46 CSV files and clean them, as SQL macros.
//!
//! DuckDB's CSV reader is the fastest parser available to us (parallel,
//! typed, glob- and gzip-aware), so `read_events` is a macro over `read_csv`
//! with an explicit schema, plus the cleaning rules of the original pipeline.
//! The SQL is constant and lives in `sql/macros/ingest_*.sql`, one concern
//! per file; this module only puts the pieces together.
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
//!
//! A path that names no file is refused before DuckDB sees it: DuckDB reads
//! an empty path as the current directory, recursively.

use crate::binding::sql::Expect;
use crate::binding::SqlMacro;
use crate::tables;

const CLEAN: &str = include_str!("../sql/macros/ingest_clean.sql");
const UNKNOWN_WHEN_NULL: &str = include_str!("../sql/macros/ingest_unknown_when_null.sql");
const UNKNOWN_WHEN_MISSING: &str = include_str!("../sql/macros/ingest_unknown_when_missing.sql");
const READ_CSV: &str = include_str!("../sql/macros/ingest_read_csv.sql");
const CHECKED_PATH: &str = include_str!("../sql/macros/ingest_checked_path.sql");
const CLEAN_EVENTS_SOURCE: &str = include_str!("../sql/macros/ingest_clean_events_source.sql");
const REJECTS: &str = include_str!("../sql/macros/ingest_rejects.sql");
const COUNT_LINES: &str = include_str!("../sql/macros/ingest_count_lines.sql");

pub const REJECT_ERRORS_TABLE: &str = "ecoreco_reject_errors";
pub const REJECT_SCANS_TABLE: &str = "ecoreco_reject_scans";

/// A file's SQL without its `--` comment lines, so that a fragment can be
/// put into the middle of another statement.
fn sql(file: &str) -> String {
    let lines: Vec<&str> = file
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    lines.join("\n").trim().to_string()
}

/// The cleaning projection over `source`, with `text_rule` (one of the
/// `ingest_unknown_*.sql` fragments) for category_code and brand.
fn clean_select(source: &str, text_rule: &str) -> String {
    let rule = sql(text_rule);
    sql(CLEAN)
        .replace(
            "{category_code}",
            &rule.replace("{column}", "category_code"),
        )
        .replace("{brand}", &rule.replace("{column}", "brand"))
        .replace("{source}", source)
}

fn read_csv_call() -> String {
    sql(READ_CSV).replace("{checked_path}", &sql(CHECKED_PATH))
}

pub fn macros() -> Vec<SqlMacro> {
    vec![
        // read_events(path): a file, a glob or a list of files, .csv or .csv.gz.
        SqlMacro::table(
            "read_events",
            &["path"],
            clean_select(&read_csv_call(), UNKNOWN_WHEN_NULL),
        ),
        // clean_events(table): the same cleaning over a table that already has
        // the raw columns.
        SqlMacro::table(
            "clean_events",
            &["raw_events"],
            clean_select(&sql(CLEAN_EVENTS_SOURCE), UNKNOWN_WHEN_MISSING),
        )
        .checking(
            "raw_events",
            &Expect::of(
                tables::RAW,
                &tables::RAW.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
                tables::PASS_RAW,
            ),
        ),
        SqlMacro::table(
            "rejects",
            &[
                &format!("errors_table := '{REJECT_ERRORS_TABLE}'"),
                &format!("scans_table := '{REJECT_SCANS_TABLE}'"),
            ],
            sql(REJECTS),
        ),
        SqlMacro::table("count_lines", &["path"], sql(COUNT_LINES)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_filled_in_and_comments_dropped() {
        for m in macros() {
            assert!(!m.body.contains("--"), "{}: a comment line is left", m.name);
            assert!(
                !m.body.contains("{column}") && !m.body.contains("{source}"),
                "{}",
                m.name
            );
        }
        let read = &macros()[0].body;
        assert!(read.contains("coalesce(category_code, 'unknown') AS category_code"));
        assert!(read.contains("read_csv(CASE WHEN path IS NULL"));
        assert!(read.contains(REJECT_ERRORS_TABLE) && read.contains(REJECT_SCANS_TABLE));
    }
}
