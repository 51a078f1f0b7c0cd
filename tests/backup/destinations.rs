//! Where backups and restores may write: never over files that are not theirs.

use std::fs;

use serde_json::json;
use strata::{Error, Options, RestoreOptions, Store, BACKUP_MANIFEST};

use crate::{files_under, missing_or_empty, open, options};

/// A store with a few segments in `dir/db`, and a backup of it in `dir/backup`.
fn store_and_backup(dir: &std::path::Path) -> Store {
    let store = open(&dir.join("db"), options());
    for n in 0..60 {
        store
            .put(
                &format!("/d{}", n % 7),
                "event",
                json!({"n": n, "pad": "p".repeat(100)}),
            )
            .unwrap();
    }
    store.backup(dir.join("backup")).unwrap();
    store
}

#[test]
fn restoring_into_a_non_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_and_backup(dir.path());
    let backup = dir.path().join("backup");

    let with_file = dir.path().join("with-file");
    fs::create_dir_all(&with_file).unwrap();
    fs::write(with_file.join("notes.txt"), b"mine").unwrap();
    let with_subdir = dir.path().join("with-subdir");
    fs::create_dir_all(with_subdir.join("empty")).unwrap();
    // A store of its own (closed).
    let other_store = dir.path().join("other-store");
    {
        let other = open(&other_store, options());
        other.put("/mine", "event", json!({"mine": true})).unwrap();
    }

    for dest in [&with_file, &with_subdir, &other_store, &backup] {
        let before = files_under(dest);
        match Store::restore(&backup, dest, RestoreOptions::default()) {
            Err(e @ Error::DestinationNotEmpty { .. }) => assert_eq!(
                e.to_string(),
                format!("cannot restore into {}: it is not empty", dest.display())
            ),
            other => panic!("restoring into {}: {other:?}", dest.display()),
        }
        match Store::restore(&backup, dest, RestoreOptions::default().at(u64::MAX)) {
            Err(Error::DestinationNotEmpty { .. }) => {}
            other => panic!("restoring into {} at a time: {other:?}", dest.display()),
        }
        assert_eq!(
            files_under(dest),
            before,
            "{}: a refused restore changed it",
            dest.display()
        );
    }
    assert!(with_subdir.join("empty").is_dir());
    let other = open(&other_store, options());
    assert_eq!(
        other.get("/mine").unwrap().unwrap().body,
        json!({"mine": true})
    );
    assert_eq!(other.last_seq(), 1);
    drop(other);

    // Missing and empty directories are fine.
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    for dest in [empty, dir.path().join("missing/nested")] {
        let report = Store::restore(&backup, &dest, RestoreOptions::default()).unwrap();
        assert_eq!(report.last_seq, store.last_seq());
        assert_eq!(open(&dest, options()).last_seq(), store.last_seq());
    }
}

#[test]
fn backing_up_into_a_directory_that_is_not_a_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_and_backup(dir.path());

    let with_file = dir.path().join("with-file");
    fs::create_dir_all(&with_file).unwrap();
    fs::write(with_file.join("notes.txt"), b"mine").unwrap();
    let with_subdir = dir.path().join("with-subdir");
    fs::create_dir_all(with_subdir.join("photos")).unwrap();
    fs::write(with_subdir.join("photos/a.jpg"), b"jpeg").unwrap();
    for dest in [&with_file, &with_subdir] {
        let before = files_under(dest);
        match store.backup(dest) {
            // The message said "cannot restore into …" for a backup.
            Err(e @ Error::DestinationNotEmpty { .. }) => assert_eq!(
                e.to_string(),
                format!("cannot back up into {}: it is not empty", dest.display())
            ),
            other => panic!("backing up into {}: {other:?}", dest.display()),
        }
        assert_eq!(files_under(dest), before, "{}", dest.display());
        assert!(!dest.join("log").exists() && !dest.join("index").exists());
    }

    // The store's own directory, and one inside it.
    let db = dir.path().join("db");
    for dest in [db.clone(), db.join("backup")] {
        match store.backup(&dest) {
            Err(Error::InvalidOption(_)) => {}
            other => panic!("backing up into {}: {other:?}", dest.display()),
        }
    }
    assert!(!db.join("backup").exists());

    // A backup that did not finish (no manifest, and the marker a backup leaves until its
    // manifest is written) is taken up again.
    let backup = dir.path().join("backup");
    fs::remove_file(backup.join(BACKUP_MANIFEST)).unwrap();
    fs::write(backup.join("BACKUP.partial"), b"").unwrap();
    store.put("/d0", "event", json!({"again": true})).unwrap();
    let report = store.backup(&backup).unwrap();
    assert_eq!(report.last_seq, store.last_seq());
    let restored = dir.path().join("restored");
    Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
    let restored = open(&restored, options());
    assert_eq!(restored.get("/d0").unwrap(), store.get("/d0").unwrap());
}

#[test]
fn backing_up_into_another_stores_directory_is_refused_and_leaves_it_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_and_backup(dir.path());
    // Another store, closed: a non-empty directory that is not a backup.
    let other_dir = dir.path().join("other");
    {
        let other = open(&other_dir, options());
        for n in 0..40 {
            other
                .put(
                    &format!("/o{}", n % 5),
                    "other",
                    json!({"n": n, "pad": "o".repeat(150)}),
                )
                .unwrap();
        }
        other.wait_for_index().unwrap();
    }
    let before = files_under(&other_dir);
    let result = store.backup(&other_dir);
    let after = files_under(&other_dir);
    let removed: Vec<&String> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let changed: Vec<&String> = before
        .keys()
        .filter(|p| after.get(*p).is_some_and(|b| b != &before[*p]))
        .collect();
    assert!(
        matches!(result, Err(Error::DestinationNotEmpty { .. })),
        "backing up into another store's directory: {result:?}; of its files, {} were removed \
         ({removed:?}) and {} overwritten ({changed:?})",
        removed.len(),
        changed.len()
    );
    assert!(removed.is_empty() && changed.is_empty());
}

#[test]
fn in_memory_stores_cannot_be_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_memory(Options::default()).unwrap();
    store.put("/a", "event", json!({"n": 1})).unwrap();
    let dest = dir.path().join("backup");
    // Pins: backing up a store in memory is refused as unsupported, not as an invalid option.
    match store.backup(&dest) {
        Err(Error::Unsupported { what }) => assert!(what.contains("in memory"), "{what}"),
        other => panic!("backing up an in-memory store: {other:?}"),
    }
    let mut calls = 0;
    match store.backup_with_progress(&dest, &mut |_, _| calls += 1) {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("backing up an in-memory store: {other:?}"),
    }
    assert_eq!(calls, 0);
    assert!(missing_or_empty(&dest));
}
