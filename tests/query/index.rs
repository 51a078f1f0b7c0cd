//! The index's lifecycle: reused on reopen, rebuilt when damaged or ahead of the log, rebuilt on
//! request, and writers held back when it lags.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{
    Batch, Durability, IndexOptions, Options, Query, QuerySpec, Snapshot, SortKey, Store,
};

fn options() -> Options {
    Options::default().with_durability(Durability::None)
}

fn open(dir: &Path, options: Options) -> Store {
    Store::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// A few hundred documents of two kinds, updated and some deleted.
fn populate(store: &Store, n: u64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch = batch.put(
                format!("/docs/{i:04}"),
                if i % 3 == 0 { "odd" } else { "even" },
                json!({"i": i, "tag": format!("t{}", i % 7), "text": format!("word{} common", i % 5)}),
            );
        }
        store.write(batch).unwrap();
    }
    for i in (0..n).step_by(4) {
        store
            .patch(&format!("/docs/{i:04}"), json!({"tag": "patched"}))
            .unwrap();
    }
    for i in (0..n).step_by(9) {
        store.delete(&format!("/docs/{i:04}")).unwrap();
    }
}

/// What a handful of queries answer: (id, version, body) per document, and counts.
fn answers(store: &Store) -> Answers {
    let specs = [
        QuerySpec::new(Query::All).count(true).limit(10_000),
        QuerySpec::new(Query::kind("odd")).count(true).limit(10_000),
        QuerySpec::new(Query::term("tag", "patched"))
            .count(true)
            .sort(SortKey::desc("i"))
            .limit(10_000),
        QuerySpec::new(Query::text("word3"))
            .snapshot(Snapshot::AllVersions)
            .include_deleted(true)
            .count(true)
            .limit(10_000),
        QuerySpec::new(Query::range("i", 100..200).and_not(Query::term("tag", "t1")))
            .count(true)
            .limit(10_000),
    ];
    specs
        .iter()
        .map(|spec| {
            let r = store
                .query(spec)
                .unwrap_or_else(|e| panic!("query {spec:?}: {e}"));
            let docs = r
                .documents
                .into_iter()
                .map(|d| (d.meta.id, d.meta.version, d.body))
                .collect();
            (r.count, docs)
        })
        .collect()
}

type Answers = Vec<(Option<u64>, Vec<(String, u64, Value)>)>;

/// Compares two sets of answers, printing only the first difference.
#[track_caller]
fn assert_same(got: &Answers, want: &Answers, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}");
    for (q, (g, w)) in got.iter().zip(want).enumerate() {
        if g == w {
            continue;
        }
        let first = g.1.iter().zip(&w.1).position(|(a, b)| a != b);
        panic!(
            "{ctx}: query {q}: count {:?}, {} documents; expected count {:?}, {} documents; \
             first difference at {first:?}: {:?} instead of {:?}",
            g.0,
            g.1.len(),
            w.0,
            w.1.len(),
            first.map(|i| &g.1[i]),
            first.map(|i| &w.1[i]),
        );
    }
}

/// The live documents by reading the log: `list` of everything.
fn live_ids(store: &Store) -> Vec<String> {
    store
        .list("")
        .map(|d| d.map(|d| d.meta.id))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check_all_query(store: &Store) {
    let r = store
        .query(
            &QuerySpec::new(Query::All)
                .count(true)
                .limit(10_000)
                .sort(SortKey::asc("_id")),
        )
        .unwrap();
    let ids: Vec<String> = r.documents.iter().map(|d| d.meta.id.clone()).collect();
    let live = live_ids(store);
    assert_eq!(r.count, Some(live.len() as u64));
    assert_eq!(ids, live);
}

#[test]
fn a_reopened_store_reuses_its_index_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        assert_eq!(store.index_open_report().rebuilt, None);
        populate(&store, 400);
        store.wait_for_index().unwrap();
        check_all_query(&store);
        answers(&store)
    };
    let store = open(dir.path(), options());
    let report = store.index_open_report().clone();
    assert_eq!(report.rebuilt, None, "{report:?}");
    assert_eq!(report.committed_seq, store.last_seq());
    assert_same(&answers(&store), &before, "answers");
    check_all_query(&store);
    // And it keeps up with new writes.
    store.put("/docs/new", "odd", json!({"i": 150})).unwrap();
    let r = store
        .query(&QuerySpec::new(Query::term("_id", "/docs/new")).count(true))
        .unwrap();
    assert_eq!(r.count, Some(1));
    check_all_query(&store);
}

#[test]
fn a_store_closed_before_its_index_committed_reopens_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let tail = options().with_index_options(crate::tail_index_options());
    let before = {
        let store = open(dir.path(), tail.clone());
        populate(&store, 300);
        assert_eq!(store.index_progress().committed_seq, 0);
        answers(&store)
    };
    let store = open(dir.path(), tail);
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_same(&answers(&store), &before, "answers");
    check_all_query(&store);
}

#[test]
fn a_garbage_meta_json_makes_the_index_rebuild_and_queries_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        populate(&store, 300);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    std::fs::write(dir.path().join("index/meta.json"), b"{ this is not json").unwrap();
    let store = open(dir.path(), options());
    let reason = store.index_open_report().rebuilt.clone();
    assert!(reason.is_some(), "{:?}", store.index_open_report());
    assert_eq!(store.index_open_report().committed_seq, 0);
    // Queries are right at once (from the log) and after the rebuilt index commits.
    assert_same(&answers(&store), &before, "answers");
    store.wait_for_index().unwrap();
    assert_same(&answers(&store), &before, "answers");
    check_all_query(&store);
    drop(store);
    // The rebuilt index is a good one.
    let store = open(dir.path(), options());
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_same(&answers(&store), &before, "answers");
}

#[test]
fn a_deleted_index_directory_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        populate(&store, 300);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = open(dir.path(), options());
    assert_eq!(store.index_open_report().committed_seq, 0);
    assert_same(&answers(&store), &before, "answers from the log");
    store.wait_for_index().unwrap();
    assert_same(&answers(&store), &before, "answers from the new index");
    check_all_query(&store);
}

#[test]
fn damaged_index_segment_files_make_the_index_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        populate(&store, 300);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    // Truncate every file of the index but its metadata.
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir.path().join("index")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        std::fs::write(&path, b"").unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "no segment files found");
    let store = match Store::open(dir.path(), options()) {
        Ok(store) => store,
        Err(e) => panic!("the index is derived data, yet open failed: {e}"),
    };
    assert!(store.index_open_report().rebuilt.is_some());
    assert_same(&answers(&store), &before, "answers");
    store.wait_for_index().unwrap();
    assert_same(&answers(&store), &before, "answers");
}

#[test]
fn an_index_ahead_of_its_log_is_rebuilt() {
    // The index of a longer log, as after losing unsynced writes to a power cut.
    let long = tempfile::tempdir().unwrap();
    {
        let store = open(long.path(), options());
        populate(&store, 200);
        store.wait_for_index().unwrap();
    }
    let short = tempfile::tempdir().unwrap();
    let before = {
        let store = open(short.path(), options());
        for i in 0..20 {
            store
                .put(
                    &format!("/docs/{i:04}"),
                    "odd",
                    json!({"i": i * 1000, "tag": "short"}),
                )
                .unwrap();
        }
        answers(&store)
    };
    std::fs::remove_dir_all(short.path().join("index")).unwrap();
    copy_dir(&long.path().join("index"), &short.path().join("index"));
    let store = open(short.path(), options());
    assert!(
        store.index_open_report().rebuilt.is_some(),
        "{:?}",
        store.index_open_report()
    );
    assert_same(&answers(&store), &before, "answers");
    store.wait_for_index().unwrap();
    assert_same(&answers(&store), &before, "answers");
    check_all_query(&store);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Waits (bounded) until the indexer has indexed, not necessarily committed, the whole log.
fn wait_indexed(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = store.index_progress();
        if p.indexed_seq >= p.log_seq {
            return;
        }
        assert!(Instant::now() < deadline, "not indexed in 30 s: {p:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Rebuilds, then checks the answers, a second rebuild after a write, and a reopen. With
/// `commit_first`, the index commits everything before each rebuild.
fn check_rebuild(dir: &Path, store: Store, commit_first: bool) {
    let before = answers(&store);
    store.rebuild_index().unwrap();
    assert_eq!(store.index_progress().committed_seq, store.last_seq());
    assert_same(&answers(&store), &before, "answers after a rebuild");
    // Writes after a rebuild are seen, and a second rebuild changes nothing.
    store
        .put("/docs/0001", "odd", json!({"tag": "patched", "i": 1}))
        .unwrap();
    let after = answers(&store);
    assert_ne!(after, before);
    if commit_first {
        store.wait_for_index().unwrap();
    } else {
        wait_indexed(&store);
    }
    store.rebuild_index().unwrap();
    assert_same(&answers(&store), &after, "answers after a second rebuild");
    check_all_query(&store);
    drop(store);
    let store = open(dir, options());
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_same(&answers(&store), &after, "answers after reopening");
}

#[test]
fn rebuild_index_of_a_committed_index_keeps_every_answer() {
    for index in [IndexOptions::default(), crate::tail_index_options()] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), options().with_index_options(index));
        populate(&store, 300);
        store.wait_for_index().unwrap();
        check_rebuild(dir.path(), store, true);
    }
}

#[test]
fn rebuild_index_with_uncommitted_versions_keeps_every_answer() {
    for index in [IndexOptions::default(), crate::tail_index_options()] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), options().with_index_options(index));
        populate(&store, 300);
        // Indexed, so in tantivy's writer, but (with the tail options surely) not committed.
        wait_indexed(&store);
        check_rebuild(dir.path(), store, false);
    }
}

#[test]
fn queries_running_during_rebuilds_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = IndexOptions::default();
    index.commit_versions = 100;
    let store = open(dir.path(), options().with_index_options(index));
    populate(&store, 300);
    let expected = live_ids(&store).len() as u64;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 10 {
                let r = store
                    .query(&QuerySpec::new(Query::All).count(true).limit(0))
                    .unwrap();
                assert_eq!(r.count, Some(expected), "query {n} during rebuilds");
                n += 1;
            }
            n
        });
        for round in 0..5 {
            // Updates between rebuilds.
            for i in 0..50 {
                store
                    .patch(&format!("/docs/{:04}", i * 3 + 1), json!({"round": round}))
                    .unwrap();
            }
            // Committed first: rebuilding over uncommitted versions is the bug of
            // `rebuild_index_with_uncommitted_versions_keeps_every_answer`.
            store.wait_for_index().unwrap();
            store.rebuild_index().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let queries = reader.join().unwrap();
        assert!(queries >= 10);
    });
}

#[test]
fn writers_are_held_back_while_the_index_lags() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = IndexOptions::default();
    index.max_lag = 1000;
    index.commit_versions = 500;
    index.commit_interval = Duration::from_secs(3600);
    let store = open(dir.path(), options().with_index_options(index));
    const BATCH: u64 = 100;
    let mut worst = 0;
    for b in 0..200u64 {
        let mut batch = Batch::new();
        for i in 0..BATCH {
            let n = b * BATCH + i;
            batch = batch.put(format!("/bp/{}", n % 5000), "bp", json!({"n": n}));
        }
        store.write(batch).unwrap();
        let p = store.index_progress();
        assert_eq!(p.log_seq, (b + 1) * BATCH);
        let lag = p.log_seq - p.committed_seq;
        worst = worst.max(lag);
        // Writers wait before they write, so a batch may take the lag past the bound by its size.
        assert!(lag <= 1000 + BATCH, "batch {b}: {p:?}");
    }
    eprintln!("worst lag {worst}");
    assert_eq!(store.last_seq(), 20_000);
    let r = store
        .query(&QuerySpec::new(Query::kind("bp")).count(true).limit(0))
        .unwrap();
    assert_eq!(r.count, Some(5000));
    let r = store
        .query(
            &QuerySpec::new(Query::range("n", 15_000..))
                .count(true)
                .limit(0),
        )
        .unwrap();
    assert_eq!(r.count, Some(5000));
    let r = store
        .query(
            &QuerySpec::new(Query::kind("bp"))
                .snapshot(Snapshot::AllVersions)
                .count(true)
                .limit(0),
        )
        .unwrap();
    assert_eq!(r.count, Some(20_000));
}

#[test]
fn single_writes_never_let_the_index_lag_more_than_max_lag() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = IndexOptions::default();
    index.max_lag = 300;
    index.commit_versions = 100;
    index.commit_interval = Duration::from_secs(3600);
    let store = open(dir.path(), options().with_index_options(index));
    for n in 0..2000u64 {
        store
            .put(&format!("/one/{}", n % 100), "one", json!({"n": n}))
            .unwrap();
        let p = store.index_progress();
        assert!(p.log_seq - p.committed_seq <= 301, "write {n}: {p:?}");
    }
}
