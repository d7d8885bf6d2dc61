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
            anyhow::bail!("ecoreco: could not open a connection to register functions");
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
                Err(anyhow::anyhow!("{msg}"))
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
                anyhow::bail!(
                    "ecoreco: a database named '{CATALOG}' is already attached ({}); ecoreco needs that name for its \
                     functions. Attach or open your database under another name (ATTACH 'file.duckdb' AS mydb) and LOAD again.",
                    path.clone().unwrap_or_default()
                );
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
        self.query(&m.create_statement())
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("ecoreco: could not create macro {}: {e}", m.name))
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
    fn macro_statement_is_qualified_and_quoted() {
        let m = SqlMacro::table("event_mix", &["events", "k := 5"], "SELECT 1");
        assert_eq!(
            m.create_statement(),
            "CREATE OR REPLACE MACRO \"ecoreco\".\"event_mix\"(events, k := 5) AS TABLE SELECT 1"
        );
    }
}
