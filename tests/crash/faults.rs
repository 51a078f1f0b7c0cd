//! IO failures injected on the Nth write or sync (EIO, ENOSPC): the failing call gets a typed
//! `Error::Io`, the store is poisoned (writes refused, reads still served), and after a reopen
//! every acknowledged write is there, the failed batch whole or not at all, and the store works.

use std::io;

use serde_json::json;
use strata::backend::{CrashMode, Fault, FaultOp, SimBackend};
use strata::{Batch, Error, Meta, Store};

use crate::support::{self, log_dir, open, try_open, Model, Op};

/// EIO has no `io::ErrorKind` of its own; `Other` stands for it.
const EIO: io::ErrorKind = io::ErrorKind::Other;
const ENOSPC: io::ErrorKind = io::ErrorKind::StorageFull;

/// Checks that `store` holds the batches of `model`, plus `failed` whole or not at all; returns
/// the model of what it holds. The failed batch was never acknowledged, so its times are taken
/// from the store; everything else about it is checked.
fn check_acknowledged(store: &Store, model: &Model, failed: &[Op], ctx: &str) -> Model {
    let n = model.len();
    let base = model.seq_after(n);
    if store.last_seq() == base {
        model.check(store, n, ctx);
        return model.clone();
    }
    assert_eq!(
        store.last_seq(),
        base + failed.len() as u64,
        "{ctx}: the failed batch is partial, or acknowledged writes are missing"
    );
    let metas: Vec<Meta> = (1..=failed.len() as u64)
        .zip(failed)
        .map(|(i, op)| {
            let history = store.history(op.id()).unwrap();
            let found = history.iter().find(|d| d.meta.seq == base + i);
            found
                .unwrap_or_else(|| {
                    panic!("{ctx}: seq {} is not a version of {}", base + i, op.id())
                })
                .meta
                .clone()
        })
        .collect();
    let mut with_failed = model.clone();
    with_failed.apply(failed, &metas);
    with_failed.check(store, n + 1, ctx);
    with_failed
}

/// Runs one fault case; returns the `op` of the `Error::Io` the failing write got, and whether
/// the failed batch was found (whole) on reopening.
fn fault_case(op: FaultOp, kind: io::ErrorKind, nth: u64, sticky: bool) -> (&'static str, bool) {
    let ctx = format!("{kind:?} on {op:?} call {nth} (sticky: {sticky})");
    let options = support::small_segments();
    let script = support::workload(0xfa17_0000 + nth, 40, 250);
    let sim = SimBackend::new();
    let mut model = Model::default();
    let store = open(&sim, &options, &ctx);
    let (prelude, rest) = script.split_at(4);
    for ops in prelude {
        model.commit(&store, ops).unwrap();
    }
    sim.inject(Fault {
        op,
        nth,
        kind,
        sticky,
    });
    let mut failure = None;
    for ops in rest {
        match model.commit(&store, ops) {
            Ok(_) => {}
            Err(e) => {
                failure = Some((e, ops.clone()));
                break;
            }
        }
    }
    let Some((err, failed)) = failure else {
        panic!("{ctx}: the fault never fired in {} batches", rest.len());
    };
    let Error::Io {
        op: what,
        path,
        source,
    } = &err
    else {
        panic!("{ctx}: the failing write got {err} ({err:?}), not an IO error");
    };
    assert_eq!(source.kind(), kind, "{ctx}: {err}");
    assert!(path.starts_with(log_dir()), "{ctx}: {err} names {path:?}");
    let what = *what;

    // Poisoned: no write of any shape is taken, and neither is a flush; reads still work and see
    // exactly the acknowledged writes.
    for attempt in 0..2 {
        let put = store.put("/poisoned", "probe", json!({"attempt": attempt}));
        assert!(
            matches!(put, Err(Error::Poisoned)),
            "{ctx}: put after the failure: {put:?}"
        );
        let batch = store.write(
            Batch::new()
                .put("/poisoned/a", "probe", json!({}))
                .delete("/poisoned/a"),
        );
        assert!(
            matches!(batch, Err(Error::Poisoned)),
            "{ctx}: batch after the failure: {batch:?}"
        );
        let flushed = store.flush();
        assert!(
            matches!(flushed, Err(Error::Poisoned)),
            "{ctx}: flush after the failure: {flushed:?}"
        );
    }
    model.check(
        &store,
        model.len(),
        &format!("{ctx}, reads of the poisoned store"),
    );

    // A power loss now keeps every acknowledged write.
    let crashed = sim.image().materialize(CrashMode::DropUnsynced);
    let after_crash = open(&crashed, &options, &format!("{ctx}, power loss"));
    check_acknowledged(&after_crash, &model, &failed, &format!("{ctx}, power loss"));
    drop(after_crash);

    // Reopened on the same file system with the fault gone, the store works again.
    drop(store);
    sim.clear_fault();
    let reopened = open(&sim, &options, &format!("{ctx}, reopen"));
    let acknowledged = model.len();
    let mut model = check_acknowledged(&reopened, &model, &failed, &format!("{ctx}, reopen"));
    let failed_batch_kept = model.len() > acknowledged;
    let more = [Op::Put {
        id: "/after-fault".into(),
        kind: "probe".into(),
        body: json!({"nth": nth}),
    }];
    model
        .commit(&reopened, &more)
        .unwrap_or_else(|e| panic!("{ctx}: write after reopen: {e}"));
    drop(reopened);
    let again = open(&sim, &options, &format!("{ctx}, second reopen"));
    model.check(&again, model.len(), &format!("{ctx}, second reopen"));
    (what, failed_batch_kept)
}

/// Every write and every sync of the first segment rolls is made to fail in turn, with EIO and
/// with ENOSPC, once or for good.
#[test]
fn a_failed_write_or_sync_poisons_until_reopen_and_loses_nothing_acknowledged() {
    let mut ops_seen = std::collections::BTreeSet::new();
    let mut kept = [0, 0];
    for op in [FaultOp::Write, FaultOp::Sync] {
        for kind in [EIO, ENOSPC] {
            for nth in 0..30 {
                let (what, failed_batch_kept) = fault_case(op, kind, nth, nth % 2 == 1);
                ops_seen.insert(what);
                kept[usize::from(failed_batch_kept)] += 1;
            }
        }
    }
    // Both outcomes of a failed batch occur: dropped (its write failed) and kept whole (its
    // bytes were written, only their sync failed).
    assert!(
        kept[0] > 0 && kept[1] > 0,
        "failed batches (dropped, kept): {kept:?}"
    );
    // The sweep reached the failures of a segment roll, not only those of appends.
    for expected in ["write", "fsync", "write segment header", "sync directory"] {
        assert!(
            ops_seen.contains(expected),
            "no failure of {expected:?} seen: {ops_seen:?}"
        );
    }
}

/// A store on `sim` whose next put of `body` rolls to a new segment.
fn one_write_before_a_roll(sim: &SimBackend, body: &serde_json::Value) -> Store {
    let store = open(sim, &support::small_segments(), "fill");
    let active = || {
        let path = support::segment_paths(sim).pop().unwrap();
        let len = sim.file_bytes(&path).unwrap().len();
        (path, len)
    };
    for _ in 0..20 {
        let (path_before, len_before) = active();
        store.put("/fill", "probe", body.clone()).unwrap();
        let (path_after, len_after) = active();
        let frame = len_after - len_before;
        if path_after == path_before && len_after + frame > support::SMALL_SEGMENT as usize {
            return store;
        }
    }
    panic!("no roll in 20 puts");
}

/// Regression: when a fault hit the roll to a new segment, the write that caused the roll got
/// `Poisoned` instead of the `Io` error that poisoned the store.
#[test]
fn a_failure_while_rolling_a_segment_is_reported_as_io_to_its_writer() {
    let body = json!({"pad": "r".repeat(1000)});
    for (op, nth, expected) in [
        (FaultOp::Sync, 0, "fsync"),
        (FaultOp::Write, 0, "write segment header"),
        (FaultOp::Sync, 1, "write segment header"),
        (FaultOp::Sync, 2, "sync directory"),
    ] {
        let sim = SimBackend::new();
        let store = one_write_before_a_roll(&sim, &body);
        let segments = support::segment_paths(&sim).len();
        sim.inject(Fault {
            op,
            nth,
            kind: ENOSPC,
            sticky: false,
        });
        let err = store.put("/fill", "probe", body.clone()).err();
        assert!(
            matches!(&err, Some(Error::Io { op, source, .. }) if *op == expected && source.kind() == ENOSPC),
            "{op:?} call {nth} while rolling past segment {segments}: {err:?}"
        );
    }
}

/// A repair that recovery cannot make durable (the truncation of a torn tail) fails the open
/// with `Error::Io`; the next open makes it.
#[test]
fn a_failed_repair_fails_the_open_and_a_later_open_repairs() {
    let options = support::small_segments();
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for ops in support::workload(0xfa17_1000, 6, 100) {
            model.commit(&store, &ops).unwrap();
        }
    }
    let active = support::segment_paths(&sim).pop().unwrap();
    let mut bytes = sim.file_bytes(&active).unwrap();
    let torn = bytes.len() - 5;
    bytes.truncate(torn);
    sim.set_file_bytes(&active, bytes);
    sim.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        kind: EIO,
        sticky: false,
    });
    let err = try_open(&sim, &options).err();
    assert!(
        matches!(&err, Some(Error::Io { path, source, .. }) if path == &active && source.kind() == EIO),
        "{err:?}"
    );
    // The cut itself may have happened before its sync failed; either way the next open ends
    // with the whole batches only, durably.
    let store = open(&sim, &options, "after the failed repair");
    let mut model = model.prefix(model.len() - 1);
    model.check(&store, model.len(), "after the failed repair");
    let more = [Op::Put {
        id: "/after-repair".into(),
        kind: "probe".into(),
        body: json!({}),
    }];
    model.commit(&store, &more).unwrap();
    drop(store);
    let crashed = sim.image().materialize(CrashMode::DropUnsynced);
    let store = open(&crashed, &options, "repaired, then power loss");
    assert_eq!(
        store.open_stats().truncated_bytes,
        0,
        "the repair was not made durable"
    );
    model.check(&store, model.len(), "repaired, then power loss");
}

/// Creating the first segment of a new store can fail too, and a retry must make what the failed
/// attempt left durable. Regression: after a failed sync of the new segment, the next open used
/// the file without syncing the directory, so a power loss removed it with the writes the
/// reopened store had acknowledged.
#[test]
fn a_failure_creating_a_new_store_is_io_and_a_retry_works() {
    let options = support::small_segments();
    // Creating a store writes the first segment's header, syncs it and syncs the directory.
    for (op, nth) in [(FaultOp::Write, 0), (FaultOp::Sync, 0), (FaultOp::Sync, 1)] {
        {
            let ctx = format!("{op:?} call {nth} creating the store");
            let sim = SimBackend::new();
            sim.inject(Fault {
                op,
                nth,
                kind: ENOSPC,
                sticky: false,
            });
            let err = try_open(&sim, &options).err();
            assert!(
                matches!(&err, Some(Error::Io { source, .. }) if source.kind() == ENOSPC),
                "{ctx}: {err:?}"
            );
            let mut model = Model::default();
            let store = open(&sim, &options, &ctx);
            let ops = [Op::Put {
                id: "/first".into(),
                kind: "probe".into(),
                body: json!({}),
            }];
            model.commit(&store, &ops).unwrap();
            drop(store);
            model.check(
                &open(
                    &sim.image().materialize(CrashMode::DropUnsynced),
                    &options,
                    &ctx,
                ),
                1,
                &ctx,
            );
        }
    }
}

/// Regression: a background expiry run that failed (here on a store poisoned by a failed write)
/// was swallowed: nothing in `Store::stats()` said so. It is counted and recorded once, however
/// often the maintenance thread retries.
#[test]
fn a_failed_background_expiry_is_counted_and_recorded() {
    let sim = SimBackend::new();
    let store = open(&sim, &support::small_segments(), "background expiry");
    let soon = strata::Timestamp::from(
        std::time::SystemTime::now() + std::time::Duration::from_millis(300),
    );
    store
        .write(Batch::new().put_with(
            "/expiring",
            "probe",
            json!({}),
            strata::WriteOptions::default().with_expires_at(soon),
        ))
        .unwrap();
    sim.inject(Fault {
        op: FaultOp::Write,
        nth: 0,
        kind: EIO,
        sticky: true,
    });
    assert!(store.put("/fails", "probe", json!({})).is_err());
    // The maintenance thread tries to expire `/expiring` once it is due and meets the poison.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stats = loop {
        let stats = store.stats();
        if stats.lifecycle.expiry_failures >= 2 || std::time::Instant::now() > deadline {
            break stats;
        }
        // Polling a condition with a bound, not a synchronisation.
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(stats.lifecycle.expiry_failures >= 1, "{stats:?}");
    let recorded: Vec<&String> = stats
        .background_failures
        .iter()
        .filter(|f| f.starts_with("maintenance: expiry failed"))
        .collect();
    assert_eq!(recorded.len(), 1, "{:?}", stats.background_failures);
    assert!(recorded[0].contains("poisoned"), "{recorded:?}");
}
