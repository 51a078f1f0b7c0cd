//! What can a store be opened with? Every option type of a store lives here: [`Options`] and
//! the parts it holds ([`Limits`], [`IndexOptions`], [`TaskPoolOptions`], [`Retention`] with its
//! storage rule, [`MaintenanceOptions`]). A leaf: it imports nothing of the crate but its
//! errors, so every other room can read options without climbing back up. Setters are
//! `with_*`, take any value and never panic; [`crate::Store::open`] validates.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};

mod limits;
mod maintenance;
mod retention;
mod task_pool;

pub use limits::Limits;
pub use maintenance::MaintenanceOptions;
pub use query::IndexOptions;
pub use retention::Retention;
pub use storage::Durability;
pub use task_pool::TaskPoolOptions;

/// Options of [`crate::Store::open`]. Every setter accepts any value; `open` validates.
///
/// ```
/// use std::time::Duration;
/// use strata::{Durability, Options};
/// let options = Options::default()
///     .with_durability(Durability::Buffered(Duration::from_millis(10)))
///     .with_segment_size(128 << 20);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// When writes are acknowledged. Default [`Durability::Sync`].
    pub durability: Durability,
    /// Size at which a log segment is sealed. Default 64 MiB.
    pub segment_size: u64,
    /// Document limits.
    pub limits: Limits,
    /// How far ahead of the clock a [`crate::Batch::at_time`] may be. Default one day. Any
    /// duration is accepted; one longer than `u64::MAX` microseconds accepts every time.
    pub max_time_ahead: Duration,
    /// Tuning of the version index (commit interval, back-pressure bound, memory).
    pub index: IndexOptions,
    /// The query task pool (workers, queue bound, default expiry).
    pub tasks: TaskPoolOptions,
    /// Version retention by kind (documents whose newest version has that kind); kinds not
    /// named keep every version. See [`crate::Store::compact`].
    pub retention: BTreeMap<String, Retention>,
    /// Background compaction and expiry.
    pub maintenance: MaintenanceOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_size: 64 << 20,
            limits: Limits::default(),
            max_time_ahead: Duration::from_secs(24 * 3600),
            index: IndexOptions::default(),
            tasks: TaskPoolOptions::default(),
            retention: BTreeMap::new(),
            maintenance: MaintenanceOptions::default(),
        }
    }
}

impl Options {
    /// Sets the durability mode.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets buffered durability with this sync interval.
    pub fn with_buffered_sync(self, interval: Duration) -> Self {
        self.with_durability(Durability::Buffered(interval))
    }

    /// Sets the segment size.
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets how far ahead of the clock an explicit batch time may be.
    pub fn with_max_time_ahead(mut self, ahead: Duration) -> Self {
        self.max_time_ahead = ahead;
        self
    }

    /// Sets the index options.
    pub fn with_index_options(mut self, index: IndexOptions) -> Self {
        self.index = index;
        self
    }

    /// Sets the task pool options.
    pub fn with_task_options(mut self, tasks: TaskPoolOptions) -> Self {
        self.tasks = tasks;
        self
    }

    /// Keeps the versions of documents of `kind` that `retention` keeps (compaction drops the
    /// others); replaces an earlier rule for the same kind.
    pub fn with_retention(mut self, kind: impl Into<String>, retention: Retention) -> Self {
        self.retention.insert(kind.into(), retention);
        self
    }

    /// Sets the background maintenance options.
    pub fn with_maintenance(mut self, maintenance: MaintenanceOptions) -> Self {
        self.maintenance = maintenance;
        self
    }

    /// Sets the document limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let check = |ok: bool, msg: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidOption(msg))
            }
        };
        check(
            (1..=storage::MAX_ID_LEN).contains(&l.max_id_bytes),
            format!(
                "max_id_bytes {} is outside 1..={}",
                l.max_id_bytes,
                storage::MAX_ID_LEN
            ),
        )?;
        check(
            (1..=storage::MAX_KIND_LEN).contains(&l.max_kind_bytes),
            format!(
                "max_kind_bytes {} is outside 1..={}",
                l.max_kind_bytes,
                storage::MAX_KIND_LEN
            ),
        )?;
        self.tasks.validate()?;
        self.maintenance.validate()?;
        for (kind, retention) in &self.retention {
            check(!kind.is_empty(), "retention names an empty kind".to_owned())?;
            retention.validate().map_err(|e| match e {
                Error::InvalidOption(m) => Error::InvalidOption(format!("kind {kind:?}: {m}")),
                e => e,
            })?;
        }
        self.index
            .validate()
            .map_err(|e| Error::InvalidOption(e.to_string()))?;
        check(
            (1..=Limits::MAX_DEPTH).contains(&l.max_depth),
            format!(
                "max_depth {} is outside 1..={}",
                l.max_depth,
                Limits::MAX_DEPTH
            ),
        )?;
        check(
            l.max_field_name_bytes >= 1,
            "max_field_name_bytes must be at least 1".into(),
        )?;
        check(
            (2..=256 << 20).contains(&l.max_document_bytes),
            format!(
                "max_document_bytes {} is outside 2..=268435456",
                l.max_document_bytes
            ),
        )?;
        Ok(())
    }

    pub(crate) fn engine_options(&self) -> storage::EngineOptions {
        storage::EngineOptions::default()
            .with_segment_size(self.segment_size)
            .with_durability(self.durability)
            .with_max_time_ahead(self.max_time_ahead)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{
        CollectionOptions, Expect, Retention, SubscribeOptions, TaskOptions, WriteOptions,
    };

    // The setters renamed to `with_*` keep their old names for embedders: each must still set
    // exactly what its new name sets.
    #[test]
    #[expect(deprecated, reason = "the old setter names are what is tested")]
    fn old_setter_names_forward_to_the_new_ones() {
        let day = Duration::from_secs(86_400);
        let r = Retention::default()
            .min_versions(2)
            .max_versions(5)
            .max_age(day);
        let new = Retention::default()
            .with_min_versions(2)
            .with_max_versions(5)
            .with_max_age(day);
        assert_eq!(r, new);
        assert_eq!(r.max_versions, Some(5));
        assert_eq!(
            CollectionOptions::default().retention(new.clone()),
            CollectionOptions::default().with_retention(new)
        );
        let s = SubscribeOptions::default()
            .replay(true)
            .stopped_matching(false)
            .live_count(true)
            .from_seq(3)
            .until_seq(9)
            .buffer(7);
        let new = SubscribeOptions::default()
            .with_replay(true)
            .with_stopped_matching(false)
            .with_live_count(true)
            .with_from_seq(3)
            .with_until_seq(9)
            .with_buffer(7);
        assert_eq!(s, new);
        assert_eq!((s.buffer, s.until_seq), (7, Some(9)));
        let t = TaskOptions::default()
            .deadline(day)
            .expiry(day * 2)
            .expected_count(4)
            .submitter("billing");
        let new = TaskOptions::default()
            .with_deadline(day)
            .with_expiry(day * 2)
            .with_expected_count(4)
            .with_submitter("billing");
        assert_eq!(t, new);
        assert_eq!(t.submitter, "billing");
        let w = WriteOptions::default()
            .expect(Expect::Version(3))
            .expires_at(10_u64)
            .at_time(5_u64);
        let new = WriteOptions::default()
            .with_expect(Expect::Version(3))
            .with_expires_at(10_u64)
            .with_at_time(5_u64);
        assert_eq!(w, new);
        assert_eq!((w.expires_at, w.time), (Some(10), Some(5)));
    }
}
