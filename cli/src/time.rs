//! Times people write on the command line (`--at` and every other time flag) -> microseconds
//! since the Unix epoch. RFC 3339 is read by the query crate's rule (`strata::parse_rfc3339`),
//! the one that decides which body strings are dates; times are printed by `fmt::time`.

/// The forms a time flag accepts, for error messages and help.
pub(crate) const TIME_FORMS: &str =
    "RFC 3339 (2026-01-02T03:04:05Z, 2026-01-02T03:04:05.25+01:00), \
a UTC date (2026-01-02) or minute (2026-01-02T03:04), microseconds since the epoch \
(1767225600000000), or a time before now (-30s, -10m, -2h, -7d)";

/// The clock now, in microseconds since the epoch.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Parses a time flag: see [`TIME_FORMS`]. A date without a time is its midnight in UTC, a
/// minute without an offset is UTC; an impossible date such as `2026-02-30` is an error.
pub(crate) fn parse_time(s: &str) -> Result<u64, String> {
    parse_time_at(s, now_micros())
}

/// [`parse_time`] with relative times counted back from `now`.
pub(crate) fn parse_time_at(s: &str, now: u64) -> Result<u64, String> {
    let bad = |why: &str| format!("bad time {s:?}: {why}; expected {TIME_FORMS}");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| bad("too large for microseconds since the epoch"));
    }
    if let Some(relative) = s.strip_prefix('-') {
        let split = relative
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(relative.len());
        let (n, unit) = relative.split_at(split);
        let unit_micros: u64 = match unit {
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            _ => return Err(bad("a relative time is -N followed by s, m, h or d")),
        };
        let n: u64 = n
            .parse()
            .map_err(|_| bad("a relative time is -N followed by s, m, h or d"))?;
        return n
            .checked_mul(unit_micros)
            .and_then(|back| now.checked_sub(back))
            .ok_or_else(|| bad("that is before 1970"));
    }
    // A date, or a date and a minute (or second) without an offset: UTC.
    let full = match s.len() {
        10 => format!("{s}T00:00:00Z"),
        16 => format!("{s}:00Z"),
        19 if !s.ends_with(['z', 'Z']) => format!("{s}Z"),
        _ => s.to_owned(),
    };
    let t = strata::parse_rfc3339(&full).map_err(|e| bad(e.reason()))?;
    u64::try_from(t.micros()).map_err(|_| bad("that is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata::format_rfc3339 as format_micros;

    #[test]
    fn round_trips() {
        for micros in [
            0u64,
            1,
            951_782_400_000_000,
            1_764_000_000_123_456,
            4_102_444_800_000_000,
        ] {
            assert_eq!(parse_time(&format_micros(micros)), Ok(micros));
        }
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            Ok(1_767_225_600_000_000)
        );
        assert_eq!(
            parse_time("2026-01-01T01:00:00+01:00"),
            Ok(1_767_225_600_000_000)
        );
        assert_eq!(parse_time("12345"), Ok(12345));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        // Regression: an impossible date was accepted and rolled into the next month.
        let err = parse_time("2026-02-30T00:00:00Z").unwrap_err();
        assert!(
            err.contains("2026-02-30T00:00:00Z") && err.contains("february 2026 has 28 days"),
            "{err}"
        );
        assert!(parse_time("2026-04-31T00:00:00Z").is_err());
        assert!(parse_time("2026-01-01T12:00:60Z").is_err());
        assert_eq!(
            parse_time("2016-12-31T23:59:60Z"),
            Ok(1_483_228_799_999_999)
        );
        assert_eq!(
            parse_time("2026-01-01t00:00:00z"),
            Ok(1_767_225_600_000_000)
        );
        // Regression: a multi-byte character where a digit or separator belongs panicked.
        assert!(parse_time("2026-01-01T00:00:00+0é00").is_err());
        assert!(parse_time("2026-01-01T00:00:0é").is_err());
    }

    /// Regression: `--at` took only RFC 3339 with seconds and an offset, or microseconds.
    #[test]
    fn dates_minutes_and_relative_times() {
        let midnight = 1_686_355_200_000_000; // 2023-06-10T00:00:00Z
        assert_eq!(parse_time("2023-06-10"), Ok(midnight));
        assert_eq!(
            parse_time("2023-06-10T12:00"),
            Ok(midnight + 12 * 3_600_000_000)
        );
        assert_eq!(
            parse_time("2023-06-10 12:00:30"),
            Ok(midnight + 12 * 3_600_000_000 + 30_000_000)
        );
        let now = 1_767_225_600_000_000;
        for (text, back) in [
            ("-10s", 10_000_000),
            ("-30m", 1_800_000_000),
            ("-2h", 7_200_000_000),
            ("-7d", 604_800_000_000),
            ("-0s", 0),
        ] {
            assert_eq!(parse_time_at(text, now), Ok(now - back), "{text}");
        }
        for bad in [
            "-2",
            "-h",
            "-2w",
            "-2 h",
            "--2h",
            "-2h ago",
            "2023-06-1",
            "2023-06-10T12",
            "2023-06-31",
            "-99999999999999999999d",
            "-1000000d",
            "",
        ] {
            let err = parse_time_at(bad, now).unwrap_err();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("-7d"),
                "{err}"
            );
        }
    }
}
