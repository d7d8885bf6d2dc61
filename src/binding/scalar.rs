//! Rust scalar functions (few: most per-row work is plain SQL in macros).

use super::chunk::ColumnWriter;
use super::types::SqlType;
use super::{guard, set_error};
use libduckdb_sys as ffi;
use std::ffi::CString;

pub trait ScalarFunction: 'static {
    const NAME: &'static str;
    fn params() -> Vec<SqlType>;
    fn returns() -> SqlType;
    /// Fills `rows` output values. Inputs are the argument vectors.
    fn invoke(rows: usize, inputs: &[ffi::duckdb_vector], out: &mut ColumnWriter) -> anyhow::Result<()>;
}

unsafe extern "C" fn invoke<T: ScalarFunction>(
    info: ffi::duckdb_function_info,
    input: ffi::duckdb_data_chunk,
    output: ffi::duckdb_vector,
) {
    let rows = ffi::duckdb_data_chunk_get_size(input) as usize;
    let columns = ffi::duckdb_data_chunk_get_column_count(input) as usize;
    let inputs: Vec<ffi::duckdb_vector> =
        (0..columns).map(|c| ffi::duckdb_data_chunk_get_vector(input, c as u64)).collect();
    let mut out = ColumnWriter::from_vector(output, rows.max(1));
    if let Err(message) = guard(T::NAME, "computing values", || T::invoke(rows, &inputs, &mut out)) {
        set_error(&message, |m| ffi::duckdb_scalar_function_set_error(info, m));
    }
}

pub(crate) unsafe fn register<T: ScalarFunction>(con: ffi::duckdb_connection) -> anyhow::Result<()> {
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
    let state = ffi::duckdb_register_scalar_function(con, f);
    ffi::duckdb_destroy_scalar_function(&mut f);
    if state != ffi::DuckDBSuccess {
        anyhow::bail!("could not register scalar function {}", T::NAME);
    }
    Ok(())
}
