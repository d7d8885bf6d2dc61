//! Declared parameters of a Rust function and the values a call gives them.
//!
//! Every parameter is read through [`read_args`], which checks for SQL NULL
//! before touching the value (reading a NULL value without that check aborts
//! the host process) and fills in declared defaults, so function code only
//! ever sees complete, non-NULL [`Args`].

use super::types::SqlType;
use libduckdb_sys as ffi;
use std::collections::BTreeMap;

/// A parameter value after binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
}

impl Value {
    fn sql_literal(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => format!("{d:?}"),
            Value::Text(s) => super::sql::quote_literal(s),
        }
    }
}

/// One declared parameter. Positional parameters are required; named ones
/// carry a default and a one-line description used in errors and docs.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: SqlType,
    pub default: Option<Value>,
    pub positional: bool,
    pub doc: &'static str,
}

impl Param {
    pub fn positional(name: &'static str, ty: SqlType, doc: &'static str) -> Self {
        Param {
            name,
            ty,
            default: None,
            positional: true,
            doc,
        }
    }
    pub fn named(name: &'static str, ty: SqlType, default: Value, doc: &'static str) -> Self {
        Param {
            name,
            ty,
            default: Some(default),
            positional: false,
            doc,
        }
    }
    /// `name := default` for generated SQL macro signatures.
    pub fn macro_signature(&self) -> String {
        match &self.default {
            Some(d) if !self.positional => format!("{} := {}", self.name, d.sql_literal()),
            _ => self.name.to_string(),
        }
    }
}

/// The values of one call, by parameter name.
#[derive(Debug, Default)]
pub struct Args {
    function: &'static str,
    values: BTreeMap<&'static str, Value>,
}

impl Args {
    pub fn new(function: &'static str) -> Self {
        Args {
            function,
            values: BTreeMap::new(),
        }
    }
    pub fn set(&mut self, name: &'static str, value: Value) {
        self.values.insert(name, value);
    }
    fn get(&self, name: &str) -> anyhow::Result<&Value> {
        self.values.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: internal error: parameter `{name}` was not declared",
                self.function
            )
        })
    }
    pub fn int(&self, name: &str) -> anyhow::Result<i64> {
        match self.get(name)? {
            Value::Int(i) => Ok(*i),
            other => anyhow::bail!(
                "{}: parameter `{name}` must be an integer, got {other:?}",
                self.function
            ),
        }
    }
    pub fn double(&self, name: &str) -> anyhow::Result<f64> {
        match self.get(name)? {
            Value::Double(d) => Ok(*d),
            Value::Int(i) => Ok(*i as f64),
            other => anyhow::bail!(
                "{}: parameter `{name}` must be a number, got {other:?}",
                self.function
            ),
        }
    }
    pub fn text(&self, name: &str) -> anyhow::Result<&str> {
        match self.get(name)? {
            Value::Text(s) => Ok(s),
            other => anyhow::bail!(
                "{}: parameter `{name}` must be text, got {other:?}",
                self.function
            ),
        }
    }
    pub fn boolean(&self, name: &str) -> anyhow::Result<bool> {
        match self.get(name)? {
            Value::Bool(b) => Ok(*b),
            other => anyhow::bail!(
                "{}: parameter `{name}` must be a boolean, got {other:?}",
                self.function
            ),
        }
    }
    /// An integer in `[min, max]`, with an error that names the parameter and
    /// the accepted range so the caller knows what to change.
    pub fn int_in(&self, name: &str, min: i64, max: i64) -> anyhow::Result<i64> {
        let v = self.int(name)?;
        if v < min || v > max {
            anyhow::bail!(
                "{}: parameter `{name}` is {v}; it must be between {min} and {max}",
                self.function
            );
        }
        Ok(v)
    }
    /// A finite number in `[min, max]`.
    pub fn double_in(&self, name: &str, min: f64, max: f64) -> anyhow::Result<f64> {
        let v = self.double(name)?;
        if !v.is_finite() || v < min || v > max {
            anyhow::bail!(
                "{}: parameter `{name}` is {v}; it must be a finite number between {min} and {max}",
                self.function
            );
        }
        Ok(v)
    }
}

/// An owned `duckdb_value`, destroyed on drop.
struct OwnedValue(ffi::duckdb_value);

impl Drop for OwnedValue {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_value(&mut self.0) }
    }
}

/// Converts one bound parameter value to a [`Value`] of the declared type,
/// refusing NULL with an error that says how to fix the call.
unsafe fn convert(
    function: &'static str,
    param: &Param,
    raw: &OwnedValue,
) -> anyhow::Result<Value> {
    if raw.0.is_null() || ffi::duckdb_is_null_value(raw.0) {
        let hint = match &param.default {
            Some(d) => format!(
                "leave it out to use the default {}, or pass {}",
                d.sql_literal(),
                param.doc
            ),
            None => format!("pass {}", param.doc),
        };
        anyhow::bail!("{function}: parameter `{}` is NULL; {hint}", param.name);
    }
    // DuckDB has already cast the argument to the declared type (or refused
    // the call with a conversion error), so the getter below matches it.
    Ok(match param.ty {
        SqlType::Boolean => Value::Bool(ffi::duckdb_get_bool(raw.0)),
        SqlType::Integer | SqlType::BigInt => Value::Int(ffi::duckdb_get_int64(raw.0)),
        SqlType::Float | SqlType::Double => Value::Double(ffi::duckdb_get_double(raw.0)),
        // Dates and timestamps arrive as their ISO text.
        SqlType::Varchar | SqlType::Date | SqlType::Timestamp => {
            let p = ffi::duckdb_get_varchar(raw.0);
            if p.is_null() {
                anyhow::bail!("{function}: parameter `{}` could not be read as text", param.name);
            }
            let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            ffi::duckdb_free(p as *mut std::os::raw::c_void);
            Value::Text(s)
        }
        ref other => anyhow::bail!(
            "{function}: internal error: parameters of type {} are not supported by the binding layer",
            other.sql_name()
        ),
    })
}

/// Reads every declared parameter of a table function call.
pub(crate) unsafe fn read_args(
    function: &'static str,
    params: &[Param],
    info: ffi::duckdb_bind_info,
) -> anyhow::Result<Args> {
    let mut args = Args::new(function);
    let mut position = 0u64;
    for param in params {
        if param.positional {
            let raw = OwnedValue(ffi::duckdb_bind_get_parameter(info, position));
            position += 1;
            args.set(param.name, convert(function, param, &raw)?);
        } else {
            let name = std::ffi::CString::new(param.name).expect("parameter name without NUL");
            let raw = ffi::duckdb_bind_get_named_parameter(info, name.as_ptr());
            if raw.is_null() {
                // Not given: the declared default applies.
                let default = param
                    .default
                    .clone()
                    .expect("named parameters have a default");
                args.set(param.name, default);
            } else {
                let raw = OwnedValue(raw);
                args.set(param.name, convert(function, param, &raw)?);
            }
        }
    }
    Ok(args)
}
