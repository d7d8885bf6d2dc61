//! Rust-side memory inside the user's budget.
//!
//! Rust memory is outside DuckDB's `memory_limit`, so the heavy functions
//! size their large structures before building them and refuse at once,
//! with the size needed and the setting to change, when the structures
//! would not fit the `memory_limit` the user set (the calling macro passes
//! `current_setting('memory_limit')`). Allocations whose size comes from
//! input go through [`reserve`], which fails with an SQL error instead of
//! aborting the process.

/// Bytes of a DuckDB size setting such as `18.6 GiB`, `6GB`, `512.0 MiB`,
/// `1000 bytes`; `None` for an unlimited or unreadable setting.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..split].trim().parse().ok()?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let scale = match unit.as_str() {
        "" | "b" | "byte" | "bytes" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes > 0.0).then_some(bytes as u64)
}

/// `1.23 GB`-style text for messages.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{} bytes", bytes)
    }
}

/// The memory budget of one call.
#[derive(Clone, Debug)]
pub struct Budget {
    limit: Option<u64>,
    setting: String,
}

impl Budget {
    pub fn from_setting(setting: &str) -> Self {
        Budget {
            limit: parse_size(setting),
            setting: setting.to_string(),
        }
    }

    /// Fails when `bytes` (what `what` needs, by `formula`) exceed the limit.
    pub fn check(&self, what: &str, bytes: u64, formula: &str) -> anyhow::Result<()> {
        if let Some(limit) = self.limit {
            if bytes > limit {
                return Err(crate::error::memory(format!(
                    "{what} needs about {} ({formula}), more than memory_limit = {}; raise it \
                     (SET memory_limit = '{}') or make the input smaller",
                    human(bytes),
                    self.setting,
                    human(bytes + bytes / 4),
                )));
            }
        }
        Ok(())
    }
}

/// Reserves room for `more` elements, failing with an SQL error (naming
/// `what`) instead of aborting the process when memory runs out.
pub fn reserve<T>(v: &mut Vec<T>, more: usize, what: &str) -> anyhow::Result<()> {
    v.try_reserve(more).map_err(|_| {
        crate::error::memory(format!(
            "out of memory while holding {what} ({} more elements of {} bytes); make the input smaller",
            more,
            std::mem::size_of::<T>()
        ))
    })
}

/// A vector of `n` copies of `value`, allocated fallibly.
pub fn filled<T: Clone>(n: usize, value: T, what: &str) -> anyhow::Result<Vec<T>> {
    let mut v = Vec::new();
    reserve(&mut v, n, what)?;
    v.resize(n, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckdb_size_settings_parse() {
        assert_eq!(parse_size("6GB"), Some(6_000_000_000));
        assert_eq!(
            parse_size("18.6 GiB"),
            Some((18.6 * 1024f64.powi(3)) as u64)
        );
        assert_eq!(parse_size("512.0 MiB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("1000 bytes"), Some(1000));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("unlimited"), None);
    }

    #[test]
    fn budget_refuses_with_the_size_and_the_setting() {
        let b = Budget::from_setting("1.0 GiB");
        assert!(b.check("x", 1_000_000, "f").is_ok());
        let e = b
            .check("ALS training", 3_000_000_000, "users × factors")
            .unwrap_err();
        assert_eq!(crate::error::kind_of(&e), crate::error::Kind::Memory);
        let e = e.to_string();
        assert!(
            e.contains("3.00 GB")
                && e.contains("memory_limit = 1.0 GiB")
                && e.contains("SET memory_limit"),
            "{e}"
        );
        assert!(Budget::from_setting("").check("x", u64::MAX, "f").is_ok());
    }

    #[test]
    fn fallible_reserve_reports_instead_of_aborting() {
        let mut v: Vec<u64> = Vec::new();
        let e = reserve(&mut v, usize::MAX / 4, "pairs").unwrap_err();
        assert_eq!(crate::error::kind_of(&e), crate::error::Kind::Memory);
        let e = e.to_string();
        assert!(e.contains("out of memory while holding pairs"), "{e}");
    }
}
