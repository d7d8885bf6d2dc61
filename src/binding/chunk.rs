//! Writing result rows into DuckDB data chunks.
//!
//! A [`ColumnWriter`] knows its vector's type (asked once, when the writer is
//! made), so its typed setters (`set_i64`, `set_f64`, ...) are safe: writing a
//! value of another physical type, or past the chunk's capacity, is a panic
//! (which `guard` turns into an SQL error), never a write into the wrong
//! memory. Strings go through DuckDB's own string assignment so the vector
//! owns its copy.

use libduckdb_sys as ffi;

/// One output chunk of a table function call.
pub struct OutputChunk {
    raw: ffi::duckdb_data_chunk,
    capacity: usize,
}

impl OutputChunk {
    pub(crate) unsafe fn from_raw(raw: ffi::duckdb_data_chunk) -> Self {
        OutputChunk {
            raw,
            capacity: ffi::duckdb_vector_size() as usize,
        }
    }
    /// Rows this chunk can hold (DuckDB's STANDARD_VECTOR_SIZE, 2048).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The writer of column `index`; panics if the chunk has no such column.
    pub fn column(&mut self, index: usize) -> ColumnWriter {
        unsafe {
            let columns = ffi::duckdb_data_chunk_get_column_count(self.raw) as usize;
            assert!(
                index < columns,
                "column {index} of a chunk with {columns} columns"
            );
            let vector = ffi::duckdb_data_chunk_get_vector(self.raw, index as u64);
            ColumnWriter::from_vector(vector, self.capacity)
        }
    }
    pub fn set_len(&mut self, rows: usize) {
        assert!(
            rows <= self.capacity,
            "{rows} rows in a chunk of {}",
            self.capacity
        );
        unsafe { ffi::duckdb_data_chunk_set_size(self.raw, rows as u64) }
    }
}

/// The storage class of a vector, which decides what may be written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    /// BIGINT, TIMESTAMP (microseconds).
    I64,
    /// INTEGER, DATE (days).
    I32,
    F64,
    F32,
    Bool,
    Varchar,
    List,
    Struct,
    Other,
}

impl Storage {
    unsafe fn of(vector: ffi::duckdb_vector) -> Storage {
        let mut ty = ffi::duckdb_vector_get_column_type(vector);
        let id = ffi::duckdb_get_type_id(ty);
        ffi::duckdb_destroy_logical_type(&mut ty);
        match id {
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT | ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP => {
                Storage::I64
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER | ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE => {
                Storage::I32
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE => Storage::F64,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_FLOAT => Storage::F32,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => Storage::Bool,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => Storage::Varchar,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_LIST => Storage::List,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_STRUCT => Storage::Struct,
            _ => Storage::Other,
        }
    }
}

/// Writes one column (a DuckDB vector).
pub struct ColumnWriter {
    vector: ffi::duckdb_vector,
    capacity: usize,
    storage: Storage,
}

impl ColumnWriter {
    pub(crate) unsafe fn from_vector(vector: ffi::duckdb_vector, capacity: usize) -> Self {
        ColumnWriter {
            vector,
            capacity,
            storage: Storage::of(vector),
        }
    }

    #[inline]
    fn check(&self, row: usize, storage: Storage, what: &str) {
        assert!(
            row < self.capacity,
            "row {row} of a chunk of {} rows",
            self.capacity
        );
        assert!(
            self.storage == storage,
            "a {what} value written to a {:?} column",
            self.storage
        );
    }

    /// # Safety
    /// The caller has checked that the vector's storage is `T`.
    #[inline]
    unsafe fn write<T: Copy>(&mut self, row: usize, value: T) {
        let data = ffi::duckdb_vector_get_data(self.vector) as *mut T;
        data.add(row).write(value)
    }

    /// BIGINT, or TIMESTAMP as microseconds since 1970-01-01.
    #[inline]
    pub fn set_i64(&mut self, row: usize, value: i64) {
        self.check(row, Storage::I64, "64-bit integer");
        unsafe { self.write(row, value) }
    }
    /// INTEGER, or DATE as days since 1970-01-01.
    #[inline]
    pub fn set_i32(&mut self, row: usize, value: i32) {
        self.check(row, Storage::I32, "32-bit integer");
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_f64(&mut self, row: usize, value: f64) {
        self.check(row, Storage::F64, "DOUBLE");
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_f32(&mut self, row: usize, value: f32) {
        self.check(row, Storage::F32, "FLOAT");
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_bool(&mut self, row: usize, value: bool) {
        self.check(row, Storage::Bool, "BOOLEAN");
        unsafe { self.write(row, value) }
    }

    /// The column's storage as a slice of its physical type: `i64` for
    /// BIGINT and TIMESTAMP (microseconds), `i32` for INTEGER and DATE (days),
    /// `f64` for DOUBLE, `f32` for FLOAT, `bool` for BOOLEAN. Prefer the
    /// typed setters, which check the type.
    ///
    /// # Safety
    /// `T` must be the physical type of the column as declared.
    pub unsafe fn values<T: Copy>(&mut self) -> &mut [T] {
        let data = ffi::duckdb_vector_get_data(self.vector) as *mut T;
        std::slice::from_raw_parts_mut(data, self.capacity)
    }

    pub fn set_null(&mut self, row: usize) {
        assert!(
            row < self.capacity,
            "row {row} of a chunk of {} rows",
            self.capacity
        );
        unsafe {
            ffi::duckdb_vector_ensure_validity_writable(self.vector);
            let validity = ffi::duckdb_vector_get_validity(self.vector);
            ffi::duckdb_validity_set_row_invalid(validity, row as u64);
        }
    }

    pub fn set_str(&mut self, row: usize, text: &str) {
        self.check(row, Storage::Varchar, "text");
        unsafe {
            ffi::duckdb_vector_assign_string_element_len(
                self.vector,
                row as u64,
                text.as_ptr() as *const std::os::raw::c_char,
                text.len() as u64,
            )
        }
    }

    /// Writes `rows` as the LIST(STRUCT) value of `row` (the column must be
    /// declared as the list of those rows' struct).
    pub fn set_rows(&mut self, row: usize, rows: &super::rows::RowSet) {
        self.check(row, Storage::List, "list");
        unsafe { rows.write_as_list(self.vector, row) }
    }

    /// Writes a LIST value per row from `lists`, all into the list's child
    /// vector of physical type `T`.
    ///
    /// # Safety
    /// `T` must be the physical type of the list's child.
    pub unsafe fn set_lists<T: Copy>(&mut self, lists: &[&[T]]) {
        self.check(lists.len().saturating_sub(1), Storage::List, "list");
        let total: usize = lists.iter().map(|l| l.len()).sum();
        let child = ffi::duckdb_list_vector_get_child(self.vector);
        let base = ffi::duckdb_list_vector_get_size(self.vector) as usize;
        ffi::duckdb_list_vector_reserve(self.vector, (base + total) as u64);
        ffi::duckdb_list_vector_set_size(self.vector, (base + total) as u64);
        let child_data = ffi::duckdb_vector_get_data(child) as *mut T;
        let entries = ffi::duckdb_vector_get_data(self.vector) as *mut ffi::duckdb_list_entry;
        let mut offset = base;
        for (row, list) in lists.iter().enumerate() {
            std::ptr::copy_nonoverlapping(list.as_ptr(), child_data.add(offset), list.len());
            *entries.add(row) = ffi::duckdb_list_entry {
                offset: offset as u64,
                length: list.len() as u64,
            };
            offset += list.len();
        }
    }
}
