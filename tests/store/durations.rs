//! Huge durations (issue 11 E): every API that takes a `Duration` accepts any value without a
//! panic. A duration too long for an `Instant` means "never" (no deadline, no expiry, no
//! timer), and durations whose microseconds do not fit a `u64` saturate instead of wrapping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use strata::{
    Batch, Durability, Error, EventKind, MaintenanceOptions, Options, Query, QuerySpec, Retention,
    Store, SubscribeOptions, TaskOptions, TaskPoolOptions, WriteOptions,
};

use crate::open;

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(20);

/// The shortest whole number of seconds that no `Instant` from now on can be moved by.
fn past_instant() -> Duration {
    let now = Instant::now();
    let (mut fits, mut overflows) = (0u64, u64::MAX);
    while overflows - fits > 1 {
        let mid = fits + (overflows - fits) / 2;
        if now.checked_add(Duration::from_secs(mid)).is_some() {
            fits = mid;
        } else {
            overflows = mid;
        }
    }
    Duration::from_secs(overflows)
}

/// Durations at the edges: the largest there is, just past what an `Instant` holds, the
/// first whose microseconds overflow a `u64` (truncated by `as u64`, it is about 0.45 s),
/// and the largest whose microseconds fit.
fn huge() -> Vec<Duration> {
    vec![
        Duration::MAX,
        past_instant(),
        Duration::from_secs(u64::MAX / 1_000_000 + 1),
        Duration::from_micros(u64::MAX),
    ]
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn filled(options: Options) -> Store {
    let store = Store::open_in_memory(options).unwrap();
    let mut batch = Batch::new();
    for i in 0..10 {
        batch = batch.put(format!("/x/{i}"), "x", json!({ "n": i }));
    }
    store.write(batch).unwrap();
    store
}

fn spec() -> QuerySpec {
    QuerySpec::new(Query::kind("x")).limit(3).count(true)
}

// Panicked: "overflow when adding duration to instant" in `Subscription::recv_timeout`.
#[test]
fn recv_timeout_with_a_huge_timeout_waits_for_the_event() {
    for timeout in huge() {
        let store = Store::open_in_memory(Options::default()).unwrap();
        let mut sub = store
            .subscribe(&spec(), SubscribeOptions::default())
            .unwrap();
        store.put("/x/1", "x", json!({})).unwrap();
        let event = sub.recv_timeout(timeout).unwrap().expect("an event");
        assert_eq!(
            (event.kind, event.document.meta.id.as_str()),
            (EventKind::Added, "/x/1")
        );
    }
}

// Panicked in a task's deadline (direct run, submit, and each later page), in
// `Task::wait_timeout`, and in a task's expiry (`TaskOptions::with_expiry`).
#[test]
fn task_deadlines_expiries_and_waits_may_be_huge() {
    for d in huge() {
        let store = filled(Options::default());
        let tasks = store.tasks();
        let first = tasks
            .run(&spec(), TaskOptions::default().with_deadline(d))
            .unwrap();
        assert_eq!(first.count, Some(10));
        let page = tasks.page(first.next_page.as_deref().unwrap()).unwrap();
        assert_eq!(page.documents.len(), 3);

        let options = TaskOptions::default().with_deadline(d).with_expiry(d);
        let task = tasks.submit(&spec(), options).unwrap();
        let result = task.wait_timeout(d).unwrap().expect("finished");
        assert_eq!(result.count, Some(10));
        let page = tasks.page(result.next_page.as_deref().unwrap()).unwrap();
        assert_eq!(page.documents.len(), 3);
        // A task that never expires says so with the largest time there is; one whose
        // expiry fits says when.
        let expires = task.info().expires_micros;
        match u64::try_from(d.as_micros()) {
            Ok(micros) if micros < u64::MAX - now_micros() => {
                assert!(
                    expires >= now_micros() && expires < u64::MAX,
                    "{d:?}: {expires}"
                )
            }
            _ => assert_eq!(expires, u64::MAX, "{d:?}"),
        }

        // An expected count with a huge deadline is met by a later write.
        let task = tasks
            .submit(
                &spec(),
                TaskOptions::default()
                    .with_deadline(d)
                    .with_expected_count(11),
            )
            .unwrap();
        store.put("/x/10", "x", json!({})).unwrap();
        let result = task.wait_timeout(WAIT).unwrap().expect("finished");
        assert_eq!(result.count, Some(11));
    }
}

// Panicked in every task when the pool's default expiry was huge.
#[test]
fn a_huge_pool_expiry_means_tasks_never_expire() {
    for d in huge() {
        let pool = TaskPoolOptions::default().with_expiry(d);
        let store = filled(Options::default().with_task_options(pool));
        let tasks = store.tasks();
        let first = tasks.run(&spec(), TaskOptions::default()).unwrap();
        assert_eq!(first.count, Some(10));
        let task = tasks.submit(&spec(), TaskOptions::default()).unwrap();
        assert_eq!(task.wait().unwrap().count, Some(10));
        assert!(tasks.page(first.next_page.as_deref().unwrap()).is_ok());
    }
}

// The maintenance thread died at start (panic) with a huge compaction interval: expired
// documents never got their tombstone, and nothing said so.
#[test]
fn a_huge_compaction_interval_keeps_background_expiry_running() {
    for d in huge() {
        let maintenance = MaintenanceOptions::default().with_compaction_interval(Some(d));
        let store =
            Store::open_in_memory(Options::default().with_maintenance(maintenance)).unwrap();
        let mut sub = store
            .subscribe(&spec(), SubscribeOptions::default())
            .unwrap();
        let expires = now_micros() + 20_000;
        store
            .put_with(
                "/x/1",
                "x",
                json!({}),
                WriteOptions::default().with_expires_at(expires),
            )
            .unwrap();
        assert_eq!(
            sub.recv_timeout(WAIT).unwrap().unwrap().kind,
            EventKind::Added
        );
        let tombstone = sub
            .recv_timeout(WAIT)
            .unwrap()
            .expect("the expiry tombstone");
        assert_eq!(tombstone.kind, EventKind::Deleted, "{d:?}");
        assert!(tombstone.document.meta.deleted);
        assert_eq!(store.history("/x/1").unwrap().len(), 2);
    }
}

// The first put panicked in the writer ("overflow when adding duration to instant") and the
// store was poisoned for good.
#[test]
fn a_huge_buffered_interval_syncs_only_when_the_store_closes() {
    for d in huge() {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options::default().with_durability(Durability::Buffered(d));
        let store = open(dir.path(), options());
        for i in 0..3 {
            store
                .put(&format!("/x/{i}"), "x", json!({ "n": i }))
                .unwrap();
        }
        assert_eq!(store.get("/x/2").unwrap().unwrap().body["n"], 2);
        drop(store);
        let store = open(dir.path(), options());
        assert_eq!(store.get("/x/2").unwrap().unwrap().body["n"], 2);
    }
}

// `max_time_ahead` was converted with `as_micros() as u64`: a duration just over `u64::MAX`
// microseconds wrapped to about 0.45 s and refused a batch an hour ahead.
#[test]
fn a_huge_max_time_ahead_accepts_any_later_time() {
    for d in huge() {
        let store = Store::open_in_memory(Options::default().with_max_time_ahead(d)).unwrap();
        let hour_ahead = now_micros() + 3_600_000_000;
        let metas = store
            .write(Batch::new().at_time(hour_ahead).put("/x/1", "x", json!({})))
            .unwrap();
        assert_eq!(metas[0].update_time_micros, hour_ahead);
        // The end of time is as far ahead as microseconds go.
        let end = store.write(Batch::new().at_time(u64::MAX).put("/x/1", "x", json!({})));
        match u64::try_from(d.as_micros()) {
            Ok(micros) if micros < u64::MAX - now_micros() => {
                assert!(
                    matches!(end, Err(Error::TimeTooFarAhead { .. })),
                    "{d:?}: {end:?}"
                )
            }
            _ => assert!(end.is_ok(), "{d:?}: {end:?}"),
        }
    }
}

// Retention's age went through `as_micros() as u64`: an age just over `u64::MAX`
// microseconds wrapped to about 0.45 s, and compaction dropped every older version.
#[test]
fn a_huge_retention_age_keeps_every_version() {
    for d in huge() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default()
            .with_segment_size(4096)
            .with_retention("x", Retention::default().with_max_age(d));
        let store = open(dir.path(), options);
        // Versions superseded ten days ago, in sealed segments.
        let start = now_micros() - 10 * 86_400 * 1_000_000;
        for i in 0..50 {
            let pad = "p".repeat(200);
            store
                .write(Batch::new().at_time(start + i).put(
                    "/x/1",
                    "x",
                    json!({ "i": i, "pad": pad }),
                ))
                .unwrap();
        }
        store.wait_for_index().unwrap();
        let report = store.compact().unwrap();
        assert_eq!(report.versions_dropped, 0, "{d:?}");
        assert_eq!(store.history("/x/1").unwrap().len(), 50);
    }
}
