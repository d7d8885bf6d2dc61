//! The thin layer between DuckDB's C extension API and the pipeline stages.
//!
//! It only parses parameters and moves rows: stage modules declare functions
//! through [`table::TableFunction`], [`scalar::ScalarFunction`] and
//! [`sql::SqlMacro`], and never touch the C API themselves. Every callback runs
//! under [`guard`], so a Rust error or panic becomes a typed
//! [`crate::error::Error`] and an SQL error naming the function, never an
//! unwind across the FFI boundary (which would abort the user's whole DuckDB
//! process).

pub mod aggregate;
pub mod blocks;
pub mod chunk;
pub mod model_table;
pub mod params;
pub mod rows;
pub mod scalar;
pub mod sql;
mod state;
pub mod table;
pub mod types;

pub use chunk::{ColumnWriter, OutputChunk};
pub use params::{Args, Check, Param, Value};
pub use sql::SqlMacro;
pub use table::TableFunction;
pub use types::{Column, SqlType};

use crate::error::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs one callback body, turning errors and panics into a typed
/// [`Error`] whose message names the function and what it was doing.
pub(crate) fn guard<R>(
    function: &str,
    doing: &str,
    body: impl FnOnce() -> anyhow::Result<R>,
) -> Result<R, Error> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::of(
            Error::classify(&error),
            prefixed(function, format!("{error:#}")),
        )),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::Internal(format!(
                "{function}: internal error while {doing}: {what}. Your session is intact; check the arguments \
                 against the README and report this with the query if they are valid."
            )))
        }
    }
}

/// `function: text`, unless the text already names an ecoreco function.
fn prefixed(function: &str, text: String) -> String {
    if text.starts_with(function) || text.starts_with("ecoreco.") || text.starts_with("ecoreco_") {
        text
    } else {
        format!("{function}: {text}")
    }
}

/// Names the public function in an error from stage code (which says what
/// was wrong and what to pass, but not which call it was).
pub(crate) fn in_call<R>(function: &str, result: anyhow::Result<R>) -> anyhow::Result<R> {
    result.map_err(|e| anyhow::anyhow!(prefixed(function, format!("{e:#}"))))
}

/// Hands an error's message to a DuckDB `*_set_error` function.
pub(crate) fn set_error(error: &Error, set: impl FnOnce(*const std::os::raw::c_char)) {
    let text = std::ffi::CString::new(error.message().replace('\0', " ")).unwrap_or_default();
    set(text.as_ptr());
}
