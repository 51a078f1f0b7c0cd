//! Continuous queries and collections.
//!
//! Synchronisation is by events only: a test waits (with a generous timeout) for events that
//! must come, and a short timeout is used only to assert that no further event comes.

mod collections;
mod failures;
mod subscribe;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use strata::{Event, EventKind, Store, Subscription};

/// How long to wait for an event that must come (generous: CI machines are slow).
pub const WAIT: Duration = Duration::from_secs(20);

/// How long to wait before concluding that no further event comes.
pub const QUIET: Duration = Duration::from_millis(100);

/// A fresh in-memory store.
pub fn mem() -> Store {
    Store::open_in_memory(Default::default()).unwrap()
}

/// The next event, which must come.
#[track_caller]
pub fn next(sub: &mut Subscription) -> Event {
    match sub.recv_timeout(WAIT) {
        Ok(Some(e)) => e,
        Ok(None) => panic!("no event within {WAIT:?}"),
        Err(e) => panic!("the subscription failed: {e}"),
    }
}

/// The next `n` events, which must come.
#[track_caller]
pub fn take(sub: &mut Subscription, n: usize) -> Vec<Event> {
    (0..n).map(|_| next(sub)).collect()
}

/// Asserts that no event is pending.
#[track_caller]
pub fn assert_quiet(sub: &mut Subscription) {
    if let Some(e) = sub.recv_timeout(QUIET).unwrap() {
        panic!(
            "unexpected event {:?} {} v{} seq {}",
            e.kind,
            e.document.meta.id,
            e.document.meta.version,
            e.seq()
        );
    }
}

/// An event reduced to what identifies it: kind, id, version, seq.
pub type Key = (EventKind, String, u64, u64);

pub fn key(e: &Event) -> Key {
    (
        e.kind,
        e.document.meta.id.clone(),
        e.document.meta.version,
        e.seq(),
    )
}

pub fn keys(events: &[Event]) -> Vec<Key> {
    events.iter().map(key).collect()
}

/// The events a subscription must deliver for the versions of `ids` after seq `after`, by
/// brute force over `store.history`: every version is compared with its predecessor under
/// `matches` (a predicate on live bodies). In seq order.
pub fn expected_events(
    store: &Store,
    ids: &BTreeSet<String>,
    matches: impl Fn(&Value) -> bool,
    after: u64,
    stopped_matching: bool,
) -> Vec<Key> {
    let mut out = Vec::new();
    for id in ids {
        let history = store.history(id).unwrap();
        for (i, v) in history.iter().enumerate() {
            assert_eq!(
                v.meta.version, i as u64,
                "history of {id} has every version"
            );
            let was = i > 0 && !history[i - 1].meta.deleted && matches(&history[i - 1].body);
            let now = !v.meta.deleted && matches(&v.body);
            let kind = match (was, now) {
                (true, true) => Some(EventKind::Updated),
                (false, true) => Some(EventKind::Added),
                (true, false) if v.meta.deleted => Some(EventKind::Deleted),
                (true, false) => stopped_matching.then_some(EventKind::StoppedMatching),
                (false, false) => None,
            };
            if let (Some(kind), true) = (kind, v.meta.seq > after) {
                out.push((kind, id.clone(), v.meta.version, v.meta.seq));
            }
        }
    }
    out.sort_by_key(|k| k.3);
    out
}

/// Asserts that the events' seqs strictly increase.
#[track_caller]
pub fn assert_seq_increasing(events: &[Event]) {
    for w in events.windows(2) {
        assert!(
            w[0].seq() < w[1].seq(),
            "seq {} then {}",
            w[0].seq(),
            w[1].seq()
        );
    }
}

/// Runs `f` on a thread and returns its result, failing the test if it takes longer than
/// [`WAIT`] (a hang would otherwise stall the test binary).
#[track_caller]
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WAIT) {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {WAIT:?}"),
    }
}
