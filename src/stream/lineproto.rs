//! InfluxDB line protocol (1.x): `measurement,tag=v field=1.5,n=3i ts`.
//!
//! Escaping, as the protocol defines it: in the measurement, commas and
//! spaces; in tag keys, tag values and field keys, commas, equals signs and
//! spaces, each preceded by a backslash; string field values are written in
//! double quotes with `"` and `\` backslash-escaped. Floats are written in
//! Rust's shortest exact form, integers with the `i` suffix, booleans as
//! `true`/`false`. The protocol has no escape for a newline (it ends the
//! point) and no value for NaN or infinity: a newline is an error, a
//! non-finite or NULL field is left out, and so is a NULL or empty tag
//! (InfluxDB refuses empty tag values). Tags and fields are written sorted
//! by key (InfluxDB's advice for tags; for fields it only makes lines
//! reproducible). A point with no field left is not written.

use anyhow::{bail, ensure, Result};
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(String),
}

fn no_newline(what: &str, text: &str) -> Result<()> {
    ensure!(
        !text.contains(['\n', '\r']),
        "the {what} {text:?} contains a line break, which line protocol cannot carry; remove it"
    );
    Ok(())
}

fn escape(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends one point (and a trailing newline) to `out`; returns false,
/// writing nothing, when no field has a value.
pub fn write_point(
    out: &mut String,
    measurement: &str,
    tags: &[(String, Option<String>)],
    fields: &[(String, Option<FieldValue>)],
    time_ns: Option<i64>,
) -> Result<bool> {
    ensure!(
        !measurement.is_empty(),
        "the measurement is empty; pass a name such as 'ecoreco_window'"
    );
    no_newline("measurement", measurement)?;
    let mut fields: Vec<(&str, &FieldValue)> = fields
        .iter()
        .filter_map(|(k, v)| match v {
            Some(FieldValue::Float(x)) if !x.is_finite() => None,
            Some(v) => Some((k.as_str(), v)),
            None => None,
        })
        .collect();
    if fields.is_empty() {
        return Ok(false);
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut tags: Vec<(&str, &str)> = tags
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| (k.as_str(), v))
        })
        .collect();
    tags.sort_by(|a, b| a.0.cmp(b.0));
    // Everything is checked before anything is written, so a refused
    // point leaves `out` as it was.
    for (key, value) in &tags {
        ensure!(!key.is_empty(), "a tag key is empty; name every tag");
        no_newline("tag key", key)?;
        no_newline("tag value", value)?;
    }
    for (key, value) in &fields {
        ensure!(!key.is_empty(), "a field key is empty; name every field");
        no_newline("field key", key)?;
        if let FieldValue::Str(s) = value {
            no_newline("string field", s)?;
        }
    }
    escape(out, measurement, &[',', ' ']);
    for (key, value) in &tags {
        out.push(',');
        escape(out, key, &[',', '=', ' ']);
        out.push('=');
        escape(out, value, &[',', '=', ' ']);
    }
    for (n, (key, value)) in fields.iter().enumerate() {
        out.push(if n == 0 { ' ' } else { ',' });
        escape(out, key, &[',', '=', ' ']);
        out.push('=');
        match value {
            FieldValue::Float(x) => write!(out, "{x}").expect("writing to a String"),
            FieldValue::Int(i) => write!(out, "{i}i").expect("writing to a String"),
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                escape(out, s, &['"', '\\']);
                out.push('"');
            }
        }
    }
    if let Some(t) = time_ns {
        write!(out, " {t}").expect("writing to a String");
    }
    out.push('\n');
    Ok(true)
}

/// JSON as DuckDB's `to_json` writes it may contain the bare words `NaN`,
/// `Infinity` and `-Infinity` for non-finite doubles, which JSON does not
/// allow: they become `null` (left out, as line protocol has no value for
/// them), strings untouched.
fn nonfinite_to_null(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = json;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(word) = ["-Infinity", "Infinity", "NaN"]
            .iter()
            .find(|w| rest.starts_with(**w))
        {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        in_string = c == '"';
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn json_object(what: &str, json: Option<&str>) -> Result<Vec<(String, serde_json::Value)>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    match serde_json::from_str::<serde_json::Value>(&nonfinite_to_null(json)) {
        Ok(serde_json::Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(serde_json::Value::Null) => Ok(Vec::new()),
        Ok(_) | Err(_) => bail!("{what} must be a struct such as {{'name': value}}, got {json}"),
    }
}

/// A point from JSON objects (what the SQL macro makes of its struct
/// arguments): tag values of any scalar type are written as text; JSON
/// integers become integer fields, other numbers floats, strings string
/// fields, booleans boolean fields.
pub fn line_from_json(
    measurement: &str,
    tags: Option<&str>,
    fields: Option<&str>,
    time_ns: Option<i64>,
) -> Result<Option<String>> {
    use serde_json::Value;
    let tags = json_object("tags", tags)?
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Null => None,
                Value::String(s) => Some(s),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                other => bail!("tag {k} must be a text, number or boolean, got {other}"),
            };
            Ok((k, text))
        })
        .collect::<Result<Vec<_>>>()?;
    let fields = json_object("fields", fields)?
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                Value::Null => None,
                Value::String(s) => Some(FieldValue::Str(s)),
                Value::Bool(b) => Some(FieldValue::Bool(b)),
                Value::Number(n) => Some(match n.as_i64() {
                    Some(i) => FieldValue::Int(i),
                    None => FieldValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                }),
                other => bail!("field {k} must be a number, text or boolean, got {other}"),
            };
            Ok((k, value))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = String::new();
    Ok(
        write_point(&mut out, measurement, &tags, &fields, time_ns)?.then(|| {
            out.pop();
            out
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> (String, Option<String>) {
        (k.to_string(), Some(v.to_string()))
    }
    fn field(k: &str, v: FieldValue) -> (String, Option<FieldValue>) {
        (k.to_string(), Some(v))
    }

    #[test]
    fn escapes_as_the_protocol_says() {
        let mut out = String::new();
        let wrote = write_point(
            &mut out,
            "my measure,x",
            &[
                tag("run", "demo 1,a=b"),
                tag("a key", "v"),
                ("empty".into(), Some(String::new())),
                ("null".into(), None),
            ],
            &[
                field("p99 ms", FieldValue::Float(1.25)),
                field("events", FieldValue::Int(42)),
                field("note", FieldValue::Str(r#"say "hi" \ bye"#.into())),
                field("ok", FieldValue::Bool(true)),
                field("nan", FieldValue::Float(f64::NAN)),
                ("gone".into(), None),
            ],
            Some(1_569_888_000_000_000_000),
        )
        .unwrap();
        assert!(wrote);
        assert_eq!(
            out,
            "my\\ measure\\,x,a\\ key=v,run=demo\\ 1\\,a\\=b events=42i,note=\"say \\\"hi\\\" \\\\ bye\",ok=true,p99\\ ms=1.25 1569888000000000000\n"
        );
    }

    #[test]
    fn floats_integers_and_missing_parts() {
        let mut out = String::new();
        write_point(
            &mut out,
            "m",
            &[],
            &[
                field("x", FieldValue::Float(2.0)),
                field("y", FieldValue::Float(0.1)),
            ],
            None,
        )
        .unwrap();
        assert_eq!(out, "m x=2,y=0.1\n");
        assert!(!write_point(
            &mut out,
            "m",
            &[],
            &[field("x", FieldValue::Float(f64::INFINITY))],
            None
        )
        .unwrap());
        assert!(write_point(&mut out, "", &[], &[], None)
            .unwrap_err()
            .to_string()
            .contains("measurement is empty"));
        let err = write_point(
            &mut out,
            "m",
            &[tag("t", "a\nb")],
            &[field("x", FieldValue::Int(1))],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        assert_eq!(out, "m x=2,y=0.1\n", "a failed point leaves nothing behind");
    }

    #[test]
    fn json_structs_as_duckdb_writes_them() {
        let line = line_from_json(
            "w",
            Some(r#"{"run":"a b","model":"m=1","n":3,"none":null}"#),
            Some(r#"{"events":12,"share":0.5,"p99":NaN,"big":Infinity,"two":2.0,"label":"x \"NaN\" y","flag":false}"#),
            Some(5),
        )
        .unwrap();
        assert_eq!(
            line.as_deref(),
            Some(
                r#"w,model=m\=1,n=3,run=a\ b events=12i,flag=false,label="x \"NaN\" y",share=0.5,two=2 5"#
            )
        );
        assert_eq!(
            line_from_json("w", None, Some(r#"{"x":null}"#), None).unwrap(),
            None
        );
        assert!(line_from_json("w", Some("[1]"), Some("{}"), None)
            .unwrap_err()
            .to_string()
            .contains("tags must be a struct"));
        assert!(line_from_json("w", None, Some(r#"{"x":[1]}"#), None).is_err());
    }
}
