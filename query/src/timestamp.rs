//! [`Timestamp`]: the one type of a point in time in the API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: whole microseconds since the Unix epoch (1970-01-01T00:00:00Z), the unit
/// of every time Strata stores.
///
/// Every function that takes a time takes `impl Into<Timestamp>`: microseconds as a `u64`, a
/// [`SystemTime`], or a `Timestamp`. Fields and results that hold a time are `u64`
/// microseconds named `*_micros` (`Meta::update_time_micros`), with `Timestamp` accessors where
/// a conversion is common. `Display` is RFC 3339 in UTC ([`crate::format_rfc3339`]).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use strata_query::Timestamp;
/// let t = Timestamp::from(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
/// assert_eq!(t, Timestamp::from(1_767_225_600_000_000));
/// assert_eq!(t.as_micros(), 1_767_225_600_000_000);
/// assert_eq!(t.to_system_time(), UNIX_EPOCH + Duration::from_secs(1_767_225_600));
/// assert_eq!(t.to_string(), "2026-01-01T00:00:00.000000Z");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The clock now (the epoch if the clock is before it).
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0)
    }
}

impl From<u64> for Timestamp {
    fn from(micros: u64) -> Self {
        Timestamp(micros)
    }
}

/// Rounds down to a whole microsecond; a time before the epoch is the epoch and one beyond
/// `u64::MAX` microseconds (year 586 912) is that.
impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl From<Timestamp> for u64 {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::format_rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_saturates() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_767_225_600_123_456_789);
        assert_eq!(Timestamp::from(t).as_micros(), 1_767_225_600_123_456);
        assert_eq!(
            Timestamp::from(1_767_225_600_123_456).to_system_time(),
            UNIX_EPOCH + Duration::from_micros(1_767_225_600_123_456)
        );
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)),
            Timestamp::from_micros(0)
        );
        assert!(Timestamp::now() > Timestamp::from(1_700_000_000_000_000));
        assert_eq!(u64::from(Timestamp::from(5)), 5);
    }
}
