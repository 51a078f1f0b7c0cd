//! A feed thread that fails is visible: in its subscriptions, in every later `subscribe`, and
//! in `Stats::background_failures`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use strata::backend::SimBackend;
use strata::{Error, Options, Query, QuerySpec, Store, SubscribeOptions};

use crate::WAIT;

// The feed thread stopped on an error (here a damaged record it had to read): its
// subscriptions learnt why, but a later `subscribe` said "store is closed" and nothing else
// showed the failure.
#[test]
fn a_failed_feed_fails_later_subscriptions_and_shows_in_stats() {
    let sim = SimBackend::new();
    let store =
        Store::open_with_backend(Arc::new(sim.clone()), Path::new("/db"), Options::default())
            .unwrap();
    store.put("/a", "x", json!({"n": 1})).unwrap();
    // Damage the record's last byte in the active segment (read with pread, not mapped).
    let segment = Path::new("/db/log/00000000000000000001.log");
    let mut bytes = sim.file_bytes(segment).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    sim.set_file_bytes(segment, bytes);

    let spec = QuerySpec::new(Query::kind("x"));
    let mut sub = store
        .subscribe(&spec, SubscribeOptions::default().with_from_seq(0))
        .unwrap();
    let reason = match sub.recv_timeout(WAIT) {
        Err(Error::SubscriptionFailed { reason }) => reason,
        other => panic!("expected SubscriptionFailed, got {other:?}"),
    };
    assert!(reason.starts_with("corruption in "), "{reason}");

    // Stats say so (bounded wait: the feed records it as it exits).
    let until = Instant::now() + WAIT;
    while store.stats().background_failures.is_empty() {
        assert!(Instant::now() < until, "the failure never showed in stats");
        std::thread::yield_now();
    }
    assert_eq!(
        store.stats().background_failures,
        vec![format!("feed: {reason}")]
    );
    match store.subscribe(&spec, SubscribeOptions::default()) {
        Err(Error::SubscriptionFailed { reason: later }) => assert_eq!(later, reason),
        other => panic!("expected SubscriptionFailed, got {other:?}"),
    }
    // Writes and reads go on.
    store.put("/b", "x", json!({"n": 2})).unwrap();
    assert_eq!(store.get("/b").unwrap().unwrap().body, json!({"n": 2}));
}
