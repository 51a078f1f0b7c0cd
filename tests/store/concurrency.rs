//! Concurrent writers and readers: a reader never sees part of a batch, and what one reader has
//! seen of a document never goes backwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use serde_json::json;
use strata::{Batch, Document, Durability, Error, Expect, Options, Store};

use crate::{open, stress};

const WRITERS: usize = 3;
const READERS: usize = 3;
/// Documents each writer rotates through, besides `/pair/a`, `/pair/b` and its `last` document.
const ROTATING: u64 = 4;
/// Every this many batches a writer also increments `/counter` by compare-and-set.
const COUNTER_EVERY: u64 = 5;
/// A bound on every retry loop, far above what the test needs.
const MAX_ATTEMPTS: usize = 1_000_000;

fn batch_of(doc: &Document) -> u64 {
    doc.body["batch"]
        .as_u64()
        .unwrap_or_else(|| panic!("{} has no batch number: {}", doc.meta.id, doc.body))
}

/// Writer `w` commits `batches` batches, each putting the same batch number into `/pair/a`,
/// `/pair/b`, one rotating document and its `last` document.
fn writer(store: &Store, w: u64, batches: u64) {
    for i in 0..batches {
        let b = w * batches + i + 1;
        let batch = Batch::new()
            .put("/pair/a", "pair", json!({"batch": b, "writer": w}))
            .patch("/pair/b", json!({"batch": b, "writer": w}))
            .put(
                format!("/w{w}/{}", i % ROTATING),
                "rot",
                json!({"batch": b, "i": i}),
            )
            .put(format!("/w{w}/last"), "last", json!({"batch": b, "i": i}));
        let metas = store.write(batch).unwrap();
        assert_eq!(metas.len(), 4);
        for pair in metas.windows(2) {
            assert_eq!(
                pair[1].seq,
                pair[0].seq + 1,
                "a batch has consecutive seqs: {metas:?}"
            );
            assert_eq!(
                pair[1].update_time_micros, pair[0].update_time_micros,
                "one time per batch"
            );
        }
        assert_eq!(
            metas[0].version, metas[1].version,
            "/pair/a and /pair/b move together"
        );
        assert_eq!(
            metas[3].version, i,
            "only this writer writes its last document"
        );
        if i % COUNTER_EVERY == 0 {
            increment_counter(store);
        }
    }
}

/// Optimistic increment: read, patch if the version is unchanged, retry on conflict.
fn increment_counter(store: &Store) {
    for _ in 0..MAX_ATTEMPTS {
        let doc = store.get("/counter").unwrap().expect("the counter exists");
        let n = doc.body["n"].as_u64().expect("a number");
        match store.patch_if(
            "/counter",
            json!({"n": n + 1}),
            Expect::Version(doc.meta.version),
        ) {
            Ok(meta) => {
                assert_eq!(meta.version, doc.meta.version + 1);
                return;
            }
            Err(Error::Conflict {
                expected, actual, ..
            }) => {
                assert_eq!(expected, Some(doc.meta.version));
                assert!(
                    actual.is_some_and(|a| a > doc.meta.version),
                    "a conflict names a newer version, got {actual:?} after {}",
                    doc.meta.version
                );
            }
            Err(e) => panic!("incrementing the counter failed: {e}"),
        }
    }
    panic!("no increment succeeded in {MAX_ATTEMPTS} attempts");
}

/// What one reader has seen so far; every field only grows.
#[derive(Debug, Default)]
struct Seen {
    pair_version: u64,
    last_seq: u64,
    counter: u64,
    writer_i: [Option<u64>; WRITERS],
}

fn read_pair(store: &Store) -> (Document, Document) {
    let docs = store.list("/pair/").collect::<Result<Vec<_>, _>>().unwrap();
    let [a, b] =
        <[Document; 2]>::try_from(docs).unwrap_or_else(|d| panic!("two pair documents, got {d:?}"));
    assert_eq!(
        (a.meta.id.as_str(), b.meta.id.as_str()),
        ("/pair/a", "/pair/b")
    );
    (a, b)
}

/// One round of reads; panics on a torn batch or on anything going backwards.
fn observe(store: &Store, seen: &mut Seen) {
    let last_seq = store.last_seq();
    assert!(
        last_seq >= seen.last_seq,
        "last_seq went back from {} to {last_seq}",
        seen.last_seq
    );
    seen.last_seq = last_seq;

    let (a, b) = read_pair(store);
    assert_eq!(
        batch_of(&a),
        batch_of(&b),
        "a partial batch is visible: {a:?} {b:?}"
    );
    assert_eq!(
        a.meta.version, b.meta.version,
        "a partial batch is visible: {a:?} {b:?}"
    );
    assert_eq!(
        b.meta.seq,
        a.meta.seq + 1,
        "one batch wrote both: {a:?} {b:?}"
    );
    assert_eq!(a.meta.update_time_micros, b.meta.update_time_micros);
    assert!(
        a.meta.seq <= store.last_seq(),
        "a listed version is beyond last_seq"
    );
    assert!(
        a.meta.version >= seen.pair_version,
        "/pair/a went back from version {} to {}",
        seen.pair_version,
        a.meta.version
    );
    seen.pair_version = a.meta.version;
    let newest = store.get("/pair/a").unwrap().expect("the pair exists");
    assert!(
        newest.meta.version >= seen.pair_version,
        "get is older than an earlier list"
    );
    seen.pair_version = newest.meta.version;

    for (w, seen_i) in seen.writer_i.iter_mut().enumerate() {
        let docs = store
            .list(&format!("/w{w}/"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let Some(last) = docs.iter().find(|d| d.meta.id.ends_with("/last")) else {
            assert!(
                docs.is_empty(),
                "writer {w}: documents without its last one: {docs:?}"
            );
            assert!(seen_i.is_none(), "writer {w}: its documents disappeared");
            continue;
        };
        let i = last.body["i"].as_u64().expect("a number");
        assert!(
            seen_i.is_none_or(|s| s <= i),
            "writer {w}: went back from batch {seen_i:?} to {i}"
        );
        *seen_i = Some(i);
        assert_eq!(
            docs.len() as u64,
            (i + 1).min(ROTATING) + 1,
            "writer {w}: {docs:?}"
        );
        let rotating = docs
            .iter()
            .find(|d| d.meta.id == format!("/w{w}/{}", i % ROTATING))
            .expect("the rotating document of the same batch");
        assert_eq!(
            batch_of(rotating),
            batch_of(last),
            "writer {w}: a partial batch is visible"
        );
        assert!(
            docs.iter().all(|d| batch_of(d) <= batch_of(last)),
            "writer {w}: {docs:?}"
        );
    }

    let counter = store.get("/counter").unwrap().expect("the counter exists");
    let n = counter.body["n"].as_u64().expect("a number");
    assert_eq!(n, counter.meta.version, "every increment is one version");
    assert!(
        n >= seen.counter,
        "the counter went back from {} to {n}",
        seen.counter
    );
    seen.counter = n;
}

fn run(options: Options, batches: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), options.clone());
    store
        .write(
            Batch::new()
                .put("/pair/a", "pair", json!({"batch": 0}))
                .put("/pair/b", "pair", json!({"batch": 0})),
        )
        .unwrap();
    store.put("/counter", "counter", json!({"n": 0})).unwrap();
    let finished = AtomicUsize::new(0);
    let rounds: Vec<usize> = thread::scope(|s| {
        for w in 0..WRITERS as u64 {
            let (store, finished) = (&store, &finished);
            s.spawn(move || {
                writer(store, w, batches);
                finished.fetch_add(1, Ordering::AcqRel);
            });
        }
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (store, finished) = (&store, &finished);
                s.spawn(move || {
                    let mut seen = Seen::default();
                    let mut rounds = 0;
                    // Bounded; ends once every writer is done and one more round has run.
                    while rounds < MAX_ATTEMPTS {
                        let done = finished.load(Ordering::Acquire) == WRITERS;
                        observe(store, &mut seen);
                        rounds += 1;
                        if done {
                            break;
                        }
                    }
                    rounds
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(rounds.iter().all(|&r| r > 0), "{rounds:?}");

    let total = WRITERS as u64 * batches;
    let increments = WRITERS as u64 * batches.div_ceil(COUNTER_EVERY);
    assert_eq!(store.last_seq(), 3 + 4 * total + increments);
    let counter = store.get("/counter").unwrap().unwrap();
    assert_eq!(counter.body["n"], increments, "no increment was lost");

    // Both pair documents hold every batch exactly once, each pair written by one batch, and
    // each writer's batches in its own order.
    let a = store.history("/pair/a").unwrap();
    let b = store.history("/pair/b").unwrap();
    assert_eq!(a.len() as u64, total + 1);
    assert_eq!(b.len() as u64, total + 1);
    let mut numbers = Vec::new();
    let mut per_writer: Vec<Vec<u64>> = vec![Vec::new(); WRITERS];
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(batch_of(x), batch_of(y));
        assert_eq!(y.meta.seq, x.meta.seq + 1);
        assert_eq!(x.meta.update_time_micros, y.meta.update_time_micros);
        numbers.push(batch_of(x));
        if let Some(w) = x.body["writer"].as_u64() {
            per_writer[w as usize].push(batch_of(x));
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (0..=total).collect::<Vec<_>>());
    for (w, list) in per_writer.iter().enumerate() {
        assert!(
            list.windows(2).all(|p| p[0] < p[1]),
            "writer {w}'s batches out of order: {list:?}"
        );
    }

    // The same state after a reopen.
    let before = store.list("").collect::<Result<Vec<_>, _>>().unwrap();
    drop(store);
    let store = open(dir.path(), options);
    let after = store.list("").collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(before, after);
    assert_eq!(store.last_seq(), 3 + 4 * total + increments);
}

#[test]
fn readers_never_see_partial_batches_or_go_back() {
    let batches = if stress() { 2000 } else { 150 };
    run(
        Options::default()
            .with_segment_size(16 << 10)
            .with_durability(Durability::None),
        batches,
    );
}

#[test]
fn group_commit_under_sync_keeps_batches_whole() {
    // With fsync, batches queue up behind each sync and are committed in groups.
    let batches = if stress() { 500 } else { 60 };
    run(Options::default().with_segment_size(16 << 10), batches);
}
