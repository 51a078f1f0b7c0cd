//! Backups taken while writers keep writing: each restores to the store as it was at the
//! backup's last batch, with the index it had committed (no rebuild on open).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use strata::{Batch, Error, IndexOptions, RestoreOptions, Store};

use crate::{assert_restored, event, open, options, time_of_seq};

pub(crate) const WRITERS: u64 = 3;
pub(crate) const IDS_PER_WRITER: u64 = 12;
const BACKUPS: usize = 4;
/// Steps each writer makes before the backups start.
const WARM_UP: u64 = 60;
/// A bound on each writer's steps, far above what the backups need.
const MAX_STEPS: u64 = 400;

/// Every id the writers write.
pub(crate) fn writer_ids() -> Vec<String> {
    (0..WRITERS)
        .flat_map(|w| (0..IDS_PER_WRITER).map(move |i| format!("/w{w}/d{i:02}")))
        .collect()
}

/// One random batch of writer `w` at `step`: a put of one or two documents, a patch or a delete
/// (which may name a document that is absent: the batch then fails with `NotFound`).
pub(crate) fn random_batch(rng: &mut SmallRng, w: u64, step: u64) -> Batch {
    let id = |i: u64| format!("/w{w}/d{:02}", i % IDS_PER_WRITER);
    let i = rng.random_range(0..IDS_PER_WRITER);
    let choice = rng.random_range(0..10);
    let mut body = || event(w, step, rng.random_range(0..1000), rng.random_range(0..150));
    match choice {
        0..=3 => Batch::new().put(id(i), "event", body()),
        4..=5 => Batch::new()
            .put(id(i), "event", body())
            .put(id(i + 1), "event", body()),
        6..=8 => Batch::new().patch(id(i), json!({"patched": true, "step": step})),
        _ => Batch::new().delete(id(i)),
    }
}

/// Writes random batches until `stop` (or [`MAX_STEPS`]); says so on `warm` after [`WARM_UP`].
fn writer(store: &Store, w: u64, stop: &AtomicBool, warm: mpsc::Sender<()>) {
    let mut rng = SmallRng::seed_from_u64(0xb4c + w);
    for step in 0..MAX_STEPS {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match store
            .write(random_batch(&mut rng, w, step))
            .map_err(Error::into_reason)
        {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("writer {w} at step {step}: {e}"),
        }
        if step + 1 == WARM_UP {
            warm.send(()).unwrap();
        }
    }
}

/// Sets the flag when dropped: writers stop even if the test thread panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn backups_under_concurrent_writes_restore_the_store_as_of_their_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Frequent index commits, so that backups meet commits replacing the index's files.
    let options = || {
        options().with_index_options(
            IndexOptions::default().with_commit_interval(Duration::from_millis(20)),
        )
    };
    let store = open(&dir.path().join("db"), options());
    let backup = dir.path().join("backup");
    let stop = AtomicBool::new(false);
    let mut taken = thread::scope(|s| {
        let stopper = StopOnDrop(&stop);
        let (warm, warmed) = mpsc::channel();
        for w in 0..WRITERS {
            let (store, stop, warm) = (&store, &stop, warm.clone());
            s.spawn(move || writer(store, w, stop, warm));
        }
        drop(warm);
        for _ in 0..WRITERS {
            warmed.recv().expect("a writer failed before warming up");
        }
        // The index has a commit of its own to back up.
        store.wait_for_index().unwrap();
        let mut taken = Vec::new();
        for k in 0..BACKUPS {
            // A write of our own while the backup copies the log (besides the writers'): it
            // came after the backup's snapshot, so the backup must not hold it.
            let probe = format!("/probe{k}");
            let mut during = None;
            let report = store
                .backup_with_progress(&backup, &mut |_, _| {
                    if during.is_none() {
                        during = Some(store.put(&probe, "probe", json!({"k": k})).unwrap());
                    }
                })
                .unwrap();
            let during = during.expect("progress was reported");
            assert!(
                report.last_seq < during.seq,
                "backup {k} holds a write made after its snapshot: {report:?}, {during:?}"
            );
            // Each backup refreshes the one before; each is restored at once, writers going on.
            let restored = dir.path().join(format!("restored{k}"));
            let restore = Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
            assert_eq!(
                (restore.last_seq, restore.index_kept),
                (report.last_seq, report.index_included),
                "backup {k}: {report:?}, restore: {restore:?}"
            );
            taken.push((report, restored));
        }
        drop(stopper);
        taken
    });
    // Once the writers are done and the index has caught up, a backup has the index for sure.
    store.wait_for_index().unwrap();
    let report = store.backup(&backup).unwrap();
    assert!(report.index_included, "a quiet store's index: {report:?}");
    let restored = dir.path().join("restored-last");
    Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
    taken.push((report, restored));

    let ids: Vec<String> = writer_ids()
        .into_iter()
        .chain((0..BACKUPS).map(|k| format!("/probe{k}")))
        .collect();
    let mut previous = 0;
    for (k, (report, restored_dir)) in taken.iter().enumerate() {
        let (seq, time) = (report.last_seq, report.last_time_micros);
        assert!(seq > previous, "backup {k} does not go forward: {report:?}");
        previous = seq;
        // The backup's time is that of its last batch: restoring gives the store as of then.
        assert_eq!(
            time_of_seq(&store, &ids, seq),
            Some(time),
            "backup {k}: last_time_micros is not the time of last_seq: {report:?}"
        );
        let restored = open(restored_dir, options());
        let index = restored.index_open_report();
        if report.index_included {
            assert!(
                index.rebuilt.is_none() && index.committed_seq > 0 && index.committed_seq <= seq,
                "backup {k} has the index, yet: {index:?}"
            );
        }
        let past = time_of_seq(&store, &ids, seq / 2).expect("every seq is a version");
        assert_restored(&store, &restored, &ids, seq, time, &[past]);
    }
}
