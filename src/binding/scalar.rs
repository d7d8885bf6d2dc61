//! Rust scalar functions (few: most per-row work is plain SQL in macros).

use super::chunk::ColumnWriter;
use super::rows::InputChunk;
use super::types::{Column, SqlType};
use super::{guard, set_error};
use libduckdb_sys as ffi;
use std::ffi::CString;

pub trait ScalarFunction: 'static {
    const NAME: &'static str;
    fn params() -> Vec<SqlType>;
    fn returns() -> SqlType;
    /// Whether each call must run (never folded into a constant at bind
    /// time, never deduplicated): for values that change between calls.
    fn volatile() -> bool {
        false
    }
    /// Computes one output value per input row.
    fn invoke(input: &InputChunk, out: &mut ColumnWriter) -> anyhow::Result<()>;
}

unsafe extern "C" fn invoke<T: ScalarFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    let outcome = guard(T::NAME, "computing values", || {
        let columns: Vec<Column> = T::params()
            .into_iter()
            .enumerate()
            .map(|(i, ty)| Column::new(&format!("arg{i}"), ty))
            .collect();
        // SAFETY: the input chunk (of the declared parameter types) and the
        // output vector (of the declared return type, with a row per input
        // row, at least one) DuckDB passed to the function.
        let (chunk, mut out) = unsafe {
            let chunk = InputChunk::from_raw(input, &columns)?;
            let out = ColumnWriter::from_vector(output, chunk.rows().max(1));
            (chunk, out)
        };
        T::invoke(&chunk, &mut out)
    });
    if let Err(message) = outcome {
        // SAFETY: `info` is the function info DuckDB passed to the function.
        set_error(&message, |m| unsafe {
            ffi::duckdb_scalar_function_set_error(info, m)
        });
    }
}

/// # Safety
/// `con` is an open connection.
pub(crate) unsafe fn register<T: ScalarFunction>(
    con: ffi::duckdb_connection,
) -> anyhow::Result<()> {
    // SAFETY: `con` is open; the function handle made here is destroyed
    // here, and the name and types outlive the calls that copy them.
    unsafe { register_scalar::<T>(con) }
}

/// # Safety
/// As [`register`].
unsafe fn register_scalar<T: ScalarFunction>(con: ffi::duckdb_connection) -> anyhow::Result<()> {
    let mut f = ffi::duckdb_create_scalar_function();
    let name = CString::new(T::NAME)?;
    ffi::duckdb_scalar_function_set_name(f, name.as_ptr());
    for p in T::params() {
        let ty = p.logical_type();
        ffi::duckdb_scalar_function_add_parameter(f, ty.0);
    }
    let ret = T::returns().logical_type();
    ffi::duckdb_scalar_function_set_return_type(f, ret.0);
    ffi::duckdb_scalar_function_set_function(f, Some(invoke::<T>));
    // NULL arguments reach the function (which reports a clear error or
    // treats them as documented) instead of silently producing NULL.
    ffi::duckdb_scalar_function_set_special_handling(f);
    if T::volatile() {
        ffi::duckdb_scalar_function_set_volatile(f);
    }
    let state = ffi::duckdb_register_scalar_function(con, f);
    ffi::duckdb_destroy_scalar_function(&mut f);
    if state != ffi::DuckDBSuccess {
        return Err(crate::error::host(format!(
            "could not register scalar function {}",
            T::NAME
        )));
    }
    Ok(())
}
