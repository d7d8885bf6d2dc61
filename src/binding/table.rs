//! The one generic way to declare a Rust table function.
//!
//! A function declares its parameters and result columns, binds a call into a
//! plan (`Self`), and produces rows chunk by chunk. Parallel producers hand out
//! work through the shared [`TableFunction::Scan`] state (created per
//! execution, so re-running a prepared statement starts afresh) while each
//! DuckDB thread keeps its own [`TableFunction::Cursor`].

use super::chunk::OutputChunk;
use super::params::{read_args, Args, Param};
use super::types::Column;
use super::{guard, set_error};
use libduckdb_sys as ffi;
use std::ffi::CString;
use std::os::raw::c_void;

pub trait TableFunction: Sized + Send + Sync + 'static {
    /// Shared state of one execution (work distribution).
    type Scan: Send + Sync;
    /// Per-thread state.
    type Cursor: Send;

    const NAME: &'static str;
    fn params() -> Vec<Param>;
    fn columns() -> Vec<Column>;
    /// Validates the call's arguments and prepares the plan.
    fn bind(args: &Args) -> anyhow::Result<Self>;
    /// How many DuckDB threads may call [`fill`](Self::fill) at once.
    fn max_threads(&self) -> usize {
        1
    }
    fn cardinality(&self) -> Option<u64> {
        None
    }
    fn scan(&self) -> Self::Scan;
    fn cursor(&self) -> Self::Cursor;
    /// Writes up to `out.capacity()` rows and returns how many; 0 ends this
    /// thread's part of the scan.
    fn fill(
        &self,
        scan: &Self::Scan,
        cursor: &mut Self::Cursor,
        out: &mut OutputChunk,
    ) -> anyhow::Result<usize>;
}

/// Frees a boxed `X` DuckDB hands back (bind, init or local state).
///
/// # Safety
/// `ptr` is null or a `Box<X>` made by this module, freed once.
unsafe extern "C" fn drop_box<X>(ptr: *mut c_void) {
    if !ptr.is_null() {
        // Dropping user state must not unwind into DuckDB either.
        // SAFETY: as above.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(ptr as *mut X) }));
    }
}

unsafe extern "C" fn bind<T: TableFunction>(info: ffi::duckdb_bind_info) {
    let outcome = guard(T::NAME, "binding the call", || {
        // SAFETY: `info` is the bind info DuckDB passed to `bind`.
        let args = unsafe { read_args(T::NAME, &T::params(), info) }?;
        let plan = T::bind(&args)?;
        let columns = T::columns()
            .into_iter()
            .map(|column| {
                Ok((
                    CString::new(column.name.as_str())?,
                    column.ty.logical_type(),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // SAFETY: as above; the names and types outlive the calls that copy
        // them, and the plan's box is handed to DuckDB with its destructor.
        unsafe {
            for (name, ty) in &columns {
                ffi::duckdb_bind_add_result_column(info, name.as_ptr(), ty.0);
            }
            if let Some(rows) = plan.cardinality() {
                ffi::duckdb_bind_set_cardinality(info, rows, true);
            }
            ffi::duckdb_bind_set_bind_data(
                info,
                Box::into_raw(Box::new(plan)) as *mut c_void,
                Some(drop_box::<T>),
            );
        }
        Ok(())
    });
    if let Err(message) = outcome {
        // SAFETY: as above.
        set_error(&message, |m| unsafe { ffi::duckdb_bind_set_error(info, m) });
    }
}

unsafe extern "C" fn init<T: TableFunction>(info: ffi::duckdb_init_info) {
    let outcome = guard(T::NAME, "starting the scan", || {
        // SAFETY: DuckDB passes `init` the info of a call whose bind data is
        // the `T` set by `bind`, alive until the call ends; the scan's box
        // is handed to DuckDB with its destructor.
        unsafe {
            let plan = &*(ffi::duckdb_init_get_bind_data(info) as *const T);
            let scan = plan.scan();
            ffi::duckdb_init_set_max_threads(info, plan.max_threads().max(1) as u64);
            ffi::duckdb_init_set_init_data(
                info,
                Box::into_raw(Box::new(scan)) as *mut c_void,
                Some(drop_box::<T::Scan>),
            );
        }
        Ok(())
    });
    if let Err(message) = outcome {
        // SAFETY: as above.
        set_error(&message, |m| unsafe { ffi::duckdb_init_set_error(info, m) });
    }
}

unsafe extern "C" fn local_init<T: TableFunction>(info: ffi::duckdb_init_info) {
    let outcome = guard(T::NAME, "starting a scan thread", || {
        // SAFETY: as in `init`, for the thread's cursor.
        unsafe {
            let plan = &*(ffi::duckdb_init_get_bind_data(info) as *const T);
            let cursor = plan.cursor();
            ffi::duckdb_init_set_init_data(
                info,
                Box::into_raw(Box::new(cursor)) as *mut c_void,
                Some(drop_box::<T::Cursor>),
            );
        }
        Ok(())
    });
    if let Err(message) = outcome {
        // SAFETY: as above.
        set_error(&message, |m| unsafe { ffi::duckdb_init_set_error(info, m) });
    }
}

unsafe extern "C" fn function<T: TableFunction>(
    info: ffi::duckdb_function_info,
    output: ffi::duckdb_data_chunk,
) {
    let outcome = guard(T::NAME, "producing rows", || {
        // SAFETY: DuckDB passes the function the info of a call whose bind,
        // init and local init data are the boxes set above (alive until the
        // call ends; the cursor is this thread's own), and its output chunk.
        unsafe {
            let plan = &*(ffi::duckdb_function_get_bind_data(info) as *const T);
            let scan = &*(ffi::duckdb_function_get_init_data(info) as *const T::Scan);
            let cursor = &mut *(ffi::duckdb_function_get_local_init_data(info) as *mut T::Cursor);
            let mut out = OutputChunk::from_raw(output);
            // Nothing is returned if filling fails half-way.
            out.set_len(0);
            let rows = plan.fill(scan, cursor, &mut out)?;
            out.set_len(rows);
        }
        Ok(())
    });
    if let Err(message) = outcome {
        // SAFETY: as above.
        set_error(&message, |m| unsafe {
            ffi::duckdb_function_set_error(info, m)
        });
    }
}

/// Registers `T` in DuckDB's system catalog under `T::NAME`.
///
/// # Safety
/// `con` is an open connection.
pub(crate) unsafe fn register<T: TableFunction>(con: ffi::duckdb_connection) -> anyhow::Result<()> {
    // SAFETY: `con` is open; every handle made here is destroyed here, and
    // the names and types outlive the calls that copy them.
    unsafe { register_table::<T>(con) }
}

/// # Safety
/// As [`register`].
unsafe fn register_table<T: TableFunction>(con: ffi::duckdb_connection) -> anyhow::Result<()> {
    let mut tf = ffi::duckdb_create_table_function();
    let name = CString::new(T::NAME)?;
    ffi::duckdb_table_function_set_name(tf, name.as_ptr());
    for param in T::params() {
        let ty = param.ty.logical_type();
        if param.positional {
            ffi::duckdb_table_function_add_parameter(tf, ty.0);
        } else {
            let pname = CString::new(param.name)?;
            ffi::duckdb_table_function_add_named_parameter(tf, pname.as_ptr(), ty.0);
        }
    }
    ffi::duckdb_table_function_set_bind(tf, Some(bind::<T>));
    ffi::duckdb_table_function_set_init(tf, Some(init::<T>));
    ffi::duckdb_table_function_set_local_init(tf, Some(local_init::<T>));
    ffi::duckdb_table_function_set_function(tf, Some(function::<T>));
    let state = ffi::duckdb_register_table_function(con, tf);
    ffi::duckdb_destroy_table_function(&mut tf);
    if state != ffi::DuckDBSuccess {
        return Err(crate::error::host(format!(
            "could not register table function {}",
            T::NAME
        )));
    }
    Ok(())
}
