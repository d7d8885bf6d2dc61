//! SQL types of parameters and result columns, and their DuckDB logical types.

use libduckdb_sys as ffi;
use std::ffi::CString;

/// The SQL types ecoreco's Rust functions take and return.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlType {
    Boolean,
    Integer,
    BigInt,
    Float,
    Double,
    Varchar,
    Date,
    Timestamp,
    List(Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    /// The SQL spelling, used in error messages and generated macro text.
    pub fn sql_name(&self) -> String {
        match self {
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Float => "FLOAT".into(),
            SqlType::Double => "DOUBLE".into(),
            SqlType::Varchar => "VARCHAR".into(),
            SqlType::Date => "DATE".into(),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::List(child) => format!("{}[]", child.sql_name()),
            SqlType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(n, t)| {
                        format!("{} {}", crate::binding::sql::quote_ident(n), t.sql_name())
                    })
                    .collect();
                format!("STRUCT({})", inner.join(", "))
            }
        }
    }

    /// A new DuckDB logical type; the caller owns it (see [`LogicalType`]).
    pub(crate) fn logical_type(&self) -> LogicalType {
        // SAFETY: plain constructors of owned types; children are destroyed
        // after the list or struct type copied them.
        unsafe {
            let raw = match self {
                SqlType::Boolean => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN)
                }
                SqlType::Integer => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER)
                }
                SqlType::BigInt => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT)
                }
                SqlType::Float => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_FLOAT)
                }
                SqlType::Double => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE)
                }
                SqlType::Varchar => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR)
                }
                SqlType::Date => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE),
                SqlType::Timestamp => {
                    ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP)
                }
                SqlType::List(child) => {
                    let child = child.logical_type();
                    ffi::duckdb_create_list_type(child.0)
                }
                SqlType::Struct(fields) => {
                    let children: Vec<LogicalType> =
                        fields.iter().map(|(_, t)| t.logical_type()).collect();
                    let names: Vec<CString> = fields
                        .iter()
                        .map(|(n, _)| CString::new(n.replace('\0', " ")).unwrap_or_default())
                        .collect();
                    let mut raw_children: Vec<ffi::duckdb_logical_type> =
                        children.iter().map(|c| c.0).collect();
                    let mut raw_names: Vec<*const std::os::raw::c_char> =
                        names.iter().map(|n| n.as_ptr()).collect();
                    ffi::duckdb_create_struct_type(
                        raw_children.as_mut_ptr(),
                        raw_names.as_mut_ptr(),
                        fields.len() as u64,
                    )
                }
            };
            LogicalType(raw)
        }
    }
}

/// An owned DuckDB logical type, destroyed on drop.
pub(crate) struct LogicalType(pub ffi::duckdb_logical_type);

impl Drop for LogicalType {
    fn drop(&mut self) {
        // SAFETY: an owned type, destroyed once.
        unsafe { ffi::duckdb_destroy_logical_type(&mut self.0) }
    }
}

/// A result column: name and type.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
}

impl Column {
    pub fn new(name: &str, ty: SqlType) -> Self {
        Column {
            name: name.to_string(),
            ty,
        }
    }
}
