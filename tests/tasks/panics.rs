//! A task whose query panics fails that task alone: its waiters wake, its slot is freed, the
//! worker serves the next task and the panic is in the store's background failures.

use std::time::Duration;

use strata::{Error, Query, QuerySpec, TaskOptions, TaskStage};

use crate::{fill, finish, store_with_pool, LONG};

/// The error of a task whose query panicked with `message`.
fn is_panic(e: &Error, message: &str) -> bool {
    matches!(e, Error::TaskFailed { source, .. }
        if matches!(&**source, Error::TaskPanicked { message: m } if m == message))
}

// A panicking task worker left `wait` hanging for ever, leaked its slot and, with every worker
// gone that way, stalled the pool.
#[test]
fn a_panicking_task_fails_alone_and_the_pool_serves_on() {
    let store = store_with_pool(2, 16);
    fill(&store, "x", 3);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("x"));
    let panicking = || TaskOptions::default().with_inject_panic(0, "boom in the query");

    // As many panicking tasks as workers: before the fix they took every slot for good.
    let first = tasks.submit(&spec, panicking()).unwrap();
    let second = tasks.submit(&spec, panicking()).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = {
        let first = first.clone();
        std::thread::spawn(move || tx.send(first.wait().map(|_| ())).unwrap())
    };
    let waited = rx
        .recv_timeout(LONG)
        .expect("wait() on a panicked task returned");
    waiter.join().unwrap();
    let e = waited.unwrap_err();
    assert!(is_panic(&e, "boom in the query"), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "task {} failed: the query panicked: boom in the query",
            first.id()
        )
    );
    let e = finish(&second).unwrap_err();
    assert!(is_panic(&e, "boom in the query"), "{e:?}");
    for task in [&first, &second] {
        let info = task.info();
        assert_eq!(info.stage, TaskStage::Failed);
        assert_eq!(
            info.error.as_deref(),
            Some("the query panicked: boom in the query")
        );
        assert!(info.finished_micros.is_some());
    }

    // The workers live on: more tasks than workers all finish.
    let more: Vec<_> = (0..5)
        .map(|_| tasks.submit(&spec, TaskOptions::default()).unwrap())
        .collect();
    for task in &more {
        assert_eq!(finish(task).unwrap().documents.len(), 3);
    }

    // A direct run that panics answers with the panic (as it answers with any error of its
    // query) on the caller's thread, and frees its slot.
    let e = tasks.run(&spec, panicking()).unwrap_err();
    assert!(
        matches!(&e, Error::TaskPanicked { message } if message == "boom in the query"),
        "{e:?}"
    );
    assert_eq!(
        tasks
            .run(&spec, TaskOptions::default())
            .unwrap()
            .documents
            .len(),
        3
    );

    // Each panic is a recorded background failure.
    let failures = store.stats().background_failures;
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.contains("panicked: boom in the query"))
            .count(),
        3,
        "{failures:?}"
    );
    // The failure stays the task's answer.
    let again = first.wait_timeout(Duration::ZERO).unwrap_err();
    assert!(is_panic(&again, "boom in the query"), "{again:?}");
}

// A page fetch whose query panicked killed its worker (the fetch answered `Closed`, and the
// worker's slot was never freed).
#[test]
fn a_panicking_page_fetch_answers_and_the_pool_serves_on() {
    let store = store_with_pool(1, 16);
    fill(&store, "x", 3);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("x")).limit(1);
    let task = tasks
        .submit(
            &spec,
            TaskOptions::default().with_inject_panic(1, "boom in a page"),
        )
        .unwrap();
    let first = finish(&task).unwrap();
    assert_eq!(first.documents.len(), 1);
    let token = first.next_page.expect("a second page");

    // The only worker runs both fetches: each answers with the panic.
    for _ in 0..2 {
        let e = tasks.page(&token).unwrap_err();
        assert!(
            matches!(&e, Error::TaskPanicked { message } if message == "boom in a page"),
            "{e:?}"
        );
    }
    // The task keeps its first result; the worker serves the next task.
    assert_eq!(task.stage(), TaskStage::Finished);
    let next = tasks.submit(&spec, TaskOptions::default()).unwrap();
    assert_eq!(finish(&next).unwrap().documents.len(), 1);
    let failures = store.stats().background_failures;
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.ends_with(": panicked: boom in a page"))
            .count(),
        2,
        "{failures:?}"
    );
}
