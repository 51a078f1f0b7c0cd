//! `Current` queries while other threads keep updating the documents they match: never a
//! document missed, never one twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use strata::{Durability, IndexOptions, Options, Query, QuerySpec, SortKey, Store};

const DOCS: u64 = 24;
const WRITERS: u64 = 3;

fn check_queries_during_updates(index: IndexOptions, iterations: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        Options::default()
            .with_durability(Durability::None)
            .with_index_options(index),
    )
    .unwrap();
    for i in 0..DOCS {
        store
            .put(&format!("/c/{i:02}"), "c", json!({"n": 0, "i": i}))
            .unwrap();
        store
            .put(&format!("/other/{i:02}"), "other", json!({"n": 0}))
            .unwrap();
    }
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let expected: BTreeSet<String> = (0..DOCS).map(|i| format!("/c/{i:02}")).collect();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let store = &store;
            let stop = &stop;
            let writes = &writes;
            scope.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let i = (n * 7 + w * 5) % DOCS;
                    let id = format!("/c/{i:02}");
                    // Patches, whole puts and batches of two, so versions supersede each other
                    // in every way a writer can.
                    match n % 3 {
                        0 => {
                            store.patch(&id, json!({"n": n})).unwrap();
                        }
                        1 => {
                            store.put(&id, "c", json!({"n": n, "i": i})).unwrap();
                        }
                        _ => {
                            let j = (i + 1) % DOCS;
                            store
                                .write(
                                    strata::Batch::new()
                                        .patch(id, json!({"n": n}))
                                        .patch(format!("/c/{j:02}"), json!({"n": n})),
                                )
                                .unwrap();
                        }
                    }
                    store
                        .patch(&format!("/other/{i:02}"), json!({"n": n}))
                        .unwrap();
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let guard = StopOnDrop(&stop);
        let specs = [
            QuerySpec::new(Query::kind("c")).count(true),
            QuerySpec::new(Query::kind("c"))
                .count(true)
                .sort(SortKey::desc("n")),
            QuerySpec::new(Query::id_prefix("/c/").and(Query::range("n", 0..)))
                .count(true)
                .sort(SortKey::asc("_id")),
        ];
        let started = std::time::Instant::now();
        for it in 0..iterations {
            // A slow machine runs fewer iterations, but never very few.
            if it >= 50 && started.elapsed() > Duration::from_secs(10) {
                eprintln!("stopped after {it} iterations");
                break;
            }
            let spec = &specs[it % specs.len()];
            let r = store.query(spec).unwrap();
            let ids: Vec<String> = r.documents.iter().map(|d| d.meta.id.clone()).collect();
            let unique: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(
                (r.count, ids.len(), unique.len()),
                (Some(DOCS), DOCS as usize, DOCS as usize),
                "iteration {it}, snapshot {}: {ids:?}",
                r.snapshot_seq
            );
            assert_eq!(unique, expected, "iteration {it}");
            // Every document returned is the version current at the snapshot.
            for d in &r.documents {
                assert!(d.meta.seq <= r.snapshot_seq, "iteration {it}: {:?}", d.meta);
            }
        }
        drop(guard);
    });
    assert!(
        writes.load(Ordering::Relaxed) > 0,
        "the writers did not write"
    );
    let p = store.index_progress();
    eprintln!(
        "{} updates; index committed {} of {}",
        writes.load(Ordering::Relaxed),
        p.committed_seq,
        p.log_seq
    );
}

/// Stops the writers even when an assertion fails, so the scope can end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Index options that commit often and hold writers back early, so that a debug build's
/// indexer keeps up with three writers and queries never wait long for a commit.
fn committing(interval_ms: u64, versions: u64, max_lag: u64) -> IndexOptions {
    let mut index = IndexOptions::default();
    index.commit_interval = Duration::from_millis(interval_ms);
    index.commit_versions = versions;
    index.max_lag = max_lag;
    index
}

#[test]
fn current_queries_during_updates_with_frequent_commits() {
    check_queries_during_updates(committing(1, 16, 500), 400);
}

#[test]
fn current_queries_during_updates_with_grouped_commits() {
    check_queries_during_updates(committing(20, 500, 5000), 400);
}

#[test]
fn current_queries_during_updates_from_the_tail_only() {
    let mut index = crate::tail_index_options();
    // Queries match at most this many versions in memory before they wait for a commit.
    index.max_tail = 5000;
    index.max_lag = 10_000;
    index.commit_versions = 10_000;
    check_queries_during_updates(index, 300);
}
