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
    /// Only for parameters declared [`Param::nullable`].
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
}

impl Value {
    pub fn sql_literal(&self) -> String {
        match self {
            Value::Null => "NULL".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => format!("{d:?}"),
            Value::Text(s) => super::sql::quote_literal(s),
        }
    }
}

/// What a parameter's value must satisfy, declared once with the parameter
/// and checked by the binding for every call (table function or aggregate).
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// Anything of the declared type.
    Any,
    /// An integer in `[min, max]`.
    IntRange(i64, i64),
    /// A finite number in `[min, max]`.
    Range(f64, f64),
    /// One of these texts (case-insensitive; read back lower-cased).
    OneOf(&'static [&'static str]),
}

impl Check {
    /// The error text for a value that fails the check, `None` when it passes.
    fn violation(&self, name: &str, value: &Value) -> Option<String> {
        match (self, value) {
            (Check::Any, _) => None,
            (Check::IntRange(min, max), Value::Int(v)) if v < min || v > max => Some(format!(
                "parameter `{name}` is {v}; pass an integer between {min} and {max}"
            )),
            (Check::Range(min, max), Value::Double(v)) if !v.is_finite() || v < min || v > max => {
                Some(format!(
                    "parameter `{name}` is {v}; pass a finite number between {min} and {max}"
                ))
            }
            (Check::Range(min, max), Value::Int(v)) if (*v as f64) < *min || (*v as f64) > *max => {
                Some(format!(
                    "parameter `{name}` is {v}; pass a finite number between {min} and {max}"
                ))
            }
            (Check::OneOf(choices), Value::Text(v))
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(v)) =>
            {
                Some(format!(
                    "parameter `{name}` is '{v}'; pass one of {}",
                    choices.join(", ")
                ))
            }
            _ => None,
        }
    }
}

/// Where a parameter's value comes from in the macro that calls a Rust
/// aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The caller: the macro has a parameter of the same name (positional
    /// when there is no default, else `name := default`).
    Caller,
    /// An SQL expression the macro fills in itself, never the caller
    /// (e.g. `current_setting('threads')`).
    Macro(&'static str),
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
    pub check: Check,
    pub source: Source,
    /// Whether NULL is a meaningful value (read with `Args::opt_*`).
    pub nullable: bool,
}

impl Param {
    pub fn positional(name: &'static str, ty: SqlType, doc: &'static str) -> Self {
        Param {
            name,
            ty,
            default: None,
            positional: true,
            doc,
            check: Check::Any,
            source: Source::Caller,
            nullable: false,
        }
    }
    pub fn named(name: &'static str, ty: SqlType, default: Value, doc: &'static str) -> Self {
        Param {
            name,
            ty,
            default: Some(default),
            positional: false,
            doc,
            check: Check::Any,
            source: Source::Caller,
            nullable: false,
        }
    }
    /// A value the calling macro supplies from an SQL expression.
    pub fn supplied(name: &'static str, ty: SqlType, expression: &'static str) -> Self {
        Param {
            name,
            ty,
            default: None,
            positional: false,
            doc: "",
            check: Check::Any,
            source: Source::Macro(expression),
            nullable: false,
        }
    }
    /// The same parameter with a check on its value.
    pub fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }
    /// The same parameter, accepting NULL as a value ("not given": the
    /// function then decides, e.g. from a stored model).
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
    /// `name := default` for generated SQL macro signatures.
    pub fn macro_signature(&self) -> String {
        match &self.default {
            Some(d) if !self.positional => format!("{} := {}", self.name, d.sql_literal()),
            _ => self.name.to_string(),
        }
    }
    /// The SQL expression a macro passes for this parameter: the macro's
    /// own parameter of that name, cast to the declared type.
    pub fn macro_argument(&self) -> String {
        match self.source {
            Source::Caller => format!("{}::{}", self.name, self.ty.sql_name()),
            Source::Macro(expression) => format!("({expression})::{}", self.ty.sql_name()),
        }
    }
    /// The parameter's default as SQL text (for the README and errors).
    pub fn default_sql(&self) -> Option<String> {
        self.default.as_ref().map(Value::sql_literal)
    }

    /// Checks a value against the declaration; the error says what to pass.
    pub(crate) fn validate(&self, function: &str, value: Value) -> anyhow::Result<Value> {
        if let Some(problem) = self.check.violation(self.name, &value) {
            return Err(crate::error::param(format!("{function}: {problem}")));
        }
        Ok(match (&self.check, value) {
            (Check::OneOf(_), Value::Text(t)) => Value::Text(t.to_ascii_lowercase()),
            (_, v) => v,
        })
    }

    /// The error for a NULL value of this parameter.
    pub(crate) fn null_error(&self, function: &str) -> anyhow::Error {
        let hint = match (&self.default, &self.source) {
            (_, Source::Macro(_)) => "call the function through its ecoreco.* macro".to_string(),
            (Some(d), _) => format!(
                "leave it out to use the default {}, or pass {}",
                d.sql_literal(),
                self.doc
            ),
            (None, _) => format!("pass {}", self.doc),
        };
        crate::error::param(format!(
            "{function}: parameter `{}` is NULL; {hint}",
            self.name
        ))
    }
}

/// The values of one call, by parameter name.
#[derive(Clone, Debug, Default)]
pub struct Args {
    function: String,
    values: BTreeMap<&'static str, Value>,
}

impl Args {
    pub fn new(function: impl Into<String>) -> Self {
        Args {
            function: function.into(),
            values: BTreeMap::new(),
        }
    }
    /// The public name of the function called (`ecoreco.als_train`), for errors.
    pub fn function(&self) -> &str {
        &self.function
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
    /// A nullable parameter's value: `None` for NULL.
    pub fn is_null(&self, name: &str) -> anyhow::Result<bool> {
        Ok(matches!(self.get(name)?, Value::Null))
    }
    pub fn opt_double(&self, name: &str) -> anyhow::Result<Option<f64>> {
        if self.is_null(name)? {
            Ok(None)
        } else {
            self.double(name).map(Some)
        }
    }
    pub fn opt_int(&self, name: &str) -> anyhow::Result<Option<i64>> {
        if self.is_null(name)? {
            Ok(None)
        } else {
            self.int(name).map(Some)
        }
    }
    pub fn opt_text(&self, name: &str) -> anyhow::Result<Option<&str>> {
        if self.is_null(name)? {
            Ok(None)
        } else {
            self.text(name).map(Some)
        }
    }
    pub fn int(&self, name: &str) -> anyhow::Result<i64> {
        match self.get(name)? {
            Value::Int(i) => Ok(*i),
            other => Err(crate::error::param(format!(
                "{}: parameter `{name}` must be an integer, got {other:?}",
                self.function
            ))),
        }
    }
    pub fn double(&self, name: &str) -> anyhow::Result<f64> {
        match self.get(name)? {
            Value::Double(d) => Ok(*d),
            Value::Int(i) => Ok(*i as f64),
            other => Err(crate::error::param(format!(
                "{}: parameter `{name}` must be a number, got {other:?}",
                self.function
            ))),
        }
    }
    pub fn text(&self, name: &str) -> anyhow::Result<&str> {
        match self.get(name)? {
            Value::Text(s) => Ok(s),
            other => Err(crate::error::param(format!(
                "{}: parameter `{name}` must be text, got {other:?}",
                self.function
            ))),
        }
    }
    pub fn boolean(&self, name: &str) -> anyhow::Result<bool> {
        match self.get(name)? {
            Value::Bool(b) => Ok(*b),
            other => Err(crate::error::param(format!(
                "{}: parameter `{name}` must be a boolean, got {other:?}",
                self.function
            ))),
        }
    }
    /// An integer in `[min, max]`, with an error that names the parameter and
    /// the accepted range so the caller knows what to change.
    pub fn int_in(&self, name: &str, min: i64, max: i64) -> anyhow::Result<i64> {
        let v = self.int(name)?;
        if v < min || v > max {
            return Err(crate::error::param(format!(
                "{}: parameter `{name}` is {v}; it must be between {min} and {max}",
                self.function
            )));
        }
        Ok(v)
    }
    /// A finite number in `[min, max]`.
    pub fn double_in(&self, name: &str, min: f64, max: f64) -> anyhow::Result<f64> {
        let v = self.double(name)?;
        if !v.is_finite() || v < min || v > max {
            return Err(crate::error::param(format!(
                "{}: parameter `{name}` is {v}; it must be a finite number between {min} and {max}",
                self.function
            )));
        }
        Ok(v)
    }
}

/// An owned `duckdb_value`, destroyed on drop.
struct OwnedValue(ffi::duckdb_value);

impl Drop for OwnedValue {
    fn drop(&mut self) {
        // SAFETY: an owned value (or null, which DuckDB ignores), destroyed once.
        unsafe { ffi::duckdb_destroy_value(&mut self.0) }
    }
}

/// Converts one bound parameter value to a [`Value`] of the declared type,
/// refusing NULL with an error that says how to fix the call.
///
/// # Safety
/// `raw` holds a value DuckDB bound to `param`, cast to its declared type.
unsafe fn convert(
    function: &'static str,
    param: &Param,
    raw: &OwnedValue,
) -> anyhow::Result<Value> {
    // SAFETY: `raw` is a valid value (see above).
    if raw.0.is_null() || unsafe { ffi::duckdb_is_null_value(raw.0) } {
        if param.nullable {
            return Ok(Value::Null);
        }
        return Err(param.null_error(function));
    }
    // DuckDB has already cast the argument to the declared type (or refused
    // the call with a conversion error), so the getter below matches it.
    // SAFETY: the getter matches the value's type (see above); the text
    // DuckDB returns is NUL-terminated and freed once, after it is copied.
    let value = unsafe {
        match param.ty {
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
    }
    };
    param.validate(function, value)
}

/// Reads the declared parameters of an aggregate call from row `row` of
/// its argument columns, starting at column `first` (aggregates take
/// their settings as constant trailing arguments).
pub(crate) fn read_row_args(
    function: &str,
    params: &[Param],
    input: &super::rows::InputChunk,
    first: usize,
    row: usize,
) -> anyhow::Result<Args> {
    let mut args = Args::new(function);
    for (i, param) in params.iter().enumerate() {
        let col = first + i;
        if input.is_null(col, row) {
            if param.nullable {
                args.set(param.name, Value::Null);
                continue;
            }
            return Err(param.null_error(function));
        }
        let value = match param.ty {
            SqlType::Boolean => input.bool(col, row).map(Value::Bool),
            SqlType::Integer => input.i32(col, row).map(|v| Value::Int(v as i64)),
            SqlType::BigInt | SqlType::Timestamp => input.i64(col, row).map(Value::Int),
            SqlType::Double => input.f64(col, row).map(Value::Double),
            SqlType::Varchar => input.str(col, row).map(|s| Value::Text(s.to_string())),
            ref other => anyhow::bail!(
                "{function}: internal error: aggregate settings of type {} are not supported by the binding layer",
                other.sql_name()
            ),
        }
        .ok_or_else(|| param.null_error(function))?;
        args.set(param.name, param.validate(function, value)?);
    }
    Ok(args)
}

/// Reads every declared parameter of a table function call.
///
/// # Safety
/// `info` is the bind info DuckDB passed to a table function's `bind`, whose
/// parameters were registered from `params`.
pub(crate) unsafe fn read_args(
    function: &'static str,
    params: &[Param],
    info: ffi::duckdb_bind_info,
) -> anyhow::Result<Args> {
    let mut args = Args::new(function);
    let mut position = 0u64;
    for param in params {
        if param.positional {
            // SAFETY: `info` is a bind info (see above); positional
            // parameters are asked for in order, as registered.
            let raw = OwnedValue(unsafe { ffi::duckdb_bind_get_parameter(info, position) });
            position += 1;
            // SAFETY: DuckDB bound it to this parameter's declared type.
            args.set(param.name, unsafe { convert(function, param, &raw) }?);
        } else {
            let name = std::ffi::CString::new(param.name)?;
            // SAFETY: as above, by name.
            let raw = unsafe { ffi::duckdb_bind_get_named_parameter(info, name.as_ptr()) };
            if raw.is_null() {
                // Not given: the declared default applies.
                let default = param.default.clone().ok_or_else(|| {
                    anyhow::anyhow!(
                        "{function}: internal error: named parameter `{}` has no default",
                        param.name
                    )
                })?;
                args.set(param.name, default);
            } else {
                let raw = OwnedValue(raw);
                // SAFETY: as above.
                args.set(param.name, unsafe { convert(function, param, &raw) }?);
            }
        }
    }
    Ok(args)
}

/// The parameters every heavy aggregate takes from the caller's settings.
pub fn settings_params() -> Vec<Param> {
    vec![
        Param::supplied("threads", SqlType::BigInt, "current_setting('threads')"),
        Param::supplied(
            "memory_limit",
            SqlType::Varchar,
            "current_setting('memory_limit')",
        ),
        Param::supplied(
            "progress",
            SqlType::Varchar,
            "coalesce(getvariable('ecoreco_progress')::VARCHAR, 'auto')",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{kind_of, Kind};

    #[test]
    fn refused_values_are_parameter_errors_with_what_to_pass() {
        let k = Param::named(
            "k",
            SqlType::BigInt,
            Value::Int(5),
            "the number of segments, e.g. k := 5",
        )
        .check(Check::IntRange(1, 10));
        let e = k.validate("ecoreco.f", Value::Int(11)).unwrap_err();
        assert_eq!(kind_of(&e), Kind::Param);
        assert_eq!(
            e.to_string(),
            "ecoreco.f: parameter `k` is 11; pass an integer between 1 and 10"
        );
        let e = k.null_error("ecoreco.f");
        assert_eq!(kind_of(&e), Kind::Param);
        assert_eq!(
            e.to_string(),
            "ecoreco.f: parameter `k` is NULL; leave it out to use the default 5, or pass the number of segments, e.g. k := 5"
        );
        assert!(matches!(
            k.validate("ecoreco.f", Value::Int(3)),
            Ok(Value::Int(3))
        ));
        let mut args = Args::new("ecoreco.f");
        args.set("k", Value::Text("five".into()));
        let e = args.int("k").unwrap_err();
        assert_eq!(kind_of(&e), Kind::Param);
        assert_eq!(
            e.to_string(),
            "ecoreco.f: parameter `k` must be an integer, got Text(\"five\")"
        );
        args.set("k", Value::Int(0));
        let e = args.int_in("k", 1, 10).unwrap_err();
        assert_eq!(
            (kind_of(&e), e.to_string()),
            (
                Kind::Param,
                "ecoreco.f: parameter `k` is 0; it must be between 1 and 10".to_string()
            )
        );
    }
}
