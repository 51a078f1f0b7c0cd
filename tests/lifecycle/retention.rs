//! Retention by kind: after many interleaved updates, compaction keeps exactly what the rules
//! keep (checked against a model of what was written), and the stats agree.

use std::collections::BTreeMap;

use serde_json::json;
use strata::{Error, Options, Retention};

use crate::*;

/// `max_versions`, `min_versions` with `max_age`, all three together, no rule, and documents
/// whose kind changed: every document keeps exactly the newest versions its newest kind's rule
/// keeps, every kept version reads back with its body, the rest is `HistoryTrimmed`, and the
/// report and the stats count the same versions.
#[test]
fn kind_rules_keep_exactly_their_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), workload_options());
    let mut model = workload(&store, 1);
    settle(&store);
    record_filler(&store, &mut model);
    let before = store.stats();
    let written: usize = model.docs.values().map(Vec::len).sum();
    assert_eq!(before.versions, written as u64);
    assert_eq!(
        (before.dropped_versions, before.history_complete_from),
        (0, None)
    );

    let now = now_micros();
    let report = store.compact().unwrap();
    let kept = workload_kept(&model, now);
    let expected_dropped: usize = model.docs.iter().map(|(id, c)| c.len() - kept[id]).sum();

    // Each rule dropped something, and the documents without a rule nothing.
    let dropped_of = |prefix: &str| -> usize {
        model
            .docs
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, c)| c.len() - kept[id])
            .sum()
    };
    for prefix in ["/metric/", "/event/", "/audit/", "/to-metric/"] {
        assert!(dropped_of(prefix) > 0, "the workload drops {prefix}");
    }
    for prefix in ["/note/", "/to-note/", "/zz/"] {
        assert_eq!(dropped_of(prefix), 0, "{prefix} keeps everything");
    }
    // The age limit kept more than the floor for some event document (superseded recently).
    let events: Vec<usize> = model
        .docs
        .iter()
        .filter(|(id, _)| id.starts_with("/event/"))
        .map(|(id, _)| kept[id])
        .collect();
    assert!(events.iter().any(|&k| k > 2), "{events:?}");

    assert_eq!(
        report.versions_dropped, expected_dropped as u64,
        "{report:?}"
    );
    assert!(report.segments_rewritten > 0, "{report:?}");
    assert!(report.bytes_after < report.bytes_before, "{report:?}");

    check_kept(&store, &model, &kept);

    // Kind rules apply to whole documents, by their newest version's kind.
    for (id, chain) in &model.docs {
        let history = store.history(id).unwrap();
        if id.starts_with("/note/") || id.starts_with("/to-note/") {
            assert_eq!(history.len(), chain.len(), "{id} keeps everything");
        }
        if id.starts_with("/metric/") {
            assert!(history.len() <= 3, "{id}: at most 3");
        }
    }

    let after = store.stats();
    assert_eq!(after.versions, (written - expected_dropped) as u64);
    assert_eq!(after.dropped_versions, expected_dropped as u64);
    assert_eq!(after.lifecycle.compactions, 1);
    assert_eq!(after.lifecycle.versions_dropped, expected_dropped as u64);
    assert_eq!(
        after.lifecycle.bytes_reclaimed,
        report.bytes_before - report.bytes_after
    );
    assert_eq!(
        (after.documents, after.documents_ever, after.tombstones),
        (before.documents, before.documents_ever, before.tombstones),
        "compaction changes no document's current state"
    );
    let live = model.docs.keys().filter(|id| model.current(id).is_some());
    assert_eq!(after.documents, live.count() as u64);
    assert_eq!(after.tombstones, after.documents_ever - after.documents);
    // History is complete from the latest time a dropped version was superseded.
    let horizon = model
        .docs
        .iter()
        .filter(|(id, c)| kept[*id] < c.len())
        .map(|(id, c)| c[c.len() - kept[id]].meta.update_time_micros)
        .max();
    assert_eq!(after.history_complete_from, horizon);

    // The query over every version finds exactly the kept ones.
    let kept_versions: Vec<Document> = {
        let mut v: Vec<Document> = model
            .docs
            .iter()
            .flat_map(|(id, c)| c[c.len() - kept[id]..].iter().cloned())
            .collect();
        v.sort_by_key(|d| d.meta.seq);
        v
    };
    assert_eq!(all_pages(&store, &every_version()).unwrap(), kept_versions);

    // Nothing more to drop: a second run drops nothing and changes nothing.
    let again = store.compact().unwrap();
    assert_eq!(again.versions_dropped, 0, "{again:?}");
    check_kept(&store, &model, &kept);
    assert_eq!(store.stats().lifecycle.compactions, 2);
}

/// A store with no retention at all keeps every version: compaction has nothing to do.
#[test]
fn without_rules_compaction_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), options());
    let mut model = workload(&store, 2);
    settle(&store);
    record_filler(&store, &mut model);
    let report = store.compact().unwrap();
    assert_eq!(
        (report.versions_dropped, report.segments_rewritten),
        (0, 0),
        "{report:?}"
    );
    let kept = model
        .docs
        .iter()
        .map(|(id, c)| (id.clone(), c.len()))
        .collect();
    check_kept(&store, &model, &kept);
    let stats = store.stats();
    assert_eq!(
        (stats.dropped_versions, stats.history_complete_from),
        (0, None)
    );
}

/// A rule that keeps everything (no limit, no age) is as good as none; a rule for a kind
/// nobody writes changes nothing; `max_versions(1)` keeps only the newest version.
#[test]
fn trivial_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        options()
            .with_retention("all", Retention::default().with_min_versions(3))
            .with_retention("nobody", Retention::default().with_max_versions(1))
            .with_retention("one", Retention::default().with_max_versions(1)),
    );
    let mut model = Model::default();
    for n in 0..20 {
        for kind in ["all", "one"] {
            let id = format!("/{kind}");
            let b = body(&id, n, 200);
            let m = store.put(&id, kind, b.clone()).unwrap();
            model.record(&[m], &[b]);
        }
    }
    settle(&store);
    record_filler(&store, &mut model);
    let report = store.compact().unwrap();
    assert_eq!(report.versions_dropped, 19, "{report:?}");
    let kept: BTreeMap<String, usize> = model
        .docs
        .iter()
        .map(|(id, c)| (id.clone(), if id == "/one" { 1 } else { c.len() }))
        .collect();
    check_kept(&store, &model, &kept);
    assert_eq!(store.get("/one").unwrap().unwrap().body["n"], json!(19));
}

/// Versions in the active segment, and versions superseded after what the index committed,
/// are never dropped; a later run drops them once they qualify.
#[test]
fn only_versions_in_sealed_segments_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // A large segment: everything stays in the active one.
    let options = Options::default()
        .with_durability(strata::Durability::None)
        .with_maintenance(strata::MaintenanceOptions::default().with_compaction_interval(None))
        .with_retention("reading", Retention::default().with_max_versions(1));
    let store = open(dir.path(), options);
    for n in 0..50 {
        store.put("/r", "reading", body("/r", n, 100)).unwrap();
    }
    store.wait_for_index().unwrap();
    let report = store.compact().unwrap();
    assert_eq!(
        report.versions_dropped, 0,
        "the active segment is never rewritten"
    );
    assert_eq!(store.history("/r").unwrap().len(), 50);
    assert_eq!(store.get_version("/r", 0).unwrap().unwrap().body["n"], 0);
    drop(store);

    // Small segments now (the setting applies to new segments): once sealed and indexed, the
    // old versions go.
    let store = open(
        dir.path(),
        crate::options().with_retention("reading", Retention::default().with_max_versions(1)),
    );
    for n in 50..60 {
        store.put("/r", "reading", body("/r", n, 100)).unwrap();
    }
    settle(&store);
    let report = store.compact().unwrap();
    assert_eq!(report.versions_dropped, 59, "{report:?}");
    let history = store.history("/r").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].meta.version, 59);
    assert!(matches!(
        store.get_version("/r", 58),
        Err(Error::HistoryTrimmed { .. })
    ));
}

/// Versions superseded after the index's last commit stay until the index commits them.
#[test]
fn versions_superseded_after_the_index_commit_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        crate::options()
            .with_retention("reading", Retention::default().with_max_versions(1))
            // The index commits when asked to (wait_for_index), not by itself.
            .with_index_options(
                strata::IndexOptions::default()
                    .with_commit_interval(std::time::Duration::from_secs(3600)),
            ),
    );
    let metas: Vec<strata::Meta> = (0..30)
        .map(|n| store.put("/r", "reading", body("/r", n, 100)).unwrap())
        .collect();
    seal(&store);
    let committed = store.stats().index_committed_seq;
    assert!(committed < metas[29].seq, "committed {committed}");
    // Only versions whose successor the index has committed may go.
    let allowed = metas.windows(2).filter(|w| w[1].seq <= committed).count() as u64;
    let report = store.compact().unwrap();
    assert_eq!(report.versions_dropped, allowed, "{report:?}");
    assert_eq!(store.history("/r").unwrap().len() as u64, 30 - allowed);

    store.wait_for_index().unwrap();
    let report = store.compact().unwrap();
    assert_eq!(report.versions_dropped, 29 - allowed, "{report:?}");
    assert_eq!(store.history("/r").unwrap().len(), 1);
}
