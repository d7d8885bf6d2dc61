//! The thin layer between DuckDB's C extension API and the pipeline stages.
//!
//! It only parses parameters and moves rows: stage modules declare functions
//! through [`table::TableFunction`], [`scalar::ScalarFunction`] and
//! [`sql::SqlMacro`], and never touch the C API themselves. Every callback runs
//! under [`guard`], so a Rust error or panic becomes an SQL error naming the
//! function, never an unwind across the FFI boundary (which would abort the
//! user's whole DuckDB process).

pub mod chunk;
pub mod params;
pub mod scalar;
pub mod sql;
pub mod table;
pub mod types;

pub use chunk::{ColumnWriter, OutputChunk};
pub use params::{Args, Param, Value};
pub use sql::SqlMacro;
pub use table::TableFunction;
pub use types::{Column, SqlType};

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs one callback body, turning errors and panics into a message that
/// names the function and what it was doing.
pub(crate) fn guard<R>(function: &str, doing: &str, body: impl FnOnce() -> anyhow::Result<R>) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let text = format!("{error:#}");
            // Errors raised by stage code already start with the function name.
            if text.starts_with(function) {
                Err(text)
            } else {
                Err(format!("{function}: {text}"))
            }
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(format!(
                "{function}: internal error while {doing}: {what}. Your session is intact; check the arguments \
                 against the README and report this with the query if they are valid."
            ))
        }
    }
}

/// Hands an error message to a DuckDB `*_set_error` function.
pub(crate) fn set_error(message: &str, set: impl FnOnce(*const std::os::raw::c_char)) {
    let text = std::ffi::CString::new(message.replace('\0', " ")).expect("NULs removed");
    set(text.as_ptr());
}
