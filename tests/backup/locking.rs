//! A restore and the stores (or other restores) of its destination: it takes the directory
//! lock an open store holds, so that neither can remove or overwrite the other's files; and
//! the directories it creates are durable before it reports success.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use strata::backend::{Backend, BackendFile, LockGuard, OsBackend};
use strata::{Error, RestoreOptions, Store, RESTORE_MARKER};

use crate::{files_under, open, options};

/// A store of a few segments in `dir/db` and its backup in `dir/backup`; returns the store.
fn store_and_backup(dir: &Path) -> Store {
    let store = open(&dir.join("db"), options());
    for n in 0..40 {
        store
            .put(
                &format!("/d{n}"),
                "event",
                json!({"n": n, "pad": "p".repeat(200)}),
            )
            .unwrap();
    }
    store.backup(dir.join("backup")).unwrap();
    store
}

#[test]
fn a_restore_into_the_directory_of_an_open_store_is_locked_out_and_removes_nothing() {
    // A restore into an open store's directory was refused only by its emptiness check, which
    // an empty store being created passes: it then unlinked the open store's LOCK and segment.
    let dir = tempfile::tempdir().unwrap();
    drop(store_and_backup(dir.path()));
    let dest = dir.path().join("live");
    let live = open(&dest, options());
    live.put("/before", "event", json!({"n": 1})).unwrap();
    // The log, byte for byte (the live store's indexer may commit and write its own files
    // meanwhile, so the index is checked by the reads after the reopen below).
    let log_files = |dir: &Path| {
        let mut files = files_under(dir);
        files.retain(|name, _| name.starts_with("log/"));
        files
    };
    let before = log_files(&dest);
    let restored = Store::restore(dir.path().join("backup"), &dest, RestoreOptions::default());
    assert!(
        matches!(restored, Err(Error::Locked { .. })),
        "a restore into an open store: {restored:?}"
    );
    assert_eq!(
        log_files(&dest),
        before,
        "the refused restore changed the store"
    );
    // A second open in this process is refused too: the lock is per open file.
    let second = Store::open(&dest, options());
    assert!(
        matches!(second, Err(Error::Locked { .. })),
        "a second open: {:?}",
        second.err()
    );
    live.put("/after", "event", json!({"n": 2})).unwrap();
    drop(live);
    let reopened = open(&dest, options());
    for id in ["/before", "/after"] {
        assert!(reopened.get(id).unwrap().is_some(), "{id} was lost");
    }
}

#[test]
fn a_store_or_a_second_restore_cannot_take_the_directory_of_a_running_restore() {
    // An open (past its marker check) and a second restore ran beside a restore: the open
    // wrote into files the restore then replaced, the second restore truncated the first's
    // files and its clean-up removed the restored store.
    let dir = tempfile::tempdir().unwrap();
    let original = store_and_backup(dir.path());
    let backup = dir.path().join("backup");
    let dest = dir.path().join("restored");
    let mut engine_open = None;
    let mut second_restore = None;
    Store::restore_with_progress(&backup, &dest, RestoreOptions::default(), &mut |_, _| {
        if engine_open.is_none() {
            // What `Store::open` does once it has found no marker: open the log's engine.
            engine_open = Some(
                storage::Engine::open(&dest.join("log"), storage::EngineOptions::default())
                    .map(drop),
            );
            second_restore = Some(Store::restore(&backup, &dest, RestoreOptions::default()));
        }
    })
    .expect("the first restore");
    let engine_open = engine_open.expect("the progress callback ran");
    assert!(
        matches!(engine_open, Err(storage::Error::Locked { .. })),
        "an engine opened the log of a running restore: {engine_open:?}"
    );
    let second = second_restore.expect("the progress callback ran");
    assert!(
        matches!(second, Err(Error::Locked { .. })),
        "a second restore into a running restore's directory: {second:?}"
    );
    assert!(!dest.join(RESTORE_MARKER).exists());
    let restored = open(&dest, options());
    for n in 0..40 {
        let id = format!("/d{n}");
        assert_eq!(
            restored.get(&id).unwrap().map(|d| d.body),
            original.get(&id).unwrap().map(|d| d.body),
            "{id}"
        );
    }
}

/// The real file system, recording directory syncs and file creations in order.
#[derive(Debug, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<(&'static str, PathBuf)>>>,
}

impl Recorder {
    fn record(&self, what: &'static str, path: &Path) {
        self.events.lock().unwrap().push((what, path.to_path_buf()));
    }
}

impl Backend for Recorder {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        OsBackend.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        OsBackend.list_dir(path)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn BackendFile>> {
        if create {
            self.record("create", path);
        }
        OsBackend.open(path, create)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsBackend.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        OsBackend.remove_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsBackend.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.record("sync", path);
        OsBackend.sync_dir(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        OsBackend.try_lock(path)
    }
}

#[test]
fn every_directory_a_restore_creates_is_synced_into_its_parent_before_the_marker() {
    // Only the destination's parent was synced: a power loss could drop the new directories
    // above it, and with them a restore that had reported success.
    let dir = tempfile::tempdir().unwrap();
    drop(store_and_backup(dir.path()));
    let top = dir.path().join("new");
    let dest = top.join("deeper").join("restored");
    let recorder = Recorder::default();
    Store::restore_with_backend(
        &recorder,
        &dir.path().join("backup"),
        &dest,
        RestoreOptions::default(),
    )
    .expect("the restore");
    let events = recorder.events.lock().unwrap().clone();
    let marker = events
        .iter()
        .position(|(what, path)| *what == "create" && path.ends_with(RESTORE_MARKER))
        .expect("the marker was written");
    for parent in [dir.path(), &top, &top.join("deeper")] {
        assert!(
            events[..marker]
                .iter()
                .any(|(what, path)| *what == "sync" && path == parent),
            "{} (a new directory's parent) was not synced before the marker: {events:?}",
            parent.display()
        );
    }
    // And at the end, the destination and its parent, as before.
    let last: Vec<&PathBuf> = events[marker..]
        .iter()
        .filter(|(what, _)| *what == "sync")
        .map(|(_, path)| path)
        .collect();
    assert!(last.ends_with(&[&dest, &top.join("deeper")]), "{last:?}");
    assert!(open(&dest, options()).get("/d1").unwrap().is_some());
}
