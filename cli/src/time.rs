//! RFC 3339 <-> microseconds since the Unix epoch, in UTC; RFC 3339 is read by the query
//! crate's rule (`strata::parse_rfc3339`), the one that decides which body strings are dates.

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(crate) fn format_micros(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = strata::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The clock now, in microseconds since the epoch.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Parses a time given as microseconds since the epoch or as RFC 3339
/// (`2026-01-02T03:04:05Z`, optional fraction, `Z` or `+hh:mm` offset), by the same rule as dates
/// in queries (`strata::parse_rfc3339`): an impossible date such as `2026-02-30` is an error.
pub(crate) fn parse_time(s: &str) -> Result<u64, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|e| format!("bad time {s:?}: {e}"));
    }
    let t = strata::parse_rfc3339(s).map_err(|e| {
        format!(
            "bad time {s:?}: {}; expected microseconds or RFC 3339 like 2026-01-02T03:04:05Z",
            e.reason()
        )
    })?;
    u64::try_from(t.micros()).map_err(|_| format!("time {s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
