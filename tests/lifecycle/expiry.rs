//! Expiry end to end: an expired document is absent from reads at once; its tombstone (written
//! by the maintenance thread, or by `expire_due`) shows in history, is a `Deleted` event and
//! is counted; a document written again before its expiry is left alone.

use serde_json::json;
use strata::{
    Batch, Error, EventKind, MaintenanceOptions, Query, QuerySpec, Snapshot, Store,
    SubscribeOptions, Subscription, WriteOptions,
};

use crate::*;

#[track_caller]
fn next(sub: &mut Subscription) -> strata::Event {
    match sub.recv_timeout(WAIT) {
        Ok(Some(e)) => e,
        Ok(None) => panic!("no event within {WAIT:?}"),
        Err(e) => panic!("the subscription failed: {e}"),
    }
}

#[track_caller]
fn assert_quiet(sub: &mut Subscription) {
    if let Some(e) = sub.recv_timeout(QUIET).unwrap() {
        panic!("unexpected event {:?} {:?}", e.kind, e.document.meta);
    }
}

/// (kind, id, version, count) of the next event.
#[track_caller]
fn next_key(sub: &mut Subscription) -> (EventKind, String, u64, Option<u64>) {
    let e = next(sub);
    (e.kind, e.document.meta.id, e.document.meta.version, e.count)
}

fn sessions() -> QuerySpec {
    QuerySpec::new(Query::kind("session"))
}

fn ids(store: &Store, spec: &QuerySpec) -> Vec<String> {
    let mut ids: Vec<String> = store
        .query(spec)
        .unwrap()
        .documents
        .into_iter()
        .map(|d| d.meta.id)
        .collect();
    ids.sort();
    ids
}

/// With background expiry off and the store's time moved past the expiry by an explicit batch
/// time (no waiting): the document is absent from every read at once, its history has no
/// tombstone until `expire_due` writes it, and `expire_due` is idempotent.
#[test]
fn expired_documents_are_absent_at_once_and_expire_due_tombstones_them() {
    let store = Store::open_in_memory(
        options().with_maintenance(
            MaintenanceOptions::default()
                .with_compaction_interval(None)
                .with_expire(false),
        ),
    )
    .unwrap();
    let mut sub = store
        .subscribe(
            &sessions(),
            SubscribeOptions::default().with_live_count(true),
        )
        .unwrap();
    let t0 = now_micros();
    let expiry = t0 + 10 * SECOND;
    let expiring = WriteOptions::default().with_expires_at(expiry);

    let a0 = store
        .put_with("/s/a", "session", json!({"user": "a"}), expiring)
        .unwrap();
    assert_eq!(a0.expires_at, Some(expiry));
    // Written again (without an expiry) before it expires: it stays.
    store
        .put_with("/s/re", "session", json!({"user": "re"}), expiring)
        .unwrap();
    let re1 = store
        .put("/s/re", "session", json!({"user": "re", "n": 1}))
        .unwrap();
    assert_eq!(re1.expires_at, None);
    // Patched before it expires: the patch keeps the expiry.
    store
        .put_with("/s/patched", "session", json!({"user": "p"}), expiring)
        .unwrap();
    let p1 = store.patch("/s/patched", json!({"n": 1})).unwrap();
    assert_eq!(p1.expires_at, Some(expiry));
    store
        .put("/s/keep", "session", json!({"user": "k"}))
        .unwrap();
    assert_eq!(
        (1..=6).map(|_| next_key(&mut sub)).collect::<Vec<_>>(),
        [
            (EventKind::Added, "/s/a".to_string(), 0, Some(1)),
            (EventKind::Added, "/s/re".to_string(), 0, Some(2)),
            (EventKind::Updated, "/s/re".to_string(), 1, Some(2)),
            (EventKind::Added, "/s/patched".to_string(), 0, Some(3)),
            (EventKind::Updated, "/s/patched".to_string(), 1, Some(3)),
            (EventKind::Added, "/s/keep".to_string(), 0, Some(4)),
        ]
    );
    assert_eq!(store.get("/s/a").unwrap().unwrap().meta, a0);
    assert_eq!(ids(&store, &sessions()).len(), 4);

    // The store's time passes the expiry (a batch at an explicit time; nothing waits).
    let later = expiry + SECOND;
    store
        .write(
            Batch::new()
                .at_time(later)
                .put("/other", "other", json!({})),
        )
        .unwrap();

    // Absent at once from every read of the present.
    for id in ["/s/a", "/s/patched"] {
        assert_eq!(store.get(id).unwrap(), None, "{id}");
        assert_eq!(store.get_raw(id).unwrap(), None, "{id}");
        assert!(matches!(
            store.patch(id, json!({"n": 2})),
            Err(Error::NotFound { .. })
        ));
    }
    assert_eq!(ids(&store, &sessions()), ["/s/keep", "/s/re"]);
    let listed: Vec<String> = store.list("/s/").map(|d| d.unwrap().meta.id).collect();
    assert_eq!(listed, ["/s/keep", "/s/re"]);
    assert_eq!(
        store.query(&sessions().count(true).limit(0)).unwrap().count,
        Some(2)
    );
    // And from the past at and after the expiry, not before it.
    assert_eq!(store.get_at("/s/a", expiry - 1).unwrap().unwrap().meta, a0);
    assert_eq!(store.get_at("/s/a", expiry).unwrap(), None);
    assert_eq!(
        ids(&store, &sessions().snapshot(Snapshot::AsOf(expiry - 1))).len(),
        4
    );
    assert_eq!(
        ids(&store, &sessions().snapshot(Snapshot::AsOf(expiry))),
        ["/s/keep", "/s/re"]
    );
    // No tombstone yet: background expiry is off.
    assert_eq!(store.history("/s/a").unwrap().len(), 1);
    let stats = store.stats();
    assert_eq!((stats.lifecycle.expired, stats.tombstones), (0, 0));
    assert_quiet(&mut sub);

    // A subscription started after the expiry never had the expired documents: their
    // tombstones are no event for it.
    let mut late = store
        .subscribe(
            &sessions(),
            SubscribeOptions::default().with_live_count(true),
        )
        .unwrap();
    assert_eq!(late.live_count(), Some(2));

    assert_eq!(store.expire_due().unwrap(), 2);
    for (id, version) in [("/s/a", 1), ("/s/patched", 2)] {
        let history = store.history(id).unwrap();
        assert_eq!(history.len(), version as usize + 1, "{id}");
        let tomb = history.last().unwrap();
        assert!(tomb.meta.deleted, "{id}: {:?}", tomb.meta);
        assert_eq!(tomb.meta.version, version);
        assert_eq!(tomb.meta.expires_at, None);
        assert_eq!(tomb.body, serde_json::Value::Null);
        assert!(
            tomb.meta.update_time_micros > later,
            "written now, after the expiry"
        );
    }
    assert_eq!(
        store.history("/s/re").unwrap().len(),
        2,
        "written again: no tombstone"
    );
    // Two Deleted events, in seq order, the live count going down by one each.
    let deleted = [next_key(&mut sub), next_key(&mut sub)];
    assert!(
        deleted.iter().all(|k| k.0 == EventKind::Deleted),
        "{deleted:?}"
    );
    assert_eq!([deleted[0].3, deleted[1].3], [Some(3), Some(2)]);
    let mut versions: Vec<(String, u64)> = deleted.iter().map(|k| (k.1.clone(), k.2)).collect();
    versions.sort();
    assert_eq!(
        versions,
        [("/s/a".to_string(), 1), ("/s/patched".to_string(), 2)]
    );
    assert_quiet(&mut sub);
    assert_quiet(&mut late);
    assert_eq!(sub.live_count(), Some(2));

    let stats = store.stats();
    assert_eq!(stats.lifecycle.expired, 2);
    assert_eq!((stats.documents, stats.tombstones), (3, 2));
    assert_eq!(
        ids(&store, &sessions().include_deleted(true)),
        ["/s/a", "/s/keep", "/s/patched", "/s/re"]
    );

    // Idempotent: nothing more is due.
    assert_eq!(store.expire_due().unwrap(), 0);
    assert_eq!(store.history("/s/a").unwrap().len(), 2);
    assert_eq!(store.stats().lifecycle.expired, 2);
    assert_quiet(&mut sub);

    // Written again after its tombstone: a new version, present.
    let a2 = store.put("/s/a", "session", json!({"user": "a"})).unwrap();
    assert_eq!(a2.version, 2);
    assert_eq!(
        next_key(&mut sub),
        (EventKind::Added, "/s/a".to_string(), 2, Some(3))
    );
}

/// With background expiry on (the default), the maintenance thread writes the tombstone as
/// soon as the document expires, by the wall clock: the subscription gets a `Deleted` event
/// with the live count after it; a document written again before its expiry gets none.
#[test]
fn background_expiry_tombstone_is_a_deleted_event() {
    let store = Store::open_in_memory(options()).unwrap();
    let mut sub = store
        .subscribe(
            &sessions(),
            SubscribeOptions::default().with_live_count(true),
        )
        .unwrap();
    store
        .put("/s/keep", "session", json!({"user": "k"}))
        .unwrap();
    let t = now_micros();
    // Expires in 200 ms, but is written again (without an expiry) right away.
    store
        .put_with(
            "/s/b",
            "session",
            json!({"user": "b"}),
            WriteOptions::default().with_expires_at(t + 200_000),
        )
        .unwrap();
    store
        .put("/s/b", "session", json!({"user": "b", "n": 1}))
        .unwrap();
    // Expires in 400 ms (after /s/b would have: a tombstone for /s/b would come first).
    let a0 = store
        .put_with(
            "/s/a",
            "session",
            json!({"user": "a"}),
            WriteOptions::default().with_expires_at(t + 400_000),
        )
        .unwrap();
    assert_eq!(
        (1..=4).map(|_| next_key(&mut sub)).collect::<Vec<_>>(),
        [
            (EventKind::Added, "/s/keep".to_string(), 0, Some(1)),
            (EventKind::Added, "/s/b".to_string(), 0, Some(2)),
            (EventKind::Updated, "/s/b".to_string(), 1, Some(2)),
            (EventKind::Added, "/s/a".to_string(), 0, Some(3)),
        ]
    );

    // The next event is the expiry tombstone of /s/a, written by the maintenance thread.
    let e = next(&mut sub);
    assert_eq!(e.kind, EventKind::Deleted);
    assert_eq!(e.count, Some(2));
    let tomb = e.document.meta.clone();
    assert_eq!((tomb.id.as_str(), tomb.version), ("/s/a", 1));
    assert!(tomb.deleted);
    assert!(
        tomb.update_time_micros >= t + 400_000,
        "not before the expiry"
    );
    assert_eq!(e.document.body, serde_json::Value::Null);
    assert_quiet(&mut sub);

    assert_eq!(store.get("/s/a").unwrap(), None);
    let history = store.history("/s/a").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].meta, a0);
    assert_eq!(history[1].meta, tomb);
    assert_eq!(store.history("/s/b").unwrap().len(), 2);
    assert!(store.get("/s/b").unwrap().is_some());
    assert_eq!(ids(&store, &sessions()), ["/s/b", "/s/keep"]);

    let stats = store.stats();
    assert_eq!(stats.lifecycle.expired, 1);
    assert_eq!((stats.documents, stats.tombstones), (2, 1));
    // Nothing left for expire_due.
    assert_eq!(store.expire_due().unwrap(), 0);
    assert_eq!(store.stats().lifecycle.expired, 1);
    assert_eq!(store.history("/s/a").unwrap().len(), 2);
}

/// `expire_due` writes every due tombstone, however many batches of `expiry_batch` that takes.
#[test]
fn expire_due_writes_every_batch() {
    let mut maintenance = MaintenanceOptions::default()
        .with_compaction_interval(None)
        .with_expire(false);
    maintenance.expiry_batch = 3;
    let store = Store::open_in_memory(options().with_maintenance(maintenance)).unwrap();
    let expiry = now_micros() + 10 * SECOND;
    for i in 0..10 {
        store
            .put_with(
                &format!("/s/{i}"),
                "session",
                json!({ "i": i }),
                WriteOptions::default().with_expires_at(expiry),
            )
            .unwrap();
    }
    // Not due yet.
    assert_eq!(store.expire_due().unwrap(), 0);
    store
        .write(
            Batch::new()
                .at_time(expiry + 1)
                .put("/other", "other", json!({})),
        )
        .unwrap();
    assert_eq!(store.expire_due().unwrap(), 10);
    assert_eq!(store.expire_due().unwrap(), 0);
    let stats = store.stats();
    assert_eq!(stats.lifecycle.expired, 10);
    assert_eq!((stats.documents, stats.tombstones), (1, 10));
    for i in 0..10 {
        let history = store.history(&format!("/s/{i}")).unwrap();
        assert_eq!(history.len(), 2);
        assert!(history[1].meta.deleted);
    }
}
