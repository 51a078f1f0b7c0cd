//! When background maintenance (compaction and expiry) runs: [`MaintenanceOptions`].

use std::time::Duration;

use crate::error::{Error, Result};

/// Options of the background maintenance: compaction and expiry.
///
/// ```
/// use std::time::Duration;
/// use strata::{MaintenanceOptions, Options, Retention};
/// let options = Options::default()
///     .with_retention("metric", Retention::default().with_max_versions(10))
///     .with_maintenance(
///         MaintenanceOptions::default()
///             .with_compaction_interval(Some(Duration::from_secs(3600)))
///             .with_compaction_io_rate(Some(16 << 20)),
///     );
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceOptions {
    /// How often compaction runs in the background, when some retention is configured (by kind
    /// or by collection). `None`: only when [`crate::Store::compact`] is called. Default 10 minutes.
    /// An interval too long for an [`Instant`](std::time::Instant) (such as `Duration::MAX`) is the same as `None`;
    /// background expiry runs either way.
    pub compaction_interval: Option<Duration>,
    /// Most bytes per second compaction writes, in the background and on demand. `None`: as
    /// fast as the disk goes. Default 32 MiB/s.
    pub compaction_io_rate: Option<u64>,
    /// Whether expired documents get their tombstone written in the background, as soon as
    /// they expire. Default true. Expired documents are absent from reads either way.
    pub expire: bool,
    /// Most expiry tombstones written per batch. Default 1000.
    pub expiry_batch: usize,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        MaintenanceOptions {
            compaction_interval: Some(Duration::from_secs(600)),
            compaction_io_rate: Some(32 << 20),
            expire: true,
            expiry_batch: 1000,
        }
    }
}

impl MaintenanceOptions {
    /// Sets how often background compaction runs (`None`: never in the background).
    pub fn with_compaction_interval(mut self, interval: Option<Duration>) -> Self {
        self.compaction_interval = interval;
        self
    }

    /// Sets compaction's write rate (`None`: unlimited).
    pub fn with_compaction_io_rate(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.compaction_io_rate = bytes_per_sec;
        self
    }

    /// Sets whether expiry tombstones are written in the background.
    pub fn with_expire(mut self, expire: bool) -> Self {
        self.expire = expire;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.compaction_io_rate == Some(0) {
            return Err(Error::InvalidOption(
                "compaction_io_rate must be above 0 (None: unlimited)".into(),
            ));
        }
        if self.compaction_interval == Some(Duration::ZERO) {
            return Err(Error::InvalidOption(
                "compaction_interval must be above 0 (None: on demand only)".into(),
            ));
        }
        if self.expiry_batch == 0 {
            return Err(Error::InvalidOption(
                "expiry_batch must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
