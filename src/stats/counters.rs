//! How does the store count while it runs? The record of background failures (and the
//! catching of their panics) and the lock-free latency histograms behind [`OpStats`]. A leaf:
//! the feed, the task pool and maintenance record into it from below the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

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

    pub(crate) fn snapshot(&self) -> OpStats {
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
