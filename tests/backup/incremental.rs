//! Later backups into the same directory copy only what changed, drop the files the backup no
//! longer holds, and restore the newer state.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::json;
use strata::{Batch, Error, RestoreOptions, Store, BACKUP_MANIFEST};

use crate::online::{random_batch, writer_ids};
use crate::{assert_restored, files_under, manifest_paths, now_micros, open, options, time_of_seq};

/// Writes `batches` random batches of writer 1 (failures for absent documents are skipped).
fn write(store: &Store, rng: &mut SmallRng, steps: std::ops::Range<u64>) {
    for step in steps {
        match store
            .write(random_batch(rng, 1, step))
            .map_err(Error::into_reason)
        {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("step {step}: {e}"),
        }
    }
}

/// The files a backup directory holds besides its manifest.
fn backup_files(dir: &std::path::Path) -> BTreeSet<String> {
    files_under(dir)
        .into_keys()
        .filter(|p| p != BACKUP_MANIFEST)
        .collect()
}

#[test]
fn a_second_backup_copies_only_what_changed_and_drops_what_it_no_longer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let mut rng = SmallRng::seed_from_u64(3);
    write(&store, &mut rng, 0..300);
    store.wait_for_index().unwrap();
    let backup = dir.path().join("backup");
    let first = store.backup(&backup).unwrap();
    assert!(
        first.files >= 6,
        "several segments and index files: {first:?}"
    );
    assert_eq!(
        backup_files(&backup),
        manifest_paths(&backup),
        "the backup holds what its manifest names"
    );
    let old = files_under(&backup);

    write(&store, &mut rng, 300..600);
    // A rebuilt index has none of the old index's files.
    store.rebuild_index().unwrap();
    store.wait_for_index().unwrap();
    let second = store.backup(&backup).unwrap();
    assert!(
        second.last_seq > first.last_seq,
        "{first:?} then {second:?}"
    );
    assert!(
        second.bytes_copied < second.bytes && second.files_copied < second.files,
        "the sealed segments of the first backup are kept: {second:?}"
    );
    let now = files_under(&backup);
    let held = manifest_paths(&backup);
    assert_eq!(
        backup_files(&backup),
        held,
        "no file of the older backup is left over"
    );
    let gone: Vec<&String> = old.keys().filter(|p| !now.contains_key(*p)).collect();
    assert!(
        gone.iter().any(|p| p.starts_with("index/")),
        "the old index's files are gone: {gone:?}"
    );
    // The sealed segments both backups hold are the same bytes; all but the last segment of
    // the first backup were sealed then.
    let first_segments: Vec<&String> = old.keys().filter(|p| p.starts_with("log/")).collect();
    for path in &first_segments[..first_segments.len() - 1] {
        assert_eq!(
            now.get(*path),
            old.get(*path),
            "{path}: a sealed segment changed between backups"
        );
    }
    // The copied bytes are at most the new segments, the once-active one and the new index.
    let kept: u64 = first_segments[..first_segments.len() - 1]
        .iter()
        .map(|p| old[*p].len() as u64)
        .sum();
    assert!(
        second.bytes_copied <= second.bytes - kept,
        "kept {kept} bytes, copied {}: {second:?}",
        second.bytes_copied
    );

    let restored_dir = dir.path().join("restored");
    let restore = Store::restore(&backup, &restored_dir, RestoreOptions::default()).unwrap();
    assert_eq!(
        (restore.last_seq, restore.index_kept),
        (second.last_seq, true)
    );
    let restored = open(&restored_dir, options());
    assert!(
        restored.index_open_report().rebuilt.is_none(),
        "{:?}",
        restored.index_open_report()
    );
    let ids = writer_ids();
    let past = time_of_seq(&store, &ids, first.last_seq).unwrap();
    assert_restored(
        &store,
        &restored,
        &ids,
        second.last_seq,
        second.last_time_micros,
        &[past],
    );

    // Nothing written since: only the active segment (and the index's meta.json) is copied.
    let third = store.backup(&backup).unwrap();
    let files = files_under(&backup);
    let active = files
        .iter()
        .filter(|(p, _)| p.starts_with("log/"))
        .map(|(_, bytes)| bytes.len() as u64)
        .next_back()
        .unwrap();
    let meta = files
        .iter()
        .find(|(p, _)| p.as_str() == "index/meta.json")
        .map_or(0, |(_, bytes)| bytes.len() as u64);
    assert_eq!(third.last_seq, second.last_seq);
    assert!(
        third.bytes_copied <= active + meta,
        "the active segment has {active} bytes, meta.json {meta}: {third:?}"
    );
}

#[test]
fn a_first_backup_reports_every_file_as_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let mut rng = SmallRng::seed_from_u64(4);
    write(&store, &mut rng, 0..100);
    store.wait_for_index().unwrap();
    let report = store.backup(dir.path().join("backup")).unwrap();
    // "files_copied: Files copied by this run (the others were already there, unchanged)":
    // nothing was there before.
    assert_eq!(
        (report.files_copied, report.bytes_copied),
        (report.files, report.bytes),
        "{report:?}"
    );
}

/// Batches `from..=to` at `base + b`: one document of ten each, its body as long whatever the
/// letter.
fn write_letters(store: &Store, base: u64, batches: std::ops::RangeInclusive<u64>, letter: char) {
    for b in batches {
        let body = json!({"letter": letter.to_string().repeat(60), "b": b});
        let batch =
            Batch::new()
                .at_time(base + b)
                .put(format!("/w1/d{:02}", b % 10), "event", body);
        store.write(batch).unwrap();
    }
}

#[test]
fn a_backup_directory_refreshed_after_a_point_in_time_restore_holds_the_new_history() {
    // A store is backed up; it is restored to an earlier point in time, and the restored store
    // goes on with other writes of the same shape, backed up into the same directory.
    let dir = tempfile::tempdir().unwrap();
    let base = now_micros();
    let first = open(&dir.path().join("first"), options());
    write_letters(&first, base, 1..=120, 'a');
    assert!(first.stats().segments >= 3, "{:?}", first.stats());
    let backup = dir.path().join("backup");
    first.backup(&backup).unwrap();
    drop(first);
    let second_dir = dir.path().join("second");
    Store::restore(
        &backup,
        &second_dir,
        RestoreOptions::default().at(base + 40),
    )
    .unwrap();
    let second = open(&second_dir, options());
    assert_eq!(second.last_seq(), 40);
    write_letters(&second, base, 41..=120, 'b');
    let report = second.backup(&backup).unwrap();
    assert_eq!(report.last_seq, 120);

    let restored_dir = dir.path().join("restored");
    let restored = match Store::restore(&backup, &restored_dir, RestoreOptions::default()) {
        Ok(_) => open(&restored_dir, options()),
        Err(e) => panic!("the fresh backup does not restore: {e}"),
    };
    let stale: Vec<u64> = (41..=120)
        .filter(|&b| {
            let id = format!("/w1/d{:02}", b % 10);
            let version = restored
                .history(&id)
                .unwrap()
                .into_iter()
                .find(|d| d.body["b"] == b);
            version.is_none_or(|d| !d.body["letter"].as_str().unwrap().starts_with('b'))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "the restored backup holds the old history's batches {stale:?} instead of the new \
         ones ({report:?})"
    );
    for i in 0..10 {
        let id = format!("/w1/d{i:02}");
        assert_eq!(
            restored.history(&id).unwrap(),
            second.history(&id).unwrap(),
            "{id}"
        );
    }
}
