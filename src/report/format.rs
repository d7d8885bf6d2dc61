//! Numbers as a person reads them: thousands separators, rounding chosen
//! from the scale of what is shown, shares as percentages.

/// `1234567` → `"1,234,567"`.
pub fn int(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value` with `decimals` decimals and thousands separators on the whole
/// part: `12345.678, 2` → `"12,345.68"`. Not finite: `"–"`.
pub fn fixed(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    // Rounding can turn -0.004 into "0.00": no sign then.
    let negative = value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&int(whole.parse::<i64>().unwrap_or(0)));
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A value rounded to about three significant digits (at most 4 decimals):
/// `290.3214` → `"290"`, `0.034567` → `"0.0346"`, `1234567.8` → `"1,234,568"`.
pub fn num(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    let magnitude = if value == 0.0 {
        0
    } else {
        value.abs().log10().floor() as i32
    };
    let decimals = (2 - magnitude).clamp(0, 4) as usize;
    fixed(value, decimals)
}

/// A share 0..1 as a percentage: `0.96123` → `"96.1 %"`.
pub fn pct(share: f64) -> String {
    if !share.is_finite() {
        return "–".to_string();
    }
    let p = share * 100.0;
    let decimals = if p != 0.0 && p.abs() < 1.0 { 2 } else { 1 };
    format!("{} %", fixed(p, decimals))
}

/// An axis tick label: as many decimals as the tick spacing needs, with
/// thousands separators (`step` is the distance between ticks, or the
/// axis range when unknown).
pub fn axis(value: f64, step: f64) -> String {
    let step = step.abs();
    let decimals = if step >= 1.0 || step == 0.0 || !step.is_finite() {
        0
    } else {
        ((-step.log10()).ceil() as i64).clamp(0, 4) as usize
    };
    fixed(value, decimals)
}

/// A round upper bound for an axis that starts at 0: 1, 2 or 5 × 10^n,
/// at least `max` (and at least 1 for an all-zero series).
pub fn nice_ceiling(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * power >= max {
            return m * power;
        }
    }
    10.0 * power
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_thousands_separators() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(17434), "17,434");
        assert_eq!(int(-1234567), "-1,234,567");
    }

    #[test]
    fn decimals_are_rounded_to_the_scale() {
        assert_eq!(fixed(59442.634, 2), "59,442.63");
        assert_eq!(fixed(-0.004, 2), "0.00");
        assert_eq!(fixed(-1234.5, 1), "-1,234.5");
        assert_eq!(num(290.3214), "290");
        assert_eq!(num(3.4414), "3.44");
        assert_eq!(num(0.034567), "0.0346");
        assert_eq!(num(1234567.8), "1,234,568");
        assert_eq!(num(f64::NAN), "–");
        assert_eq!(pct(0.96123), "96.1 %");
        assert_eq!(pct(0.0017), "0.17 %");
        assert_eq!(pct(1.0), "100.0 %");
    }

    #[test]
    fn axis_labels_follow_the_tick_step() {
        assert_eq!(axis(2500.0, 500.0), "2,500");
        assert_eq!(axis(0.25, 0.05), "0.25");
        assert_eq!(axis(0.3, 0.1), "0.3");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(17434.0), 20000.0);
        assert_eq!(nice_ceiling(96.0), 100.0);
        assert_eq!(nice_ceiling(0.93), 1.0);
        assert_eq!(nice_ceiling(3.0), 3.0);
    }
}
