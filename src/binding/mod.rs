//! The thin layer between DuckDB's C extension API and the pipeline stages.
//!
//! It only parses parameters and moves rows: stage modules declare functions
//! through [`table::TableFunction`], [`scalar::ScalarFunction`] and
//! [`sql::SqlMacro`], and never touch the C API themselves. Every callback runs
//! under [`guard`], so a Rust error or panic becomes an SQL error naming the
//! function, never an unwind across the FFI boundary (which would abort the
//! user's whole DuckDB process).

pub mod aggregate;
pub mod blocks;
pub mod chunk;
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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

/// The one rule for a poisoned lock in ecoreco: recover the guard and go on.
/// A lock is poisoned when a panic (caught by [`guard`]) unwound while it was
/// held; every structure ecoreco guards with a lock is changed by whole
/// inserts, removes or assignments under it, never left half-written, so what
/// the lock protects is still consistent. Failing every later call, or
/// silently turning a cache off, would punish the session for one caught bug.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one callback body, turning errors and panics into a message that
/// names the function and what it was doing.
pub(crate) fn guard<R>(
    function: &str,
    doing: &str,
    body: impl FnOnce() -> anyhow::Result<R>,
) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(prefixed(function, format!("{error:#}"))),
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

/// Hands an error message to a DuckDB `*_set_error` function.
pub(crate) fn set_error(message: &str, set: impl FnOnce(*const std::os::raw::c_char)) {
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    set(text.as_ptr());
}

/// A rayon pool with `threads` workers (DuckDB's `threads` setting, passed in
/// by the calling macro), built once per size and reused.
pub fn thread_pool(threads: i64) -> anyhow::Result<std::sync::Arc<rayon::ThreadPool>> {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock};
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let threads = threads.clamp(1, 1024) as usize;
    let mut pools = lock(POOLS.get_or_init(Default::default));
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ecoreco-{i}"))
            .build()
            .map_err(|e| anyhow::anyhow!("could not start {threads} worker threads: {e}"))?,
    );
    pools.insert(threads, pool.clone());
    Ok(pool)
}
