//! Backups of a store whose retention dropped versions: a restore gives the same answers, and a
//! point-in-time restore before the history horizon is `HistoryTrimmed`, like the original's
//! reads of that past.

use serde_json::json;
use strata::{Batch, Error, Options, Query, QuerySpec, RestoreOptions, Retention, Snapshot, Store};

use crate::{
    answer, assert_restored, event, missing_or_empty, now_micros, open, options, queries,
    seq_at_time,
};

const BATCHES: u64 = 150;
const STEP: u64 = 1_000;

fn retention_options() -> Options {
    options().with_retention("reading", Retention::default().with_max_versions(2))
}

/// Ids of readings (kept at most two versions each) and of notes (every version kept).
fn ids() -> Vec<String> {
    (0..4)
        .map(|i| format!("/w1/s{i}"))
        .chain((0..3).map(|i| format!("/w1/n{i}")))
        .collect()
}

/// Batch `b` at `base + STEP * b`: a new version of one reading; every seventh batch also a
/// note (a put or a patch), every 23rd a delete of a reading.
fn write(store: &Store, base: u64) {
    for b in 1..=BATCHES {
        let mut batch = Batch::new().at_time(base + STEP * b);
        let reading = format!("/w1/s{}", b % 4);
        batch = if b.is_multiple_of(23) {
            batch.delete(reading)
        } else {
            batch.put(reading, "reading", event(1, b, (b * 37) % 1000, 120))
        };
        if b.is_multiple_of(7) {
            let note = format!("/w1/n{}", b % 3);
            batch = if b.is_multiple_of(2) && b > 7 * 3 {
                batch.patch(note, json!({"patched": true, "step": b}))
            } else {
                batch.put(note, "note", event(1, b, b % 1000, 40))
            };
        }
        store.write(batch).unwrap();
    }
}

/// Whether the original's answers at `t` are refused for want of dropped versions.
fn original_trimmed_at(store: &Store, t: u64) -> bool {
    match store.query(&QuerySpec::new(Query::All).snapshot(Snapshot::AsOf(t))) {
        Ok(_) => false,
        Err(Error::HistoryTrimmed { .. }) => true,
        Err(e) => panic!("query as of {t}: {e}"),
    }
}

#[test]
fn backups_after_retention_restore_the_same_answers_and_refuse_times_before_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), retention_options());
    let base = now_micros();
    let at = |b: u64| base + STEP * b;
    write(&store, base);
    let ids = ids();
    let backup = dir.path().join("backup");
    // A backup before compaction, refreshed after it: compacted segments are copied again.
    let before = store.backup(&backup).unwrap();
    store.wait_for_index().unwrap();
    let compaction = store.compact().unwrap();
    assert!(
        compaction.versions_dropped > 50,
        "retention dropped versions: {compaction:?}"
    );
    let stats = store.stats();
    let horizon = stats
        .history_complete_from
        .unwrap_or_else(|| panic!("compaction set a history horizon: {stats:?}"));
    assert!(
        at(10) < horizon && horizon < at(BATCHES),
        "{horizon} in {stats:?}"
    );
    assert!(matches!(
        store.get_version("/w1/s1", 0),
        Err(Error::HistoryTrimmed { .. })
    ));

    let report = store.backup(&backup).unwrap();
    assert_eq!(
        (report.last_seq, report.last_time_micros),
        (before.last_seq, before.last_time_micros),
        "no writes between the backups"
    );
    assert!(
        report.bytes < before.bytes && report.bytes_copied > 0,
        "the compacted log is smaller and copied again: {before:?} then {report:?}"
    );

    // A full restore: the same present, the same trimmed histories, the same horizon.
    let full = dir.path().join("full");
    let restore = Store::restore(&backup, &full, RestoreOptions::default()).unwrap();
    assert_eq!(restore.last_seq, report.last_seq);
    let restored = open(&full, retention_options());
    assert!(
        restored.index_open_report().rebuilt.is_none(),
        "{:?}",
        restored.index_open_report()
    );
    assert_eq!(
        restored.stats().history_complete_from,
        Some(horizon),
        "the restored store has the original's horizon"
    );
    assert_eq!(restored.stats().versions, stats.versions);
    assert_restored(
        &store,
        &restored,
        &ids,
        report.last_seq,
        report.last_time_micros,
        &[horizon, horizon + (at(BATCHES) - horizon) / 2],
    );
    for spec in queries() {
        let all = spec.clone().snapshot(Snapshot::AllVersions);
        assert_eq!(answer(&restored, &all), answer(&store, &all), "{all:?}");
    }
    for id in &ids {
        for version in 0..3 {
            let (a, b) = (
                store.get_version(id, version),
                restored.get_version(id, version),
            );
            match (&a, &b) {
                (Err(Error::HistoryTrimmed { .. }), Err(Error::HistoryTrimmed { .. })) => {}
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{id} version {version}"),
                _ => panic!("{id} version {version}: {a:?} in the original, {b:?} restored"),
            }
        }
    }
    drop(restored);

    // Points in time: refused before the horizon (where the original's reads of the whole store
    // are, and also before the first dropped version, which a query of the original still
    // answers: a restore needs the whole history up to its time), else the original then.
    let points = [
        ("before the first batch", base),
        ("at the first batch", at(1)),
        ("just before the horizon", horizon - 1),
        ("at the horizon", horizon),
        ("just after the horizon", horizon + 1),
        ("between later batches", at(BATCHES - 10) + STEP / 2),
        ("at the last batch", at(BATCHES)),
    ];
    let mut refused = 0;
    for (k, (what, t)) in points.into_iter().enumerate() {
        let dest = dir.path().join(format!("at{k}"));
        let result = Store::restore(&backup, &dest, RestoreOptions::default().at(t));
        if original_trimmed_at(&store, t) {
            assert!(
                t < horizon,
                "{what}: the original refuses a time after the horizon"
            );
        }
        if t < horizon {
            match result {
                Err(Error::HistoryTrimmed {
                    id: None,
                    oldest_complete,
                }) => assert_eq!(oldest_complete, horizon, "{what}"),
                other => panic!("{what} ({t}): the original refuses it, the restore: {other:?}"),
            }
            assert!(
                missing_or_empty(&dest),
                "{what}: a refused restore left files in {}",
                dest.display()
            );
            refused += 1;
            continue;
        }
        let restore = result.unwrap_or_else(|e| panic!("{what} ({t}): {e}"));
        let seq = seq_at_time(&store, &ids, t);
        assert_eq!(restore.last_seq, seq, "{what}");
        let restored = open(&dest, retention_options());
        assert_restored(&store, &restored, &ids, seq, t, &[horizon.min(t)]);
        let new = restored.put("/w1/s9", "reading", json!({"k": k})).unwrap();
        assert_eq!(new.seq, seq + 1, "{what}");
    }
    assert!(
        refused >= 3,
        "the times before the horizon are refused ({refused} were)"
    );
    assert!(original_trimmed_at(&store, horizon - 1));
}

/// Asserts that `restored` agrees with itself (its queries with its reads) and with `original`
/// (every version both hold is the same; its present is the original's at `time` where the
/// original still has that past).
fn assert_consistent(original: &Store, restored: &Store, ids: &[String], time: u64, what: &str) {
    let mut live = Vec::new();
    let mut versions = 0;
    for id in ids {
        let history = restored.history(id).unwrap();
        versions += history.len() as u64;
        let current = restored.get(id).unwrap();
        assert_eq!(
            current.as_ref(),
            history.last().filter(|d| !d.meta.deleted),
            "{what}: {id}: the current version is the newest"
        );
        live.extend(current.clone());
        for doc in &history {
            match original.get_version(id, doc.meta.version) {
                Ok(Some(kept)) => assert_eq!(&kept, doc, "{what}: {id}"),
                Ok(None) => panic!("{what}: {id} version {} is unknown", doc.meta.version),
                Err(Error::HistoryTrimmed { .. }) => {}
                Err(e) => panic!("{what}: {id}: {e}"),
            }
        }
        match original.get_at(id, time) {
            Ok(then) => assert_eq!(current, then, "{what}: {id} at {time}"),
            Err(Error::HistoryTrimmed { .. }) => {}
            Err(e) => panic!("{what}: {id}: {e}"),
        }
    }
    live.sort_by_key(|d| d.meta.seq);
    let current = QuerySpec::new(Query::All).count(true).limit(10_000);
    assert_eq!(
        answer(restored, &current),
        (Some(live.len() as u64), live),
        "{what}: the index's present is the log's"
    );
    let all = current
        .snapshot(Snapshot::AllVersions)
        .include_deleted(true)
        .limit(0);
    assert_eq!(
        answer(restored, &all).0,
        Some(versions),
        "{what}: the index holds the log's versions"
    );
}

#[test]
fn backups_racing_compaction_restore_consistent_stores() {
    use std::sync::mpsc;
    use std::time::Duration;

    const ROUNDS: usize = 4;
    const ROUND: u64 = 250;
    let options = || {
        retention_options().with_index_options(
            strata::IndexOptions::default().with_commit_interval(Duration::from_millis(10)),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"), options());
    let ids = ids();
    let backup = dir.path().join("backup");
    let (taken, dropped) = std::thread::scope(|s| {
        let (go, rounds) = mpsc::channel::<()>();
        let (tick, ticks) = mpsc::channel::<()>();
        let (done, round_done) = mpsc::channel::<()>();
        let (store_w, store_c) = (&store, &store);
        // A writer, which writes a round of batches when told (as a backup starts), and asks
        // for a compaction every 25 batches.
        s.spawn(move || {
            let mut b = 0u64;
            for () in rounds.iter() {
                for _ in 0..ROUND {
                    let mut batch = Batch::new().put(
                        format!("/w1/s{}", b % 4),
                        "reading",
                        event(1, b, b % 1000, 100),
                    );
                    if b.is_multiple_of(9) {
                        batch = batch.put(format!("/w1/n{}", b % 3), "note", event(1, b, 7, 30));
                    }
                    store_w.write(batch).unwrap();
                    if b % 25 == 24 {
                        tick.send(()).unwrap();
                    }
                    b += 1;
                }
                done.send(()).unwrap();
            }
        });
        // A compactor, running whenever asked.
        let compactor = s.spawn(move || {
            let mut dropped = 0;
            for () in ticks.iter() {
                dropped += store_c.compact().unwrap().versions_dropped;
            }
            dropped
        });
        // A round before the first backup, then one with each.
        go.send(()).unwrap();
        round_done.recv().unwrap();
        let mut taken = Vec::new();
        for k in 0..ROUNDS {
            go.send(()).unwrap();
            let report = store.backup(&backup).unwrap();
            let restored = dir.path().join(format!("restored{k}"));
            Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
            taken.push((report, restored));
            round_done.recv().unwrap();
        }
        drop(go);
        (taken, compactor.join().unwrap())
    });
    assert!(dropped > 0, "compaction dropped versions meanwhile");
    for (k, (report, restored_dir)) in taken.iter().enumerate() {
        let restored = open(restored_dir, options());
        assert_eq!(restored.last_seq(), report.last_seq, "backup {k}");
        let what = format!("backup {k} ({report:?})");
        assert_consistent(&store, &restored, &ids, report.last_time_micros, &what);
    }
}
