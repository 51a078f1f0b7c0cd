//! Durations turned into deadlines and microsecond counts without overflow (issue 11 E): a
//! duration too long for an [`Instant`] is a deadline that never comes, and one whose
//! microseconds do not fit a `u64` saturates instead of wrapping.

use std::time::{Duration, Instant};

/// The instant `after` from now, or `None` when no [`Instant`] can hold it (the deadline never
/// comes: wait without a timeout, never expire).
pub fn deadline_after(after: Duration) -> Option<Instant> {
    Instant::now().checked_add(after)
}

/// `d` in whole microseconds, or `u64::MAX` when that does not fit (`as_micros() as u64` would
/// wrap a duration of about 584,942 years to a short one).
pub fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(deadline_after(Duration::MAX), None);
        assert!(deadline_after(Duration::from_secs(1)).is_some());
        assert_eq!(micros_of(Duration::MAX), u64::MAX);
        assert_eq!(
            micros_of(Duration::from_secs(u64::MAX / 1_000_000 + 1)),
            u64::MAX
        );
        assert_eq!(micros_of(Duration::from_micros(u64::MAX)), u64::MAX);
        assert_eq!(micros_of(Duration::from_micros(u64::MAX - 1)), u64::MAX - 1);
    }
}
