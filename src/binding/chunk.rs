//! Writing result rows into DuckDB data chunks, and reading input vectors.
//!
//! Fixed-width columns are exposed as plain mutable slices (DuckDB's vector
//! memory is a contiguous array of the physical type), strings go through
//! DuckDB's own string assignment so the vector owns its copy.

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
    pub fn column(&mut self, index: usize) -> ColumnWriter {
        unsafe {
            let vector = ffi::duckdb_data_chunk_get_vector(self.raw, index as u64);
            ColumnWriter {
                vector,
                capacity: self.capacity,
            }
        }
    }
    pub fn set_len(&mut self, rows: usize) {
        debug_assert!(rows <= self.capacity);
        unsafe { ffi::duckdb_data_chunk_set_size(self.raw, rows as u64) }
    }
}

/// Writes one column (a DuckDB vector).
pub struct ColumnWriter {
    vector: ffi::duckdb_vector,
    capacity: usize,
}

impl ColumnWriter {
    pub(crate) unsafe fn from_vector(vector: ffi::duckdb_vector, capacity: usize) -> Self {
        ColumnWriter { vector, capacity }
    }

    /// The column's storage as a slice of its physical type: `i64` for
    /// BIGINT and TIMESTAMP (microseconds), `i32` for INTEGER and DATE (days),
    /// `f64` for DOUBLE, `f32` for FLOAT, `bool` for BOOLEAN.
    ///
    /// # Safety
    /// `T` must be the physical type of the column as declared.
    pub unsafe fn values<T: Copy>(&mut self) -> &mut [T] {
        let data = ffi::duckdb_vector_get_data(self.vector) as *mut T;
        std::slice::from_raw_parts_mut(data, self.capacity)
    }

    pub fn set_null(&mut self, row: usize) {
        unsafe {
            ffi::duckdb_vector_ensure_validity_writable(self.vector);
            let validity = ffi::duckdb_vector_get_validity(self.vector);
            ffi::duckdb_validity_set_row_invalid(validity, row as u64);
        }
    }

    pub fn set_str(&mut self, row: usize, text: &str) {
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
        unsafe { rows.write_as_list(self.vector, row) }
    }

    pub fn set_i64(&mut self, row: usize, value: i64) {
        assert!(row < self.capacity, "row {row} beyond the chunk");
        unsafe { self.values::<i64>()[row] = value }
    }

    pub fn set_bool(&mut self, row: usize, value: bool) {
        unsafe { self.values::<bool>()[row] = value }
    }

    /// Writes a LIST value per row from `lists`, all into the list's child
    /// vector of physical type `T`.
    ///
    /// # Safety
    /// `T` must be the physical type of the list's child.
    pub unsafe fn set_lists<T: Copy>(&mut self, lists: &[&[T]]) {
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
