//! The indexer on a full disk: a failed index write does not stop it for good. Queries that
//! the last commit and the log can answer still are, the others fail with an error naming the
//! failed write, and once space is back the indexer recovers by itself (or at once, through a
//! rebuild) in the same process.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use strata::{Durability, IndexOptions, Options, Query, QuerySpec, SortKey, Store};

fn options() -> Options {
    Options::default()
        .with_durability(Durability::None)
        .with_index_options(IndexOptions::default().with_commit_interval(Duration::from_millis(20)))
}

fn put_range(store: &Store, from: u64, to: u64) {
    for i in from..to {
        store
            .put(
                &format!("/d/{i}"),
                "doc",
                json!({"n": i, "text": "alpha bravo"}),
            )
            .unwrap();
    }
}

fn count(store: &Store) -> strata::Result<u64> {
    let result = store.query(&QuerySpec::new(Query::matches("text", "alpha")).count(true))?;
    Ok(result.count.unwrap_or(0))
}

/// A query that only the index can answer (scores exist only there).
fn scored(store: &Store) -> strata::Result<usize> {
    let spec = QuerySpec::new(Query::matches("text", "alpha"))
        .sort(SortKey::desc("_score"))
        .limit(1_000);
    Ok(store.query(&spec)?.documents.len())
}

/// Fills the "disk" of the index in `dir`, writes `n` more documents after `before`, and
/// checks the failure: it names the full disk and a file of the index, and queries that need
/// no commit still answer.
fn fail_and_check(store: &Store, dir: &Path, before: u64, n: u64) {
    let index_dir = dir.join("index");
    query::fail_index_writes(&index_dir, Some(io::ErrorKind::StorageFull));
    put_range(store, before, before + n);
    let message = store
        .wait_for_index()
        .expect_err("a commit on a full disk")
        .to_string();
    assert!(
        message.contains("no space left on device")
            && message.contains(&index_dir.display().to_string())
            && message.contains("retries"),
        "the error does not name the cause: {message}"
    );
    assert_eq!(
        count(store).expect("a query the last commit and the log answer"),
        before + n
    );
    let message = scored(store)
        .expect_err("a scored query needs a commit")
        .to_string();
    assert!(message.contains("no space left on device"), "{message}");
    let message = store
        .rebuild_index()
        .expect_err("a rebuild on a full disk")
        .to_string();
    assert!(message.contains("no space left on device"), "{message}");
    assert_eq!(
        count(store).expect("a query after a failed rebuild"),
        before + n
    );
}

#[test]
fn rebuild_index_recovers_the_indexer_once_space_is_back() {
    // After ENOSPC killed the indexer, every query failed with tantivy's "An index writer was
    // killed" until the store was reopened, and rebuild_index() failed the same way.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    put_range(&store, 0, 50);
    store.wait_for_index().unwrap();
    fail_and_check(&store, dir.path(), 50, 50);
    query::fail_index_writes(&dir.path().join("index"), None);
    store.rebuild_index().expect("a rebuild once space is back");
    store.wait_for_index().unwrap();
    assert_eq!(scored(&store).unwrap(), 100);
    put_range(&store, 100, 110);
    store.wait_for_index().unwrap();
    assert_eq!(
        (count(&store).unwrap(), scored(&store).unwrap()),
        (110, 110)
    );
    drop(store);
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_eq!(store.index_open_report().committed_seq, 110);
    assert_eq!(scored(&store).unwrap(), 110);
}

#[test]
fn the_indexer_recovers_by_itself_once_space_is_back() {
    // The indexer died with the first failed write; it must retry until the disk has room.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    put_range(&store, 0, 30);
    store.wait_for_index().unwrap();
    fail_and_check(&store, dir.path(), 30, 30);
    query::fail_index_writes(&dir.path().join("index"), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = store.wait_for_index() {
        assert!(
            Instant::now() < deadline,
            "the indexer did not recover in 60 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!((count(&store).unwrap(), scored(&store).unwrap()), (60, 60));
    // A second full disk, and a second recovery.
    fail_and_check(&store, dir.path(), 60, 5);
    query::fail_index_writes(&dir.path().join("index"), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = store.wait_for_index() {
        assert!(
            Instant::now() < deadline,
            "the indexer did not recover again in 60 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(scored(&store).unwrap(), 65);
}

#[test]
fn versions_compaction_drops_while_index_writes_fail_leave_the_index_once_space_is_back() {
    // A compaction whose removal of dropped versions from the index fails (a full disk) left an
    // indexer that never committed again; once it recovers, the index must hold exactly the
    // versions the log kept.
    let dir = tempfile::tempdir().unwrap();
    let options = options()
        .with_segment_size(4096)
        .with_retention("doc", strata::Retention::default().with_max_versions(1));
    let store = Store::open(dir.path(), options.clone()).unwrap();
    for _ in 0..4 {
        put_range(&store, 0, 20);
    }
    store.wait_for_index().unwrap();
    let index_dir = dir.path().join("index");
    query::fail_index_writes(&index_dir, Some(io::ErrorKind::StorageFull));
    let compacted = store.compact();
    let report = compacted.as_ref().err().map(ToString::to_string);
    assert!(
        report
            .as_deref()
            .is_some_and(|m| m.contains("no space left on device")),
        "compaction with a full index disk: {compacted:?}"
    );
    query::fail_index_writes(&index_dir, None);
    // Recovered by itself (a rebuild would start from the log and hide a lost removal): a new
    // version committed means the removals, which come first, are committed too.
    put_range(&store, 100, 101);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = store.wait_for_index() {
        assert!(
            Instant::now() < deadline,
            "the indexer did not recover: {e}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(store);
    let report = Store::verify(dir.path(), options, &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.dropped > 0, "the compaction dropped nothing");
}
