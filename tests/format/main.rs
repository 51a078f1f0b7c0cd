//! The on-disk format of FORMAT.md versions 1 and 2, pinned by fixtures: a store written by a fixed
//! workload must still open with the same contents, and writing the same workload today must
//! produce the same bytes. A failure here means the format changed: bump FORMAT_VERSION, add a
//! history line to storage/FORMAT.md and a new fixture, and keep reading the old one.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata::{Batch, Durability, Expect, Options, Store};

const BASE_TIME: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1")
}

fn options() -> Options {
    Options::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

/// The fixed workload: explicit times make every byte deterministic.
fn write_workload(store: &Store) {
    let mut t = BASE_TIME;
    let mut next = || {
        t += 1_000_000;
        t
    };
    for i in 0..30u64 {
        store
            .write(Batch::new().at_time(next()).put(
                format!("/items/{i:02}"),
                "item",
                json!({"n": i, "name": format!("item {i}"), "tags": ["a", "b"]}),
            ))
            .unwrap();
    }
    for i in (0..30u64).step_by(3) {
        store
            .write(
                Batch::new()
                    .at_time(next())
                    .patch(format!("/items/{i:02}"), json!({"n": i * 10, "tags": null})),
            )
            .unwrap();
    }
    store
        .write(
            Batch::new()
                .at_time(next())
                .delete_if("/items/05", Expect::Version(0))
                .put(
                    "/items/99",
                    "other",
                    json!({"nested": {"deep": [1, 2, {"x": true}]}}),
                ),
        )
        .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The segment files of a data directory, by name.
fn segment_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    log_files(dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .collect()
}

#[test]
#[ignore = "run with --ignored to regenerate the fixture after a deliberate format change"]
fn regenerate_fixture() {
    let dir = fixture_dir();
    let _ = fs::remove_dir_all(&dir);
    let store = Store::open(&dir, options()).unwrap();
    write_workload(&store);
    drop(store);
    fs::remove_file(dir.join("log/LOCK")).unwrap();
}

#[test]
fn fixture_opens_with_its_contents() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    let store = Store::open(tmp.path(), options()).unwrap();
    assert_eq!(store.open_stats().truncated_bytes, 0);
    assert_eq!(store.last_seq(), 30 + 10 + 2);
    assert!(
        store.open_stats().segments >= 2,
        "the fixture must span sealed segments"
    );
    let doc = store.get("/items/03").unwrap().unwrap();
    assert_eq!(doc.body, json!({"n": 30, "name": "item 3"}));
    assert_eq!(doc.meta.version, 1);
    assert_eq!(doc.meta.update_time_micros, BASE_TIME + 32_000_000);
    assert!(store.get("/items/05").unwrap().is_none());
    let old = store
        .get_at("/items/05", BASE_TIME + 6_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(old.body["name"], "item 5");
    assert_eq!(store.history("/items/05").unwrap().len(), 2);
    assert_eq!(store.get("/items/99").unwrap().unwrap().meta.kind, "other");
    assert_eq!(store.list("/items/").count(), 30);
}

#[test]
fn todays_writer_produces_the_fixture_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), options()).unwrap();
    write_workload(&store);
    drop(store);
    let fresh = segment_files(tmp.path());
    let fixture = segment_files(&fixture_dir());
    assert_eq!(fresh.len(), fixture.len(), "segment count differs");
    for ((name_a, a), (name_b, b)) in fresh.iter().zip(&fixture) {
        assert_eq!(name_a, name_b);
        assert!(
            a == b,
            "segment {name_a} differs from the fixture: the format changed"
        );
    }
}

// Format 2: a compacted segment (FORMAT.md §9). The v2 fixture is the v1 fixture compacted
// with every kind kept to its newest version.

fn fixture_v2_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v2")
}

fn compacting_options() -> Options {
    options()
        .with_retention("item", strata::Retention::default().with_max_versions(1))
        .with_retention("other", strata::Retention::default().with_max_versions(1))
}

/// Copies the v1 fixture into `dir` and compacts it.
fn compact_v1_into(dir: &Path) {
    copy_dir(&fixture_dir(), dir);
    let store = Store::open(dir, compacting_options()).unwrap();
    store.wait_for_index().unwrap();
    let report = store.compact().unwrap();
    assert!(report.versions_dropped > 0, "{report:?}");
}

/// The log files of a data directory (segments and the horizon file), by name.
fn log_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "run with --ignored to regenerate the v2 fixture after a deliberate format change"]
fn regenerate_v2_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    compact_v1_into(tmp.path());
    let dir = fixture_v2_dir();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("log")).unwrap();
    for (name, bytes) in log_files(tmp.path()) {
        fs::write(dir.join("log").join(name), bytes).unwrap();
    }
}

#[test]
fn v2_fixture_opens_with_its_contents() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_v2_dir(), tmp.path());
    let store = Store::open(tmp.path(), options()).unwrap();
    assert_eq!(store.last_seq(), 30 + 10 + 2);
    let stats = store.stats();
    assert!(stats.dropped_versions > 0, "{stats:?}");
    assert_eq!(stats.versions + stats.dropped_versions, 42);
    // Newest versions all there.
    let doc = store.get("/items/03").unwrap().unwrap();
    assert_eq!(doc.body, json!({"n": 30, "name": "item 3"}));
    assert_eq!(store.list("/items/").count(), 30);
    assert_eq!(store.get("/items/99").unwrap().unwrap().meta.kind, "other");
    // The first version of /items/03 was in a sealed segment and is gone.
    assert!(matches!(
        store.get_version("/items/03", 0),
        Err(strata::Error::HistoryTrimmed { .. })
    ));
    assert!(stats.history_complete_from.is_some());
    drop(store);
    let report = Store::verify(tmp.path(), options(), &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.dropped, stats.dropped_versions);
}

#[test]
fn todays_compaction_produces_the_v2_fixture_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    compact_v1_into(tmp.path());
    let fresh = log_files(tmp.path());
    let fixture = log_files(&fixture_v2_dir());
    let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
        files.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(names(&fresh), names(&fixture), "files differ");
    for ((name, a), (_, b)) in fresh.iter().zip(&fixture) {
        assert!(
            a == b,
            "{name} differs from the v2 fixture: the format changed"
        );
    }
}
