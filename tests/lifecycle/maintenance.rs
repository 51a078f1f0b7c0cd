//! Background maintenance: compaction at its interval, paced by its IO rate, stopped when the
//! store closes.
//!
//! A compaction run signals nothing while it works and nothing when it is done but its
//! counters (`Stats::lifecycle`) and its files, so these tests poll those, with `yield_now`
//! between looks and a generous deadline, never a sleep.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use strata::{MaintenanceOptions, Retention, Store};

use crate::*;

/// Polls `done` until it holds, failing after [`WAIT`].
#[track_caller]
fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::yield_now();
    }
}

fn readings(store: &Store, docs: u64, updates: u64) {
    for n in 0..updates {
        for d in 0..docs {
            let id = format!("/sensor/{d}");
            store.put(&id, "reading", body(&id, n, 300)).unwrap();
        }
    }
}

fn compacting(log: &Path) -> bool {
    std::fs::read_dir(log)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".compact"))
}

#[test]
fn background_compaction_runs_at_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options()
            .with_retention("reading", Retention::default().with_max_versions(1))
            .with_maintenance(
                MaintenanceOptions::default()
                    .with_compaction_interval(Some(Duration::from_millis(20)))
                    .with_compaction_io_rate(None),
            ),
    );
    readings(&store, 10, 10);
    settle(&store);
    // The counters move when a run is done (after the index removed what it dropped).
    poll("background compaction drops every old version", || {
        store.stats().lifecycle.versions_dropped == 90
    });
    let stats = store.stats();
    assert!(stats.lifecycle.compactions >= 1, "{:?}", stats.lifecycle);
    assert_eq!(
        stats.lifecycle.versions_dropped, 90,
        "{:?}",
        stats.lifecycle
    );
    for d in 0..10 {
        let id = format!("/sensor/{d}");
        let history = store.history(&id).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].body, body(&id, 9, 300));
    }
    // Nothing left for an on-demand run.
    assert_eq!(store.compact().unwrap().versions_dropped, 0);
}

#[test]
fn compaction_io_rate_paces_an_on_demand_run() {
    const RATE: u64 = 256 << 10;
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options()
            .with_retention("reading", Retention::default().with_max_versions(1))
            .with_maintenance(
                MaintenanceOptions::default()
                    .with_compaction_interval(None)
                    .with_compaction_io_rate(Some(RATE)),
            ),
    );
    readings(&store, 10, 10);
    settle(&store);
    let started = Instant::now();
    let report = store.compact().unwrap();
    let took = started.elapsed();
    assert_eq!(report.versions_dropped, 90);
    // Every rewritten byte counts against the rate (10% slack for rounding).
    let least = Duration::from_secs_f64(report.bytes_after as f64 / RATE as f64 * 0.9);
    assert!(
        took >= least && Duration::from_micros(report.micros) >= least,
        "{} bytes at {RATE} B/s took {took:?} ({report:?})",
        report.bytes_after
    );
}

/// Closing the store stops a background compaction in progress, however slow its IO rate:
/// dropping the last handle returns promptly, and the store reopens consistent.
#[test]
fn closing_stops_a_slow_background_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options()
            .with_retention("reading", Retention::default().with_max_versions(1))
            .with_maintenance(
                MaintenanceOptions::default()
                    .with_compaction_interval(Some(Duration::from_millis(10)))
                    // 100 bytes a second: rewriting a segment of kept bytes takes half a minute.
                    .with_compaction_io_rate(Some(100)),
            ),
    );
    // Each batch: an update of a reading (dropped later) and a new document of a kind without
    // retention (kept), so that every segment is mostly kept bytes.
    for n in 0..20 {
        store
            .write(
                strata::Batch::new()
                    .put("/sensor/0", "reading", body("/sensor/0", n, 50))
                    .put(format!("/kept/{n}"), "kept", body("/kept", n, 700)),
            )
            .unwrap();
    }
    settle(&store);
    let log = dir.path().join("log");
    poll("a background run rewrites a segment", || compacting(&log));

    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(store);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "closing the store did not return within 5 s: a background compaction at 100 B/s \
         holds it (it sleeps for its IO budget without looking at its stop flag)"
    );

    // The interrupted run left the old segments (or finished some): the history is a suffix of
    // what was written, ending at the newest version, and nothing else changed.
    let store = open(
        dir.path(),
        crate::options().with_retention("reading", Retention::default().with_max_versions(1)),
    );
    let history = store.history("/sensor/0").unwrap();
    let first = history[0].meta.version;
    for (i, doc) in history.iter().enumerate() {
        assert_eq!(doc.meta.version, first + i as u64);
        assert_eq!(doc.body, body("/sensor/0", doc.meta.version, 50));
    }
    assert_eq!(history.last().unwrap().meta.version, 19);
    for n in 0..20 {
        let doc = store.get(&format!("/kept/{n}")).unwrap().unwrap();
        assert_eq!(doc.body, body("/kept", n, 700));
    }
}
