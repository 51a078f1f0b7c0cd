//! Compaction survives reopening, and an index rebuilt from a compacted log gives the same
//! answers.

use strata::{Document, Error, Query, QuerySpec, Snapshot, Store};

use crate::*;

/// Every answer that compaction could have changed, rendered for comparison: histories, every
/// version, point reads of the past, queries at many snapshots (or their error), stats.
fn answers(store: &Store, model: &Model) -> Vec<String> {
    let show = |r: strata::Result<Vec<Document>>| match r {
        Ok(docs) => format!("{docs:?}"),
        Err(e @ Error::HistoryTrimmed { .. }) => format!("{e:?}"),
        Err(e) => panic!("unexpected error {e}"),
    };
    let mut out = Vec::new();
    let times = spread(&model.times(), 25);
    for (id, chain) in &model.docs {
        out.push(show(store.history(id)));
        for v in 0..=chain.len() as u64 {
            out.push(show(
                store.get_version(id, v).map(|d| d.into_iter().collect()),
            ));
        }
        for &t in &times {
            out.push(show(store.get_at(id, t).map(|d| d.into_iter().collect())));
        }
    }
    let mut specs = vec![QuerySpec::new(Query::All), every_version()];
    for &t in &times {
        specs.push(
            QuerySpec::new(Query::All)
                .snapshot(Snapshot::AsOf(t))
                .include_deleted(true),
        );
        specs.push(QuerySpec::new(Query::kind("metric")).snapshot(Snapshot::AsOf(t)));
    }
    for s in spread(&(1..=store.last_seq()).collect::<Vec<_>>(), 15) {
        specs.push(QuerySpec::new(Query::All).snapshot(Snapshot::AtSeq(s)));
    }
    for spec in &specs {
        out.push(show(all_pages(store, spec)));
    }
    let stats = store.stats();
    out.push(format!(
        "documents {} ever {} tombstones {} versions {} dropped {} complete from {:?}",
        stats.documents,
        stats.documents_ever,
        stats.tombstones,
        stats.versions,
        stats.dropped_versions,
        stats.history_complete_from
    ));
    out
}

#[track_caller]
fn assert_same(a: &[String], b: &[String], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x, y, "{what}: answer {i} differs");
    }
}

#[test]
fn compaction_survives_reopen_and_index_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), workload_options());
    let mut model = workload(&store, 4);
    settle(&store);
    record_filler(&store, &mut model);
    let now = now_micros();
    let report = store.compact().unwrap();
    assert!(report.versions_dropped > 0);
    let kept = workload_kept(&model, now);
    check_kept(&store, &model, &kept);
    let compacted = answers(&store, &model);
    assert!(
        compacted.iter().any(|a| a.contains("HistoryTrimmed")),
        "some reads are before the horizon"
    );

    // Reopen: the same answers, from the compacted segments and the horizon file.
    drop(store);
    let store = open(dir.path(), workload_options());
    assert_same(&compacted, &answers(&store, &model), "after reopening");
    check_kept(&store, &model, &kept);
    let stats = store.stats();
    assert_eq!(stats.lifecycle.compactions, 0, "counters are since opening");
    assert_eq!(stats.dropped_versions, report.versions_dropped);
    // Nothing left to drop.
    store.wait_for_index().unwrap();
    assert_eq!(store.compact().unwrap().versions_dropped, 0);

    // The index rebuilt from the compacted log gives the same answers.
    store.rebuild_index().unwrap();
    assert_same(&compacted, &answers(&store, &model), "after rebuilding");

    // So does an index rebuilt because it was lost.
    drop(store);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = open(dir.path(), workload_options());
    assert_same(
        &compacted,
        &answers(&store, &model),
        "after losing the index",
    );

    // The reopened store goes on: new versions, and a compaction that drops the ones the
    // rules no longer keep.
    for n in 0..6 {
        let b = body("/metric/0", 100 + n, 200);
        let metric = store.put("/metric/0", "metric", b.clone()).unwrap();
        let note = store.put("/note/0", "note", b.clone()).unwrap();
        model.record(&[metric, note], &[b.clone(), b]);
    }
    settle(&store);
    let report = store.compact().unwrap();
    let history = store.history("/metric/0").unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history,
        model.docs["/metric/0"][model.docs["/metric/0"].len() - 3..]
    );
    assert_eq!(
        store.history("/note/0").unwrap(),
        model.docs["/note/0"],
        "notes keep everything"
    );
    // The metric kept 1 to 3 versions before and 6 more now; 3 stay: at least 4 go.
    assert!(report.versions_dropped >= 4, "{report:?}");
}
