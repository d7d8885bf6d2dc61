//! SQL text the extension runs at LOAD: the private catalog and its macros.
//!
//! Macros run inside the caller's own query, so they see exactly what the
//! caller sees (TEMP tables, the open transaction) and let DuckDB's engine do
//! the group-bys and joins. They live in a private in-memory catalog attached
//! at LOAD, never in the user's database: LOAD writes nothing into a user's
//! file and works on read-only databases. A table argument reaches a macro as
//! a name that DuckDB resolves itself (`query_table`), so no value a user
//! passes is ever pasted into SQL text by us; the few identifiers we do put
//! into SQL are quoted with [`quote_ident`].

use libduckdb_sys as ffi;
use std::ffi::{CStr, CString};

/// The catalog that holds ecoreco's macros: functions are called as
/// `ecoreco.<name>(...)`.
pub const CATALOG: &str = "ecoreco";

/// A macro whose presence marks the catalog as ours (and not a user's
/// database that happens to be attached under the same name).
const MARKER: &str = "ecoreco_catalog_marker";

/// Quotes an SQL identifier: `a"b` → `"a""b"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal: `it's` → `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table macro created in the private catalog.
#[derive(Clone, Debug)]
pub struct SqlMacro {
    pub name: &'static str,
    /// Parameters as macro syntax: `events`, `k := 5`.
    pub params: Vec<String>,
    /// The body after `AS TABLE` (or after `AS` for a scalar macro).
    pub body: String,
    pub table: bool,
}

impl SqlMacro {
    pub fn table(name: &'static str, params: &[&str], body: impl Into<String>) -> Self {
        SqlMacro {
            name,
            params: params.iter().map(|p| p.to_string()).collect(),
            body: body.into(),
            table: true,
        }
    }
    pub fn scalar(name: &'static str, params: &[&str], body: impl Into<String>) -> Self {
        SqlMacro {
            name,
            params: params.iter().map(|p| p.to_string()).collect(),
            body: body.into(),
            table: false,
        }
    }
    /// Checks the table argument `param` before anything reads it: every
    /// `query_table(param)` of the body becomes a [`checked_table`].
    pub fn checking(self, param: &str, expect: &Expect) -> Self {
        let read = format!("query_table({param})");
        assert!(
            self.body.contains(&read),
            "{} does not read {read}",
            self.name
        );
        let checked = checked_table(&format!("ecoreco.{}", self.name), param, expect);
        SqlMacro {
            body: self.body.replace(&read, &checked),
            ..self
        }
    }
    pub fn create_statement(&self) -> String {
        format!(
            "CREATE OR REPLACE MACRO {}.{}({}) AS {}{}",
            quote_ident(CATALOG),
            quote_ident(self.name),
            self.params.join(", "),
            if self.table { "TABLE " } else { "" },
            self.body
        )
    }
}

/// What a table argument must hold, checked by [`checked_table`].
#[derive(Clone, Debug)]
pub struct Expect {
    /// The columns a function reads, each with the SQL type of its stand-in.
    pub columns: Vec<(&'static str, &'static str)>,
    /// An SQL list of further column names the caller chooses (`columns`).
    pub dynamic: Option<&'static str>,
    /// Stand-ins for columns the caller may choose (those `dynamic` names by
    /// default), not required as such.
    pub optional: Vec<(&'static str, &'static str)>,
    /// The caller passes the table's name as a string: the message names it.
    pub name: bool,
    /// The end of the message: `pass the output of ecoreco.rfm_features(events)`.
    pub pass: &'static str,
}

impl Expect {
    /// The columns of `all` named in `names` (in `all`'s order).
    pub fn of(all: &[(&'static str, &'static str)], names: &[&str], pass: &'static str) -> Self {
        let columns: Vec<_> = all
            .iter()
            .filter(|(c, _)| names.contains(c))
            .copied()
            .collect();
        assert_eq!(
            columns.len(),
            names.len(),
            "{names:?} are not all among {all:?}"
        );
        Expect {
            columns,
            dynamic: None,
            optional: vec![],
            name: false,
            pass,
        }
    }
    /// Also requires the columns named by the SQL list `sql`, which names
    /// some of `optional` by default.
    pub fn and_named_by(
        self,
        sql: &'static str,
        optional: &[(&'static str, &'static str)],
    ) -> Self {
        Expect {
            dynamic: Some(sql),
            optional: optional.to_vec(),
            ..self
        }
    }
    /// The table comes as a string: the message names it.
    pub fn by_name(self) -> Self {
        Expect { name: true, ..self }
    }
}

/// The rows of a table argument, checked before anything reads them: it
/// replaces `query_table(<table>)` in a function's query. A table without
/// every required column is an error `<function>: table 'x' has no column
/// 'c' (it has a, b); <pass>`. DuckDB binds a whole query before running any
/// of it, so missing columns are added as typed NULL stand-ins (UNION ALL BY
/// NAME keeps the table's own columns, their order and types) for the query
/// to bind; the check is the one-row side of a cross product, which DuckDB
/// runs before it reads the table, so the error comes first, also on an
/// empty table. `table` names the table for `query_table` (a macro parameter
/// or a quoted name).
pub fn checked_table(function: &str, table: &str, expect: &Expect) -> String {
    let listed: Vec<String> = expect
        .columns
        .iter()
        .map(|(c, _)| quote_literal(c))
        .collect();
    let mut required = format!("[{}]::VARCHAR[]", listed.join(", "));
    if let Some(more) = expect.dynamic {
        required = format!("list_concat({required}, ({more})::VARCHAR[])");
    }
    let subject = if expect.name {
        // The name between quotes, its own quotes doubled.
        format!(r#"'table ''' || replace(({table})::VARCHAR, '''', '''''') || ''''"#)
    } else {
        "'the table'".to_string()
    };
    let stand_ins: Vec<String> = expect
        .columns
        .iter()
        .chain(expect.optional.iter())
        .map(|(c, ty)| {
            format!(
                "TRY_CAST(ecoreco_ok::VARCHAR AS {ty}) AS {}",
                quote_ident(c)
            )
        })
        .collect();
    // A column is present when the row type, STRUCT(a BIGINT, "b c" VARCHAR),
    // lists it at the top level.
    let present = r#"(contains(ecoreco_type, '(' || c || ' ') OR contains(ecoreco_type, ', ' || c || ' ')
        OR contains(ecoreco_type, '("' || c || '" ') OR contains(ecoreco_type, ', "' || c || '" '))"#;
    let names = r#"coalesce(nullif(array_to_string(regexp_extract_all(regexp_replace(ecoreco_type,
        '^STRUCT\((.*)\)$', '\1'), '(?:^|, )("[^"]*"|[^ ,()]+) ', 1), ', '), ''), 'no columns')"#;
    // The check is in both branches of the union: the table's branch runs it
    // before reading the table, and the stand-ins' branch keeps it when a
    // filter of the function's query on a missing column (a NULL stand-in in
    // the table's branch) lets DuckDB drop the table's branch while planning.
    // That branch never yields a row (the check is true or an error), and its
    // stand-ins are computed from the check's row so that DuckDB knows
    // nothing of their values and cannot drop it too.
    let check = format!(
        "(SELECT CASE WHEN len(ecoreco_missing) = 0 THEN true
                 ELSE error({function} || ': ' || {subject} || ' has no column '
                   || array_to_string(list_transform(ecoreco_missing, lambda c: '''' || c || ''''), ', ')
                   || ' (it has ' || {names} || '); ' || {pass}) END
          FROM (SELECT ecoreco_type, list_filter({required}, lambda c: NOT {present}) AS ecoreco_missing
                FROM (SELECT typeof(ecoreco_probe) AS ecoreco_type FROM (SELECT 1 AS ecoreco_one)
                      LEFT JOIN (FROM query_table({table}) LIMIT 0) ecoreco_probe ON true)))",
        function = quote_literal(function),
        pass = quote_literal(expect.pass),
    );
    format!(
        "(FROM query_table({table}) WHERE {check} \
         UNION ALL BY NAME SELECT {stand_ins} FROM (SELECT {check} AS ecoreco_ok) WHERE NOT ecoreco_ok)",
        stand_ins = stand_ins.join(", "),
    )
}

/// A connection used only during LOAD and closed before LOAD returns: holding
/// one would keep the user's database file open after they close it.
pub(crate) struct LoadConnection(pub ffi::duckdb_connection);

impl LoadConnection {
    /// # Safety
    /// `db` is the database DuckDB handed to the extension at LOAD.
    pub unsafe fn open(db: ffi::duckdb_database) -> anyhow::Result<Self> {
        let mut con: ffi::duckdb_connection = std::ptr::null_mut();
        // SAFETY: as above.
        if unsafe { ffi::duckdb_connect(db, &mut con) } != ffi::DuckDBSuccess {
            return Err(crate::error::host(
                "ecoreco: could not open a connection to register functions",
            ));
        }
        Ok(LoadConnection(con))
    }

    /// Runs `sql` and returns the first column of the result as text.
    pub fn query(&self, sql: &str) -> anyhow::Result<Vec<Option<String>>> {
        let text = CString::new(sql)?;
        // SAFETY: an open connection; the result is zero-initialised as the
        // C API asks, read only as far as it reaches, and destroyed once.
        unsafe {
            let mut result: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_query(self.0, text.as_ptr(), &mut result);
            let outcome = if state != ffi::DuckDBSuccess {
                let msg = ffi::duckdb_result_error(&mut result);
                let msg = if msg.is_null() {
                    "unknown error".to_string()
                } else {
                    CStr::from_ptr(msg).to_string_lossy().into_owned()
                };
                Err(crate::error::host(msg))
            } else {
                let rows = ffi::duckdb_row_count(&mut result);
                let cols = ffi::duckdb_column_count(&mut result);
                let mut out = Vec::with_capacity(rows as usize);
                for r in 0..rows {
                    if cols == 0 || ffi::duckdb_value_is_null(&mut result, 0, r) {
                        out.push(None);
                    } else {
                        let p = ffi::duckdb_value_varchar(&mut result, 0, r);
                        out.push(Some(CStr::from_ptr(p).to_string_lossy().into_owned()));
                        ffi::duckdb_free(p as *mut std::os::raw::c_void);
                    }
                }
                Ok(out)
            };
            ffi::duckdb_destroy_result(&mut result);
            outcome
        }
    }

    /// Attaches the private catalog (once per database instance) and refuses
    /// to use a same-named catalog that is not ours.
    pub fn attach_private_catalog(&self) -> anyhow::Result<()> {
        let existing = self.query(&format!(
            "SELECT coalesce(path, '') FROM duckdb_databases() WHERE database_name = {}",
            quote_literal(CATALOG)
        ))?;
        if let Some(path) = existing.first() {
            let ours = self.query(&format!(
                "SELECT 1 FROM duckdb_functions() WHERE database_name = {} AND function_name = {}",
                quote_literal(CATALOG),
                quote_literal(MARKER)
            ))?;
            if ours.is_empty() {
                return Err(crate::error::host(format!(
                    "ecoreco: a database named '{CATALOG}' is already attached ({}); ecoreco needs that name for its \
                     functions. Attach or open your database under another name (ATTACH 'file.duckdb' AS mydb) and LOAD again.",
                    path.clone().unwrap_or_default()
                )));
            }
            return Ok(());
        }
        self.query(&format!(
            "ATTACH IF NOT EXISTS ':memory:' AS {} (READ_WRITE)",
            quote_ident(CATALOG)
        ))?;
        let marker = SqlMacro::scalar(MARKER, &[], "true");
        self.query(&marker.create_statement())?;
        Ok(())
    }

    pub fn create_macro(&self, m: &SqlMacro) -> anyhow::Result<()> {
        self.query(&m.create_statement()).map(|_| ()).map_err(|e| {
            crate::error::host(format!("ecoreco: could not create macro {}: {e}", m.name))
        })
    }
}

impl Drop for LoadConnection {
    fn drop(&mut self) {
        // SAFETY: the connection opened by `open`, closed once.
        unsafe { ffi::duckdb_disconnect(&mut self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident("events"), "\"events\"");
        assert_eq!(
            quote_ident("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn a_checked_table_is_read_behind_its_check_with_stand_ins_for_missing_columns() {
        let columns = [("user_id", "BIGINT"), ("recency", "DOUBLE")];
        let expect = Expect::of(&columns, &["user_id", "recency"], "pass x");
        let sql = checked_table("ecoreco.f", "t", &expect);
        assert!(
            sql.starts_with("(FROM query_table(t) WHERE (SELECT CASE"),
            "{sql}"
        );
        assert!(sql.contains("['user_id', 'recency']::VARCHAR[]"), "{sql}");
        assert!(
            sql.contains("error('ecoreco.f' || ': ' || 'the table' || ' has no column '"),
            "{sql}"
        );
        assert!(sql.contains("|| 'pass x') END"), "{sql}");
        assert!(
            sql.contains(
                "UNION ALL BY NAME SELECT TRY_CAST(ecoreco_ok::VARCHAR AS BIGINT) AS \"user_id\", "
            ),
            "{sql}"
        );
        // A table named by a string is named in the message, quotes doubled.
        let sql = checked_table("ecoreco.f", "'a''b'", &expect.clone().by_name());
        assert!(
            sql.contains(r#"'table ''' || replace(('a''b')::VARCHAR, '''', '''''') || ''''"#),
            "{sql}"
        );
        // Columns the caller names are required too; their defaults stand in.
        let sql = checked_table(
            "ecoreco.f",
            "t",
            &expect.and_named_by("columns", &[("frequency", "BIGINT")]),
        );
        assert!(
            sql.contains("list_concat(['user_id', 'recency']::VARCHAR[], (columns)::VARCHAR[])"),
            "{sql}"
        );
        assert!(sql.contains("AS \"frequency\" FROM (SELECT"), "{sql}");
    }

    #[test]
    fn macro_statement_is_qualified_and_quoted() {
        let m = SqlMacro::table("event_mix", &["events", "k := 5"], "SELECT 1");
        assert_eq!(
            m.create_statement(),
            "CREATE OR REPLACE MACRO \"ecoreco\".\"event_mix\"(events, k := 5) AS TABLE SELECT 1"
        );
    }
}
