//! Progress callbacks of backups and restores: monotone, one total, ending at it.

use serde_json::json;
use strata::{Options, RestoreOptions, Retention, Store};

use crate::{open, options};

/// Checks the calls of one run against the bytes its report counts.
fn check(what: &str, calls: &[(u64, u64)], bytes: u64) {
    assert!(!calls.is_empty(), "{what}: no progress was reported");
    let total = calls[0].1;
    assert_eq!(total, bytes, "{what}: the total is the bytes of the backup");
    for pair in calls.windows(2) {
        assert!(
            pair[1].0 >= pair[0].0,
            "{what}: progress went back: {pair:?}"
        );
        assert_eq!(pair[1].1, total, "{what}: the total changed: {pair:?}");
    }
    assert!(
        calls.iter().all(|&(done, _)| done <= total),
        "{what}: past the total: {calls:?}"
    );
    assert_eq!(calls.last().unwrap().0, total, "{what}: {calls:?}");
}

fn write(store: &Store, from: u64, to: u64) {
    for n in from..to {
        store
            .put(
                &format!("/r{}", n % 6),
                "reading",
                json!({"n": n, "pad": "q".repeat(120)}),
            )
            .unwrap();
    }
}

/// Backs up `store` into `backup` (and restores it into `restored`), checking the progress of
/// both.
fn backup_and_restore(
    what: &str,
    store: &Store,
    backup: &std::path::Path,
    restored: &std::path::Path,
) {
    let mut calls = Vec::new();
    let report = store
        .backup_with_progress(backup, &mut |done, total| calls.push((done, total)))
        .unwrap();
    check(&format!("{what}: backup"), &calls, report.bytes);
    let mut calls = Vec::new();
    let restore = Store::restore_with_progress(
        backup,
        restored,
        RestoreOptions::default(),
        &mut |done, total| calls.push((done, total)),
    )
    .unwrap();
    assert_eq!(restore.bytes, report.bytes, "{what}");
    check(&format!("{what}: restore"), &calls, restore.bytes);
}

fn retention_options() -> Options {
    options().with_retention("reading", Retention::default().with_max_versions(1))
}

#[test]
fn progress_is_monotone_and_ends_at_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    write(&store, 0, 150);
    store.wait_for_index().unwrap();
    let backup = dir.path().join("backup");
    backup_and_restore("a first backup", &store, &backup, &dir.path().join("r1"));
    // A refresh: most files are kept, the progress still counts them.
    write(&store, 150, 200);
    backup_and_restore("a second backup", &store, &backup, &dir.path().join("r2"));
}

#[test]
fn progress_ends_at_the_total_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), retention_options());
    write(&store, 0, 150);
    store.wait_for_index().unwrap();
    assert!(store.compact().unwrap().versions_dropped > 0);
    backup_and_restore(
        "a compacted store",
        &store,
        &dir.path().join("backup"),
        &dir.path().join("restored"),
    );
}
