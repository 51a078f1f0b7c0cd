//! What a store holds and how it has been doing: counts, sizes on disk, index lag, write and
//! query counts with latency percentiles, and what opening it found (docs/DESIGN.md §7).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::store::{OpenStats, Store};

/// Failures of the store's background threads (the continuous-query feed, maintenance, the
/// task pool's threads), in the order they happened, as `thread: reason`.
#[derive(Debug, Default)]
pub(crate) struct Failures(parking_lot::Mutex<Vec<String>>);

impl Failures {
    pub(crate) fn record(&self, thread: &str, reason: &str) {
        self.0.lock().push(format!("{thread}: {reason}"));
    }

    /// Records a failure unless it repeats the last one recorded (a retried background run
    /// failing the same way must not grow the list without bound).
    pub(crate) fn record_unless_repeated(&self, thread: &str, reason: &str) {
        let entry = format!("{thread}: {reason}");
        let mut list = self.0.lock();
        if list.last() != Some(&entry) {
            list.push(entry);
        }
    }

    pub(crate) fn list(&self) -> Vec<String> {
        self.0.lock().clone()
    }

    /// Runs `body` (a background thread's loop), recording a panic instead of letting the
    /// thread vanish without a trace; returns the reason recorded.
    pub(crate) fn watch(&self, thread: &str, body: impl FnOnce()) -> Option<String> {
        self.catch(thread, body)
            .err()
            .map(|message| format!("panicked: {message}"))
    }

    /// Runs `body`, recording a panic as `thread: panicked: message`; a panic is
    /// `Err(message)`.
    pub(crate) fn catch<T>(
        &self,
        thread: &str,
        body: impl FnOnce() -> T,
    ) -> std::result::Result<T, String> {
        let panic = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            Ok(value) => return Ok(value),
            Err(panic) => panic,
        };
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        self.record(thread, &format!("panicked: {message}"));
        Err(message)
    }
}

/// Buckets of a latency histogram: four per power of two of microseconds, up to 2^40 µs.
const BUCKETS: usize = 4 * 41;

/// A lock-free latency histogram with four buckets per power of two (a percentile is known to
/// within 25%).
#[derive(Debug)]
pub(crate) struct Latencies {
    buckets: Box<[AtomicU64]>,
    errors: AtomicU64,
    max: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            errors: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

/// The bucket of `micros`: exact below 4, then four per power of two.
fn bucket(micros: u64) -> usize {
    if micros < 4 {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros() as usize; // >= 2
    let sub = ((micros >> (exp - 2)) & 3) as usize;
    (4 * (exp - 1) + sub).min(BUCKETS - 1)
}

/// The largest value of bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    if b == BUCKETS - 1 {
        // The last bucket also holds everything above its range.
        return u64::MAX;
    }
    let exp = b / 4 + 1;
    let sub = (b % 4) as u64;
    ((4 + sub + 1) << (exp - 2)) - 1
}

impl Latencies {
    pub(crate) fn record(&self, took: Duration, ok: bool) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> OpStats {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let percentile = |p: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            let rank = ((count as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (b, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return bucket_top(b);
                }
            }
            bucket_top(BUCKETS - 1)
        };
        OpStats {
            count,
            errors: self.errors.load(Ordering::Relaxed),
            p50_micros: percentile(0.50),
            p99_micros: percentile(0.99),
            max_micros: self.max.load(Ordering::Relaxed),
        }
    }
}

/// Calls of one kind since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct OpStats {
    /// Calls, failed ones included.
    pub count: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Median latency, microseconds (an upper bound within 25%).
    pub p50_micros: u64,
    /// 99th percentile latency, microseconds (an upper bound within 25%).
    pub p99_micros: u64,
    /// Slowest call, microseconds.
    pub max_micros: u64,
}

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
    pub lifecycle: crate::lifecycle::LifecycleStats,
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
                dir_bytes(&path.join(crate::store::LOG_DIR)),
                dir_bytes(&path.join(crate::store::INDEX_DIR)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        let mut previous = 0;
        for v in (0..5000).chain([1 << 20, (1 << 20) + 1, 1 << 50, u64::MAX]) {
            let b = bucket(v);
            assert!(
                bucket_top(b) >= v,
                "{v} in bucket {b} with top {}",
                bucket_top(b)
            );
            if b > 0 {
                assert!(bucket_top(b - 1) < v, "{v} belongs below bucket {b}");
            }
            assert!(b >= previous, "buckets grow with values");
            previous = b;
        }
    }

    #[test]
    fn percentiles_of_known_latencies() {
        let l = Latencies::default();
        for micros in 1..=100u64 {
            l.record(Duration::from_micros(micros), micros != 7);
        }
        let s = l.snapshot();
        assert_eq!((s.count, s.errors, s.max_micros), (100, 1, 100));
        // Within 25% above the true value.
        assert!((50..=63).contains(&s.p50_micros), "{s:?}");
        assert!((99..=127).contains(&s.p99_micros), "{s:?}");
    }
}
