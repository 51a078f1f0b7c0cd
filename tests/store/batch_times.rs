//! Per-operation update times inside one batch (an import of history in one batch and one
//! sync), and batch errors that name the operation that failed.

use serde_json::json;
use strata::{Batch, Error, Expect, Options, Query, QuerySpec, Snapshot, Store, WriteOptions};

use crate::open;

/// `kind:pkg` documents visible as of `t`.
fn count_at(store: &Store, t: u64) -> u64 {
    let spec = QuerySpec::new(Query::kind("pkg"))
        .snapshot(Snapshot::AsOf(t))
        .count(true)
        .limit(0);
    store.query(&spec).unwrap().count.unwrap()
}

/// The body field `v` of `id` as of `t` (`None`: absent then).
fn v_at(store: &Store, id: &str, t: u64) -> Option<serde_json::Value> {
    store
        .get_at(id, t)
        .unwrap()
        .map(|d| d.body.get("v").cloned().unwrap_or_default())
}

// Regression: a batch had one update time, so history (each version with its own time) took
// one batch, and one fsync, per version; the times below could not be written in one batch.
#[test]
fn a_batch_with_increasing_op_times_reads_back_each_version_at_its_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Options::default());
    let last = store
        .put("/other", "other", json!({}))
        .unwrap()
        .update_time_micros;
    let base = last + 1_000;
    let metas = store
        .write(
            Batch::new()
                .put("/p", "pkg", json!({"v": 1}))
                .timed(base)
                .put("/p", "pkg", json!({"v": 2}))
                .timed(base + 10)
                .put("/q", "pkg", json!({"v": 1}))
                .timed(base + 20)
                .patch("/p", json!({"v": 3}))
                .timed(base + 30)
                .delete_with("/q", WriteOptions::default().with_at_time(base + 40))
                // No time of its own: the previous operation's.
                .put("/r", "pkg", json!({"v": 1})),
        )
        .unwrap();
    let seen: Vec<(&str, u64, u64, u64)> = metas
        .iter()
        .map(|m| (m.id.as_str(), m.version, m.seq, m.update_time_micros))
        .collect();
    assert_eq!(
        seen,
        [
            ("/p", 0, 2, base),
            ("/p", 1, 3, base + 10),
            ("/q", 0, 4, base + 20),
            ("/p", 2, 5, base + 30),
            ("/q", 1, 6, base + 40),
            ("/r", 0, 7, base + 40),
        ]
    );
    assert_eq!(
        store.stats().writes.count,
        2,
        "one write call for the batch"
    );

    let check = |store: &Store, ctx: &str| {
        store.wait_for_index().unwrap();
        let p = [
            (base - 1, None),
            (base, Some(json!(1))),
            (base + 9, Some(json!(1))),
            (base + 10, Some(json!(2))),
            (base + 29, Some(json!(2))),
            (base + 30, Some(json!(3))),
        ];
        for (t, want) in p {
            assert_eq!(v_at(store, "/p", t), want, "{ctx}: /p as of {t}");
        }
        let q = [
            (base + 19, None),
            (base + 20, Some(json!(1))),
            (base + 39, Some(json!(1))),
            (base + 40, None),
        ];
        for (t, want) in q {
            assert_eq!(v_at(store, "/q", t), want, "{ctx}: /q as of {t}");
        }
        let times: Vec<u64> = store
            .history("/p")
            .unwrap()
            .iter()
            .map(|d| d.meta.update_time_micros)
            .collect();
        assert_eq!(times, [base, base + 10, base + 30], "{ctx}: history of /p");
        // Queries as of a time between two operations see the earlier ones only.
        let counts: Vec<u64> = [base - 1, base + 5, base + 25, base + 39, base + 40]
            .iter()
            .map(|&t| count_at(store, t))
            .collect();
        assert_eq!(counts, [0, 1, 2, 2, 2], "{ctx}: /p, /q, /r as of each time");
    };
    check(&store, "before a reopen");
    drop(store);
    let store = open(dir.path(), Options::default());
    check(&store, "after a reopen");
    let next = store.put("/s", "pkg", json!({})).unwrap();
    assert!(
        next.update_time_micros > base + 40,
        "a later batch gets a later time: {next:?}"
    );
}

// Regression: an operation's time was not checked against the previous operation's, and the
// error did not say which operation asked for it.
#[test]
fn a_time_not_later_than_the_previous_one_is_refused_naming_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Options::default());
    let last = store
        .put("/a", "pkg", json!({}))
        .unwrap()
        .update_time_micros;
    let before = store.last_seq();
    let cases = [
        // (times of the three operations, the index refused, the time it had to pass)
        ([last + 10, last + 10, last + 30], 1, last + 10),
        ([last + 10, last + 20, last + 15], 2, last + 20),
        ([last, last + 20, last + 30], 0, last),
        ([last - 5, last + 20, last + 30], 0, last),
    ];
    for (times, index, must_pass) in cases {
        let batch = Batch::new()
            .put("/b", "pkg", json!({}))
            .timed(times[0])
            .patch("/a", json!({"x": 1}))
            .timed(times[1])
            .put("/c", "pkg", json!({}))
            .timed(times[2]);
        let err = store.write(batch).unwrap_err();
        let id = ["/b", "/a", "/c"][index];
        assert!(
            matches!(&err, Error::BatchOp { index: i, len: 3, id: d, .. } if *i == index && d == id),
            "{times:?}: {err:?}"
        );
        assert_eq!(err.batch_op(), Some((index, id)));
        assert!(
            matches!(err.reason(), Error::TimeNotLater { requested, last }
                if *requested == times[index] && *last == must_pass),
            "{times:?}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("operation {index} of 3 in the batch")),
            "{err}"
        );
        assert_eq!(store.last_seq(), before, "{times:?}: nothing is written");
    }
    // A batch time and an operation's own time: the operation's must pass the batch's.
    let err = store
        .write(
            Batch::new()
                .at_time(last + 100)
                .put("/b", "pkg", json!({}))
                .put("/c", "pkg", json!({}))
                .timed(last + 100),
        )
        .unwrap_err();
    assert_eq!(err.batch_op(), Some((1, "/c")), "{err}");
    assert_eq!(store.last_seq(), before);
}

// Regression: a failed batch said what failed but not which of its operations, so a caller (the
// CLI's import) had to probe with single writes to find the bad one.
#[test]
fn a_batch_error_names_the_operation_its_index_and_id() {
    let store = Store::open_in_memory(Options::default()).unwrap();
    store.put("/d/3", "pkg", json!({})).unwrap();
    let before = store.last_seq();
    let batch = (0..10).fold(Batch::new(), |b, i| {
        let id = format!("/d/{i}");
        if i == 3 {
            b.put_if(id, "pkg", json!({"i": i}), Expect::Version(7))
        } else {
            b.put(id, "pkg", json!({"i": i}))
        }
    });
    let err = store.write(batch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation 3 of 10 in the batch (counting from 0), on /d/3: \
         version conflict on /d/3: expected 7, actual 0"
    );
    assert!(
        matches!(&err, Error::BatchOp { index: 3, len: 10, id, .. } if id == "/d/3"),
        "{err:?}"
    );
    assert!(
        matches!(
            err.reason(),
            Error::Conflict {
                expected: Some(7),
                actual: Some(0),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the reason is the source"
    );

    // Errors the facade finds before the engine (an invalid body) name the operation too.
    let err = store
        .write(
            Batch::new()
                .put("/ok", "pkg", json!({}))
                .put("/bad", "pkg", json!([1, 2])),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::BatchOp { index: 1, len: 2, id, .. } if id == "/bad"),
        "{err:?}"
    );
    assert!(matches!(err.reason(), Error::InvalidBody { .. }), "{err:?}");
    // A patch of a missing document, third of three.
    let err = store
        .write(
            Batch::new()
                .put("/x", "pkg", json!({}))
                .put("/y", "pkg", json!({}))
                .patch("/missing", json!({})),
        )
        .unwrap_err();
    assert_eq!(err.batch_op(), Some((2, "/missing")), "{err}");
    assert!(matches!(err.reason(), Error::NotFound { .. }), "{err:?}");
    assert_eq!(
        store.last_seq(),
        before,
        "nothing of the batches is written"
    );

    // The single-operation calls return the reason itself, as they always did.
    let err = store
        .put_if("/d/3", "pkg", json!({}), Expect::Version(7))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let err = store.patch("/missing", json!({})).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

// Extreme per-operation times: a time at the top of the range (u64::MAX µs, far past year
// 9999) is refused like a batch time too far ahead, naming the operation, and nothing is
// written; the store keeps taking writes at ordinary times.
#[test]
fn an_op_time_at_the_top_of_the_range_is_refused_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Options::default());
    let now = store
        .put("/a", "pkg", json!({"v": 0}))
        .unwrap()
        .update_time_micros;
    for extreme in [u64::MAX, i64::MAX as u64, 253_402_300_800_000_000] {
        let err = store
            .write(
                Batch::new()
                    .put("/b", "pkg", json!({"v": 1}))
                    .timed(now + 1)
                    .put("/c", "pkg", json!({"v": 2}))
                    .timed(extreme),
            )
            .unwrap_err();
        assert_eq!(err.batch_op().map(|op| op.0), Some(1), "{err}");
        assert!(
            matches!(err.reason(), Error::TimeTooFarAhead { .. }),
            "{extreme}: {err}"
        );
        assert!(
            store.get("/b").unwrap().is_none(),
            "{extreme}: partly written"
        );
    }
    let meta = store.put("/b", "pkg", json!({"v": 3})).unwrap();
    assert!(meta.update_time_micros > now);
}
