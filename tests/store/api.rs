//! The behaviour of each API call: metadata of writes, typed documents, input validation,
//! conditional writes, explicit times, listing, reopening, locking and options.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strata::{Batch, Document, Durability, Error, Expect, Limits, Options, Store, WriteOptions};

use crate::{fast_options, open};

fn in_memory() -> Store {
    Store::open_in_memory(Options::default()).unwrap()
}

/// Every version of every id, for comparing a store before and after a reopen.
fn everything(store: &Store, ids: &[&str]) -> Vec<Document> {
    ids.iter()
        .flat_map(|id| store.history(id).unwrap())
        .collect()
}

/// Asserts that `result` failed and wrote nothing, and returns the error.
fn rejected<T: Debug>(store: &Store, before: u64, result: Result<T, Error>) -> Error {
    let err = match result {
        Ok(v) => panic!("invalid input was accepted: {v:?}"),
        Err(e) => e,
    };
    assert_eq!(
        store.last_seq(),
        before,
        "a rejected write wrote something: {err}"
    );
    // A batch's error names its operation (`tests/store/batch_times.rs` checks that); these
    // tests are about the reason.
    err.into_reason()
}

/// `{"x": {"x": ... {}}}` with `levels` objects in all.
fn nested(levels: usize) -> Value {
    let mut v = json!({});
    for _ in 1..levels {
        v = json!({ "x": v });
    }
    v
}

#[test]
fn writes_report_versions_and_keep_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast_options());
    let id = "/users/ada";

    let m0 = store
        .put(id, "user", json!({"name": "Ada", "tags": {"a": 1, "b": 2}}))
        .unwrap();
    assert_eq!((m0.id.as_str(), m0.kind.as_str()), (id, "user"));
    assert_eq!(
        (m0.version, m0.seq, m0.deleted, m0.expires_at),
        (0, 1, false, None)
    );
    let doc = store.get(id).unwrap().expect("present");
    assert_eq!(doc.meta, m0);
    assert_eq!(doc.body, json!({"name": "Ada", "tags": {"a": 1, "b": 2}}));

    // A patch merges nested objects, removes fields set to null and keeps the kind.
    let m1 = store
        .patch(id, json!({"tags": {"a": null, "c": 3}, "age": 36}))
        .unwrap();
    assert_eq!(
        (m1.version, m1.seq, m1.kind.as_str(), m1.deleted),
        (1, 2, "user", false)
    );
    assert!(m1.update_time_micros >= m0.update_time_micros);
    let doc = store.get(id).unwrap().expect("present");
    assert_eq!(doc.meta, m1);
    assert_eq!(
        doc.body,
        json!({"name": "Ada", "tags": {"b": 2, "c": 3}, "age": 36})
    );

    // A put replaces the whole body and may change the kind.
    let m2 = store.put(id, "admin", json!({"name": "Ada L."})).unwrap();
    assert_eq!((m2.version, m2.kind.as_str()), (2, "admin"));
    assert_eq!(
        store.get(id).unwrap().expect("present").body,
        json!({"name": "Ada L."})
    );

    let m3 = store.delete(id).unwrap();
    assert_eq!(
        (m3.version, m3.seq, m3.deleted, m3.kind.as_str()),
        (3, 4, true, "admin")
    );
    assert_eq!(store.get(id).unwrap(), None);

    // Re-creating keeps counting versions.
    let m4 = store.put(id, "user", json!({"name": "Ada again"})).unwrap();
    assert_eq!((m4.version, m4.seq, m4.deleted), (4, 5, false));
    let history = store.history(id).unwrap();
    let versions: Vec<(u64, bool)> = history
        .iter()
        .map(|d| (d.meta.version, d.meta.deleted))
        .collect();
    assert_eq!(
        versions,
        [(0, false), (1, false), (2, false), (3, true), (4, false)]
    );
    assert_eq!(store.get_version(id, 1).unwrap().expect("kept").meta, m1);
    assert_eq!(store.get_version(id, 5).unwrap(), None);
    assert_eq!(store.get("/users/nobody").unwrap(), None);
    assert!(store.history("/users/nobody").unwrap().is_empty());
    assert_eq!(store.last_seq(), 5);
}

#[test]
fn tombstones_read_as_null_bodies() {
    let store = in_memory();
    store.put("/t", "thing", json!({"a": 1})).unwrap();
    let deleted = store.delete("/t").unwrap();
    let tomb = store
        .get_version("/t", 1)
        .unwrap()
        .expect("the tombstone is a version");
    assert_eq!(tomb.meta, deleted);
    assert!(tomb.meta.deleted);
    assert_eq!(tomb.body, Value::Null);
    assert_eq!(store.get("/t").unwrap(), None);
    assert_eq!(
        store.get_at("/t", deleted.update_time_micros).unwrap(),
        None
    );
    let before = store.get_at("/t", deleted.update_time_micros - 1).unwrap();
    // The put and the delete may share a microsecond; if not, the put is visible just before.
    if let Some(doc) = before {
        assert_eq!((doc.meta.version, doc.body), (0, json!({"a": 1})));
    }
    assert!(
        store.list("").next().is_none(),
        "a deleted document is not listed"
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
    langs: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Team {
    #[expect(dead_code, reason = "only decoding is tested")]
    members: Vec<String>,
}

#[test]
fn typed_documents_round_trip_and_misfits_are_decode_errors() {
    let store = in_memory();
    let ada = User {
        name: "Ada".into(),
        age: 36,
        langs: vec!["en".into(), "fr".into()],
    };
    let meta = store.put_as("/users/ada", "user", &ada).unwrap();
    assert_eq!(meta.version, 0);
    assert_eq!(
        store.get_as::<User>("/users/ada").unwrap(),
        Some(ada.clone())
    );
    assert_eq!(store.get_as::<User>("/users/nobody").unwrap(), None);
    let doc = store.get("/users/ada").unwrap().expect("present");
    assert_eq!(doc.body_as::<User>().unwrap(), ada);

    // A body that does not fit the type names the document.
    let err = store.get_as::<Team>("/users/ada").unwrap_err();
    assert!(
        matches!(&err, Error::Decode { id, .. } if id == "/users/ada"),
        "{err}"
    );
    store
        .put(
            "/users/bad",
            "user",
            json!({"name": "B", "age": "old", "langs": []}),
        )
        .unwrap();
    let err = store.get_as::<User>("/users/bad").unwrap_err();
    assert!(
        matches!(&err, Error::Decode { id, .. } if id == "/users/bad"),
        "{err}"
    );
    let err = doc.body_as::<Team>().unwrap_err();
    assert!(
        matches!(&err, Error::Decode { id, .. } if id == "/users/ada"),
        "{err}"
    );

    // A value that is not an object, or cannot be serialized, writes nothing.
    let before = store.last_seq();
    let err = rejected(&store, before, store.put_as("/n", "num", &5));
    assert!(
        matches!(&err, Error::InvalidBody { id, .. } if id == "/n"),
        "{err}"
    );
    let err = rejected(&store, before, store.put_as("/v", "list", &vec![1, 2]));
    assert!(matches!(&err, Error::InvalidBody { .. }), "{err}");
    let unkeyable: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let err = rejected(&store, before, store.put_as("/m", "map", &unkeyable));
    assert!(
        matches!(&err, Error::Decode { id, .. } if id == "/m"),
        "{err}"
    );
}

#[test]
fn invalid_input_is_a_typed_error_and_writes_nothing() {
    let limits = Limits::default().with_max_document_bytes(1000);
    let store = Store::open_in_memory(Options::default().with_limits(limits)).unwrap();
    store.put("/ok", "thing", json!({"a": {}})).unwrap();
    let before = store.last_seq();
    let body = || json!({"a": 1});

    for id in ["", "a\0b", &"x".repeat(1025)] {
        let err = rejected(&store, before, store.put(id, "thing", body()));
        assert!(matches!(err, Error::InvalidId { .. }), "{id:?}: {err}");
        let err = rejected(&store, before, store.patch(id, body()));
        assert!(matches!(err, Error::InvalidId { .. }), "{id:?}: {err}");
        let err = rejected(&store, before, store.delete(id));
        assert!(matches!(err, Error::InvalidId { .. }), "{id:?}: {err}");
    }
    for kind in ["", "k\0", &"k".repeat(257)] {
        let err = rejected(&store, before, store.put("/k", kind, body()));
        assert!(matches!(err, Error::InvalidKind { .. }), "{kind:?}: {err}");
    }
    for bad in [json!(null), json!([1]), json!("s"), json!(1), json!(true)] {
        let err = rejected(&store, before, store.put("/b", "thing", bad.clone()));
        assert!(
            matches!(&err, Error::InvalidBody { id, .. } if id == "/b"),
            "{bad}: {err}"
        );
        let err = rejected(&store, before, store.patch("/ok", bad.clone()));
        assert!(
            matches!(&err, Error::InvalidBody { id, .. } if id == "/ok"),
            "{bad}: {err}"
        );
    }

    let big = json!({"s": "x".repeat(1000)});
    let size = serde_json::to_vec(&big).unwrap().len();
    let err = rejected(&store, before, store.put("/big", "thing", big));
    assert!(
        matches!(&err, Error::DocumentTooLarge { id, size: s, limit: 1000 } if id == "/big" && *s == size),
        "{err}"
    );
    // A patch whose result is over the limit fails the same way.
    let err = rejected(
        &store,
        before,
        store.patch("/ok", json!({"s": "x".repeat(1000)})),
    );
    assert!(
        matches!(&err, Error::DocumentTooLarge { id, limit: 1000, .. } if id == "/ok"),
        "{err}"
    );

    let err = rejected(&store, before, store.put("/deep", "thing", nested(65)));
    assert!(
        matches!(&err, Error::DocumentTooDeep { id, limit: 64 } if id == "/deep"),
        "{err}"
    );
    let err = rejected(
        &store,
        before,
        store.put("/deep", "thing", json!({"a": [nested(64)]})),
    );
    assert!(
        matches!(err, Error::DocumentTooDeep { limit: 64, .. }),
        "{err}"
    );
    let err = rejected(&store, before, store.patch("/ok", json!({"a": nested(64)})));
    assert!(
        matches!(&err, Error::DocumentTooDeep { id, limit: 64 } if id == "/ok"),
        "{err}"
    );

    let long = "f".repeat(1025);
    let mut fields = Map::new();
    fields.insert(long.clone(), json!(1));
    let err = rejected(
        &store,
        before,
        store.put("/f", "thing", Value::Object(fields.clone())),
    );
    assert!(
        matches!(&err, Error::FieldNameTooLong { id, len: 1025, limit: 1024 } if id == "/f"),
        "{err}"
    );
    let err = rejected(
        &store,
        before,
        store.put("/f", "thing", json!({"a": [Value::Object(fields.clone())]})),
    );
    assert!(
        matches!(err, Error::FieldNameTooLong { len: 1025, .. }),
        "{err}"
    );
    let err = rejected(
        &store,
        before,
        store.patch("/ok", json!({"a": Value::Object(fields)})),
    );
    assert!(
        matches!(err, Error::FieldNameTooLong { len: 1025, .. }),
        "{err}"
    );

    // One bad operation rejects the whole batch, whether the facade or the writer finds it.
    let err = rejected(
        &store,
        before,
        store.write(
            Batch::new()
                .put("/x", "thing", body())
                .put("", "thing", body()),
        ),
    );
    assert!(matches!(err, Error::InvalidId { .. }), "{err}");
    let err = rejected(
        &store,
        before,
        store.write(
            Batch::new()
                .put("/x", "thing", body())
                .patch("/ok", json!({"s": "x".repeat(2000)})),
        ),
    );
    assert!(matches!(err, Error::DocumentTooLarge { .. }), "{err}");
    assert_eq!(store.get("/x").unwrap(), None);

    // The store is still usable, and nothing of the above is visible.
    assert_eq!(
        store.get("/ok").unwrap().expect("present").body,
        json!({"a": {}})
    );
    assert_eq!(store.history("/ok").unwrap().len(), 1);
    let ids: Vec<String> = store
        .list("")
        .map(|d| d.map(|d| d.meta.id))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, ["/ok"]);
    store.put("/x", "thing", body()).unwrap();
    assert_eq!(store.last_seq(), before + 1);
}

#[test]
fn inputs_exactly_at_the_limits_are_accepted() {
    let limits = Limits::default().with_max_document_bytes(64);
    let store = Store::open_in_memory(Options::default().with_limits(limits)).unwrap();
    let id = format!("/{}", "i".repeat(1023));
    let kind = "k".repeat(256);
    store.put(&id, &kind, json!({})).unwrap();
    let doc = store.get(&id).unwrap().expect("present");
    assert_eq!((doc.meta.id.len(), doc.meta.kind.len()), (1024, 256));

    // `{"s":"` + 56 bytes + `"}` is exactly 64 bytes.
    let exact = json!({"s": "x".repeat(56)});
    assert_eq!(serde_json::to_vec(&exact).unwrap().len(), 64);
    store.put("/exact", "thing", exact).unwrap();

    let store = in_memory();
    store.put("/deep", "thing", nested(64)).unwrap();
    let mut fields = Map::new();
    fields.insert("f".repeat(1024), json!(1));
    store.put("/field", "thing", Value::Object(fields)).unwrap();
    assert_eq!(store.last_seq(), 2);
}

#[test]
fn conditional_writes_conflict_with_the_actual_version() {
    let store = in_memory();
    let id = "/c";
    assert_eq!(
        store
            .put_if(id, "thing", json!({"n": 0}), Expect::Absent)
            .unwrap()
            .version,
        0
    );
    let err = store
        .put_if(id, "thing", json!({}), Expect::Absent)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { id: i, expected: None, actual: Some(0) } if i == id),
        "{err}"
    );
    assert_eq!(
        store
            .patch_if(id, json!({"n": 1}), Expect::Version(0))
            .unwrap()
            .version,
        1
    );
    let err = store
        .patch_if(id, json!({"n": 9}), Expect::Version(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Some(0),
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .put_with(
            id,
            "thing",
            json!({}),
            WriteOptions::default().with_expect(Expect::Version(7)),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Some(7),
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.get(id).unwrap().expect("present").body,
        json!({"n": 1})
    );

    // A conflict anywhere in a batch writes none of it.
    let before = store.last_seq();
    let batch = Batch::new().put("/other", "thing", json!({})).patch_if(
        id,
        json!({"n": 2}),
        Expect::Version(5),
    );
    let err = rejected(&store, before, store.write(batch));
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Some(5),
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get("/other").unwrap(), None);

    // Conditions see the earlier operations of the same batch.
    let metas = store
        .write(
            Batch::new()
                .patch_if(id, json!({"n": 2}), Expect::Version(1))
                .patch_if(id, json!({"n": 3}), Expect::Version(2))
                .delete_if(id, Expect::Version(3))
                .put_if(id, "thing", json!({"n": 4}), Expect::Absent),
        )
        .unwrap();
    let versions: Vec<(u64, bool)> = metas.iter().map(|m| (m.version, m.deleted)).collect();
    assert_eq!(versions, [(2, false), (3, false), (4, true), (5, false)]);

    // A deleted document counts as absent: version conditions fail with no actual version.
    store.delete(id).unwrap();
    let before = store.last_seq();
    let err = rejected(&store, before, store.delete_if(id, Expect::Version(6)));
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: Some(6),
                actual: None,
                ..
            }
        ),
        "{err}"
    );
    let err = rejected(&store, before, store.delete(id));
    assert!(
        matches!(&err, Error::NotFound { id: i } if i == id),
        "{err}"
    );
    let err = rejected(&store, before, store.patch(id, json!({})));
    assert!(
        matches!(&err, Error::NotFound { id: i } if i == id),
        "{err}"
    );
    let err = rejected(&store, before, store.patch("/never", json!({})));
    assert!(
        matches!(&err, Error::NotFound { id: i } if i == "/never"),
        "{err}"
    );
    let err = rejected(&store, before, store.delete("/never"));
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(
        store
            .put_if(id, "thing", json!({}), Expect::Absent)
            .unwrap()
            .version,
        7
    );
}

#[test]
fn explicit_batch_times_must_be_later() {
    let store = in_memory();
    let t0 = 1_000_000;
    let m = store
        .write(Batch::new().put("/a", "thing", json!({})).at_time(t0))
        .unwrap();
    assert_eq!(m[0].update_time_micros, t0);
    let now = store
        .put("/b", "thing", json!({}))
        .unwrap()
        .update_time_micros;
    assert!(now > t0, "the clock is past 1970");

    let before = store.last_seq();
    for requested in [now, now - 1, t0] {
        let batch = Batch::new()
            .put("/c", "thing", json!({}))
            .at_time(requested);
        let err = rejected(&store, before, store.write(batch));
        assert!(
            matches!(err, Error::TimeNotLater { requested: r, last } if r == requested && last == now),
            "{err}"
        );
    }
    assert_eq!(store.get("/c").unwrap(), None);

    // A time in the future is accepted, and later writes never get an earlier one.
    let future = now + 3_600_000_000;
    let m = store
        .write(Batch::new().put("/c", "thing", json!({})).at_time(future))
        .unwrap();
    assert_eq!(m[0].update_time_micros, future);
    let after = store.patch("/c", json!({"x": 1})).unwrap();
    assert!(after.update_time_micros >= future);
}

#[test]
fn versions_of_one_batch_share_a_time_and_the_newest_wins() {
    let store = in_memory();
    let t = 5_000_000;
    let metas = store
        .write(
            Batch::new()
                .put("/x", "thing", json!({"n": 0}))
                .patch("/x", json!({"n": 1}))
                .put("/y", "thing", json!({}))
                .delete("/x")
                .put("/x", "other", json!({"n": 3}))
                .at_time(t),
        )
        .unwrap();
    let seen: Vec<(&str, u64, u64, u64)> = metas
        .iter()
        .map(|m| (m.id.as_str(), m.version, m.seq, m.update_time_micros))
        .collect();
    assert_eq!(
        seen,
        [
            ("/x", 0, 1, t),
            ("/x", 1, 2, t),
            ("/y", 0, 3, t),
            ("/x", 2, 4, t),
            ("/x", 3, 5, t)
        ]
    );
    assert_eq!(store.get_at("/x", t - 1).unwrap(), None);
    let at = store
        .get_at("/x", t)
        .unwrap()
        .expect("the newest of the batch");
    assert_eq!(
        (at.meta.version, at.meta.kind.as_str(), at.body),
        (3, "other", json!({"n": 3}))
    );

    store
        .write(Batch::new().delete("/x").at_time(t + 10))
        .unwrap();
    assert_eq!(
        store
            .get_at("/x", t + 9)
            .unwrap()
            .expect("before the delete")
            .meta
            .version,
        3
    );
    assert_eq!(store.get_at("/x", t + 10).unwrap(), None);
    assert_eq!(store.get_at("/x", u64::MAX).unwrap(), None);
    assert_eq!(
        store
            .get_at("/y", t + 10)
            .unwrap()
            .expect("untouched")
            .meta
            .version,
        0
    );
    assert_eq!(
        store
            .get_version("/x", 2)
            .unwrap()
            .expect("a tombstone")
            .body,
        Value::Null
    );
}

#[test]
fn list_reads_one_snapshot_in_id_order() {
    let store = in_memory();
    // More documents than one internal chunk of ids, so the snapshot must hold across chunks.
    let mut batch = Batch::new();
    for i in 0..600 {
        batch = batch.put(format!("/l/{i:04}"), "item", json!({"i": i}));
    }
    store.write(batch).unwrap();
    store.put("/m/0", "item", json!({})).unwrap();
    store.put("/l", "item", json!({})).unwrap();

    let mut iter = store.list("/l/");
    let first = iter.next().expect("one document").unwrap();
    assert_eq!(first.meta.id, "/l/0000");
    store.put("/l/0000a", "item", json!({"new": true})).unwrap();
    store.put("/l/9999", "item", json!({"new": true})).unwrap();
    store.delete("/l/0500").unwrap();
    store.patch("/l/0300", json!({"changed": true})).unwrap();
    let rest = iter.collect::<Result<Vec<_>, _>>().unwrap();
    let ids: Vec<String> = rest.iter().map(|d| d.meta.id.clone()).collect();
    let expected: Vec<String> = (1..600).map(|i| format!("/l/{i:04}")).collect();
    assert_eq!(ids, expected, "writes made while listing are not seen");
    assert!(rest
        .iter()
        .all(|d| d.meta.version == 0 && d.body.get("changed").is_none()));

    let now: Vec<String> = store
        .list("/l/")
        .map(|d| d.map(|d| d.meta.id))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(now.len(), 601);
    assert_eq!(now[1], "/l/0000a");
    assert!(!now.contains(&"/l/0500".to_owned()));
    assert_eq!(now.last().map(String::as_str), Some("/l/9999"));
    assert_eq!(store.list("/l/03").count(), 100);
    assert_eq!(store.list("/nothing/").count(), 0);
    assert_eq!(store.list("").count(), 603);
}

#[test]
fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["/r/a", "/r/b", "/r/c"];
    let (before, listed, last_seq, times) = {
        let store = open(dir.path(), fast_options().with_durability(Durability::Sync));
        for i in 0..60 {
            store
                .put(ids[i % 2], "thing", json!({"i": i, "pad": "p".repeat(100)}))
                .unwrap();
        }
        store
            .write(
                Batch::new()
                    .put("/r/c", "other", json!({"c": 1}))
                    .delete("/r/a"),
            )
            .unwrap();
        store
            .patch("/r/b", json!({"i": null, "patched": true}))
            .unwrap();
        let before = everything(&store, &ids);
        let listed = store.list("").collect::<Result<Vec<_>, _>>().unwrap();
        let times: Vec<u64> = before.iter().map(|d| d.meta.update_time_micros).collect();
        (before, listed, store.last_seq(), times)
    };
    let store = open(dir.path(), fast_options());
    assert!(
        store.open_stats().segments > 1,
        "the test wants several segments: {:?}",
        store.open_stats()
    );
    assert_eq!(store.open_stats().truncated_bytes, 0);
    assert_eq!(store.last_seq(), last_seq);
    assert_eq!(everything(&store, &ids), before);
    assert_eq!(
        store.list("").collect::<Result<Vec<_>, _>>().unwrap(),
        listed
    );
    for t in times {
        for id in ids {
            let expected = before
                .iter()
                .rfind(|d| d.meta.id == id && d.meta.update_time_micros <= t)
                .filter(|d| !d.meta.deleted)
                .cloned();
            assert_eq!(store.get_at(id, t).unwrap(), expected, "{id} at {t}");
        }
    }
    // Writing continues where it stopped.
    let m = store.put("/r/a", "thing", json!({})).unwrap();
    assert_eq!((m.seq, m.version), (last_seq + 1, 31));
}

#[test]
fn a_second_open_is_locked_until_the_first_is_dropped() {
    // Regression: `Error::Locked` named the engine's `log` subdirectory, not the data directory.
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), Options::default());
    first.put("/a", "thing", json!({})).unwrap();
    let clone = first.clone();
    drop(first);
    // Any clone keeps the store open; the error names the data directory that was asked for.
    let err = Store::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { path, .. } if path == dir.path()),
        "{err}"
    );
    assert_eq!(
        clone
            .get("/a")
            .unwrap()
            .expect("the first store still works")
            .meta
            .version,
        0
    );
    drop(clone);
    let again = open(dir.path(), Options::default());
    assert_eq!(again.get("/a").unwrap().expect("kept").meta.version, 0);
    let err = Store::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}

#[test]
fn in_memory_stores_work_and_are_separate() {
    let one = Store::open_in_memory(fast_options()).unwrap();
    let two = Store::open_in_memory(Options::default()).unwrap();
    for i in 0..100 {
        one.put(
            &format!("/m/{i}"),
            "thing",
            json!({"i": i, "pad": "p".repeat(100)}),
        )
        .unwrap();
    }
    one.patch("/m/7", json!({"i": 70})).unwrap();
    one.delete("/m/8").unwrap();
    assert_eq!(one.get("/m/7").unwrap().expect("present").body["i"], 70);
    assert_eq!(one.get("/m/8").unwrap(), None);
    assert_eq!(one.list("/m/").count(), 99);
    assert_eq!(one.history("/m/7").unwrap().len(), 2);
    assert_eq!(one.last_seq(), 102);
    assert_eq!(two.last_seq(), 0);
    assert_eq!(two.get("/m/7").unwrap(), None);
}

#[test]
fn invalid_options_are_rejected_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let limits = Limits::default;
    let bad = [
        Options::default().with_segment_size(0),
        Options::default().with_segment_size(4095),
        Options::default().with_segment_size((1 << 31) + 1),
        Options::default().with_durability(Durability::Buffered(Duration::ZERO)),
        Options::default().with_limits(limits().with_max_id_bytes(0)),
        Options::default().with_limits(limits().with_max_id_bytes(1025)),
        Options::default().with_limits(limits().with_max_kind_bytes(0)),
        Options::default().with_limits(limits().with_max_kind_bytes(257)),
        Options::default().with_limits(limits().with_max_depth(0)),
        Options::default().with_limits(limits().with_max_field_name_bytes(0)),
        Options::default().with_limits(limits().with_max_document_bytes(1)),
        Options::default().with_limits(limits().with_max_document_bytes((256 << 20) + 1)),
    ];
    for options in bad {
        let err = Store::open(&data, options.clone()).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{options:?}: {err}");
        let err = Store::open_in_memory(options.clone()).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{options:?}: {err}");
    }
    assert!(!data.exists(), "a refused open created files");

    let good = [
        Options::default().with_segment_size(4096),
        Options::default().with_segment_size(1 << 31),
        Options::default().with_buffered_sync(Duration::from_millis(1)),
        Options::default().with_limits(limits().with_max_document_bytes(2).with_max_depth(1)),
    ];
    for options in good {
        let store =
            Store::open(&data, options.clone()).unwrap_or_else(|e| panic!("{options:?}: {e}"));
        store.put("/o", "thing", json!({})).unwrap();
        store.flush().unwrap();
    }
    assert_eq!(
        open(&data, Options::default())
            .get("/o")
            .unwrap()
            .expect("kept")
            .meta
            .version,
        3
    );
}

#[test]
fn an_empty_batch_writes_nothing() {
    let store = in_memory();
    store.put("/a", "thing", json!({})).unwrap();
    assert!(store.write(Batch::new()).unwrap().is_empty());
    assert_eq!(store.last_seq(), 1);
    assert_eq!(store.put("/a", "thing", json!({})).unwrap().seq, 2);
}

#[test]
fn a_data_directory_that_is_a_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = Store::open(&file, Options::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// Expiry is applied the same way to reads and to writes: an expired document is absent.
/// (Without the background expiry tombstones, whose extra versions would make the versions and
/// seqs below depend on timing; tests/lifecycle covers them.)
#[test]
fn an_expired_document_is_absent_for_reads_and_writes() {
    let store = Store::open_in_memory(
        Options::default()
            .with_maintenance(strata::MaintenanceOptions::default().with_expire(false)),
    )
    .unwrap();
    let now = store
        .put("/clock", "tick", json!({}))
        .unwrap()
        .update_time_micros;
    let expired = WriteOptions::default().with_expires_at(now);
    let meta = store
        .put_with("/gone", "session", json!({"user": "ada"}), expired)
        .unwrap();
    assert_eq!(meta.expires_at, Some(now));
    assert!(store.get("/gone").unwrap().is_none());
    assert!(store.get_raw("/gone").unwrap().is_none());
    assert_eq!(store.list("/gone").count(), 0);
    // Still in the history, and visible before its expiry.
    assert_eq!(store.history("/gone").unwrap().len(), 1);
    assert!(
        store.get_at("/gone", now - 1).unwrap().is_none(),
        "written after now - 1"
    );
    let before = store.last_seq();
    let err = store.patch("/gone", json!({"user": "bob"})).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store.delete("/gone").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(store.last_seq(), before, "refused writes wrote nothing");
    // Creating it again works, and its version keeps counting.
    let again = store
        .put_if("/gone", "session", json!({"user": "cy"}), Expect::Absent)
        .unwrap();
    assert_eq!((again.version, again.expires_at), (1, None));
    assert_eq!(store.get("/gone").unwrap().unwrap().body["user"], "cy");

    // A document that expires later is live: a patch keeps its expiry.
    let later = now + 3_600_000_000;
    store
        .put_with(
            "/later",
            "session",
            json!({"n": 1}),
            WriteOptions::default().with_expires_at(later),
        )
        .unwrap();
    let patched = store.patch("/later", json!({"n": 2})).unwrap();
    assert_eq!(patched.expires_at, Some(later));
    let err = store
        .put_if("/later", "session", json!({}), Expect::Absent)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
}

/// Regression: `Batch::at_time(u64::MAX)` (or nanoseconds given for microseconds) was accepted
/// and blocked every later write; times too far ahead of the clock are now refused.
#[test]
fn explicit_times_far_ahead_of_the_clock_are_refused() {
    let store = in_memory();
    let now = store.put("/a", "k", json!({})).unwrap().update_time_micros;
    for t in [u64::MAX, now * 1000] {
        let err = store
            .write(Batch::new().at_time(t).put("/b", "k", json!({})))
            .unwrap_err();
        assert!(
            matches!(err, Error::TimeTooFarAhead { requested, .. } if requested == t),
            "{err}"
        );
    }
    assert_eq!(store.last_seq(), 1);
    // An hour ahead is fine, and later writes follow it.
    let ahead = now + 3_600_000_000;
    store
        .write(Batch::new().at_time(ahead).put("/b", "k", json!({})))
        .unwrap();
    assert!(store.put("/c", "k", json!({})).unwrap().update_time_micros > ahead);
}

/// `{"x": {"x": ... {}}}` with `levels` objects, built without recursion (`json!` serializes
/// the value it nests, recursively).
fn deep(levels: usize) -> Value {
    let mut v = Value::Object(Map::new());
    for _ in 1..levels {
        let mut outer = Map::new();
        outer.insert("x".to_owned(), v);
        v = Value::Object(outer);
    }
    v
}

// A merge patch about 9,500 levels deep overflowed the stack of a 2 MiB thread (the merge
// recursed through it before the depth was checked) while a put of the same depth was refused.
#[test]
fn a_patch_deeper_than_the_limit_is_refused_on_a_small_stack() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast_options());
    store.put("/ok", "thing", json!({"a": 1})).unwrap();
    let before = store.last_seq();
    let worker = store.clone();
    let errors = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            [65, 9_500, 12_000].map(|levels| {
                let put = worker.put("/deep", "thing", deep(levels)).unwrap_err();
                let patch = worker.patch("/ok", deep(levels)).unwrap_err();
                (put.to_string(), patch)
            })
        })
        .unwrap()
        .join()
        .expect("the patch did not overflow the stack");
    for (put, patch) in errors {
        assert_eq!(
            put,
            "document /deep nests deeper than the limit of 64 levels"
        );
        assert!(
            matches!(&patch, Error::DocumentTooDeep { id, limit: 64 } if id == "/ok"),
            "{patch}"
        );
    }
    assert_eq!(store.last_seq(), before);
    assert_eq!(store.get("/ok").unwrap().unwrap().body, json!({"a": 1}));
}

// `max_depth` had no upper bound: with it raised, a body deeper than serde_json's parser
// accepts (128 levels) was stored and could never be read back, and deeper ones overflowed
// the stack of the recursive walks (merge patch, encoding, indexing).
#[test]
fn max_depth_is_bounded_by_what_can_be_read_back() {
    let limit = Limits::default().max_depth;
    assert_eq!(limit, 64);
    let most = Limits::MAX_DEPTH;
    let store = Store::open_in_memory(
        Options::default().with_limits(Limits::default().with_max_depth(most)),
    )
    .unwrap();
    store.put("/d", "thing", deep(most)).unwrap();
    assert!(store.get("/d").unwrap().is_some());
    store.patch("/d", json!({"y": 1})).unwrap();
    assert_eq!(store.get("/d").unwrap().unwrap().body["y"], 1);
    let err = store.put("/e", "thing", deep(most + 1)).unwrap_err();
    assert!(matches!(err, Error::DocumentTooDeep { .. }), "{err}");
    for depth in [most + 1, usize::MAX] {
        let options = Options::default().with_limits(Limits::default().with_max_depth(depth));
        let err = Store::open_in_memory(options).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{depth}: {err}");
    }
}

/// Regression: errors printed times as microseconds since the epoch (`history before
/// 1767225600000000 us was dropped`); they print RFC 3339 dates, the typed fields stay µs.
#[test]
fn errors_print_times_as_rfc3339_dates() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    let t = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    store
        .write(Batch::new().put("/a", "thing", json!({})).at_time(t))
        .unwrap();
    let err = store
        .write(Batch::new().put("/a", "thing", json!({})).at_time(t - 1))
        .unwrap_err();
    assert!(
        matches!(err, Error::TimeNotLater { requested, last } if requested == t - 1 && last == t),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "update time 2025-12-31T23:59:59.999999Z is not later than the last update time before \
         it, 2026-01-01T00:00:00.000000Z"
    );
    let trimmed = Error::HistoryTrimmed {
        id: Some("/a".to_owned()),
        oldest_complete: t,
    };
    assert_eq!(
        trimmed.to_string(),
        "history of /a before 2026-01-01T00:00:00.000000Z was dropped by retention; history is \
         complete from that time on"
    );
    let ahead = Error::TimeTooFarAhead {
        requested: t + 86_400_000_000,
        limit: t,
    };
    assert!(
        ahead.to_string().contains("2026-01-02T00:00:00.000000Z")
            && !ahead.to_string().contains(" us"),
        "{ahead}"
    );
    assert_eq!(strata::format_rfc3339(t), "2026-01-01T00:00:00.000000Z");
}

/// Regression: the API took times only as microseconds since the epoch; every call taking a
/// time also takes a `SystemTime` (and a `Timestamp`), and metas give theirs back as both.
#[test]
fn times_are_taken_as_system_time_or_micros() {
    use std::time::SystemTime;
    use strata::{Query, QuerySpec, Snapshot, Timestamp};
    let store = Store::open_in_memory(Options::default()).unwrap();
    let t0 = SystemTime::now() + Duration::from_secs(5);
    let put = store
        .write(Batch::new().put("/a", "thing", json!({"v": 1})).at_time(t0))
        .unwrap();
    assert_eq!(put[0].update_time(), Timestamp::from(t0));
    assert_eq!(put[0].update_time_micros, Timestamp::from(t0).as_micros());
    let later = put[0].update_time_micros + 10;
    store
        .write(
            Batch::new()
                .put_with(
                    "/a",
                    "thing",
                    json!({"v": 2}),
                    WriteOptions::default().with_expires_at(t0 + Duration::from_secs(3600)),
                )
                .at_time(Timestamp::from(later)),
        )
        .unwrap();
    let newest = store.get("/a").unwrap().unwrap();
    assert_eq!(
        newest.meta.expiry(),
        Some(Timestamp::from(t0 + Duration::from_secs(3600)))
    );
    // get_at: the same instant as SystemTime, µs and Timestamp.
    let before = t0 - Duration::from_micros(1);
    assert_eq!(store.get_at("/a", before).unwrap(), None);
    for doc in [
        store.get_at("/a", t0).unwrap(),
        store.get_at("/a", put[0].update_time_micros).unwrap(),
        store.get_at("/a", put[0].update_time()).unwrap(),
    ] {
        assert_eq!(doc.unwrap().body, json!({"v": 1}));
    }
    let spec = QuerySpec::new(Query::kind("thing")).snapshot(Snapshot::as_of(t0));
    let r = store.query(&spec).unwrap();
    assert_eq!(r.documents[0].body, json!({"v": 1}));
    assert_eq!(
        Snapshot::as_of(t0),
        Snapshot::AsOf(put[0].update_time_micros)
    );
    assert_eq!(put[0].update_time().to_system_time(), {
        // SystemTime keeps nanoseconds; a Timestamp whole microseconds.
        let micros = t0
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        std::time::UNIX_EPOCH + Duration::from_micros(micros as u64)
    });
}
