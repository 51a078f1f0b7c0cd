//! Compaction and subscriptions: a subscription that has not passed a version keeps it (and
//! the version before it), so its events are complete and right.

use strata::{EventKind, Query, QuerySpec, Retention, SubscribeOptions};

use crate::*;

#[test]
fn compaction_keeps_what_a_subscription_has_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let options = || options().with_retention("reading", Retention::default().with_max_versions(1));
    let store = open(dir.path(), options());
    // A buffer of one event: the subscription pauses after the first one, until it is read.
    let mut sub = store
        .subscribe(
            &QuerySpec::new(Query::kind("reading")),
            SubscribeOptions::default().with_buffer(1),
        )
        .unwrap();
    for n in 0..20 {
        store.put("/r", "reading", body("/r", n, 300)).unwrap();
    }
    settle(&store);
    let report = store.compact().unwrap();
    assert_eq!(
        report.versions_dropped, 0,
        "the subscription has not passed the versions: {report:?}"
    );

    // Every event comes, each with its version's body and the right kind (an update needs the
    // version before it).
    for n in 0..20 {
        let e = match sub.recv_timeout(WAIT) {
            Ok(Some(e)) => e,
            other => panic!("event {n}: {other:?}"),
        };
        let kind = if n == 0 {
            EventKind::Added
        } else {
            EventKind::Updated
        };
        assert_eq!((e.kind, e.document.meta.version), (kind, n));
        assert_eq!(e.document.body, body("/r", n, 300));
    }
    assert_eq!(sub.recv_timeout(QUIET).unwrap(), None);
    drop(sub);

    // Without subscriptions (a reopened store has none), the old versions go.
    drop(store);
    let store = open(dir.path(), options());
    store.wait_for_index().unwrap();
    assert_eq!(store.compact().unwrap().versions_dropped, 19);
    assert_eq!(store.history("/r").unwrap().len(), 1);
}
