//! The one generic way to declare a Rust aggregate that returns rows.
//!
//! This is how caller-visible rows reach Rust with no second connection: a
//! macro feeds `query_table(t)` to the aggregate inside the caller's own
//! query (so TEMP tables and the open transaction are seen), DuckDB runs
//! `update` in parallel on per-thread states and `combine`s them, and
//! `finalize` runs the numeric work and returns a [`RowSet`], written as one
//! `LIST(STRUCT(...))` value that the macro unnests into rows.

use super::rows::{InputChunk, RowSet};
use super::types::{Column, SqlType};
use super::{guard, set_error};
use libduckdb_sys as ffi;
use std::ffi::CString;

pub trait AggregateFunction: 'static {
    const NAME: &'static str;
    type State: Default + Send + 'static;
    /// Argument types, in call order.
    fn params() -> Vec<SqlType>;
    /// The columns of each result row.
    fn columns() -> Vec<Column>;
    /// Adds rows `rows` of `input` to `state`.
    fn update(
        state: &mut Self::State,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()>;
    /// Merges `source` (another thread's state) into `target`.
    fn combine(target: &mut Self::State, source: Self::State) -> anyhow::Result<()>;
    /// Computes the result rows.
    fn finalize(state: Self::State) -> anyhow::Result<RowSet>;
}

/// DuckDB's state memory holds one pointer to our boxed state.
type Slot<S> = *mut *mut S;

unsafe fn state_mut<'a, S: Default>(slot: ffi::duckdb_aggregate_state) -> &'a mut S {
    let slot = slot as Slot<S>;
    if (*slot).is_null() {
        *slot = Box::into_raw(Box::<S>::default());
    }
    &mut **slot
}

unsafe fn take_state<S: Default>(slot: ffi::duckdb_aggregate_state) -> S {
    let slot = slot as Slot<S>;
    if (*slot).is_null() {
        S::default()
    } else {
        let boxed = Box::from_raw(*slot);
        *slot = std::ptr::null_mut();
        *boxed
    }
}

unsafe extern "C" fn state_size<T: AggregateFunction>(
    _info: ffi::duckdb_function_info,
) -> ffi::idx_t {
    std::mem::size_of::<*mut T::State>() as ffi::idx_t
}

unsafe extern "C" fn init<T: AggregateFunction>(
    _info: ffi::duckdb_function_info,
    state: ffi::duckdb_aggregate_state,
) {
    // Allocated lazily on first use: init must not fail or unwind.
    *(state as Slot<T::State>) = std::ptr::null_mut();
}

unsafe extern "C" fn destroy<T: AggregateFunction>(
    states: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    for i in 0..count as usize {
        let state = take_state::<T::State>(*states.add(i));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(state)));
    }
}

unsafe extern "C" fn update<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) {
    let outcome = guard(T::NAME, "reading rows", || {
        let chunk = InputChunk::from_raw(input, &T::params());
        // Rows of one group share a state; pass runs of them at once.
        let mut start = 0;
        while start < chunk.rows() {
            let slot = *states.add(start);
            let mut end = start + 1;
            while end < chunk.rows() && *states.add(end) == slot {
                end += 1;
            }
            T::update(state_mut::<T::State>(slot), &chunk, start..end)?;
            start = end;
        }
        Ok(())
    });
    if let Err(message) = outcome {
        set_error(&message, |m| {
            ffi::duckdb_aggregate_function_set_error(info, m)
        });
    }
}

unsafe extern "C" fn combine<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    target: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    let outcome = guard(T::NAME, "combining partial results", || {
        for i in 0..count as usize {
            let from = take_state::<T::State>(*source.add(i));
            T::combine(state_mut::<T::State>(*target.add(i)), from)?;
        }
        Ok(())
    });
    if let Err(message) = outcome {
        set_error(&message, |m| {
            ffi::duckdb_aggregate_function_set_error(info, m)
        });
    }
}

unsafe extern "C" fn finalize<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    result: ffi::duckdb_vector,
    count: ffi::idx_t,
    offset: ffi::idx_t,
) {
    let schema = T::columns();
    for i in 0..count as usize {
        let state = take_state::<T::State>(*source.add(i));
        let outcome = guard(T::NAME, "computing the result", || {
            let rows = T::finalize(state)?;
            rows.check(&schema)?;
            Ok(rows)
        });
        match outcome {
            Ok(rows) => rows.write_as_list(result, offset as usize + i),
            Err(message) => {
                set_error(&message, |m| {
                    ffi::duckdb_aggregate_function_set_error(info, m)
                });
                return;
            }
        }
    }
}

/// The SQL type an aggregate returns: a list of its result rows.
pub fn return_type<T: AggregateFunction>() -> SqlType {
    SqlType::List(Box::new(SqlType::Struct(
        T::columns().into_iter().map(|c| (c.name, c.ty)).collect(),
    )))
}

pub(crate) unsafe fn register<T: AggregateFunction>(
    con: ffi::duckdb_connection,
) -> anyhow::Result<()> {
    let mut f = ffi::duckdb_create_aggregate_function();
    let name = CString::new(T::NAME)?;
    ffi::duckdb_aggregate_function_set_name(f, name.as_ptr());
    for p in T::params() {
        let ty = p.logical_type();
        ffi::duckdb_aggregate_function_add_parameter(f, ty.0);
    }
    let ret = return_type::<T>().logical_type();
    ffi::duckdb_aggregate_function_set_return_type(f, ret.0);
    ffi::duckdb_aggregate_function_set_functions(
        f,
        Some(state_size::<T>),
        Some(init::<T>),
        Some(update::<T>),
        Some(combine::<T>),
        Some(finalize::<T>),
    );
    ffi::duckdb_aggregate_function_set_destructor(f, Some(destroy::<T>));
    // Rows with NULL arguments reach `update`, which decides (e.g. a NULL
    // parameter is an error, not a silently skipped row).
    ffi::duckdb_aggregate_function_set_special_handling(f);
    let state = ffi::duckdb_register_aggregate_function(con, f);
    ffi::duckdb_destroy_aggregate_function(&mut f);
    if state != ffi::DuckDBSuccess {
        anyhow::bail!("could not register aggregate function {}", T::NAME);
    }
    Ok(())
}
