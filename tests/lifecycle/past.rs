//! Reads of the past around the horizon: before it `HistoryTrimmed` (per kind for queries
//! filtered by kind) unless no document's state then is unknown, at and after it (and in that
//! case) exactly what the same read answered before compaction.

use std::collections::BTreeMap;

use strata::{Query, QuerySpec, Snapshot, SubscribeOptions};

use crate::*;

const KINDS: [&str; 4] = ["metric", "event", "audit", "note"];

/// The specs asked at each snapshot: the whole store (with and without tombstones) and each
/// kind. The kind, if any, decides which horizon applies.
fn specs(snapshot: Snapshot) -> Vec<(Option<&'static str>, QuerySpec)> {
    let mut out = vec![
        (None, QuerySpec::new(Query::All).snapshot(snapshot)),
        (
            None,
            QuerySpec::new(Query::All)
                .snapshot(snapshot)
                .include_deleted(true),
        ),
    ];
    for kind in KINDS {
        out.push((
            Some(kind),
            QuerySpec::new(Query::kind(kind)).snapshot(snapshot),
        ));
    }
    out
}

#[test]
fn as_of_queries_are_exact_from_the_horizon_and_trimmed_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), workload_options());
    let mut model = workload(&store, 3);
    settle(&store);
    record_filler(&store, &mut model);

    // Every batch time, and the microsecond before each (between two batches).
    let times: Vec<u64> = model.times().iter().flat_map(|&t| [t - 1, t]).collect();
    let seqs: Vec<u64> = spread(&(1..=store.last_seq()).collect::<Vec<_>>(), 60);
    let snapshots: Vec<Snapshot> = times
        .iter()
        .map(|&t| Snapshot::AsOf(t))
        .chain(seqs.iter().map(|&s| Snapshot::AtSeq(s)))
        .collect();
    let mut before = BTreeMap::new();
    for (i, snapshot) in snapshots.iter().enumerate() {
        for (j, (_, spec)) in specs(*snapshot).into_iter().enumerate() {
            before.insert((i, j), all_pages(&store, &spec).unwrap());
        }
    }

    let now = now_micros();
    store.compact().unwrap();
    let kept = workload_kept(&model, now);

    // The horizon of each kind: the (seq, time) of the newest version that superseded a
    // dropped version of that kind.
    let mut horizons: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, chain) in &model.docs {
        for i in 0..chain.len() - kept[id] {
            let next = &chain[i + 1].meta;
            let h = horizons.entry(chain[i].meta.kind.clone()).or_insert((0, 0));
            *h = (*h).max((next.seq, next.update_time_micros));
        }
    }
    let store_horizon = horizons.values().copied().max().unwrap();
    assert_eq!(
        store.stats().history_complete_from,
        Some(store_horizon.1),
        "{horizons:?}"
    );

    // A snapshot before a horizon is still answered when no document's state then is unknown:
    // a document is unknown at seq `at` when it had versions dropped, its oldest kept version
    // is after `at`, and some version at or before `at` was dropped.
    let first_dropped = model
        .docs
        .iter()
        .filter(|(id, chain)| kept[*id] < chain.len())
        .map(|(_, chain)| chain[0].meta.seq)
        .min()
        .unwrap();
    let seq_of = |snapshot: &Snapshot| match snapshot {
        Snapshot::AsOf(t) => model
            .docs
            .values()
            .flatten()
            .filter(|d| d.meta.update_time_micros <= *t)
            .map(|d| d.meta.seq)
            .max()
            .unwrap_or(0),
        Snapshot::AtSeq(s) => *s,
        _ => unreachable!(),
    };
    let any_unknown = |at: u64| {
        at >= first_dropped
            && model.docs.iter().any(|(id, chain)| {
                let n = chain.len() - kept[id];
                n > 0 && chain[n].meta.seq > at
            })
    };
    let (mut exact, mut refused, mut kind_helps) = (0, 0, 0);
    for (i, snapshot) in snapshots.iter().enumerate() {
        let mut store_refused = false;
        for (j, (kind, spec)) in specs(*snapshot).into_iter().enumerate() {
            let horizon = match kind {
                Some(k) => horizons.get(k).copied(),
                None => Some(store_horizon),
            };
            let below = horizon.is_some_and(|(seq, time)| match snapshot {
                Snapshot::AsOf(t) => *t < time,
                Snapshot::AtSeq(s) => *s < seq,
                _ => unreachable!(),
            });
            let got = all_pages(&store, &spec);
            if below && any_unknown(seq_of(snapshot)) {
                let (id, oldest) = trimmed(got);
                assert_eq!(
                    (id, oldest),
                    (None, horizon.unwrap().1),
                    "{snapshot:?} {kind:?}"
                );
                refused += 1;
                store_refused |= kind.is_none();
            } else {
                assert_eq!(
                    got.unwrap(),
                    before[&(i, j)],
                    "{snapshot:?} {kind:?}: the same answer as before compaction"
                );
                exact += 1;
                if store_refused && kind.is_some() {
                    kind_helps += 1;
                }
            }
        }
    }
    assert!(exact > 0 && refused > 0, "{exact} exact, {refused} refused");
    assert!(
        kind_helps > 0,
        "a kind's own horizon answers some snapshots the store's refuses: {horizons:?}"
    );

    // The history horizon itself is exact, to the microsecond and to the seq.
    let (seq, time) = store_horizon;
    for spec in [
        QuerySpec::new(Query::All).snapshot(Snapshot::AsOf(time)),
        QuerySpec::new(Query::All).snapshot(Snapshot::AtSeq(seq)),
    ] {
        store.query(&spec).unwrap();
    }
    for spec in [
        QuerySpec::new(Query::All).snapshot(Snapshot::AsOf(time - 1)),
        QuerySpec::new(Query::All).snapshot(Snapshot::AtSeq(seq - 1)),
    ] {
        assert_eq!(trimmed(store.query(&spec)), (None, time));
    }

    // Point reads below each document's own oldest kept version (and exact ones above it).
    check_kept(&store, &model, &kept);

    // A subscription resuming before the horizon would miss dropped versions.
    let all = QuerySpec::new(Query::All);
    assert_eq!(
        trimmed(store.subscribe(&all, SubscribeOptions::default().with_from_seq(seq - 1))),
        (None, time)
    );
    let sub = store
        .subscribe(&all, SubscribeOptions::default().with_from_seq(seq))
        .unwrap();
    assert_eq!(sub.start_seq(), seq);
    // A subscription from now is always possible.
    store.subscribe(&all, SubscribeOptions::default()).unwrap();
}

/// A query naming a kind without dropped versions is answered at any snapshot, also at the
/// seq of a version of another kind that compaction dropped, and exactly as before: expiry is
/// judged at that seq's time.
#[test]
fn at_seq_of_a_dropped_version_is_exact_for_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    // No background expiry: its tombstone (written at the clock's time) would make the explicit
    // batch times below too early.
    let store = open(
        dir.path(),
        options()
            .with_retention("trimmed", strata::Retention::default().with_max_versions(1))
            .with_maintenance(
                strata::MaintenanceOptions::default()
                    .with_compaction_interval(None)
                    .with_expire(false),
            ),
    );
    let base = now_micros() - HOUR;
    // /e expires 10 s after it is written; /t is updated 20 s and 30 s after.
    store
        .write(strata::Batch::new().at_time(base).put_with(
            "/e",
            "expiring",
            serde_json::json!({"n": 1}),
            strata::WriteOptions::default().with_expires_at(base + 10 * SECOND),
        ))
        .unwrap();
    let dropped = store
        .write(strata::Batch::new().at_time(base + 20 * SECOND).put(
            "/t",
            "trimmed",
            serde_json::json!({"n": 0}),
        ))
        .unwrap()[0]
        .seq;
    store
        .write(strata::Batch::new().at_time(base + 30 * SECOND).put(
            "/t",
            "trimmed",
            serde_json::json!({"n": 1}),
        ))
        .unwrap();
    settle(&store);

    let expiring = |s: u64| QuerySpec::new(Query::kind("expiring")).snapshot(Snapshot::AtSeq(s));
    let ids = |spec: &QuerySpec| -> Vec<String> {
        all_pages(&store, spec)
            .unwrap()
            .into_iter()
            .map(|d| d.meta.id)
            .collect()
    };
    assert_eq!(ids(&expiring(1)), ["/e"]);
    assert!(ids(&expiring(dropped)).is_empty(), "/e had expired by then");

    assert_eq!(store.compact().unwrap().versions_dropped, 1);
    assert!(matches!(
        store.get_version("/t", 0),
        Err(strata::Error::HistoryTrimmed { .. })
    ));
    // The store's horizon refuses the whole store at that seq; the kind has no horizon.
    trimmed(store.query(&QuerySpec::new(Query::All).snapshot(Snapshot::AtSeq(dropped))));
    assert_eq!(ids(&expiring(1)), ["/e"]);
    assert_eq!(
        ids(&expiring(dropped)),
        Vec::<String>::new(),
        "AtSeq({dropped}), the seq of a dropped version: /e had expired by then"
    );
}
