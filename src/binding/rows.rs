//! Moving rows between DuckDB vectors and plain Rust columns.
//!
//! [`InputChunk`] reads the (flat) argument vectors an aggregate receives;
//! [`RowSet`] is a column-oriented result that the binding writes as one
//! `LIST(STRUCT(...))` value, which the calling macro unnests into rows.

use super::types::{Column, SqlType};
use libduckdb_sys as ffi;

/// The argument vectors of one input chunk.
///
/// Every accessor checks the row against the chunk's size and the column's
/// declared type against the value asked for: a wrong index or type is a
/// panic (an error naming the function, through [`super::guard`]), never a
/// read outside the vectors DuckDB handed over.
pub struct InputChunk {
    rows: usize,
    columns: Vec<InputColumn>,
    /// Declared argument names, for [`InputChunk::col`].
    names: Vec<String>,
}

struct InputColumn {
    ty: SqlType,
    data: *const u8,
    validity: *const u64,
    /// For LIST columns: the child vector's data, validity and length.
    child_data: *const u8,
    child_validity: *const u64,
    child_len: usize,
}

/// Whether `row` is valid in a validity mask (NULL mask: all valid).
///
/// # Safety
/// A non-null `validity` holds at least `row / 64 + 1` words.
#[inline]
unsafe fn valid(validity: *const u64, row: usize) -> bool {
    // SAFETY: as above.
    validity.is_null() || unsafe { (*validity.add(row / 64) >> (row % 64)) & 1 == 1 }
}

/// `a == b`, checked once per cell read: a scalar type by its variant
/// alone (the derived comparison walks the nested types, a call per cell).
#[inline(always)]
fn same_type(a: &SqlType, b: &SqlType) -> bool {
    match a {
        SqlType::List(_) | SqlType::Struct(_) => a == b,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

impl InputChunk {
    /// The argument vectors of `chunk`, whose columns DuckDB declared as
    /// `columns` (the function's registered parameters, in order).
    ///
    /// # Safety
    /// `chunk` is a data chunk DuckDB handed to a callback, whose columns
    /// have the types of `columns`; it outlives the `InputChunk`.
    pub(crate) unsafe fn from_raw(
        chunk: ffi::duckdb_data_chunk,
        columns: &[Column],
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!chunk.is_null(), "no input chunk");
        // SAFETY: `chunk` is a valid data chunk (see above); every vector
        // asked for is one of its columns, checked against its column count.
        unsafe {
            let count = ffi::duckdb_data_chunk_get_column_count(chunk) as usize;
            anyhow::ensure!(
                count >= columns.len(),
                "{count} input columns, {} declared",
                columns.len()
            );
            let rows = ffi::duckdb_data_chunk_get_size(chunk) as usize;
            let names = columns.iter().map(|c| c.name.clone()).collect();
            let columns = columns
                .iter()
                .enumerate()
                .map(|(c, column)| {
                    let v = ffi::duckdb_data_chunk_get_vector(chunk, c as u64);
                    let (child_data, child_validity, child_len) = match column.ty {
                        SqlType::List(_) => {
                            let child = ffi::duckdb_list_vector_get_child(v);
                            (
                                ffi::duckdb_vector_get_data(child) as *const u8,
                                ffi::duckdb_vector_get_validity(child) as *const u64,
                                ffi::duckdb_list_vector_get_size(v) as usize,
                            )
                        }
                        _ => (std::ptr::null(), std::ptr::null(), 0),
                    };
                    InputColumn {
                        ty: column.ty.clone(),
                        data: ffi::duckdb_vector_get_data(v) as *const u8,
                        validity: ffi::duckdb_vector_get_validity(v) as *const u64,
                        child_data,
                        child_validity,
                        child_len,
                    }
                })
                .collect();
            Ok(InputChunk {
                rows,
                columns,
                names,
            })
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The position of the declared argument `name` (resolve it once per
    /// chunk, then read values by position).
    pub fn col(&self, name: &str) -> anyhow::Result<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| anyhow::anyhow!("internal error: no argument `{name}` is declared"))
    }

    /// Column `col`, checked to exist and to be one of `types`, and `row`
    /// checked to be in the chunk; whether the value is not NULL.
    fn cell(&self, col: usize, row: usize, what: &str, types: &[SqlType]) -> (&InputColumn, bool) {
        assert!(
            row < self.rows,
            "row {row} of an input chunk of {} rows",
            self.rows
        );
        let c = self.columns.get(col).unwrap_or_else(|| {
            panic!(
                "argument {col} of a call with {} arguments",
                self.columns.len()
            )
        });
        assert!(
            types.iter().any(|t| same_type(t, &c.ty)),
            "argument {col} is {}, read as {what}",
            c.ty.sql_name()
        );
        // SAFETY: DuckDB's validity masks cover every row of the chunk.
        (c, unsafe { valid(c.validity, row) })
    }

    pub fn is_null(&self, col: usize, row: usize) -> bool {
        assert!(
            row < self.rows && col < self.columns.len(),
            "argument {col}, row {row} of an input chunk of {} arguments and {} rows",
            self.columns.len(),
            self.rows
        );
        // SAFETY: as in `cell`.
        !unsafe { valid(self.columns[col].validity, row) }
    }

    /// Reads a fixed-size value of a column checked by `cell`.
    fn fixed<T: Copy>(&self, col: usize, row: usize, what: &str, types: &[SqlType]) -> Option<T> {
        let (c, valid) = self.cell(col, row, what, types);
        // SAFETY: the column's physical type is `T` (checked by `cell`
        // against its declared type) and `row` is within the chunk.
        valid.then(|| unsafe { *(c.data as *const T).add(row) })
    }

    /// BIGINT / TIMESTAMP value.
    pub fn i64(&self, col: usize, row: usize) -> Option<i64> {
        self.fixed(col, row, "BIGINT", &[SqlType::BigInt, SqlType::Timestamp])
    }

    /// INTEGER / DATE value.
    pub fn i32(&self, col: usize, row: usize) -> Option<i32> {
        self.fixed(col, row, "INTEGER", &[SqlType::Integer, SqlType::Date])
    }

    /// BOOLEAN value.
    pub fn bool(&self, col: usize, row: usize) -> Option<bool> {
        let (c, valid) = self.cell(col, row, "BOOLEAN", &[SqlType::Boolean]);
        // SAFETY: a BOOLEAN vector holds one byte, 0 or 1, per row; read as
        // a byte, not as `bool`, so that no other value is ever a `bool`.
        valid.then(|| unsafe { *c.data.add(row) } != 0)
    }

    /// DOUBLE value.
    pub fn f64(&self, col: usize, row: usize) -> Option<f64> {
        self.fixed(col, row, "DOUBLE", &[SqlType::Double])
    }

    /// VARCHAR value (DuckDB's string_t: inlined up to 12 bytes, else a pointer).
    pub fn str(&self, col: usize, row: usize) -> Option<&str> {
        let (c, valid) = self.cell(col, row, "VARCHAR", &[SqlType::Varchar]);
        if !valid {
            return None;
        }
        // SAFETY: a VARCHAR vector holds a `duckdb_string_t` per row, whose
        // bytes (inline, or behind its pointer) live as long as the chunk;
        // DuckDB keeps VARCHAR values valid UTF-8.
        unsafe {
            let s = (c.data as *const ffi::duckdb_string_t).add(row);
            let len = (*s).value.inlined.length as usize;
            let bytes = if len <= 12 {
                std::slice::from_raw_parts((*s).value.inlined.inlined.as_ptr() as *const u8, len)
            } else {
                std::slice::from_raw_parts((*s).value.pointer.ptr as *const u8, len)
            };
            Some(std::str::from_utf8_unchecked(bytes))
        }
    }

    /// A LIST value of DOUBLE (`T = f64`) or FLOAT (`T = f32`) children; NULL
    /// children are reported as `Err(index)` so callers can say where.
    pub fn list<T: ListChild>(&self, col: usize, row: usize) -> Option<Result<&[T], usize>> {
        let child = SqlType::List(Box::new(T::sql_type()));
        let (c, present) = self.cell(col, row, &child.sql_name(), std::slice::from_ref(&child));
        if !present {
            return None;
        }
        // SAFETY: a LIST vector holds a `duckdb_list_entry` per row; its
        // range is checked against the child vector's length, whose physical
        // type is `T` (checked by `cell`).
        unsafe {
            let entry = *(c.data as *const ffi::duckdb_list_entry).add(row);
            let (offset, length) = (entry.offset as usize, entry.length as usize);
            assert!(
                offset
                    .checked_add(length)
                    .is_some_and(|end| end <= c.child_len),
                "list of row {row} ({offset} + {length}) outside its child vector of {}",
                c.child_len
            );
            for i in 0..length {
                if !valid(c.child_validity, offset + i) {
                    return Some(Err(i));
                }
            }
            Some(Ok(std::slice::from_raw_parts(
                (c.child_data as *const T).add(offset),
                length,
            )))
        }
    }
}

/// A list child type [`InputChunk::list`] reads.
pub trait ListChild: Copy {
    fn sql_type() -> SqlType;
}
impl ListChild for f64 {
    fn sql_type() -> SqlType {
        SqlType::Double
    }
}
impl ListChild for f32 {
    fn sql_type() -> SqlType {
        SqlType::Float
    }
}
impl ListChild for i64 {
    fn sql_type() -> SqlType {
        SqlType::BigInt
    }
}

/// One result column's values.
#[derive(Clone, Debug)]
pub enum Values {
    BigInt(Vec<Option<i64>>),
    Integer(Vec<Option<i32>>),
    Double(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    FloatList(Vec<Option<Vec<f32>>>),
}

impl Values {
    fn empty(ty: &SqlType) -> Values {
        match ty {
            SqlType::BigInt | SqlType::Timestamp => Values::BigInt(Vec::new()),
            SqlType::Integer | SqlType::Date => Values::Integer(Vec::new()),
            SqlType::Double => Values::Double(Vec::new()),
            SqlType::List(_) => Values::FloatList(Vec::new()),
            _ => Values::Text(Vec::new()),
        }
    }
    fn slice(&self, start: usize, end: usize) -> Values {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            Values::BigInt(v) => Values::BigInt(v[start..end].to_vec()),
            Values::Integer(v) => Values::Integer(v[start..end].to_vec()),
            Values::Double(v) => Values::Double(v[start..end].to_vec()),
            Values::Text(v) => Values::Text(v[start..end].to_vec()),
            Values::FloatList(v) => Values::FloatList(v[start..end].to_vec()),
        }
    }
    fn bytes(&self) -> usize {
        let cells = self.len() * 16;
        cells
            + match self {
                Values::Text(v) => v.iter().flatten().map(String::capacity).sum(),
                Values::FloatList(v) => v.iter().flatten().map(|l| l.capacity() * 4).sum(),
                _ => 0,
            }
    }
    fn len(&self) -> usize {
        match self {
            Values::BigInt(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::FloatList(v) => v.len(),
        }
    }
    fn sql_type(&self) -> SqlType {
        match self {
            Values::BigInt(_) => SqlType::BigInt,
            Values::Integer(_) => SqlType::Integer,
            Values::Double(_) => SqlType::Double,
            Values::Text(_) => SqlType::Varchar,
            Values::FloatList(_) => SqlType::List(Box::new(SqlType::Float)),
        }
    }
}

/// A value type that a result column of the matching SQL type holds.
pub trait Cell: Sized {
    fn sql_type() -> SqlType;
    fn push(values: &mut Values, value: Option<Self>);
}

macro_rules! cell {
    ($t:ty, $variant:ident, $sql:expr) => {
        impl Cell for $t {
            fn sql_type() -> SqlType {
                $sql
            }
            fn push(values: &mut Values, value: Option<Self>) {
                match values {
                    Values::$variant(v) => v.push(value),
                    _ => unreachable!("column handles are checked against the column type"),
                }
            }
        }
    };
}
cell!(i64, BigInt, SqlType::BigInt);
cell!(i32, Integer, SqlType::Integer);
cell!(f64, Double, SqlType::Double);
cell!(String, Text, SqlType::Varchar);
cell!(Vec<f32>, FloatList, SqlType::List(Box::new(SqlType::Float)));

/// A handle to one declared result column of type `T`, resolved by name
/// once ([`RowSet::col`]), so rows are written without column positions.
pub struct Col<T> {
    index: usize,
    _type: std::marker::PhantomData<fn(T)>,
}

impl<T> Clone for Col<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Col<T> {}

/// Column-oriented result rows, built against the declared result columns.
#[derive(Clone, Debug, Default)]
pub struct RowSet {
    pub columns: Vec<(String, Values)>,
}

impl RowSet {
    /// Empty rows with the declared columns (names and types).
    pub fn for_columns(columns: &[Column]) -> Self {
        RowSet {
            columns: columns
                .iter()
                .map(|c| (c.name.clone(), Values::empty(&c.ty)))
                .collect(),
        }
    }
    /// The column `name`, which must be declared with `T`'s SQL type.
    pub fn col<T: Cell>(&self, name: &str) -> anyhow::Result<Col<T>> {
        let index = self
            .columns
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| {
                anyhow::anyhow!("internal error: no result column `{name}` is declared")
            })?;
        anyhow::ensure!(
            self.columns[index].1.sql_type() == T::sql_type(),
            "internal error: result column `{name}` is declared {}, written as {}",
            self.columns[index].1.sql_type().sql_name(),
            T::sql_type().sql_name()
        );
        Ok(Col {
            index,
            _type: std::marker::PhantomData,
        })
    }
    /// Appends a value to column `col` (every column gets one per row).
    pub fn put<T: Cell>(&mut self, col: Col<T>, value: Option<T>) {
        T::push(&mut self.columns[col.index].1, value)
    }
    pub fn put_str(&mut self, col: Col<String>, value: Option<&str>) {
        self.put(col, value.map(str::to_string))
    }
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }
    /// About how many bytes the values take (strings and lists included).
    pub fn bytes(&self) -> usize {
        self.columns.iter().map(|(_, v)| v.bytes()).sum()
    }
    /// Rows `start..end` as a new row set.
    pub fn slice(&self, start: usize, end: usize) -> RowSet {
        RowSet {
            columns: self
                .columns
                .iter()
                .map(|(n, v)| (n.clone(), v.slice(start, end)))
                .collect(),
        }
    }

    /// Checks the row set against the declared schema (a mismatch is a bug
    /// in the stage code, reported as an error instead of corrupt memory).
    pub(crate) fn check(&self, schema: &[Column]) -> anyhow::Result<()> {
        if self.columns.len() != schema.len() {
            anyhow::bail!(
                "internal error: {} result columns, {} declared",
                self.columns.len(),
                schema.len()
            );
        }
        let rows = self.rows();
        for ((name, values), col) in self.columns.iter().zip(schema) {
            if *name != col.name || values.sql_type() != col.ty || values.len() != rows {
                anyhow::bail!(
                    "internal error: result column {name} does not match its declaration {}",
                    col.name
                );
            }
        }
        Ok(())
    }

    /// Writes the rows as the LIST(STRUCT) value of `row` in `list_vector`.
    ///
    /// # Safety
    /// `list_vector` is a writable LIST vector, with a row `row`, whose child
    /// is a STRUCT of this row set's columns (checked with [`RowSet::check`]).
    pub(crate) unsafe fn write_as_list(
        &self,
        list_vector: ffi::duckdb_vector,
        row: usize,
    ) -> anyhow::Result<()> {
        let n = self.rows();
        // SAFETY: `list_vector` is a LIST vector with row `row` (see above);
        // its child is reserved for `base + n` rows before they are written,
        // and each field vector is a child of the declared struct type.
        unsafe {
            let base = ffi::duckdb_list_vector_get_size(list_vector) as usize;
            reserve(list_vector, base + n)?;
            let entries = ffi::duckdb_vector_get_data(list_vector) as *mut ffi::duckdb_list_entry;
            *entries.add(row) = ffi::duckdb_list_entry {
                offset: base as u64,
                length: n as u64,
            };
            let structs = ffi::duckdb_list_vector_get_child(list_vector);
            for (field, (_, values)) in self.columns.iter().enumerate() {
                let vector = ffi::duckdb_struct_vector_get_child(structs, field as u64);
                write_values(vector, base, values)?;
            }
        }
        Ok(())
    }
}

/// Makes room for `size` child rows in a LIST vector and sets its size.
///
/// # Safety
/// `list_vector` is a writable LIST vector.
unsafe fn reserve(list_vector: ffi::duckdb_vector, size: usize) -> anyhow::Result<()> {
    // SAFETY: as above.
    unsafe {
        anyhow::ensure!(
            ffi::duckdb_list_vector_reserve(list_vector, size as u64) == ffi::DuckDBSuccess
                && ffi::duckdb_list_vector_set_size(list_vector, size as u64) == ffi::DuckDBSuccess,
            "could not make room for {size} result values"
        );
    }
    Ok(())
}

/// Marks `row` of `vector` NULL.
///
/// # Safety
/// `vector` is a writable vector with a row `row`.
unsafe fn set_invalid(vector: ffi::duckdb_vector, row: usize) {
    // SAFETY: as above; the validity mask is made writable first.
    unsafe {
        ffi::duckdb_vector_ensure_validity_writable(vector);
        ffi::duckdb_validity_set_row_invalid(ffi::duckdb_vector_get_validity(vector), row as u64);
    }
}

/// Writes `values` to rows `base..` of `vector`.
///
/// # Safety
/// `vector`'s physical type is `T` and it has rows `base..base + values.len()`.
unsafe fn write_fixed<T: Copy>(vector: ffi::duckdb_vector, base: usize, values: &[Option<T>]) {
    // SAFETY: as above.
    unsafe {
        let data = ffi::duckdb_vector_get_data(vector) as *mut T;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(x) => *data.add(base + i) = *x,
                None => set_invalid(vector, base + i),
            }
        }
    }
}

/// Writes `values` to rows `base..` of `vector`.
///
/// # Safety
/// `vector` is a writable vector of `values`' SQL type, with rows
/// `base..base + values.len()`.
unsafe fn write_values(
    vector: ffi::duckdb_vector,
    base: usize,
    values: &Values,
) -> anyhow::Result<()> {
    // SAFETY: as above; a FLOAT[] column's child is reserved for every list
    // before the lists are copied into it.
    unsafe {
        match values {
            Values::BigInt(v) => write_fixed(vector, base, v),
            Values::Integer(v) => write_fixed(vector, base, v),
            Values::Double(v) => write_fixed(vector, base, v),
            Values::Text(v) => {
                for (i, s) in v.iter().enumerate() {
                    match s {
                        Some(s) => ffi::duckdb_vector_assign_string_element_len(
                            vector,
                            (base + i) as u64,
                            s.as_ptr() as *const std::os::raw::c_char,
                            s.len() as u64,
                        ),
                        None => set_invalid(vector, base + i),
                    }
                }
            }
            Values::FloatList(v) => {
                let total: usize = v.iter().map(|l| l.as_ref().map_or(0, |l| l.len())).sum();
                let child_base = ffi::duckdb_list_vector_get_size(vector) as usize;
                reserve(vector, child_base + total)?;
                let child = ffi::duckdb_list_vector_get_child(vector);
                let child_data = ffi::duckdb_vector_get_data(child) as *mut f32;
                let entries = ffi::duckdb_vector_get_data(vector) as *mut ffi::duckdb_list_entry;
                let mut offset = child_base;
                for (i, list) in v.iter().enumerate() {
                    match list {
                        Some(list) => {
                            std::ptr::copy_nonoverlapping(
                                list.as_ptr(),
                                child_data.add(offset),
                                list.len(),
                            );
                            *entries.add(base + i) = ffi::duckdb_list_entry {
                                offset: offset as u64,
                                length: list.len() as u64,
                            };
                            offset += list.len();
                        }
                        None => {
                            *entries.add(base + i) = ffi::duckdb_list_entry {
                                offset: offset as u64,
                                length: 0,
                            };
                            set_invalid(vector, base + i);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk of `rows` rows over plain Rust buffers: a BIGINT column and a
    /// DOUBLE[] column (no validity masks: every value present).
    fn chunk(
        rows: usize,
        ints: &[i64],
        lists: &[ffi::duckdb_list_entry],
        child: &[f64],
    ) -> InputChunk {
        let column = |ty: SqlType, data: *const u8, child_data: *const u8, child_len| InputColumn {
            ty,
            data,
            validity: std::ptr::null(),
            child_data,
            child_validity: std::ptr::null(),
            child_len,
        };
        InputChunk {
            rows,
            columns: vec![
                column(
                    SqlType::BigInt,
                    ints.as_ptr() as *const u8,
                    std::ptr::null(),
                    0,
                ),
                column(
                    SqlType::List(Box::new(SqlType::Double)),
                    lists.as_ptr() as *const u8,
                    child.as_ptr() as *const u8,
                    child.len(),
                ),
            ],
            names: vec!["n".into(), "l".into()],
        }
    }

    /// The message of a read the guard refused; a wrong read is a bug of
    /// the reading code, caught as one.
    fn refused<R>(f: impl FnOnce() -> R) -> String {
        let e = crate::binding::guard("ecoreco.f", "reading rows", || Ok(f()))
            .err()
            .expect("a wrong read must be refused");
        assert_eq!(e.kind(), crate::error::Kind::Internal, "{e}");
        e.message().to_string()
    }

    #[test]
    fn values_are_read_within_the_chunk() {
        let entries = [ffi::duckdb_list_entry {
            offset: 1,
            length: 2,
        }];
        let c = chunk(1, &[42], &entries, &[0.5, 1.5, 2.5]);
        assert_eq!(c.i64(0, 0), Some(42));
        assert_eq!(c.list::<f64>(1, 0), Some(Ok(&[1.5, 2.5][..])));
        assert_eq!(c.col("l").unwrap(), 1);
    }

    #[test]
    fn a_wrong_row_column_or_type_is_an_error_not_a_read() {
        let entries = [ffi::duckdb_list_entry {
            offset: 2,
            length: 5,
        }];
        let c = chunk(1, &[42], &entries, &[0.5, 1.5, 2.5]);
        let e = refused(|| c.i64(0, 1));
        assert!(
            e.contains("internal error") && e.contains("row 1 of an input chunk of 1 rows"),
            "{e}"
        );
        let e = refused(|| c.i64(2, 0));
        assert!(e.contains("argument 2 of a call with 2 arguments"), "{e}");
        let e = refused(|| c.f64(0, 0));
        assert!(e.contains("argument 0 is BIGINT, read as DOUBLE"), "{e}");
        let e = refused(|| c.str(1, 0).map(str::len));
        assert!(e.contains("read as VARCHAR"), "{e}");
        let e = refused(|| c.list::<f32>(1, 0).map(|l| l.map(<[f32]>::len)));
        assert!(e.contains("DOUBLE[], read as FLOAT[]"), "{e}");
        // A list entry reaching past its child vector is refused too.
        let e = refused(|| c.list::<f64>(1, 0).map(|l| l.map(<[f64]>::len)));
        assert!(e.contains("outside its child vector of 3"), "{e}");
        let e = refused(|| c.is_null(0, 3));
        assert!(e.contains("row 3"), "{e}");
    }
}
