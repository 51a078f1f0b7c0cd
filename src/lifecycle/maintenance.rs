//! How do compaction and expiry run? The retention rules in force (by kind, by collection
//! membership), one compaction run and one expiry run over the engine and the index, their
//! counters, and the maintenance thread that runs both in the background. Below the store: it
//! holds the engine, index and feed handles, never a `Store`, so dropping the last `Store`
//! closes it at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use storage::{CompactOptions, Engine, RetentionRule};

use crate::collection::definition::retention_members;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::stats::counters::Failures;
use crate::util::{now_micros, refuse_read_only};
use crate::watch::Watch;

/// What a compaction run did, from [`crate::Store::compact`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Log segments rewritten.
    pub segments_rewritten: u64,
    /// Versions dropped (from the log and the index).
    pub versions_dropped: u64,
    /// Bytes of the rewritten segments before.
    pub bytes_before: u64,
    /// Bytes of the rewritten segments after.
    pub bytes_after: u64,
    /// Wall time, microseconds.
    pub micros: u64,
}

/// Lifecycle counters since the store was opened, in [`crate::Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LifecycleStats {
    /// Compaction runs finished.
    pub compactions: u64,
    /// Versions they dropped.
    pub versions_dropped: u64,
    /// Log bytes they reclaimed.
    pub bytes_reclaimed: u64,
    /// Time they took, microseconds.
    pub compaction_micros: u64,
    /// Expiry tombstones written.
    pub expired: u64,
    /// Background compaction runs that failed (each is also in
    /// [`crate::Stats::background_failures`], a repeat of the same error once).
    pub compaction_failures: u64,
    /// Background expiry runs that failed (likewise in `background_failures`).
    pub expiry_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    compactions: AtomicU64,
    versions_dropped: AtomicU64,
    bytes_reclaimed: AtomicU64,
    compaction_micros: AtomicU64,
    expired: AtomicU64,
    compaction_failures: AtomicU64,
    expiry_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LifecycleStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LifecycleStats {
            compactions: get(&self.compactions),
            versions_dropped: get(&self.versions_dropped),
            bytes_reclaimed: get(&self.bytes_reclaimed),
            compaction_micros: get(&self.compaction_micros),
            expired: get(&self.expired),
            compaction_failures: get(&self.compaction_failures),
            expiry_failures: get(&self.expiry_failures),
        }
    }
}

/// The retention rules in force for one run: by kind, and by collection membership.
struct Rules {
    kinds: HashMap<String, RetentionRule>,
    ids: HashMap<String, Vec<RetentionRule>>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.ids.is_empty()
    }

    fn of(&self, id: &str, kind: &str) -> Vec<RetentionRule> {
        let mut rules = self.ids.get(id).cloned().unwrap_or_default();
        rules.extend(self.kinds.get(kind).copied());
        rules
    }
}

/// What compaction and expiry work with. The maintenance thread holds this, never a store
/// handle: dropping the last [`crate::Store`] must close the store at once, on the caller's thread.
#[derive(Debug, Clone)]
pub(crate) struct Lifecycle {
    pub(crate) engine: Arc<Engine>,
    pub(crate) index: Arc<query::Index>,
    pub(crate) watch: Arc<Watch>,
    /// The lowest seq a subscription will still read ([`crate::subscribe::feed::Feed`]).
    pub(crate) low_water: Arc<AtomicU64>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) options: Arc<Options>,
    /// Where the maintenance thread records that it failed.
    pub(crate) failures: Arc<Failures>,
}

impl Lifecycle {
    fn now(&self) -> u64 {
        now_micros().max(self.engine.last_time())
    }

    /// The retention rules now: the per-kind rules and every collection's, applied to its
    /// current members.
    fn rules(&self) -> Result<Rules> {
        let kinds = self
            .options
            .retention
            .iter()
            .map(|(kind, r)| (kind.clone(), r.rule()))
            .collect();
        let ids = retention_members(&self.engine, &self.index, self.now())?;
        Ok(Rules { kinds, ids })
    }

    /// Compaction drops versions superseded at or before this seq: what the index committed
    /// (queries never meet a dropped version in the tail), and what every subscription has
    /// passed (it reads the version before each one it looks at).
    fn compactable_seq(&self) -> u64 {
        let committed = self.index.progress().committed_seq;
        committed.min(self.low_water.load(Ordering::Acquire).saturating_sub(1))
    }

    /// One compaction run; `stop` ends it early.
    pub(crate) fn compact(&self, stop: Option<&Arc<AtomicBool>>) -> Result<CompactionReport> {
        refuse_read_only(&self.engine, "compaction")?;
        let rules = self.rules()?;
        if rules.is_empty() {
            return Ok(CompactionReport::default());
        }
        let mut options = CompactOptions::new(self.now(), self.compactable_seq())
            .with_io_rate(self.options.maintenance.compaction_io_rate);
        if let Some(stop) = stop {
            options = options.with_stop(Arc::clone(stop));
        }
        let report = self
            .engine
            .compact(&|id, kind| rules.of(id, kind), &options)?;
        if !report.dropped_seqs.is_empty() {
            self.index
                .remove_dropped(report.dropped_seqs, report.generation)?;
        }
        let c = &self.counters;
        c.compactions.fetch_add(1, Ordering::Relaxed);
        c.versions_dropped
            .fetch_add(report.versions_dropped, Ordering::Relaxed);
        c.bytes_reclaimed.fetch_add(
            report.bytes_before.saturating_sub(report.bytes_after),
            Ordering::Relaxed,
        );
        c.compaction_micros
            .fetch_add(report.micros, Ordering::Relaxed);
        Ok(CompactionReport {
            segments_rewritten: report.segments_rewritten,
            versions_dropped: report.versions_dropped,
            bytes_before: report.bytes_before,
            bytes_after: report.bytes_after,
            micros: report.micros,
        })
    }

    pub(crate) fn expire_due(&self) -> Result<u64> {
        refuse_read_only(&self.engine, "writing expiry tombstones")?;
        let batch = self.options.maintenance.expiry_batch;
        let mut written = 0;
        loop {
            self.index.wait_for_room();
            let metas = self.engine.expire(self.now(), batch)?;
            if let Some(last) = metas.last() {
                self.index.notify();
                self.watch.committed(last.seq);
            }
            written += metas.len() as u64;
            self.counters
                .expired
                .fetch_add(metas.len() as u64, Ordering::Relaxed);
            if metas.len() < batch {
                return Ok(written);
            }
        }
    }
}

/// The maintenance thread: expiry tombstones as documents expire, compaction at its interval.
#[derive(Debug)]
pub(crate) struct Maintenance {
    stop: Arc<AtomicBool>,
    wake: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the thread.
    pub(crate) fn start(lifecycle: Lifecycle) -> Result<Maintenance> {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("strata-maintenance".into())
            .spawn(move || {
                let failures = Arc::clone(&lifecycle.failures);
                failures.watch("maintenance", || run(&lifecycle, &flag, &woken));
            })
            .map_err(|source| Error::Io {
                op: "start the maintenance thread",
                path: Default::default(),
                source,
            })?;
        Ok(Maintenance {
            stop,
            wake,
            thread: Some(thread),
        })
    }

    /// No thread: a read-only store has no background work.
    pub(crate) fn none() -> Maintenance {
        let (wake, _) = crossbeam_channel::bounded(1);
        Maintenance {
            stop: Arc::new(AtomicBool::new(true)),
            wake,
            thread: None,
        }
    }

    /// Tells the thread something changed (a write with an expiry).
    pub(crate) fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Longest the thread sleeps without looking (a clock jump, an expiry noted while it slept).
const MAX_NAP: Duration = Duration::from_secs(60);
/// How long after a failed expiry the thread tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn run(lifecycle: &Lifecycle, stop: &Arc<AtomicBool>, woken: &Receiver<()>) {
    let options = lifecycle.options.maintenance.clone();
    let interval = options.compaction_interval;
    // An interval too long for an `Instant` never comes: no background compaction.
    let mut next_compaction = interval.and_then(storage::deadline_after);
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        if next_compaction.is_some_and(|due| due <= Instant::now()) {
            next_compaction = interval.and_then(storage::deadline_after);
            // The next run, or a caller of `Store::compact`, meets a failure again; it is
            // counted and recorded so that it is never only swallowed. A stop is no failure.
            if let Err(e) = lifecycle.compact(Some(stop)) {
                if !stop.load(Ordering::Acquire) {
                    lifecycle
                        .counters
                        .compaction_failures
                        .fetch_add(1, Ordering::Relaxed);
                    lifecycle
                        .failures
                        .record_unless_repeated("maintenance", &format!("compaction failed: {e}"));
                }
            }
            continue;
        }
        let mut nap = next_compaction
            .map_or(MAX_NAP, |due| due.saturating_duration_since(Instant::now()))
            .min(MAX_NAP);
        if options.expire {
            let mut failed = false;
            if lifecycle
                .engine
                .next_expiry()
                .is_some_and(|at| at <= lifecycle.now())
            {
                // A failure (a poisoned store, a closing index) is met again by the next try
                // or by the application's own writes; it is counted and recorded.
                if let Err(e) = lifecycle.expire_due() {
                    failed = true;
                    lifecycle
                        .counters
                        .expiry_failures
                        .fetch_add(1, Ordering::Relaxed);
                    lifecycle
                        .failures
                        .record_unless_repeated("maintenance", &format!("expiry failed: {e}"));
                }
            }
            if let Some(at) = lifecycle.engine.next_expiry() {
                let until = at.saturating_sub(lifecycle.now());
                let floor = if failed {
                    RETRY_AFTER
                } else {
                    Duration::from_millis(1)
                };
                nap = nap.min(Duration::from_micros(until).max(floor));
            }
        }
        // A timer for background work, not a synchronisation: writes with an expiry wake it.
        match woken.recv_timeout(nap) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
