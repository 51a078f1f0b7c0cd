//! Queries as of a time before the retention horizon: `allow_trimmed` answers the documents
//! whose state then is known and counts (and lists) the unknown ones; without it the answer is
//! `HistoryTrimmed`, unless no document the query can match is unknown then.

use serde_json::json;
use strata::{Batch, Query, QuerySpec, Retention, Snapshot, Store, TaskOptions};

use crate::*;

/// Writes, one batch a second from `base + 1 s` on: /pkg/long gets four versions, /pkg/mid
/// three, /pkg/short and /pkg/new one each. Retention keeps two versions of each package.
fn write_history(store: &Store, base: u64) {
    let writes = [
        (1, "/pkg/long", 0),
        (2, "/pkg/short", 0),
        (3, "/pkg/long", 1),
        (4, "/pkg/long", 2),
        (5, "/pkg/mid", 0),
        (6, "/pkg/mid", 1),
        (7, "/pkg/long", 3),
        (8, "/pkg/mid", 2),
        (9, "/pkg/new", 0),
    ];
    for (k, id, n) in writes {
        store
            .write(Batch::new().at_time(base + k * SECOND).put(
                id,
                "package",
                json!({ "n": n, "section": "python" }),
            ))
            .unwrap();
    }
}

fn ids_and_versions(docs: &[strata::Document]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = docs
        .iter()
        .map(|d| (d.meta.id.clone(), d.meta.version))
        .collect();
    v.sort();
    v
}

fn at(base: u64, k: u64) -> Snapshot {
    Snapshot::AsOf(base + k * SECOND)
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|&(id, v)| (id.to_owned(), v)).collect()
}

/// Everything the test checks, on a compacted store (also after a reopen).
fn check(store: &Store, base: u64, reopened: bool) {
    let section = || Query::term("section", "python");
    let spec = |k: u64| QuerySpec::new(section()).snapshot(at(base, k)).count(true);
    // The package horizon: /pkg/mid's dropped version 0 was superseded at 6 s.
    let horizon = base + 6 * SECOND;

    // Before any dropped version was written, every document's state is known (none existed).
    // A reopened log no longer knows when its dropped versions were written (the time of a
    // seq gap is a lower bound): then the documents with dropped versions are unknown.
    if reopened {
        assert_eq!(trimmed(store.query(&spec(0))), (None, horizon));
        let r = store.query(&spec(0).allow_trimmed(true)).unwrap();
        assert_eq!(r.count, Some(0));
        assert_eq!(r.trimmed.map(|t| t.unknown), Some(2));
    } else {
        let r = store.query(&spec(0)).unwrap();
        assert_eq!((r.count, r.trimmed), (Some(0), None));
    }

    // At 2 s: /pkg/long (oldest kept version written at 4 s) and /pkg/mid (at 6 s; it did not
    // exist yet, but nothing kept proves it) are unknown; /pkg/short is known.
    assert_eq!(trimmed(store.query(&spec(2))), (None, horizon));
    let r = store.query(&spec(2).allow_trimmed(true)).unwrap();
    assert_eq!(ids_and_versions(&r.documents), pairs(&[("/pkg/short", 0)]));
    assert_eq!(r.count, Some(1));
    let t = r.trimmed.expect("the answer says what it left out");
    assert_eq!((t.unknown, t.oldest_complete), (2, horizon));
    assert!(t.unknown_ids.is_empty(), "ids only on request");
    let r = store
        .query(&spec(2).allow_trimmed(true).unknown_ids(1))
        .unwrap();
    assert_eq!(r.trimmed.unwrap().unknown_ids, ["/pkg/long"]);
    let r = store
        .query(&spec(2).allow_trimmed(true).unknown_ids(10))
        .unwrap();
    assert_eq!(r.trimmed.unwrap().unknown_ids, ["/pkg/long", "/pkg/mid"]);

    // At 4 s /pkg/long's version 2 is kept: only /pkg/mid is unknown.
    assert_eq!(trimmed(store.query(&spec(4))), (None, horizon));
    let r = store
        .query(&spec(4).allow_trimmed(true).unknown_ids(10))
        .unwrap();
    assert_eq!(
        ids_and_versions(&r.documents),
        pairs(&[("/pkg/long", 2), ("/pkg/short", 0)])
    );
    assert_eq!(r.trimmed.unwrap().unknown_ids, ["/pkg/mid"]);

    // From the horizon on the answer is complete, with or without the option.
    for s in [spec(6), spec(6).allow_trimmed(true)] {
        let r = store.query(&s).unwrap();
        assert_eq!(
            ids_and_versions(&r.documents),
            pairs(&[("/pkg/long", 2), ("/pkg/mid", 1), ("/pkg/short", 0)])
        );
        assert_eq!(r.trimmed, None);
    }

    // A query restricted to ids whose history is complete then needs no option.
    let by_ids = |q: Query, k: u64| store.query(&QuerySpec::new(q).snapshot(at(base, k)));
    let r = by_ids(strata::parse_query("_id:/pkg/short").unwrap(), 2).unwrap();
    assert_eq!(ids_and_versions(&r.documents), pairs(&[("/pkg/short", 0)]));
    assert_eq!(r.trimmed, None);
    let r = by_ids(Query::id_prefix("/pkg/s"), 2).unwrap();
    assert_eq!(ids_and_versions(&r.documents), pairs(&[("/pkg/short", 0)]));
    let r = by_ids(
        strata::parse_query("_id:/pkg/short OR _id:/pkg/new OR _id:/pkg/none").unwrap(),
        2,
    )
    .unwrap();
    assert_eq!(ids_and_versions(&r.documents), pairs(&[("/pkg/short", 0)]));
    let r = by_ids(strata::parse_query("_id:/pkg/long AND n:2").unwrap(), 4).unwrap();
    assert_eq!(ids_and_versions(&r.documents), pairs(&[("/pkg/long", 2)]));
    // … but one naming an unknown document does.
    assert_eq!(
        trimmed(by_ids(strata::parse_query("_id:/pkg/long").unwrap(), 2)),
        (None, horizon)
    );
    assert_eq!(
        trimmed(by_ids(Query::id_prefix("/pkg/"), 4)),
        (None, horizon)
    );

    // Pages of a query and of a task keep the option.
    let paged = spec(4).allow_trimmed(true).limit(1);
    let first = store.query(&paged).unwrap();
    assert_eq!(first.trimmed.as_ref().map(|t| t.unknown), Some(1));
    let second = store
        .query(&paged.clone().page(first.next_page.clone().unwrap()))
        .unwrap();
    assert_eq!(second.trimmed.as_ref().map(|t| t.unknown), Some(1));
    assert_eq!(
        ids_and_versions(&[first.documents, second.documents].concat()),
        pairs(&[("/pkg/long", 2), ("/pkg/short", 0)])
    );
    let first = store.tasks().run(&paged, TaskOptions::default()).unwrap();
    assert_eq!(first.trimmed.as_ref().map(|t| t.unknown), Some(1));
    let second = store
        .tasks()
        .page(first.next_page.as_ref().unwrap())
        .unwrap();
    assert_eq!(second.trimmed.as_ref().map(|t| t.unknown), Some(1));
    assert_eq!(
        ids_and_versions(&[first.documents, second.documents].concat()),
        pairs(&[("/pkg/long", 2), ("/pkg/short", 0)])
    );
    assert_eq!(
        trimmed(store.tasks().run(&spec(4).limit(1), TaskOptions::default())),
        (None, horizon)
    );

    // At most 10 000 ids are listed: more, up to usize::MAX, is a typed error, not a huge list.
    let r = store
        .query(&spec(2).allow_trimmed(true).unknown_ids(10_000))
        .unwrap();
    assert_eq!(r.trimmed.unwrap().unknown_ids.len(), 2);
    for n in [10_001, usize::MAX] {
        assert!(matches!(
            store.query(&spec(2).allow_trimmed(true).unknown_ids(n)),
            Err(strata::Error::Query(strata::QueryError::InvalidSpec { .. }))
        ));
    }
    // `unknown_ids` without the option is a mistake.
    assert!(matches!(
        store.query(&spec(2).unknown_ids(3)),
        Err(strata::Error::Query(strata::QueryError::InvalidSpec { .. }))
    ));
}

#[test]
fn allow_trimmed_answers_the_known_documents_and_counts_the_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options().with_retention("package", Retention::default().with_max_versions(2));
    let store = open(dir.path(), opts());
    let base = now_micros() - HOUR;
    write_history(&store, base);
    settle(&store);
    // Before compaction every snapshot is complete.
    let r = store
        .query(&QuerySpec::new(Query::All).snapshot(at(base, 2)))
        .unwrap();
    assert_eq!(r.trimmed, None);
    assert_eq!(store.compact().unwrap().versions_dropped, 3);
    check(&store, base, false);
    // After a reopen the log knows the same from its seq gaps.
    drop(store);
    let store = open(dir.path(), opts());
    check(&store, base, true);
}
