//! Replicated batches through the facade (`Batch::replicated`, `Store::last_origin`): the
//! storage hook a cluster replica applies its partition's stream with (FORMAT.md §4 origin).

use serde_json::json;
use strata::{Batch, Error, Expect, Options, Origin, Store};

const T0: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn origin(position: u64, min_time: u64) -> Origin {
    Origin { position, min_time }
}

/// The batches of a partition's stream, as (position, source time, batch).
fn stream() -> Vec<(u64, u64, Batch)> {
    let mut out = Vec::new();
    for i in 0..40u64 {
        let mut batch = Batch::new().put(format!("/d/{}", i % 7), "doc", json!({"i": i}));
        if i % 5 == 0 {
            batch = batch.patch(format!("/d/{}", i % 7), json!({"extra": i}));
        }
        if i % 9 == 8 {
            batch = batch.delete(format!("/d/{}", (i + 1) % 7));
        }
        // Source times that go backwards now and then (another writer's clock): the replica
        // decides max(source, last + 1 µs), the same everywhere.
        let source = T0 + 1_000 * i - if i % 4 == 3 { 5_000 } else { 0 };
        out.push((10 + 3 * i, source, batch));
    }
    out
}

/// Every version of the store, in seq order, with its body.
fn versions(store: &Store) -> Vec<(String, u64, u64, u64, bool, String)> {
    let mut ids: Vec<String> = store.list("/").map(|d| d.unwrap().meta.id).collect();
    for i in 0..7 {
        ids.push(format!("/d/{i}"));
    }
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        for doc in store.history(&id).unwrap() {
            out.push((
                doc.meta.id.clone(),
                doc.meta.version,
                doc.meta.seq,
                doc.meta.update_time_micros,
                doc.meta.deleted,
                doc.body.to_string(),
            ));
        }
    }
    out.sort_by_key(|v| v.2);
    out
}

fn apply(store: &Store, stream: Vec<(u64, u64, Batch)>) {
    for (position, source, batch) in stream {
        match store.write(batch.replicated(origin(position, source))) {
            // A batch whose conditions fail fails the same way on every replica.
            Ok(_) | Err(Error::BatchOp { .. }) => {}
            Err(e) => panic!("apply of {position}: {e}"),
        }
    }
}

#[test]
fn replicas_fed_the_same_stream_hold_identical_versions() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = Store::open(a.path(), Options::default()).unwrap();
    apply(&first, stream());
    // The second replica crashes half way (dropped without more) and resumes after its last
    // origin, on another clock.
    {
        let second = Store::open(b.path(), Options::default()).unwrap();
        apply(&second, stream().into_iter().take(17).collect());
    }
    let second = Store::open(b.path(), Options::default()).unwrap();
    let resume = second.last_origin().unwrap();
    assert_eq!(resume, 10 + 3 * 16);
    apply(
        &second,
        stream()
            .into_iter()
            .filter(|(p, _, _)| *p > resume)
            .collect(),
    );
    assert_eq!(first.last_origin(), Some(10 + 3 * 39));
    assert_eq!(second.last_origin(), first.last_origin());
    let (va, vb) = (versions(&first), versions(&second));
    assert!(va.len() > 40, "{}", va.len());
    assert_eq!(va, vb);
    // Times never went backwards, whatever the sources said.
    assert!(va.windows(2).all(|w| w[0].3 <= w[1].3));
}

#[test]
fn a_replicated_batch_is_refused_with_at_time_or_an_old_origin() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store
        .write(
            Batch::new()
                .put("/a", "doc", json!({}))
                .replicated(origin(5, T0)),
        )
        .unwrap();
    let both = Batch::new()
        .put("/b", "doc", json!({}))
        .at_time(T0 + 10)
        .replicated(origin(6, T0));
    assert!(matches!(
        store.write(both),
        Err(Error::InvalidOption(m)) if m.contains("at_time")
    ));
    let old = Batch::new()
        .put("/b", "doc", json!({}))
        .replicated(origin(5, T0));
    assert!(matches!(
        store.write(old),
        Err(Error::OriginNotLater {
            requested: 5,
            last: 5
        })
    ));
    let conflict = Batch::new()
        .put_if("/a", "doc", json!({}), Expect::Absent)
        .replicated(origin(6, T0));
    assert!(matches!(
        store.write(conflict).map_err(Error::into_reason),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.last_origin(), Some(5));
    assert_eq!(store.last_seq(), 1);
}
