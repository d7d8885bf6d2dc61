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
    /// # Safety
    /// `raw` is the output chunk DuckDB handed to a table function call; it
    /// outlives the `OutputChunk`.
    pub(crate) unsafe fn from_raw(raw: ffi::duckdb_data_chunk) -> Self {
        OutputChunk {
            raw,
            // SAFETY: a plain query of DuckDB's vector size.
            capacity: unsafe { ffi::duckdb_vector_size() } as usize,
        }
    }
    /// Rows this chunk can hold (DuckDB's STANDARD_VECTOR_SIZE, 2048).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The writer of column `index`; panics if the chunk has no such column.
    pub fn column(&mut self, index: usize) -> ColumnWriter {
        // SAFETY: `raw` is a valid chunk (see `from_raw`) and `index` is one
        // of its columns, whose vectors hold `capacity` rows.
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
        // SAFETY: `raw` is a valid chunk of `capacity` rows (checked above).
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
    /// # Safety
    /// `vector` is a valid DuckDB vector.
    unsafe fn of(vector: ffi::duckdb_vector) -> Storage {
        // SAFETY: as above; the type asked for is destroyed after use.
        let id = unsafe {
            let mut ty = ffi::duckdb_vector_get_column_type(vector);
            let id = ffi::duckdb_get_type_id(ty);
            ffi::duckdb_destroy_logical_type(&mut ty);
            id
        };
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
    /// # Safety
    /// `vector` is a writable vector of at least `capacity` rows that
    /// outlives the writer.
    pub(crate) unsafe fn from_vector(vector: ffi::duckdb_vector, capacity: usize) -> Self {
        ColumnWriter {
            vector,
            capacity,
            // SAFETY: as above.
            storage: unsafe { Storage::of(vector) },
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
        // SAFETY: the vector's storage is `T` and `row < capacity` (both
        // checked by the caller).
        unsafe {
            let data = ffi::duckdb_vector_get_data(self.vector) as *mut T;
            data.add(row).write(value)
        }
    }

    /// BIGINT, or TIMESTAMP as microseconds since 1970-01-01.
    #[inline]
    pub fn set_i64(&mut self, row: usize, value: i64) {
        self.check(row, Storage::I64, "64-bit integer");
        // SAFETY: storage and row checked just above.
        unsafe { self.write(row, value) }
    }
    /// INTEGER, or DATE as days since 1970-01-01.
    #[inline]
    pub fn set_i32(&mut self, row: usize, value: i32) {
        self.check(row, Storage::I32, "32-bit integer");
        // SAFETY: storage and row checked just above.
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_f64(&mut self, row: usize, value: f64) {
        self.check(row, Storage::F64, "DOUBLE");
        // SAFETY: storage and row checked just above.
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_f32(&mut self, row: usize, value: f32) {
        self.check(row, Storage::F32, "FLOAT");
        // SAFETY: storage and row checked just above.
        unsafe { self.write(row, value) }
    }
    #[inline]
    pub fn set_bool(&mut self, row: usize, value: bool) {
        self.check(row, Storage::Bool, "BOOLEAN");
        // SAFETY: storage and row checked just above.
        unsafe { self.write(row, value) }
    }

    pub fn set_null(&mut self, row: usize) {
        assert!(
            row < self.capacity,
            "row {row} of a chunk of {} rows",
            self.capacity
        );
        // SAFETY: `row < capacity` (checked above); the validity mask is made
        // writable first.
        unsafe {
            ffi::duckdb_vector_ensure_validity_writable(self.vector);
            let validity = ffi::duckdb_vector_get_validity(self.vector);
            ffi::duckdb_validity_set_row_invalid(validity, row as u64);
        }
    }

    pub fn set_str(&mut self, row: usize, text: &str) {
        self.check(row, Storage::Varchar, "text");
        // SAFETY: a VARCHAR vector and `row < capacity` (checked above);
        // DuckDB copies the bytes.
        unsafe {
            ffi::duckdb_vector_assign_string_element_len(
                self.vector,
                row as u64,
                text.as_ptr() as *const std::os::raw::c_char,
                text.len() as u64,
            )
        }
    }

    /// The writer of field `index` of a STRUCT column.
    pub fn field(&mut self, index: usize) -> ColumnWriter {
        assert!(
            self.storage == Storage::Struct,
            "a field of a {:?} column",
            self.storage
        );
        // SAFETY: a STRUCT vector whose field `index` exists (checked against
        // its type); the field vector has the struct's rows.
        unsafe {
            let mut ty = ffi::duckdb_vector_get_column_type(self.vector);
            let fields = ffi::duckdb_struct_type_child_count(ty) as usize;
            ffi::duckdb_destroy_logical_type(&mut ty);
            assert!(
                index < fields,
                "field {index} of a struct of {fields} fields"
            );
            let child = ffi::duckdb_struct_vector_get_child(self.vector, index as u64);
            ColumnWriter::from_vector(child, self.capacity)
        }
    }
}
