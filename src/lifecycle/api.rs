//! What can a user ask of retention and expiry? [`Store::compact`], its progress, and
//! [`Store::expire_due`]: thin calls into the maintenance room below the store.

use crate::error::Result;
use crate::lifecycle::maintenance::CompactionReport;
use crate::store::Store;

impl Store {
    /// Rewrites the log without the versions retention no longer keeps, removes them from the
    /// index and reclaims their disk space. Runs while reads and writes go on, at
    /// [`crate::MaintenanceOptions::compaction_io_rate`], one run at a time; crash-safe at every step.
    /// Background maintenance calls it every
    /// [`crate::MaintenanceOptions::compaction_interval`]; call it to compact now.
    ///
    /// Retention comes from [`crate::Options::with_retention`] (by kind) and collections'
    /// [`crate::CollectionOptions::with_retention`] (by membership now). A version is kept if any
    /// rule keeps it; a document without a rule keeps every version, and the newest version is
    /// always kept. Only versions in sealed log segments are dropped, and reads of the past
    /// that would need a dropped version fail with [`crate::Error::HistoryTrimmed`].
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Error, Options, Retention, Store};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let options = Options::default()
    ///     .with_segment_size(4096)
    ///     .with_retention("reading", Retention::default().with_max_versions(2));
    /// let store = Store::open(dir.path(), options)?;
    /// for n in 0..100 {
    ///     store.put("/sensors/a", "reading", json!({"n": n, "pad": "x".repeat(100)}))?;
    /// }
    /// store.wait_for_index()?;
    /// let report = store.compact()?;
    /// // Versions in the active segment (the newest few) are never dropped.
    /// assert!(report.versions_dropped > 50 && report.bytes_after < report.bytes_before);
    /// assert_eq!(store.get("/sensors/a")?.expect("kept").body["n"], 99);
    /// assert!(matches!(
    ///     store.get_version("/sensors/a", 0),
    ///     Err(Error::HistoryTrimmed { .. })
    /// ));
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.lifecycle.compact(None)
    }

    /// How far the running (or last) compaction has come in the log: bytes of the segments it
    /// rewrites read so far, and in all (for progress bars; removing the dropped versions from
    /// the index follows).
    pub fn compaction_progress(&self) -> (u64, u64) {
        self.inner.engine.compaction_progress()
    }

    /// Writes the tombstone of every document that has expired by now, so the expiry shows in
    /// history and subscriptions get a `Deleted` event; returns how many. Background
    /// maintenance does this as documents expire ([`crate::MaintenanceOptions::expire`]); expired
    /// documents are absent from reads and queries either way.
    pub fn expire_due(&self) -> Result<u64> {
        self.inner.lifecycle.expire_due()
    }
}
