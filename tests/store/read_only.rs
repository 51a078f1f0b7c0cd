//! `Store::open_read_only`: a second opener of a store that a writer holds. These run the
//! writer in this process; the read-only open takes no lock, so it behaves as in another one
//! (the CLI tests run the real binary against a store this process holds).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata::{parse_query, Batch, Error, Options, QuerySpec, Retention, Snapshot, Store};

/// Every file under `dir` (recursively) with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn ids(store: &Store, text: &str, snapshot: Snapshot) -> Vec<(String, u64)> {
    let spec = QuerySpec::new(parse_query(text).unwrap())
        .snapshot(snapshot)
        .limit(1000);
    let mut out: Vec<(String, u64)> = store
        .query(&spec)
        .unwrap()
        .documents
        .into_iter()
        .map(|d| (d.meta.id, d.meta.version))
        .collect();
    out.sort();
    out
}

fn active_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

#[test]
fn a_read_only_open_of_a_torn_tail_changes_no_byte() {
    // A read-only open must not repair what the writer's next open repairs: it leaves a torn
    // tail (and every other file) exactly as it found them, and creates nothing.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for n in 0..5 {
            store
                .put(&format!("/t/{n}"), "doc", json!({"n": n}))
                .unwrap();
        }
        store.wait_for_index().unwrap();
        store.put("/t/late", "doc", json!({"n": 99})).unwrap();
    }
    // Half a frame after the last batch: what a crash in the middle of a write leaves.
    let segment = active_segment(dir.path());
    let mut bytes = fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
    fs::write(&segment, &bytes).unwrap();
    let before = files(dir.path());

    let reader = Store::open_read_only(dir.path(), Options::default()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(reader.last_seq(), 6);
    assert_eq!(reader.get("/t/late").unwrap().expect("read").body["n"], 99);
    // Seqs 1..=5 come from the index's commit, seq 6 from the log.
    assert_eq!(ids(&reader, "n:>=3", Snapshot::Current).len(), 3);
    assert!(!reader.refresh().unwrap(), "nothing new was written");
    drop(reader);
    assert_eq!(
        files(dir.path()),
        before,
        "a read-only open changed the directory"
    );

    // The writer's own open still cuts the torn tail, as before.
    let owner = Store::open(dir.path(), Options::default()).unwrap();
    assert!(owner.open_stats().truncated_bytes > 0);
    assert_eq!(owner.last_seq(), 6);
}

#[test]
fn a_read_only_store_sees_new_batches_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let owner = Store::open(dir.path(), Options::default().with_segment_size(4096)).unwrap();
    owner.put("/a", "doc", json!({"n": 0})).unwrap();
    let reader = Store::open_read_only(dir.path(), Options::default()).unwrap();
    let first = owner.put("/a", "doc", json!({"n": 1})).unwrap();
    // Not yet: the handle reads the files again only when asked.
    assert_eq!(reader.get("/a").unwrap().unwrap().body["n"], 0);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.get("/a").unwrap().unwrap().body["n"], 1);
    // Many batches, across several new segments (4 KiB each), and an index commit.
    for n in 0..200 {
        owner
            .put(
                &format!("/many/{n}"),
                "doc",
                json!({"n": n, "pad": "x".repeat(100)}),
            )
            .unwrap();
    }
    owner.wait_for_index().unwrap();
    owner.put("/a", "doc", json!({"n": 2})).unwrap();
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.last_seq(), owner.last_seq());
    assert_eq!(reader.get("/a").unwrap().unwrap().body["n"], 2);
    assert_eq!(reader.history("/a").unwrap().len(), 3);
    let listed = reader.list("/many/").count();
    assert_eq!(listed, 200);
    // Queries: current, as of the first write's time, and every version, as the owner answers.
    for snapshot in [
        Snapshot::Current,
        Snapshot::AsOf(first.update_time_micros),
        Snapshot::AllVersions,
    ] {
        assert_eq!(
            ids(&reader, "n:<=150", snapshot),
            ids(&owner, "n:<=150", snapshot),
            "{snapshot:?}"
        );
    }
    assert_eq!(
        reader
            .get_at("/a", first.update_time_micros)
            .unwrap()
            .unwrap()
            .body["n"],
        1
    );
}

#[test]
fn writes_on_a_read_only_store_are_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), Options::default())
        .unwrap()
        .put("/a", "doc", json!({"n": 1}))
        .unwrap();
    let reader = Store::open_read_only(dir.path(), Options::default()).unwrap();
    let read_only = |result: Result<(), Error>, what: &str| match result {
        Err(Error::ReadOnly { path, .. }) => assert_eq!(path, dir.path(), "{what}"),
        other => panic!("{what} on a read-only store: {other:?}"),
    };
    read_only(reader.put("/b", "doc", json!({})).map(drop), "put");
    read_only(reader.patch("/a", json!({"n": 2})).map(drop), "patch");
    read_only(reader.delete("/a").map(drop), "delete");
    read_only(
        reader
            .write(Batch::new().put("/c", "doc", json!({})))
            .map(drop),
        "write",
    );
    read_only(reader.compact().map(drop), "compact");
    read_only(reader.expire_due().map(drop), "expire_due");
    read_only(reader.rebuild_index(), "rebuild_index");
    read_only(
        reader
            .define_collection(
                "c",
                &QuerySpec::new(parse_query("n:1").unwrap()),
                Default::default(),
            )
            .map(drop),
        "define_collection",
    );
    let message = reader.put("/b", "doc", json!({})).unwrap_err().to_string();
    assert!(message.contains("read-only"), "{message}");
    // Nothing was written.
    assert_eq!(reader.last_seq(), 1);
    reader.refresh().unwrap();
    assert_eq!(reader.last_seq(), 1);
    assert!(reader.flush().is_ok(), "nothing to flush");
}

#[test]
fn two_read_only_opens_at_once_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let owner = Store::open(dir.path(), Options::default()).unwrap();
    owner.put("/a", "doc", json!({"n": 1})).unwrap();
    let one = Store::open_read_only(dir.path(), Options::default()).unwrap();
    let two = Store::open_read_only(dir.path(), Options::default()).unwrap();
    owner.put("/a", "doc", json!({"n": 2})).unwrap();
    assert!(two.refresh().unwrap());
    assert_eq!(one.get("/a").unwrap().unwrap().body["n"], 1);
    assert_eq!(two.get("/a").unwrap().unwrap().body["n"], 2);
    // The writer is not disturbed, and still the only one holding the lock.
    owner.put("/a", "doc", json!({"n": 3})).unwrap();
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn a_second_writer_is_told_which_process_holds_the_lock() {
    // `Locked` said only "another open store": it names the holder's process, as the holder
    // recorded itself in the lock file.
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), Options::default()).unwrap());
    // What a dead holder left in the lock file does not matter: only the lock decides.
    fs::write(dir.path().join("log/LOCK"), "4000000000\n").unwrap();
    let _owner = Store::open(dir.path(), Options::default()).unwrap();
    let err = Store::open(dir.path(), Options::default()).unwrap_err();
    match &err {
        Error::Locked { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
        other => panic!("not Locked: {other:?}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("process {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn a_read_only_store_follows_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .with_segment_size(4096)
        .with_retention("doc", Retention::default().with_max_versions(2));
    let owner = Store::open(dir.path(), options).unwrap();
    let mut first = None;
    for n in 0..100 {
        let meta = owner
            .put("/c/a", "doc", json!({"n": n, "pad": "x".repeat(100)}))
            .unwrap();
        first.get_or_insert(meta.update_time_micros);
        owner
            .put(&format!("/c/{n}"), "doc", json!({"n": n}))
            .unwrap();
    }
    owner.wait_for_index().unwrap();
    let reader = Store::open_read_only(dir.path(), Options::default()).unwrap();
    let history = reader.history("/c/a").unwrap().len();
    assert_eq!(history, 100);
    let report = owner.compact().unwrap();
    assert!(report.versions_dropped > 50, "{report:?}");
    // Until it refreshes, the handle reads the files it holds: the whole history.
    assert_eq!(reader.history("/c/a").unwrap().len(), 100);
    assert_eq!(reader.get_version("/c/a", 0).unwrap().unwrap().body["n"], 0);
    owner.put("/c/a", "doc", json!({"n": 100})).unwrap();
    assert!(reader.refresh().unwrap());
    assert_eq!(
        reader.history("/c/a").unwrap().len(),
        owner.history("/c/a").unwrap().len()
    );
    assert!(matches!(
        reader.get_version("/c/a", 0),
        Err(Error::HistoryTrimmed { .. })
    ));
    assert_eq!(reader.get("/c/a").unwrap().unwrap().body["n"], 100);
    assert_eq!(
        ids(&reader, "n:>=0", Snapshot::Current),
        ids(&owner, "n:>=0", Snapshot::Current)
    );
}
