//! How table output writes numbers for people: durations (`1.8 ms`, `2.3 s`), sizes (`172 MB`),
//! times (RFC 3339 in UTC, `strata::format_rfc3339`) and document bodies (one line, cut with an
//! ellipsis, or pretty-printed). JSON output never goes through here: it keeps raw numbers.

use serde_json::Value;

/// A duration given in microseconds: `850 µs`, `1.8 ms`, `2.3 s`, `3 min 20 s`, `2 h 5 min`.
pub(crate) fn duration(micros: u64) -> String {
    match micros {
        m if m < 1_000 => format!("{m} µs"),
        // Three significant digits at most: 12.3 ms, 123 ms.
        m if m < 100_000 => format!("{:.1} ms", m as f64 / 1e3),
        m if m < 1_000_000 => format!("{:.0} ms", m as f64 / 1e3),
        m if m < 60_000_000 => format!("{:.1} s", m as f64 / 1e6),
        m if m < 3_600_000_000 => format!("{} min {} s", m / 60_000_000, m / 1_000_000 % 60),
        m => format!("{} h {} min", m / 3_600_000_000, m / 60_000_000 % 60),
    }
}

/// A duration in seconds (a float, as the reports give it), as [`duration`] writes it.
pub(crate) fn seconds(secs: f64) -> String {
    duration((secs.max(0.0) * 1e6) as u64)
}

/// A size in bytes, in decimal units: `812 B`, `1.8 kB`, `17.2 MB`, `172 MB`, `1.1 GB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    // Move up a unit where rounding would print 1000.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 99.95 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A time in microseconds since the epoch: RFC 3339 in UTC, `2026-01-02T03:04:05.000000Z`.
pub(crate) fn time(micros: u64) -> String {
    strata::format_rfc3339(micros)
}

/// Characters of a body shown in a table row before it is cut.
pub(crate) const BODY_WIDTH: usize = 60;

/// A body on one line of at most `width` characters, cut with `…` when longer.
pub(crate) fn body_line(body: &Value, width: usize) -> String {
    let text = body.to_string();
    if text.chars().count() <= width {
        return text;
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A body pretty-printed (two-space indents), each line after `indent`.
pub(crate) fn body_pretty(body: &Value, indent: &str) -> String {
    let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string());
    text.lines()
        .map(|line| format!("{indent}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 µs");
        assert_eq!(duration(850), "850 µs");
        assert_eq!(duration(1_800), "1.8 ms");
        assert_eq!(duration(12_345), "12.3 ms");
        assert_eq!(duration(123_456), "123 ms");
        assert_eq!(duration(2_300_000), "2.3 s");
        assert_eq!(duration(200_000_000), "3 min 20 s");
        assert_eq!(duration(7_500_000_000), "2 h 5 min");
        assert_eq!(seconds(0.0023), "2.3 ms");
        assert_eq!(seconds(-1.0), "0 µs");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_000), "1.0 kB");
        assert_eq!(bytes(1_840), "1.8 kB");
        assert_eq!(bytes(17_240_000), "17.2 MB");
        assert_eq!(bytes(172_000_000), "172 MB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(1_100_000_000), "1.1 GB");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
    }

    #[test]
    fn bodies_are_cut_or_pretty() {
        let body = json!({"name": "x".repeat(100)});
        let line = body_line(&body, 20);
        assert_eq!(line.chars().count(), 20);
        assert!(
            line.ends_with('…') && line.starts_with("{\"name\":\"xxx"),
            "{line}"
        );
        assert_eq!(body_line(&json!({"a": 1}), 20), "{\"a\":1}");
        // A cut never splits a character.
        assert_eq!(body_line(&json!("ééééé"), 4), "\"éé…");
        assert_eq!(
            body_pretty(&json!({"a": 1, "b": [true]}), "  "),
            "  {\n    \"a\": 1,\n    \"b\": [\n      true\n    ]\n  }"
        );
    }
}
