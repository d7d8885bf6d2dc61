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
use super::state::Slot;
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

/// The state DuckDB handed us, if it is one that `init` initialised.
unsafe fn slot<'a>(
    function: &str,
    state: ffi::duckdb_aggregate_state,
) -> anyhow::Result<&'a mut Slot> {
    super::state::known(state as *mut u8).ok_or_else(|| super::state::unknown_state(function))
}

unsafe extern "C" fn state_size<T: AggregateFunction>(
    _info: ffi::duckdb_function_info,
) -> ffi::idx_t {
    std::mem::size_of::<Slot>() as ffi::idx_t
}

unsafe extern "C" fn init<T: AggregateFunction>(
    _info: ffi::duckdb_function_info,
    state: ffi::duckdb_aggregate_state,
) {
    (*(state as *mut Slot)).init();
}

unsafe extern "C" fn destroy<T: AggregateFunction>(
    states: *mut ffi::duckdb_aggregate_state,
    count: ffi::idx_t,
) {
    for i in 0..count as usize {
        if let Some(slot) = super::state::known(*states.add(i) as *mut u8) {
            slot.destroy();
        }
    }
}

/// The public name a call gave for itself, if it is one of ours.
fn caller<T: AggregateFunction>(input: &InputChunk) -> String {
    match input.str(0, 0) {
        Some(name) if name.starts_with("ecoreco.") && name.len() < 64 => name.to_string(),
        _ => T::FUNCTION.to_string(),
    }
}

unsafe extern "C" fn update<T: AggregateFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    states: *mut ffi::duckdb_aggregate_state,
) {
    let outcome = guard(T::FUNCTION, "reading rows", || {
        let chunk = InputChunk::from_raw(input, &argument_columns::<T>());
        if chunk.rows() == 0 {
            return Ok(());
        }
        let function = caller::<T>(&chunk);
        let call = read_row_args(&function, &T::params(), &chunk, 1 + T::inputs().len(), 0)?;
        // Rows of one group share a state; pass runs of them at once.
        let mut start = 0;
        while start < chunk.rows() {
            let state = *states.add(start);
            let mut end = start + 1;
            while end < chunk.rows() && *states.add(end) == state {
                end += 1;
            }
            slot(&function, state)?.with::<T::State, Args, _>(&function, |entry| {
                if entry.call.is_none() {
                    entry.call = Some(call.clone());
                }
                in_call(
                    &function,
                    T::update(&mut entry.state, &call, &chunk, start..end),
                )
            })?;
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
    let outcome = guard(T::FUNCTION, "combining partial results", || {
        for i in 0..count as usize {
            let (from, into) = (
                slot(T::FUNCTION, *source.add(i))?,
                slot(T::FUNCTION, *target.add(i))?,
            );
            if from.same(into) {
                continue;
            }
            let Some(taken) = from.take::<T::State, Args>(T::FUNCTION, "combined")? else {
                continue;
            };
            into.with::<T::State, Args, _>(T::FUNCTION, |entry| {
                if entry.call.is_none() {
                    entry.call = taken.call;
                }
                T::combine(&mut entry.state, taken.state)
            })?;
        }
        Ok(())
    });
    if let Err(message) = outcome {
        set_error(&message, |m| {
            ffi::duckdb_aggregate_function_set_error(info, m)
        });
    }
}

/// Finalizes one state into a registered result: `(handle, blocks)`.
unsafe fn finalize_one<T: AggregateFunction>(
    state: ffi::duckdb_aggregate_state,
) -> anyhow::Result<(i64, i64)> {
    let state = slot(T::FUNCTION, state)?;
    let Some(entry) = state.take::<T::State, Args>(T::FUNCTION, "finalized")? else {
        anyhow::bail!("{}: {}", T::FUNCTION, T::EMPTY);
    };
    let call = entry
        .call
        .ok_or_else(|| anyhow::anyhow!("{}: {}", T::FUNCTION, T::EMPTY))?;
    let source = in_call(call.function(), T::finalize(entry.state, &call))?;
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
    let handles = ffi::duckdb_struct_vector_get_child(result, 0);
    let blocks = ffi::duckdb_struct_vector_get_child(result, 1);
    let handles = ffi::duckdb_vector_get_data(handles) as *mut i64;
    let blocks = ffi::duckdb_vector_get_data(blocks) as *mut i64;
    for i in 0..count as usize {
        let state = *source.add(i);
        match guard(T::FUNCTION, "computing the result", || {
            finalize_one::<T>(state)
        }) {
            Ok((handle, n)) => {
                let row = offset as usize + i;
                *handles.add(row) = handle;
                *blocks.add(row) = n;
            }
            Err(message) => {
                set_error(&message, |m| {
                    ffi::duckdb_aggregate_function_set_error(info, m)
                });
                return;
            }
        }
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
        let produced: Vec<RowSet> = super::thread_pool(reader.threads())?.install(|| {
            indices
                .par_iter()
                .map(|&b| reader.block(b))
                .collect::<anyhow::Result<_>>()
        })?;
        for (i, rows) in produced.iter().enumerate() {
            rows.check(&columns)?;
            rows.write_as_list(output, row + i);
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
    let chunk = InputChunk::from_raw(input, &types);
    if let Err(message) = guard(T::FUNCTION, "producing result rows", || {
        read_blocks::<T>(&chunk, output)
    }) {
        set_error(&message, |m| ffi::duckdb_scalar_function_set_error(info, m));
    }
}

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
        anyhow::bail!("could not register scalar function {}", reader_name::<T>());
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
