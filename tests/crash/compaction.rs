//! Power loss at every sync point of a compaction run through the store (log, horizon file and
//! index together), in two crash modes: the reopened store loses no version retention keeps,
//! holds no version twice, answers queries exactly, and compacts again.

use std::collections::BTreeMap;

use serde_json::json;
use strata::backend::{CrashMode, SimBackend};
use strata::{Error, Query, QuerySpec, Retention, Snapshot};

use crate::files;
use crate::support::{open, small_segments, DATA_DIR};

/// Every version written, by id: (version, body).
type History = BTreeMap<String, Vec<(u64, serde_json::Value)>>;

fn check(store: &strata::Store, written: &History, ctx: &str) {
    let mut current = 0;
    for (id, versions) in written {
        let (newest_version, newest_body) = versions.last().unwrap();
        let doc = store
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{ctx}: {id} lost"));
        assert_eq!(
            (doc.meta.version, &doc.body),
            (*newest_version, newest_body),
            "{ctx}: {id}"
        );
        current += 1;
        let history = store.history(id).unwrap();
        let kept = history.len();
        let keeps_all = id.starts_with("/kept/");
        if keeps_all {
            assert_eq!(kept, versions.len(), "{ctx}: {id} lost history");
        } else {
            assert!(kept >= 2.min(versions.len()), "{ctx}: {id} kept {kept}");
        }
        for (doc, (version, body)) in history.iter().zip(&versions[versions.len() - kept..]) {
            assert_eq!(
                (doc.meta.version, &doc.body),
                (*version, body),
                "{ctx}: {id}"
            );
        }
        if kept < versions.len() {
            assert!(
                matches!(store.get_version(id, 0), Err(Error::HistoryTrimmed { .. })),
                "{ctx}: {id} v0"
            );
        }
    }
    let count = |spec: QuerySpec| store.query(&spec.count(true).limit(0)).unwrap().count;
    assert_eq!(count(QuerySpec::new(Query::All)), Some(current), "{ctx}");
    // Every version the log holds is found once by an all-versions query.
    let versions: u64 = written
        .keys()
        .map(|id| store.history(id).unwrap().len() as u64)
        .sum();
    assert_eq!(
        count(QuerySpec::new(Query::All).snapshot(Snapshot::AllVersions)),
        Some(versions),
        "{ctx}: all versions"
    );
}

#[test]
fn power_loss_during_compaction_loses_nothing_retention_keeps() {
    let sim = SimBackend::new();
    let options = small_segments().with_retention("trimmed", Retention::default().max_versions(2));
    let store = open(&sim, &options, "workload");
    let mut written = History::new();
    for round in 0..10u64 {
        for doc in 0..6u64 {
            let (id, kind) = if doc % 3 == 0 {
                (format!("/kept/{doc}"), "kept")
            } else {
                (format!("/trimmed/{doc}"), "trimmed")
            };
            let body = json!({"round": round, "doc": doc, "pad": "p".repeat(100)});
            let meta = store.put(&id, kind, body.clone()).unwrap();
            written.entry(id).or_default().push((meta.version, body));
        }
    }
    store.wait_for_index().unwrap();
    sim.record_images();
    let report = store.compact().unwrap();
    assert!(report.versions_dropped > 0, "{report:?}");
    check(&store, &written, "after compaction");
    drop(store);
    let images = sim.images();
    assert!(images.len() >= 4, "{} images", images.len());
    let mut dropped_seen = std::collections::BTreeSet::new();
    for (i, image) in images.iter().enumerate() {
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepAll] {
            let ctx = format!("image {i}/{} {mode:?}", images.len());
            let crashed: SimBackend = image.materialize(mode);
            crate::support::check_verify_agrees_with_open(&crashed, &options, &ctx);
            let store = open(&crashed, &options, &ctx);
            check(&store, &written, &ctx);
            dropped_seen.insert(store.stats().dropped_versions);
            // It compacts again to the same end.
            store.wait_for_index().unwrap();
            store.compact().unwrap();
            check(&store, &written, &format!("{ctx}, compacted again"));
            assert_eq!(
                store.stats().dropped_versions,
                report.versions_dropped,
                "{ctx}"
            );
        }
    }
    assert!(dropped_seen.contains(&0), "{dropped_seen:?}");
    assert!(
        dropped_seen.contains(&report.versions_dropped),
        "{dropped_seen:?}"
    );
    let _ = DATA_DIR;
}

// `verify` right after a kill during compaction reported "seq 1 is in the index but the log does
// not hold it", which the next open repairs (the index's commit records an older compaction
// generation, so open removes the dropped versions): a note, not a problem.
#[test]
fn verify_after_a_crash_between_compaction_and_index_removal_reports_notes_only() {
    let dir = tempfile::tempdir().unwrap();
    let options = strata::Options::default()
        .with_segment_size(4096)
        .with_retention("trimmed", Retention::default().max_versions(2))
        .with_maintenance(strata::MaintenanceOptions::default().with_compaction_interval(None));
    let stale_index = tempfile::tempdir().unwrap();
    let before = {
        let store = strata::Store::open(dir.path(), options.clone()).unwrap();
        for round in 0..20u64 {
            for doc in 0..4u64 {
                let body = json!({"round": round, "doc": doc, "pad": "p".repeat(100)});
                store
                    .put(&format!("/trimmed/{doc}"), "trimmed", body)
                    .unwrap();
            }
        }
        store.wait_for_index().unwrap();
        drop(store);
        // The index as it stands before the compaction removes anything from it.
        files::copy_dir(&dir.path().join("index"), stale_index.path());
        let store = strata::Store::open(dir.path(), options.clone()).unwrap();
        let report = store.compact().unwrap();
        assert!(report.versions_dropped > 10, "{report:?}");
        let spec = QuerySpec::new(Query::All)
            .snapshot(Snapshot::AllVersions)
            .count(true);
        store.query(&spec).unwrap().count
    };
    // A kill after the log's compaction, before the index committed the removal.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    files::copy_dir(stale_index.path(), &dir.path().join("index"));
    let report = strata::Store::verify(dir.path(), options.clone(), &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.index_checked);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.message.contains("versions compaction dropped")),
        "{:?}",
        report.notes
    );
    let store = strata::Store::open(dir.path(), options.clone()).unwrap();
    store.wait_for_index().unwrap();
    let spec = QuerySpec::new(Query::All)
        .snapshot(Snapshot::AllVersions)
        .count(true);
    assert_eq!(store.query(&spec).unwrap().count, before);
    drop(store);
    let report = strata::Store::verify(dir.path(), options, &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.notes, [], "repaired");
}
