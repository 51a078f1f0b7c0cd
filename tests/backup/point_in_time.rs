//! Point-in-time restores: the restored store is the original as of the time asked for, takes
//! new writes and reopens.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use strata::{Batch, Query, QuerySpec, RestoreOptions, Store};

use crate::{assert_restored, event, now_micros, open, options, seq_at_time};

const BATCHES: u64 = 80;
const DOCS: u64 = 10;
/// Microseconds between two batches.
const STEP: u64 = 1_000;

/// Writes [`BATCHES`] batches at `base + STEP * b` (b from 1): puts, patches and deletes of
/// `/w1/dNN`, one to three documents a batch, never failing.
pub(crate) fn write_timed_batches(store: &Store, base: u64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut live = BTreeSet::new();
    for b in 1..=BATCHES {
        let mut batch = Batch::new().at_time(base + STEP * b);
        let first = rng.random_range(0..DOCS);
        for i in (first..first + rng.random_range(1..=3)).map(|i| i % DOCS) {
            let id = format!("/w1/d{i:02}");
            let body = event(1, b, rng.random_range(0..1000), rng.random_range(0..200));
            batch = match (live.contains(&i), rng.random_range(0..4)) {
                (true, 0) => {
                    live.remove(&i);
                    batch.delete(id)
                }
                (true, 1) => batch.patch(id, json!({"patched": true, "step": b})),
                _ => {
                    live.insert(i);
                    batch.put(id, "event", body)
                }
            };
        }
        store.write(batch).unwrap();
    }
}

/// The ids [`write_timed_batches`] writes, and one only written after the backup.
pub(crate) fn timed_ids() -> Vec<String> {
    (0..DOCS)
        .map(|i| format!("/w1/d{i:02}"))
        .chain(["/w1/later".to_owned()])
        .collect()
}

#[test]
fn restores_to_points_in_time_give_the_store_as_it_was_then() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let base = now_micros();
    let at = |b: u64| base + STEP * b;
    write_timed_batches(&store, base, 11);
    assert!(
        store.stats().segments >= 4,
        "the log has several segments: {:?}",
        store.stats()
    );
    store.wait_for_index().unwrap();
    let backup = dir.path().join("backup");
    let report = store.backup(&backup).unwrap();
    assert_eq!(
        (
            report.last_seq,
            report.last_time_micros,
            report.index_included
        ),
        (store.last_seq(), at(BATCHES), true)
    );
    // Writes after the backup, which no restore of it shows.
    store
        .put("/w1/later", "event", event(1, 999, 1, 0))
        .unwrap();
    let _ = store.patch("/w1/d00", json!({"after": true}));

    let ids = timed_ids();
    let points = [
        ("before the first batch", base),
        ("at the first batch", at(1)),
        ("at a batch", at(17)),
        ("between two batches", at(33) + STEP / 2),
        ("just before a batch", at(52) - 1),
        ("at the last batch", at(BATCHES)),
        ("just after the last batch", at(BATCHES) + 1),
        ("long after the last batch", now_micros() + 3_600_000_000),
    ];
    for (k, (what, t)) in points.into_iter().enumerate() {
        let dest = dir.path().join(format!("at{k}"));
        let restore = Store::restore(&backup, &dest, RestoreOptions::default().at(t))
            .unwrap_or_else(|e| panic!("restoring {what} ({t}): {e}"));
        // The original as the backup saw it, at `t`.
        let then = t.min(report.last_time_micros);
        let seq = seq_at_time(&store, &ids, then);
        assert_eq!(restore.last_seq, seq, "{what}: {restore:?}");
        assert_eq!(
            restore.index_kept,
            seq == report.last_seq,
            "{what}: the backed-up index covers every batch: {restore:?}"
        );
        let restored = open(&dest, options());
        if restore.index_kept {
            assert!(
                restored.index_open_report().rebuilt.is_none(),
                "{what}: {:?}",
                restored.index_open_report()
            );
        }
        let past: Vec<u64> = [at(10), at(25) + 1]
            .into_iter()
            .filter(|&p| p <= then)
            .collect();
        assert_restored(&store, &restored, &ids, seq, then, &past);

        // The restored store takes new writes, and keeps them and its past across a reopen.
        let count = |s: &Store| {
            s.query(&QuerySpec::new(Query::All).count(true).limit(0))
                .unwrap()
                .count
                .unwrap()
        };
        let before = count(&restored);
        let new = restored
            .put("/w1/restored", "event", json!({"k": k}))
            .unwrap();
        assert_eq!(
            new.seq,
            seq + 1,
            "{what}: the next seq after the restored ones"
        );
        assert_eq!((new.version, count(&restored)), (0, before + 1), "{what}");
        drop(restored);
        let reopened = open(&dest, options());
        assert_eq!(reopened.last_seq(), seq + 1, "{what}");
        assert_eq!(
            reopened.get("/w1/restored").unwrap().map(|d| d.meta),
            Some(new),
            "{what}"
        );
        assert_eq!(count(&reopened), before + 1, "{what}");
        for id in &ids {
            assert_eq!(
                reopened.history(id).unwrap(),
                crate::history_upto(&store, id, seq),
                "{what}: history of {id} after a reopen"
            );
        }
    }
}

// Regression: with per-operation times a batch spans several times, and a restore to a time
// inside it cut the log in the middle of the batch without a `BATCH_END`: the next open threw
// away the batch's versions at or before the time, so the restore was not the store as of it.
#[test]
fn a_restore_to_a_time_inside_a_batch_with_per_operation_times_keeps_its_earlier_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let base = now_micros();
    // Three batches of five versions, each version 100 us after the previous one.
    let at = |b: u64, i: u64| base + STEP * b + 100 * i;
    for b in 1..=3 {
        let batch = (0..5).fold(Batch::new(), |batch, i| {
            batch
                .put(format!("/w1/d{i:02}"), "event", event(1, b * 10 + i, i, 0))
                .timed(at(b, i))
        });
        store.write(batch).unwrap();
    }
    store.wait_for_index().unwrap();
    let backup = dir.path().join("backup");
    store.backup(&backup).unwrap();
    let ids = timed_ids();
    for (k, (i, t)) in [(2, at(2, 2)), (3, at(2, 3) - 1), (1, at(3, 0))]
        .into_iter()
        .enumerate()
    {
        let dest = dir.path().join(format!("inside{k}"));
        let restore = Store::restore(&backup, &dest, RestoreOptions::default().at(t)).unwrap();
        let seq = seq_at_time(&store, &ids, t);
        assert_eq!(restore.last_seq, seq, "as of {t}: {restore:?}");
        let restored = open(&dest, options());
        let past: Vec<u64> = [at(1, 4), at(2, i)]
            .into_iter()
            .filter(|&p| p <= t)
            .collect();
        assert_restored(&store, &restored, &ids, seq, t, &past);
        drop(restored);
        // It reopens as a whole store and takes new writes after the cut.
        let reopened = open(&dest, options());
        assert_eq!(reopened.last_seq(), seq);
        let new = reopened.put("/w1/later", "event", json!({})).unwrap();
        assert_eq!(new.seq, seq + 1);
    }
}
