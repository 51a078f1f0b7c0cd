//! The index's lifecycle: reused on reopen, rebuilt when damaged or ahead of the log, rebuilt on
//! request, and writers held back when it lags.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{
    Batch, Durability, IndexOptions, Options, Query, QuerySpec, Snapshot, SortKey, Store,
};

use crate::files;

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
    files::copy_dir(&long.path().join("index"), &short.path().join("index"));
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

/// Ways to damage one file of the index directory.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Missing,
    Garbage,
    Truncated,
    Empty,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Missing => std::fs::remove_file(path).unwrap(),
        Damage::Garbage => {
            let len = std::fs::metadata(path).unwrap().len().max(8) as usize;
            let garbage: Vec<u8> = b"garbage\n".iter().copied().cycle().take(len).collect();
            std::fs::write(path, garbage).unwrap();
        }
        Damage::Truncated => {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        }
        Damage::Empty => std::fs::write(path, b"").unwrap(),
    }
}

// An index without meta.json and with a garbage `.managed.json` made every command fail with
// "index error: Data corrupted": every damage of every file of the index directory (meta.json,
// .managed.json, each segment file, the lock files, alone or with meta.json gone) must leave a
// store that opens with the same answers, an index rebuilt from the log when it had to be,
// `rebuild_index` working and `verify` saying what happened without calling it damage.
#[test]
fn every_damage_of_every_index_file_leads_to_a_rebuild_from_the_log() {
    let pristine = tempfile::tempdir().unwrap();
    let before = {
        let store = open(pristine.path(), options());
        populate(&store, 120);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    let index = pristine.path().join("index");
    let mut names: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // tantivy removes its lock files on close; a crash leaves them, and they are files of the
    // index directory like the others.
    for lock in [".tantivy-writer.lock", ".tantivy-meta.lock"] {
        if !names.iter().any(|n| n == lock) {
            std::fs::write(index.join(lock), b"").unwrap();
            names.push(lock.to_owned());
        }
    }
    names.sort();
    let extensions: std::collections::BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.rsplit_once('.'))
        .map(|(_, e)| e)
        .collect();
    for wanted in ["json", "idx", "term", "store", "fast", "lock"] {
        assert!(
            extensions.contains(wanted),
            "no .{wanted} file in {names:?}"
        );
    }
    let mut rebuilt = 0;
    for name in &names {
        for how in [
            Damage::Missing,
            Damage::Garbage,
            Damage::Truncated,
            Damage::Empty,
        ] {
            for without_meta in [false, true] {
                if without_meta && name == "meta.json" {
                    continue;
                }
                let ctx = format!(
                    "{name} {how:?}{}",
                    if without_meta { ", no meta.json" } else { "" }
                );
                eprintln!("case {ctx}");
                let dir = tempfile::tempdir().unwrap();
                files::copy_dir(pristine.path(), dir.path());
                let index = dir.path().join("index");
                damage(&index.join(name), how);
                if without_meta {
                    std::fs::remove_file(index.join("meta.json")).unwrap();
                }
                // An unrelated file beside the data directory: a rebuild never touches it.
                let outside = dir.path().join("keep.txt");
                std::fs::write(&outside, b"keep").unwrap();
                let report = Store::verify(dir.path(), options(), &mut |_, _| {})
                    .unwrap_or_else(|e| panic!("{ctx}: verify failed: {e}"));
                assert!(report.is_ok(), "{ctx}: {:?}", report.problems);
                assert!(report.index_checked, "{ctx}");
                let store = Store::open(dir.path(), options())
                    .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
                assert_same(&answers(&store), &before, &ctx);
                store.wait_for_index().unwrap();
                assert_same(&answers(&store), &before, &format!("{ctx}, committed"));
                store
                    .rebuild_index()
                    .unwrap_or_else(|e| panic!("{ctx}: rebuild_index: {e}"));
                assert_same(&answers(&store), &before, &format!("{ctx}, rebuilt"));
                drop(store);
                // verify ran first: when it found the index unusable, it says so in a note.
                let noted = report
                    .notes
                    .iter()
                    .any(|n| n.message.contains("rebuilt from the log"));
                rebuilt += usize::from(noted);
                if name == "meta.json" || name == ".managed.json" && without_meta {
                    assert!(noted, "{ctx}: {:?}", report.notes);
                }
                assert_eq!(std::fs::read(&outside).unwrap(), b"keep", "{ctx}");
                let store = open(dir.path(), options());
                assert_eq!(
                    store.index_open_report().rebuilt,
                    None,
                    "{ctx}: rebuilt twice"
                );
                assert_same(&answers(&store), &before, &format!("{ctx}, reopened"));
            }
        }
    }
    eprintln!(
        "{} files damaged 4 ways (with and without meta.json): {rebuilt} rebuilds",
        names.len()
    );
    assert!(rebuilt > names.len() * 4, "{rebuilt} rebuilds");
}

// A rebuild empties the index directory only: a symbolic link inside it is removed, never what
// it points to.
#[test]
fn a_rebuild_never_removes_anything_outside_the_index_directory() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        populate(&store, 50);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("precious"), b"keep").unwrap();
    let index = dir.path().join("index");
    std::os::unix::fs::symlink(elsewhere.path(), index.join("link")).unwrap();
    std::fs::create_dir(index.join("sub")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), index.join("sub/link")).unwrap();
    std::fs::write(index.join("meta.json"), b"garbage").unwrap();
    let store = open(dir.path(), options());
    assert!(store.index_open_report().rebuilt.is_some());
    assert_same(&answers(&store), &before, "answers");
    assert_eq!(
        std::fs::read(elsewhere.path().join("precious")).unwrap(),
        b"keep"
    );
    // Entries that are not the index's own files stay: a rebuild removes only what tantivy
    // writes.
    assert!(index.join("link").exists() && index.join("sub/link").exists());
}

// A rebuild emptied the whole index directory, so an operator's file kept there (or the
// target of a link) was deleted with it: only the index's own files are removed.
#[test]
fn a_rebuild_keeps_files_that_are_not_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path(), options());
        populate(&store, 20);
        store.wait_for_index().unwrap();
        answers(&store)
    };
    let index = dir.path().join("index");
    std::fs::write(index.join("NOTES.txt"), b"mine").unwrap();
    std::fs::create_dir(index.join("keep")).unwrap();
    std::fs::write(index.join("keep/file"), b"mine too").unwrap();
    std::fs::remove_file(index.join("meta.json")).unwrap();
    std::fs::write(index.join(".managed.json"), b"garbage").unwrap();
    let store = open(dir.path(), options());
    assert!(store.index_open_report().rebuilt.is_some());
    assert_same(&answers(&store), &before, "answers");
    assert_eq!(std::fs::read(index.join("NOTES.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(index.join("keep/file")).unwrap(), b"mine too");
    drop(store);
    // And an index directory holding only foreign files is no damage: nothing to rebuild.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::create_dir(fresh.path().join("index")).unwrap();
    std::fs::write(fresh.path().join("index/NOTES.txt"), b"mine").unwrap();
    let store = open(fresh.path(), options());
    assert_eq!(store.index_open_report().rebuilt, None);
    assert_eq!(
        std::fs::read(fresh.path().join("index/NOTES.txt")).unwrap(),
        b"mine"
    );
}

// verify called an index ahead of the log (log files lost after the index committed them) a
// note, and its own open then discarded that index, the only trace of the lost versions: it is
// a problem, judged before anything is opened, and the index stays as it was.
#[test]
fn verify_calls_an_index_ahead_of_the_log_a_problem_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest segments (4 KiB), so that the log has several.
    let options = || options().with_segment_size(4096);
    {
        let store = open(dir.path(), options());
        populate(&store, 300);
        store.wait_for_index().unwrap();
    }
    let log = dir.path().join("log");
    let mut segments: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 2, "{segments:?}");
    std::fs::remove_file(segments.last().unwrap()).unwrap();
    let meta = dir.path().join("index/meta.json");
    let meta_before = std::fs::read(&meta).unwrap();
    let report = Store::verify(dir.path(), options(), &mut |_, _| {}).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("the index's last commit covers seq")),
        "{report:?}"
    );
    assert_eq!(
        std::fs::read(&meta).unwrap(),
        meta_before,
        "verify changed the index"
    );
}
