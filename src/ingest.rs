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

use crate::binding::rows::InputChunk;
use crate::binding::scalar::ScalarFunction;
use crate::binding::sql::Expect;
use crate::binding::{ColumnWriter, SqlMacro, SqlType};
use crate::tables;
use anyhow::{anyhow, Context};
use std::io::Read;

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

/// The path check of `function` (its name starts the error messages).
fn checked_path(function: &str) -> String {
    sql(CHECKED_PATH).replace("{function}", function)
}

fn read_csv_call() -> String {
    sql(READ_CSV).replace("{checked_path}", &checked_path("ecoreco.read_events"))
}

/// The data lines of a file as `count_lines` has always defined them: carriage
/// returns ignored, trailing line feeds dropped, the rest split at line feeds,
/// the first piece (the header) not counted. That is the number of line feeds
/// before the last byte that is neither a carriage return nor a line feed.
/// Read in blocks, so memory stays constant whatever the file's size.
pub fn count_data_lines(mut reader: impl Read) -> std::io::Result<u64> {
    let mut block = vec![0u8; 1 << 16];
    let (mut feeds, mut feeds_before_content) = (0u64, 0u64);
    loop {
        let n = match reader.read(&mut block) {
            Ok(0) => return Ok(feeds_before_content),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &byte in &block[..n] {
            match byte {
                b'\n' => feeds += 1,
                b'\r' => {}
                _ => feeds_before_content = feeds,
            }
        }
    }
}

/// `ecoreco_count_data_lines(file, external_access)`: [`count_data_lines`] of
/// one file, for the `count_lines` macro, which lists the files with `glob`
/// and passes `current_setting('enable_external_access')`.
pub struct CountDataLines;
impl ScalarFunction for CountDataLines {
    const NAME: &'static str = "ecoreco_count_data_lines";
    fn params() -> Vec<SqlType> {
        vec![SqlType::Varchar, SqlType::Boolean]
    }
    fn returns() -> SqlType {
        SqlType::BigInt
    }
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()> {
        for row in 0..input.rows() {
            let file = input
                .str(0, row)
                .ok_or_else(|| anyhow!("file is NULL, pass a file name"))?;
            // A NULL setting is read as "not allowed".
            anyhow::ensure!(
                input.bool(1, row).unwrap_or(false),
                "reading files is disabled (enable_external_access is false)"
            );
            let opened =
                std::fs::File::open(file).with_context(|| format!("cannot open '{file}'"))?;
            let lines =
                count_data_lines(opened).with_context(|| format!("cannot read '{file}'"))?;
            out.set_i64(row, lines as i64);
        }
        Ok(())
    }
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
        SqlMacro::table(
            "count_lines",
            &["path"],
            sql(COUNT_LINES).replace("{checked_path}", &checked_path("ecoreco.count_lines")),
        ),
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
        assert!(read.contains("'ecoreco.read_events: path is NULL"));
        let count = macros()
            .into_iter()
            .find(|m| m.name == "count_lines")
            .unwrap()
            .body;
        assert!(count.contains("'ecoreco.count_lines: path is NULL") && !count.contains('{'));
    }

    fn lines(text: &str) -> u64 {
        count_data_lines(text.as_bytes()).unwrap()
    }

    #[test]
    fn data_lines_follow_the_split_rule() {
        // Worked out from the rule: drop \r, trim trailing \n, split at \n,
        // count the pieces after the header.
        assert_eq!(lines(""), 0);
        assert_eq!(lines("\n\r\n"), 0);
        assert_eq!(lines("header"), 0);
        assert_eq!(lines("header\n"), 0);
        assert_eq!(lines("header\na\nb"), 2);
        assert_eq!(lines("header\na\nb\n\n\n"), 2);
        assert_eq!(lines("header\r\na\r\nb\r\n"), 2);
        // A blank line inside the data is a piece of its own.
        assert_eq!(lines("header\n\nb\n"), 2);
        // A lone \r is dropped, not a line break.
        assert_eq!(lines("header\ra\rb"), 0);
    }

    /// A reader that hands out at most three bytes a call, so every block
    /// boundary of a longer text is crossed.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(3).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn counting_does_not_depend_on_block_boundaries() {
        let mut text = String::from("h\r\n");
        for i in 0..1000 {
            text.push_str(&format!("{i},x\r\n"));
            if i % 97 == 0 {
                text.push('\n');
            }
        }
        let expected = lines(&text);
        // 1,000 rows and a blank line after rows 0, 97, ..., 970 (11 of them).
        assert_eq!(expected, 1000 + 11);
        assert_eq!(
            count_data_lines(Trickle(text.as_bytes())).unwrap(),
            expected
        );
    }
}
