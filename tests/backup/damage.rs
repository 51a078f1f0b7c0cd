//! Damaged and unfinished backups: every restore of one is `BackupDamaged` and leaves no store
//! behind, never a store that silently differs from the one backed up.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use strata::{Error, RestoreOptions, RestoreReport, Store, BACKUP_MANIFEST};
use tempfile::TempDir;

use crate::point_in_time::{timed_ids, write_timed_batches};
use crate::{
    assert_restored, copy_dir, files_under, flip_byte, missing_or_empty, now_micros, open, options,
};

/// A store with several segments and an index commit, and a good backup of it.
struct Fixture {
    dir: TempDir,
    store: Store,
    good: PathBuf,
    /// A time between the store's batches, for point-in-time restores.
    middle: u64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let base = now_micros();
    write_timed_batches(&store, base, 5);
    store.wait_for_index().unwrap();
    let good = dir.path().join("good");
    let report = store.backup(&good).unwrap();
    assert!(report.index_included, "{report:?}");
    Fixture {
        dir,
        store,
        good,
        middle: base + 40_500,
    }
}

/// The backup's files under `sub` ("log" or "index"), sorted by name.
fn files_in(backup: &Path, sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(backup.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn segments(backup: &Path) -> Vec<PathBuf> {
    files_in(backup, "log")
        .into_iter()
        .filter(|p| !p.ends_with("HORIZON"))
        .collect()
}

/// The largest file of the index's segments (not its meta.json).
fn index_segment_file(backup: &Path) -> PathBuf {
    files_in(backup, "index")
        .into_iter()
        .filter(|p| !p.ends_with("meta.json"))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .expect("the backup holds index segment files")
}

fn middle_of(path: &Path) -> usize {
    (fs::metadata(path).unwrap().len() / 2) as usize
}

fn truncate_by(path: &Path, bytes: u64) {
    let len = fs::metadata(path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len.saturating_sub(bytes))
        .unwrap();
}

/// The offset of the first character of the value of the first `"key": ` in the manifest.
fn manifest_value(backup: &Path, key: &str) -> usize {
    let text = fs::read_to_string(backup.join(BACKUP_MANIFEST)).unwrap();
    let pattern = format!("\"{key}\": ");
    text.find(&pattern)
        .unwrap_or_else(|| panic!("the manifest has no {key}: {text}"))
        + pattern.len()
}

type Damage = Box<dyn Fn(&Path)>;

fn damages() -> Vec<(&'static str, Damage)> {
    vec![
        (
            "a byte flipped in a sealed log segment",
            Box::new(|b| {
                let first = &segments(b)[0];
                flip_byte(first, middle_of(first), 0x20)
            }),
        ),
        (
            "a byte flipped in the last log segment",
            Box::new(|b| {
                let last = segments(b).pop().unwrap();
                flip_byte(&last, middle_of(&last), 0x01)
            }),
        ),
        (
            "a byte flipped in a log segment's header",
            Box::new(|b| flip_byte(&segments(b)[1], 0, 0x01)),
        ),
        (
            "a byte flipped in an index segment file",
            Box::new(|b| {
                let file = index_segment_file(b);
                flip_byte(&file, middle_of(&file), 0x04)
            }),
        ),
        (
            "a byte flipped in the index's meta.json",
            Box::new(|b| flip_byte(&b.join("index/meta.json"), 10, 0x01)),
        ),
        (
            "a byte flipped in the manifest's syntax",
            Box::new(|b| flip_byte(&b.join(BACKUP_MANIFEST), 0, 0x01)),
        ),
        (
            "a byte flipped in a checksum of the manifest",
            Box::new(|b| {
                let at = manifest_value(b, "crc32");
                flip_byte(&b.join(BACKUP_MANIFEST), at, 0x01)
            }),
        ),
        (
            "a byte flipped in a length of the manifest",
            Box::new(|b| {
                let at = manifest_value(b, "len");
                flip_byte(&b.join(BACKUP_MANIFEST), at, 0x01)
            }),
        ),
        (
            "a byte flipped in a path of the manifest",
            Box::new(|b| {
                let at = manifest_value(b, "path") + 6;
                flip_byte(&b.join(BACKUP_MANIFEST), at, 0x02)
            }),
        ),
        (
            "a log segment truncated by one byte",
            Box::new(|b| truncate_by(&segments(b)[1], 1)),
        ),
        (
            "the last log segment truncated by one byte",
            Box::new(|b| truncate_by(&segments(b).pop().unwrap(), 1)),
        ),
        (
            "a log segment emptied",
            Box::new(|b| truncate_by(&segments(b)[0], u64::MAX)),
        ),
        (
            "an index segment file truncated",
            Box::new(|b| truncate_by(&index_segment_file(b), 7)),
        ),
        (
            "a byte appended to a log segment",
            Box::new(|b| {
                let path = &segments(b)[0];
                let mut bytes = fs::read(path).unwrap();
                bytes.push(0);
                fs::write(path, bytes).unwrap();
            }),
        ),
        (
            "a log segment deleted",
            Box::new(|b| fs::remove_file(&segments(b)[1]).unwrap()),
        ),
        (
            "the last log segment deleted",
            Box::new(|b| fs::remove_file(segments(b).pop().unwrap()).unwrap()),
        ),
        (
            "an index segment file deleted",
            Box::new(|b| fs::remove_file(index_segment_file(b)).unwrap()),
        ),
        (
            "the index's meta.json deleted",
            Box::new(|b| fs::remove_file(b.join("index/meta.json")).unwrap()),
        ),
        (
            "the log directory deleted",
            Box::new(|b| fs::remove_dir_all(b.join("log")).unwrap()),
        ),
        (
            "the manifest deleted (an unfinished backup)",
            Box::new(|b| fs::remove_file(b.join(BACKUP_MANIFEST)).unwrap()),
        ),
        (
            "the manifest emptied",
            Box::new(|b| fs::write(b.join(BACKUP_MANIFEST), b"").unwrap()),
        ),
    ]
}

#[test]
fn damaged_or_unfinished_backups_are_refused_and_leave_no_store_behind() {
    let f = fixture();
    let mut wrong = Vec::new();
    let mut dests = Vec::new();
    for (k, (what, damage)) in damages().into_iter().enumerate() {
        let backup = f.dir.path().join(format!("damaged{k}"));
        copy_dir(&f.good, &backup);
        damage(&backup);
        for (how, options) in [
            ("a full restore", RestoreOptions::default()),
            (
                "a point-in-time restore",
                RestoreOptions::default().at(f.middle),
            ),
        ] {
            let dest = f.dir.path().join(format!("restored{k}-{}", dests.len()));
            match Store::restore(&backup, &dest, options) {
                Err(Error::BackupDamaged { path, reason }) => {
                    assert!(
                        path.starts_with(&backup),
                        "{what}, {how}: the error names {} ({reason})",
                        path.display()
                    );
                }
                other => wrong.push(format!("{what}, {how}: {other:?}")),
            }
            if !missing_or_empty(&dest) {
                wrong.push(format!(
                    "{what}, {how}: the refused restore left {:?}",
                    files_under(&dest).keys().collect::<Vec<_>>()
                ));
            }
            dests.push(dest);
        }
    }
    assert!(
        wrong.is_empty(),
        "damaged backups that were not refused:\n{}",
        wrong.join("\n")
    );
    // The destinations of refused restores take a good restore.
    let dest = dests.pop().unwrap();
    Store::restore(&f.good, &dest, RestoreOptions::default()).unwrap();
    let restored = open(&dest, options());
    let ids = timed_ids();
    let last = f.store.last_seq();
    let time = crate::time_of_seq(&f.store, &ids, last).unwrap();
    assert_restored(&f.store, &restored, &ids, last, time, &[]);
}

/// What a restore of `backup` gives: its report (without its wall time) and every file.
fn restore_outcome(
    backup: &Path,
    dest: &Path,
    options: RestoreOptions,
) -> Result<(RestoreReport, BTreeMap<String, Vec<u8>>), Error> {
    let mut report = Store::restore(backup, dest, options)?;
    report.micros = 0;
    Ok((report, files_under(dest)))
}

#[test]
fn a_flipped_manifest_byte_never_gives_a_different_restore() {
    // The manifest's numbers say what the restore reports and whether the index is kept: a
    // damaged one is refused, or else changes nothing the restore gives.
    let f = fixture();
    let fields = [
        "strata_backup",
        "created_micros",
        "last_seq",
        "last_time_micros",
        "index_seq",
        "len",
        "crc32",
    ];
    let mut wrong = Vec::new();
    let mut n = 0;
    for (how, options) in [
        ("a full restore", RestoreOptions::default()),
        (
            "a point-in-time restore",
            RestoreOptions::default().at(f.middle),
        ),
    ] {
        let expected = restore_outcome(
            &f.good,
            &f.dir.path().join(format!("expected-{n}")),
            options.clone(),
        )
        .unwrap();
        for field in fields {
            n += 1;
            let backup = f.dir.path().join(format!("flipped{n}"));
            copy_dir(&f.good, &backup);
            // The last digit of the number: still a number, one off.
            let text = fs::read_to_string(backup.join(BACKUP_MANIFEST)).unwrap();
            let start = manifest_value(&backup, field);
            let digits = text[start..].find(|c: char| !c.is_ascii_digit()).unwrap();
            assert!(digits > 0, "{field} is a number in {text}");
            flip_byte(&backup.join(BACKUP_MANIFEST), start + digits - 1, 0x01);
            let dest = f.dir.path().join(format!("restored{n}"));
            match restore_outcome(&backup, &dest, options.clone()) {
                Err(Error::BackupDamaged { .. }) => {}
                Ok(got) if got == expected => {}
                Ok((report, files)) => wrong.push(format!(
                    "{field}, {how}: restored, {report:?} instead of {:?}{}",
                    expected.0,
                    if files == expected.1 {
                        ""
                    } else {
                        " and different files"
                    }
                )),
                Err(e) => wrong.push(format!("{field}, {how}: {e}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "restores of a backup whose manifest has a flipped byte:\n{}",
        wrong.join("\n")
    );
}
