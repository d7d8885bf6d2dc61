//! Threads and locks: the worker threads of the heavy functions (one rayon
//! pool per size, built once and reused; the size is DuckDB's `threads`
//! setting, which the calling macro passes in) and the one rule for a
//! poisoned lock. Nothing here knows about DuckDB.

use std::sync::{Mutex, MutexGuard};

/// The one rule for a poisoned lock in ecoreco: recover the guard and go on.
/// A lock is poisoned when a panic (caught by [`guard`]) unwound while it was
/// held; every structure ecoreco guards with a lock is changed by whole
/// inserts, removes or assignments under it, never left half-written, so what
/// the lock protects is still consistent. Failing every later call, or
/// silently turning a cache off, would punish the session for one caught bug.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A rayon pool with `threads` workers (DuckDB's `threads` setting, passed in
/// by the calling macro), built once per size and reused.
pub fn pool(threads: i64) -> anyhow::Result<std::sync::Arc<rayon::ThreadPool>> {
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
            .map_err(|e| {
                crate::error::host(format!("could not start {threads} worker threads: {e}"))
            })?,
    );
    pools.insert(threads, pool.clone());
    Ok(pool)
}
