//! Integration tests of online backups and restores (docs/DESIGN.md §7): a backup taken while writers
//! write restores to the store as of its last batch, with its index; point-in-time restores give
//! the store as it was at any moment the log still holds; later backups into the same directory
//! copy only what changed; damaged or unfinished backups are typed errors, never wrong stores;
//! retention's history horizon bounds point-in-time restores; progress callbacks are monotone.

mod damage;
mod destinations;
mod incremental;
mod locking;
mod online;
mod point_in_time;
mod progress;
mod retention;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use strata::{
    Document, Durability, IndexOptions, MaintenanceOptions, Options, Query, QuerySpec, Snapshot,
    SortKey, Store,
};

/// Small segments, so that every log has several; no fsync of writes (backups and restores
/// still sync what they write). Background compaction never runs by itself; the index commits
/// often, so that waiting for it is short.
fn options() -> Options {
    Options::default()
        .with_segment_size(4096)
        .with_index_options(IndexOptions::default().with_commit_interval(Duration::from_millis(50)))
        .with_durability(Durability::None)
        .with_maintenance(MaintenanceOptions::default().with_compaction_interval(None))
}

/// Opens a store in `dir`, panicking with the error if that fails.
fn open(dir: &Path, options: Options) -> Store {
    match Store::open(dir, options) {
        Ok(store) => store,
        Err(e) => panic!("opening {} failed: {e}", dir.display()),
    }
}

/// Microseconds since the epoch, now.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A body of `kind` "event": a writer, a step, a group, a score, some text and padding (so that
/// segments fill after a few dozen versions).
fn event(writer: u64, step: u64, score: u64, pad: usize) -> Value {
    const WORDS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    json!({
        "writer": writer,
        "step": step,
        "group": format!("g{}", step % 4),
        "score": score,
        "text": format!("{} {}", WORDS[(step % 6) as usize], WORDS[(score % 6) as usize]),
        "pad": "x".repeat(pad),
    })
}

/// The queries whose answers restored stores must reproduce, with counts and every document.
fn queries() -> Vec<QuerySpec> {
    let all = |q: Query| QuerySpec::new(q).count(true).limit(10_000);
    vec![
        all(Query::All),
        all(Query::All).include_deleted(true),
        all(Query::term("group", "g1")),
        all(Query::range("score", ..500)),
        all(Query::kind("event").and(Query::exists("patched"))),
        all(Query::matches("text", "alpha")),
        all(Query::id_prefix("/w1/")).sort(SortKey::desc("score")),
    ]
}

/// Every version of `id` in `store` up to `seq`, oldest first.
fn history_upto(store: &Store, id: &str, seq: u64) -> Vec<Document> {
    let mut history = store.history(id).unwrap();
    history.retain(|d| d.meta.seq <= seq);
    history
}

/// The update time of the version with seq `seq` in `store`, found among the histories of `ids`.
fn time_of_seq(store: &Store, ids: &[String], seq: u64) -> Option<u64> {
    ids.iter()
        .flat_map(|id| store.history(id).unwrap())
        .find(|d| d.meta.seq == seq)
        .map(|d| d.meta.update_time_micros)
}

/// The newest seq of `store` whose time is at or before `time`, among the histories of `ids`.
fn seq_at_time(store: &Store, ids: &[String], time: u64) -> u64 {
    ids.iter()
        .flat_map(|id| store.history(id).unwrap())
        .filter(|d| d.meta.update_time_micros <= time)
        .map(|d| d.meta.seq)
        .max()
        .unwrap_or(0)
}

/// A query's answer, comparable across stores.
fn answer(store: &Store, spec: &QuerySpec) -> (Option<u64>, Vec<Document>) {
    let result = store
        .query(spec)
        .unwrap_or_else(|e| panic!("query {spec:?} failed: {e}"));
    assert!(
        result.next_page.is_none(),
        "the test's queries fit in one page"
    );
    (result.count, result.documents)
}

/// Asserts that `restored` is `original` as it was at seq `seq` (time `time`): the same current
/// documents, the same history of every id up to `seq`, the same query answers with counts (its
/// current state against the original's `AsOf(time)`, and the past at `past` in both).
fn assert_restored(
    original: &Store,
    restored: &Store,
    ids: &[String],
    seq: u64,
    time: u64,
    past: &[u64],
) {
    assert_eq!(restored.last_seq(), seq, "the restored store's newest seq");
    for id in ids {
        assert_eq!(
            restored.get(id).unwrap(),
            original.get_at(id, time).unwrap(),
            "current state of {id} against the original's at {time}"
        );
        assert_eq!(
            restored.history(id).unwrap(),
            history_upto(original, id, seq),
            "history of {id} up to seq {seq}"
        );
    }
    for spec in queries() {
        let then = spec.clone().snapshot(Snapshot::AsOf(time));
        assert_eq!(
            answer(restored, &spec),
            answer(original, &then),
            "{spec:?}: the restored store's current answer against the original's at {time}"
        );
        for &t in past {
            let at = spec.clone().snapshot(Snapshot::AsOf(t));
            assert_eq!(
                answer(restored, &at),
                answer(original, &at),
                "{spec:?} as of {t} (the restored store's present is {time})"
            );
        }
    }
}

/// Whether `dir` is missing or an empty directory, but for the `log/LOCK` a refused restore
/// keeps (it held that lock; restores and opens count such a directory as empty).
fn missing_or_empty(dir: &Path) -> bool {
    let names = |dir: &Path| -> Option<Vec<String>> {
        match fs::read_dir(dir) {
            Ok(entries) => Some(
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("listing {}: {e}", dir.display()),
        }
    };
    let Some(top) = names(dir) else {
        return true;
    };
    top.iter().all(|n| n == "log")
        && names(&dir.join("log")).is_none_or(|log| log.iter().all(|n| n == "LOCK"))
}

/// Every file below `dir`, relative to it with `/`, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(rel.replace('\\', "/"), fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Copies the directory tree `src` to `dest` (which must not exist).
fn copy_dir(src: &Path, dest: &Path) {
    for (rel, bytes) in files_under(src) {
        let to = dest.join(&rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::write(to, bytes).unwrap();
    }
}

/// The paths the manifest of the backup in `dir` names.
fn manifest_paths(dir: &Path) -> BTreeSet<String> {
    let manifest: Value =
        serde_json::from_slice(&fs::read(dir.join(strata::BACKUP_MANIFEST)).unwrap()).unwrap();
    manifest["files"]
        .as_array()
        .expect("the manifest lists files")
        .iter()
        .map(|f| f["path"].as_str().expect("a path").to_owned())
        .collect()
}

/// XORs the byte at `offset` of `path` with `mask`.
fn flip_byte(path: &Path, offset: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    assert!(
        offset < bytes.len(),
        "{} has {} bytes",
        path.display(),
        bytes.len()
    );
    bytes[offset] ^= mask;
    fs::write(path, bytes).unwrap();
}
