//! The one generic way to declare a Rust aggregate that returns rows.
//!
//! This is how caller-visible rows reach Rust with no second connection: a
//! macro feeds `query_table(t)` to the aggregate inside the caller's own
//! query (so TEMP tables and the open transaction are seen), DuckDB runs
//! `update` in parallel on per-thread states and `combine`s them, and
//! `finalize` runs the numeric work.
//!
//! An aggregate declares, once:
//! - its per-row **inputs** (named, typed columns),
//! - its **parameters**, constant within a call, with type, default and
//!   check ([`Param`]); the macro signature and the call's argument list are
//!   generated from them ([`signature`], [`call_sql`]),
//! - its **result columns**, which rows are written against
//!   ([`RowSet::for_columns`] and typed column handles).
//!
//! Results reach DuckDB in bounded blocks ([`super::blocks`]): the
//! aggregate returns `STRUCT(handle, blocks)` and the macro reads each block
//! through the reader scalar `<NAME>_rows(handle, block)` ([`rows_sql`]).
//!
//! States are safe whatever the host does with their memory
//! ([`super::state`]): a window frame, an ORDER BY inside the call or a
//! copied state gets a clear SQL error or a correct result, never a double
//! free.

use super::blocks::{self, BlockSource, Reader};
use super::params::{read_row_args, Args, Param, Source};
use super::rows::{InputChunk, RowSet};
use super::state::{self, CallKey, Slot};
use super::types::{Column, SqlType};
use super::{guard, in_call, set_error};
use libduckdb_sys as ffi;
use std::ffi::CString;
use std::sync::Arc;

pub trait AggregateFunction: 'static {
    /// The name in DuckDB's system catalog: `ecoreco_<name>`.
    const NAME: &'static str;
    /// The public function named in errors when the call does not say which
    /// macro called it: `ecoreco.<name>`.
    const FUNCTION: &'static str;
    /// What to say when no row reached the aggregate (an empty table).
    const EMPTY: &'static str;
    type State: Default + Send + 'static;
    /// The per-row input columns, in call order.
    fn inputs() -> Vec<Column>;
    /// The call's parameters, passed after the inputs, constant in a call.
    fn params() -> Vec<Param>;
    /// The columns of each result row.
    fn columns() -> Vec<Column>;
    /// Adds rows `rows` of `input` to `state`.
    fn update(
        state: &mut Self::State,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()>;
    /// Merges `source` (another thread's state) into `target`.
    fn combine(target: &mut Self::State, source: Self::State) -> anyhow::Result<()>;
    /// Computes the result, produced block by block.
    fn finalize(state: Self::State, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>>;
}

/// Every argument column: the calling function's name, the inputs, the
/// parameters.
fn argument_columns<T: AggregateFunction>() -> Vec<Column> {
    let mut columns = vec![Column::new("function", SqlType::Varchar)];
    columns.extend(T::inputs());
    columns.extend(T::params().into_iter().map(|p| Column::new(p.name, p.ty)));
    columns
}

/// The state DuckDB handed us, if it is a live state of ours.
///
/// # Safety
/// `state` is a pointer DuckDB handed to a callback as an aggregate state.
unsafe fn slot<'a>(function: &str, state: ffi::duckdb_aggregate_state) -> anyhow::Result<&'a Slot> {
    // SAFETY: `known` reads only the memory of a live state (see its docs).
    unsafe { state::known(state as *mut u8) }.ok_or_else(|| state::unknown_state(function))
}

/// Which call a chunk's rows belong to: a digest of its arguments.
fn call_key(call: &Args) -> CallKey {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{call:?}").hash(&mut hasher);
    hasher.finish()
}

unsafe extern "C" fn state_size(_info: ffi::duckdb_function_info) -> ffi::idx_t {
    std::mem::size_of::<Slot>() as ffi::idx_t
}

unsafe extern "C" fn init<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    state: ffi::duckdb_aggregate_state,
) {
    let outcome = guard(T::FUNCTION, "starting a partial result", || {
        anyhow::ensure!(!state.is_null(), "no state memory to initialise");
        // SAFETY: DuckDB hands `init` state memory of `state_size` bytes
        // (a `Slot`), aligned for pointers, which it owns until it frees it.
        unsafe { (*(state as *mut Slot)).init() };
        Ok(())
    });
    if let Err(message) = outcome {
        set_error(&message, |m| {
            // SAFETY: `info` is the function info DuckDB passed to `init`.
            unsafe { ffi::duckdb_aggregate_function_set_error(info, m) }
        });
    }
}

unsafe extern "C" fn destroy<T: AggregateFunction>(
    states: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    // `destroy` cannot report an error: whatever happens stays here.
    let _ = guard(T::FUNCTION, "releasing partial results", || {
        for i in 0..count as usize {
            // SAFETY: DuckDB hands `destroy` `count` state pointers; each is
            // read only if it is a live state of ours.
            if let Some(slot) = unsafe { state::known(*states.add(i) as *mut u8) } {
                slot.destroy();
            }
        }
        Ok(())
    });
}

/// The public name a call gave for itself, if it is one of ours.
fn caller<T: AggregateFunction>(input: &InputChunk) -> String {
    match input.str(0, 0) {
        Some(name) if name.starts_with("ecoreco.") && name.len() < 64 => name.to_string(),
        _ => T::FUNCTION.to_string(),
    }
}

/// Adds the rows of one input chunk to their states.
///
/// # Safety
/// `states` is the state vector DuckDB passed to `update` with `input`.
unsafe fn update_chunk<T: AggregateFunction>(
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) -> anyhow::Result<()> {
    // SAFETY: `input` is the chunk DuckDB passed to `update`.
    let chunk = unsafe { InputChunk::from_raw(input, &argument_columns::<T>()) }?;
    let rows = chunk.rows();
    if rows == 0 {
        return Ok(());
    }
    let function = caller::<T>(&chunk);
    let call = read_row_args(&function, &T::params(), &chunk, 1 + T::inputs().len(), 0)?;
    let key = call_key(&call);
    // Rows of one group share a state: runs of them are passed at once.
    // DuckDB hands a flat vector of one pointer per row, except (a C API
    // defect, seen on DuckDB 1.5.6, see docs/reliability.md) for ORDER BY
    // inside the call and windows over a whole partition, where it holds one
    // pointer for all rows. No callback can tell the two apart, so each new
    // pointer is checked to be a live state of ours before anything is read
    // through it, and the first one that is not stops the reading: past a
    // one-pointer vector, reading stops at the first pointer that is not the
    // state already seen or another live state, and none is followed.
    let mut runs: Vec<(&Slot, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < rows {
        // SAFETY: see above; rows 0..rows of a flat state vector.
        let state = unsafe { *states.add(start) };
        let mut end = start + 1;
        // SAFETY: as above.
        while end < rows && unsafe { *states.add(end) } == state {
            end += 1;
        }
        // SAFETY: `state` is a pointer DuckDB handed as a state.
        runs.push((unsafe { slot(&function, state) }?, start, end));
        start = end;
    }
    for (slot, start, end) in runs {
        slot.with::<T::State, Args, _>(&function, key, |entry| {
            if entry.call.is_none() {
                entry.call = Some(call.clone());
            }
            in_call(
                &function,
                T::update(&mut entry.state, &call, &chunk, start..end),
            )
        })?;
    }
    Ok(())
}

unsafe extern "C" fn update<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) {
    let outcome = guard(T::FUNCTION, "reading rows", || {
        // SAFETY: the arguments DuckDB passed to `update`.
        let outcome = unsafe { update_chunk::<T>(input, states) };
        if outcome.is_err() {
            // The statement fails; DuckDB 1.5 then frees this call's states
            // without `destroy`: forget them, and the first state handed
            // here if it has no rows yet (it belongs to no call so far).
            // SAFETY: as above.
            if let Some(key) = unsafe { chunk_call::<T>(input) } {
                state::forget_call(key);
            }
            // SAFETY: the first pointer of the state vector (there is one for
            // any chunk with rows), read only if it is a live state.
            if let Some(first) = unsafe { first_state(input, states) } {
                if first.call().is_none() {
                    first.destroy();
                }
            }
        }
        outcome
    });
    if let Err(message) = outcome {
        set_error(&message, |m| {
            // SAFETY: `info` is the function info DuckDB passed to `update`.
            unsafe { ffi::duckdb_aggregate_function_set_error(info, m) }
        });
    }
}

/// The state of the first row of `input`, if it is a live state.
///
/// # Safety
/// `input` and `states` are the arguments DuckDB passed to `update`.
unsafe fn first_state<'a>(
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) -> Option<&'a Slot> {
    // SAFETY: as above; a chunk with rows comes with at least one state.
    unsafe {
        if input.is_null() || states.is_null() || ffi::duckdb_data_chunk_get_size(input) == 0 {
            return None;
        }
        state::known(*states as *mut u8)
    }
}

/// The call an input chunk's rows belong to, if its arguments can be read.
///
/// # Safety
/// `input` is a chunk DuckDB passed to `update`.
unsafe fn chunk_call<T: AggregateFunction>(input: ffi::duckdb_data_chunk) -> Option<CallKey> {
    // SAFETY: as above.
    let chunk = unsafe { InputChunk::from_raw(input, &argument_columns::<T>()) }.ok()?;
    if chunk.rows() == 0 {
        return None;
    }
    let function = caller::<T>(&chunk);
    read_row_args(&function, &T::params(), &chunk, 1 + T::inputs().len(), 0)
        .ok()
        .map(|call| call_key(&call))
}

unsafe extern "C" fn combine<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    target: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    let mut failed_call = None;
    let outcome = guard(T::FUNCTION, "combining partial results", || {
        for i in 0..count as usize {
            // SAFETY: DuckDB hands `combine` `count` source and target
            // pointers (flattened); each is read only if it is a live state.
            let (from, into) = unsafe {
                (
                    slot(T::FUNCTION, *source.add(i))?,
                    slot(T::FUNCTION, *target.add(i))?,
                )
            };
            if from.same(into) {
                continue;
            }
            let Some(key) = from.call() else {
                // No rows reached the source: nothing to add.
                from.take::<T::State, Args>(T::FUNCTION)?;
                continue;
            };
            failed_call = Some(key);
            let Some(taken) = from.take::<T::State, Args>(T::FUNCTION)? else {
                continue;
            };
            into.with::<T::State, Args, _>(T::FUNCTION, key, |entry| {
                if entry.call.is_none() {
                    entry.call = taken.call;
                }
                T::combine(&mut entry.state, taken.state)
            })?;
            failed_call = None;
        }
        Ok(())
    });
    if let Err(message) = outcome {
        if let Some(key) = failed_call {
            state::forget_call(key);
        }
        set_error(&message, |m| {
            // SAFETY: `info` is the function info DuckDB passed to `combine`.
            unsafe { ffi::duckdb_aggregate_function_set_error(info, m) }
        });
    }
}

/// Finalizes one state into a registered result: `(handle, blocks)`.
fn finalize_one<T: AggregateFunction>(state: &Slot) -> anyhow::Result<(i64, i64)> {
    let Some(entry) = state.take::<T::State, Args>(T::FUNCTION)? else {
        anyhow::bail!("{}: {}", T::FUNCTION, T::EMPTY);
    };
    let call = entry
        .call
        .ok_or_else(|| anyhow::anyhow!("{}: {}", T::FUNCTION, T::EMPTY))?;
    let source = in_call(call.function(), T::finalize(entry.state, &call)).inspect_err(|_| {
        // The statement fails; DuckDB 1.5 then frees the call's other
        // states (GROUP BY, other threads) without `destroy`.
        state::forget_call(call_key(&call));
    })?;
    let threads = call.int("threads").unwrap_or(1);
    Ok(blocks::register(source, threads))
}

unsafe extern "C" fn finalize<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    source: *mut ffi::duckdb_aggregate_state,
    result: ffi::duckdb_vector,
    count: ffi::idx_t,
    offset: ffi::idx_t,
) {
    let outcome = guard(T::FUNCTION, "computing the result", || {
        // SAFETY: `result` is the STRUCT(handle BIGINT, blocks BIGINT) vector
        // DuckDB passed to `finalize` (the declared return type), with room
        // for rows `offset..offset + count`.
        let (handles, blocks) = unsafe {
            let handles = ffi::duckdb_struct_vector_get_child(result, 0);
            let blocks = ffi::duckdb_struct_vector_get_child(result, 1);
            (
                ffi::duckdb_vector_get_data(handles) as *mut i64,
                ffi::duckdb_vector_get_data(blocks) as *mut i64,
            )
        };
        anyhow::ensure!(
            !handles.is_null() && !blocks.is_null(),
            "the result vector has no data"
        );
        for i in 0..count as usize {
            // SAFETY: DuckDB hands `finalize` `count` state pointers
            // (flattened); each is read only if it is a live state.
            let state = unsafe { slot(T::FUNCTION, *source.add(i)) }?;
            let (handle, n) = finalize_one::<T>(state)?;
            let row = offset as usize + i;
            // SAFETY: row `offset + i` of the result vectors (see above).
            unsafe {
                *handles.add(row) = handle;
                *blocks.add(row) = n;
            }
        }
        Ok(())
    });
    if let Err(message) = outcome {
        // The statement fails, and DuckDB may free the states of this call
        // that were not finalized yet without `destroy`: forget them, and
        // every state of their calls.
        let _ = guard(T::FUNCTION, "releasing partial results", || {
            for i in 0..count as usize {
                // SAFETY: as above.
                if let Some(slot) = unsafe { state::known(*source.add(i) as *mut u8) } {
                    match slot.call() {
                        Some(key) => state::forget_call(key),
                        None => slot.destroy(),
                    }
                }
            }
            Ok(())
        });
        set_error(&message, |m| {
            // SAFETY: `info` is the function info DuckDB passed to `finalize`.
            unsafe { ffi::duckdb_aggregate_function_set_error(info, m) }
        });
    }
}

/// `ecoreco_debug_state_counts()`: how many aggregate states the registry
/// holds and how many state addresses it knows, `STRUCT(states BIGINT,
/// addresses BIGINT)`; both are back to their size after every statement
/// (docs/reliability.md), which the forms-matrix test checks.
pub struct DebugStateCounts;

impl super::scalar::ScalarFunction for DebugStateCounts {
    const NAME: &'static str = "ecoreco_debug_state_counts";
    fn params() -> Vec<SqlType> {
        vec![]
    }
    fn returns() -> SqlType {
        SqlType::Struct(vec![
            ("states".to_string(), SqlType::BigInt),
            ("addresses".to_string(), SqlType::BigInt),
        ])
    }
    fn volatile() -> bool {
        true
    }
    fn invoke(input: &InputChunk, out: &mut super::ColumnWriter) -> anyhow::Result<()> {
        let (states, addresses) = state::counts();
        for row in 0..input.rows().max(1) {
            out.field(0).set_i64(row, states as i64);
            out.field(1).set_i64(row, addresses as i64);
        }
        Ok(())
    }
}

/// What every ecoreco aggregate returns: a handle to its result.
fn handle_type() -> SqlType {
    SqlType::Struct(vec![
        ("handle".to_string(), SqlType::BigInt),
        ("blocks".to_string(), SqlType::BigInt),
    ])
}

/// The type of one block of result rows.
fn block_type<T: AggregateFunction>() -> SqlType {
    SqlType::List(Box::new(SqlType::Struct(
        T::columns().into_iter().map(|c| (c.name, c.ty)).collect(),
    )))
}

fn reader_name<T: AggregateFunction>() -> String {
    format!("{}_rows", T::NAME)
}

/// Writes the blocks asked for in one chunk of `(handle, block)` rows.
///
/// # Safety
/// `output` is the reader's LIST(STRUCT) result vector, with a row for every
/// row of `input`.
unsafe fn read_blocks<T: AggregateFunction>(
    input: &InputChunk,
    output: ffi::duckdb_vector,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let columns = T::columns();
    let rows = input.rows();
    let mut asked = Vec::with_capacity(rows);
    for row in 0..rows {
        let (Some(handle), Some(block)) = (input.i64(0, row), input.i64(1, row)) else {
            anyhow::bail!(
                "{}: handle and block must not be NULL; read results through the ecoreco.* macros",
                T::FUNCTION
            );
        };
        asked.push((handle, block));
    }
    let mut row = 0;
    while row < rows {
        // Consecutive rows of one result are computed together, in parallel.
        let handle = asked[row].0;
        let end = (row..rows).find(|&r| asked[r].0 != handle).unwrap_or(rows);
        let reader = Reader::open(T::FUNCTION, handle)?;
        let indices: Vec<usize> = asked[row..end]
            .iter()
            .map(|&(_, b)| {
                usize::try_from(b)
                    .ok()
                    .filter(|&b| b < reader.blocks())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{}: result {handle} has no block {b}", T::FUNCTION)
                    })
            })
            .collect::<anyhow::Result<_>>()?;
        let produced: Vec<RowSet> = crate::threads::pool(reader.threads())?.install(|| {
            indices
                .par_iter()
                .map(|&b| reader.block(b))
                .collect::<anyhow::Result<_>>()
        })?;
        for (i, rows) in produced.iter().enumerate() {
            rows.check(&columns)?;
            // SAFETY: `output` has row `row + i` (see above), and the rows
            // were checked against the declared columns of its struct.
            unsafe { rows.write_as_list(output, row + i) }?;
        }
        reader.done(indices.len());
        row = end;
    }
    Ok(())
}

unsafe extern "C" fn reader<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    let types = [
        Column::new("handle", SqlType::BigInt),
        Column::new("block", SqlType::BigInt),
    ];
    if let Err(message) = guard(T::FUNCTION, "producing result rows", || {
        // SAFETY: the input chunk and output vector DuckDB passed to the
        // reader scalar, declared (BIGINT, BIGINT) -> the block type.
        unsafe {
            let chunk = InputChunk::from_raw(input, &types)?;
            read_blocks::<T>(&chunk, output)
        }
    }) {
        set_error(&message, |m| {
            // SAFETY: `info` is the function info DuckDB passed to the reader.
            unsafe { ffi::duckdb_scalar_function_set_error(info, m) }
        });
    }
}

/// Registers `T` and its block reader in DuckDB's system catalog.
///
/// # Safety
/// `con` is an open connection.
pub(crate) unsafe fn register<T: AggregateFunction>(
    con: ffi::duckdb_connection,
) -> anyhow::Result<()> {
    let mut f = ffi::duckdb_create_aggregate_function();
    let name = CString::new(T::NAME)?;
    ffi::duckdb_aggregate_function_set_name(f, name.as_ptr());
    for column in argument_columns::<T>() {
        let ty = column.ty.logical_type();
        ffi::duckdb_aggregate_function_add_parameter(f, ty.0);
    }
    let ret = handle_type().logical_type();
    ffi::duckdb_aggregate_function_set_return_type(f, ret.0);
    ffi::duckdb_aggregate_function_set_functions(
        f,
        Some(state_size),
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
        return Err(crate::error::host(format!(
            "could not register aggregate function {}",
            T::NAME
        )));
    }

    let mut r = ffi::duckdb_create_scalar_function();
    let name = CString::new(reader_name::<T>())?;
    ffi::duckdb_scalar_function_set_name(r, name.as_ptr());
    for _ in 0..2 {
        let ty = SqlType::BigInt.logical_type();
        ffi::duckdb_scalar_function_add_parameter(r, ty.0);
    }
    let ret = block_type::<T>().logical_type();
    ffi::duckdb_scalar_function_set_return_type(r, ret.0);
    ffi::duckdb_scalar_function_set_function(r, Some(reader::<T>));
    ffi::duckdb_scalar_function_set_special_handling(r);
    // Reading a block has an effect (the result is dropped once read): never
    // fold, reorder or deduplicate the calls.
    ffi::duckdb_scalar_function_set_volatile(r);
    let state = ffi::duckdb_register_scalar_function(con, r);
    ffi::duckdb_destroy_scalar_function(&mut r);
    if state != ffi::DuckDBSuccess {
        return Err(crate::error::host(format!(
            "could not register scalar function {}",
            reader_name::<T>()
        )));
    }
    Ok(())
}

/// The macro parameters a caller may pass, generated from the declaration:
/// `leading` (table arguments and macro-only parameters, as macro syntax),
/// then `name := default` for every parameter the caller supplies.
pub fn signature<T: AggregateFunction>(leading: &[&str], extra: &[Param]) -> Vec<String> {
    leading
        .iter()
        .map(|s| s.to_string())
        .chain(
            extra
                .iter()
                .chain(T::params().iter())
                .filter(|p| p.source == Source::Caller)
                .map(Param::macro_signature),
        )
        .collect()
}

/// The aggregate call with its arguments: `function` (the macro's public
/// name, for errors), the SQL expressions of the declared inputs, in
/// order, then every parameter: the expression given in `values` for it,
/// else the macro's own parameter of that name (or the declared
/// expression, for parameters the macro supplies).
pub fn call_sql<T: AggregateFunction>(
    function: &str,
    inputs: &[&str],
    values: &[(&str, String)],
) -> String {
    assert_eq!(
        inputs.len(),
        T::inputs().len(),
        "{}: the macro passes {} inputs, {} are declared",
        T::NAME,
        inputs.len(),
        T::inputs().len()
    );
    let mut args = vec![super::sql::quote_literal(function)];
    args.extend(inputs.iter().map(|s| s.to_string()));
    for p in T::params() {
        match values.iter().find(|(name, _)| *name == p.name) {
            Some((_, value)) => args.push(format!("({value})::{}", p.ty.sql_name())),
            None => args.push(p.macro_argument()),
        }
    }
    format!("{}({})", T::NAME, args.join(", "))
}

/// A query that returns the aggregate's result rows: the call (as in
/// [`call_sql`]) over `from` (what follows FROM), read block by block.
pub fn rows_sql<T: AggregateFunction>(
    function: &str,
    inputs: &[&str],
    values: &[(&str, String)],
    from: &str,
) -> String {
    format!(
        "SELECT unnest({reader}(r.handle, r.block), recursive := true) FROM (\
         SELECT h.handle AS handle, unnest(range(h.blocks)) AS block FROM (\
         SELECT {call} AS h FROM {from}) WHERE h.blocks > 0) r",
        reader = reader_name::<T>(),
        call = call_sql::<T>(function, inputs, values),
    )
}
