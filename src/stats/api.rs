//! What does a store hold and how has it been doing? [`Store::stats`]: counts, sizes on
//! disk, index lag, write and query latencies, and what opening found.

use std::path::Path;

use serde::Serialize;

use crate::lifecycle::maintenance::LifecycleStats;
use crate::stats::counters::OpStats;
use crate::store::{OpenStats, Store};
use crate::util::{INDEX_DIR, LOG_DIR};

/// A store's statistics, from [`Store::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Documents whose newest version is not a tombstone (expiry not judged).
    pub documents: u64,
    /// Documents ever written, deleted ones included.
    pub documents_ever: u64,
    /// Documents whose newest version is a tombstone (deleted or expired).
    pub tombstones: u64,
    /// Versions the log holds.
    pub versions: u64,
    /// Versions retention dropped, ever.
    pub dropped_versions: u64,
    /// The time (microseconds since the epoch) from which every read of the past is complete;
    /// `None` while retention dropped nothing.
    pub history_complete_from: Option<u64>,
    /// Compaction and expiry since the store was opened.
    pub lifecycle: LifecycleStats,
    /// Log segment files.
    pub segments: u64,
    /// Bytes of the log on disk (0 for a store without a directory).
    pub log_bytes: u64,
    /// Bytes of the index on disk (0 for an index in memory).
    pub index_bytes: u64,
    /// Approximate heap bytes of the in-memory version index.
    pub version_index_heap_bytes: u64,
    /// The index has committed every version up to this seq.
    pub index_committed_seq: u64,
    /// Versions written but not yet in an index commit (queries still see them).
    pub index_lag: u64,
    /// Batches written by [`Store::write`] (and the single-document calls).
    pub writes: OpStats,
    /// Queries run by [`Store::query`] (tasks' runs included).
    pub queries: OpStats,
    /// Time [`Store::open`] took, microseconds.
    pub open_micros: u64,
    /// Failures of background threads since the store was opened, oldest first, as
    /// `thread: reason` (`feed` for continuous queries, `maintenance`, `task worker`, `task
    /// housekeeper`). Empty while all is well; a failed feed also fails its subscriptions and
    /// every later [`Store::subscribe`] with [`crate::Error::SubscriptionFailed`].
    pub background_failures: Vec<String>,
    /// What opening found and repaired.
    #[serde(skip)]
    pub recovery: OpenStats,
}

/// Bytes of the files below `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

impl Store {
    /// Counts, sizes on disk, index lag, write and query latencies, and what opening found.
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Query, QuerySpec, Store};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = Store::open(dir.path(), Default::default())?;
    /// store.put("/a", "doc", json!({"n": 1}))?;
    /// store.delete("/a")?;
    /// store.put("/b", "doc", json!({"n": 2}))?;
    /// store.query(&QuerySpec::new(Query::All))?;
    /// let stats = store.stats();
    /// assert_eq!((stats.documents, stats.documents_ever, stats.versions), (1, 2, 3));
    /// assert_eq!((stats.writes.count, stats.queries.count), (3, 1));
    /// assert!(stats.log_bytes > 0);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let counts = self.inner.engine.counts();
        let progress = self.index_progress();
        let on_disk = self.inner.path.is_some() && self.inner.on_disk;
        let (log_bytes, index_bytes) = match self.path() {
            Some(path) if on_disk => (
                dir_bytes(&path.join(LOG_DIR)),
                dir_bytes(&path.join(INDEX_DIR)),
            ),
            _ => (0, 0),
        };
        Stats {
            documents: counts.live_documents,
            documents_ever: counts.documents,
            tombstones: counts.documents - counts.live_documents,
            versions: counts.versions,
            dropped_versions: counts.dropped_versions,
            history_complete_from: self.inner.engine.horizon(None).map(|(_, time)| time),
            lifecycle: self.inner.lifecycle.counters.snapshot(),
            segments: counts.segments,
            log_bytes,
            index_bytes,
            version_index_heap_bytes: counts.index_heap_bytes,
            index_committed_seq: progress.committed_seq,
            index_lag: progress.log_seq.saturating_sub(progress.committed_seq),
            writes: self.inner.write_latency.snapshot(),
            queries: self.inner.query_latency.snapshot(),
            open_micros: self.inner.open_micros,
            background_failures: self.inner.failures.list(),
            recovery: self.open_stats().clone(),
        }
    }
}
