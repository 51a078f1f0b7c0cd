//! Disk usage: compaction gives back the bytes of the versions it drops, and the index does
//! not grow.

use strata::Retention;

use crate::*;

#[test]
fn compaction_reclaims_log_bytes() {
    const DOCS: u64 = 20;
    const UPDATES: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options().with_retention("reading", Retention::default().max_versions(1)),
    );
    for n in 0..UPDATES {
        for d in 0..DOCS {
            let id = format!("/sensor/{d}");
            store.put(&id, "reading", body(&id, n, 400)).unwrap();
        }
    }
    settle(&store);
    let before = store.stats();
    assert_eq!(before.versions, DOCS * UPDATES + 6);
    let report = store.compact().unwrap();
    let after = store.stats();

    assert_eq!(report.versions_dropped, DOCS * (UPDATES - 1), "{report:?}");
    let reclaimed = report.bytes_before - report.bytes_after;
    assert_eq!(after.lifecycle.bytes_reclaimed, reclaimed);
    // The log shrank by what the rewritten segments lost, less the new horizon file.
    let horizon = std::fs::metadata(dir.path().join("log").join("HORIZON"))
        .unwrap()
        .len();
    assert_eq!(
        after.log_bytes,
        before.log_bytes - reclaimed + horizon,
        "before {before:?}\nafter {after:?}\n{report:?}"
    );
    // 29 of 30 versions of every reading went: what is left is the newest readings, the
    // filler and segment headers.
    assert!(
        after.log_bytes * 5 < before.log_bytes,
        "log {} -> {} bytes",
        before.log_bytes,
        after.log_bytes
    );
    assert_eq!(
        after.segments, before.segments,
        "segments are rewritten in place"
    );
    for d in 0..DOCS {
        let id = format!("/sensor/{d}");
        let doc = store.get(&id).unwrap().unwrap();
        assert_eq!(doc.body, body(&id, UPDATES - 1, 400));
        assert_eq!(store.history(&id).unwrap(), [doc]);
    }

    // Reopening reads the smaller log (and finds the same bytes).
    drop(store);
    let store = open(
        dir.path(),
        options().with_retention("reading", Retention::default().max_versions(1)),
    );
    let reopened = store.stats();
    assert_eq!(reopened.versions, DOCS + 6);
    assert_eq!(reopened.dropped_versions, DOCS * (UPDATES - 1));
    assert!(reopened.log_bytes <= after.log_bytes + 4096);
}

/// The index removes the dropped versions: it must not grow (it holds 606 versions before
/// compaction and 26 after).
#[test]
fn compaction_does_not_grow_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options().with_retention("reading", Retention::default().max_versions(1)),
    );
    for n in 0..30 {
        for d in 0..20 {
            let id = format!("/sensor/{d}");
            store.put(&id, "reading", body(&id, n, 400)).unwrap();
        }
    }
    settle(&store);
    let before = store.stats();
    let files = |d: &std::path::Path| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let index_before = files(&dir.path().join("index"));
    let report = store.compact().unwrap();
    assert_eq!(report.versions_dropped, 20 * 29);
    // `compact` returns once the index has committed the removal.
    let after = store.stats();
    assert_eq!(
        store
            .query(&every_version().count(true).limit(0))
            .unwrap()
            .count,
        Some(26)
    );
    assert!(
        after.index_bytes <= before.index_bytes,
        "index {} -> {} bytes\nbefore: {index_before:?}\nafter: {:?}",
        before.index_bytes,
        after.index_bytes,
        files(&dir.path().join("index"))
    );
}

// Compaction on a nearly full disk failed with ENOSPC on its `.compact` file; it now checks
// the free space it needs first and says how much it needs and has.
#[test]
fn compaction_without_the_free_space_it_needs_says_so_and_changes_nothing() {
    use std::sync::Arc;
    use strata::backend::SimBackend;

    let sim = SimBackend::new();
    let options = options().with_retention("reading", Retention::default().max_versions(1));
    let store = Store::open_with_backend(Arc::new(sim.clone()), Path::new("/db"), options).unwrap();
    for n in 0..10 {
        for d in 0..5 {
            let id = format!("/sensor/{d}");
            store.put(&id, "reading", body(&id, n, 400)).unwrap();
        }
    }
    settle(&store);
    let before = store.stats();
    let log_files = |sim: &SimBackend| sim.paths();
    let files_before = log_files(&sim);

    sim.set_available_space(Some(100));
    match store.compact() {
        Err(e @ Error::NoSpace { .. }) => {
            let Error::NoSpace {
                needed, available, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(*available, 100);
            assert!(*needed > 100 && *needed <= 4096 + 65_536, "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "not enough free space to compact {}: needs {needed} bytes, {available} available",
                    Path::new("/db/log").display()
                )),
                "{e}"
            );
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    // Nothing changed, and the store works on.
    assert_eq!(log_files(&sim), files_before);
    assert_eq!(store.stats().versions, before.versions);
    assert_eq!(store.history("/sensor/0").unwrap().len(), 10);
    store
        .put("/sensor/0", "reading", body("/sensor/0", 10, 400))
        .unwrap();

    // With room, it compacts.
    sim.set_available_space(None);
    settle(&store);
    let report = store.compact().unwrap();
    assert!(report.versions_dropped >= 5 * 9, "{report:?}");
    assert_eq!(
        store.get("/sensor/0").unwrap().unwrap().body,
        body("/sensor/0", 10, 400)
    );
}

/// The real file system reports the free space of the log's directory.
#[test]
fn the_os_backend_reports_free_space() {
    use strata::backend::{Backend, OsBackend};
    let dir = tempfile::tempdir().unwrap();
    let available = OsBackend.available_space(dir.path()).unwrap();
    assert!(available.is_some_and(|bytes| bytes > 0), "{available:?}");
}
