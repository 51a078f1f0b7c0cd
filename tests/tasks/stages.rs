//! Stage transitions and timings, cancel, deadlines, and specs refused at submit.

use std::time::{Duration, Instant};

use serde_json::json;
use strata::{Error, Query, QuerySpec, TaskOptions, TaskStage};

use crate::{
    big_store, fill, finish, ids, is_invalid_spec, memory_store, slow_spec, store_with_pool,
    wait_stage, wait_started, Gate, BIG, LONG,
};

#[test]
fn a_task_goes_from_created_to_running_to_finished() {
    let store = store_with_pool(1, 16);
    fill(&store, "x", 1);
    let tasks = store.tasks();
    let gate = Gate::close(&store, "stages", "");

    // The only worker is busy: the task stays queued, untouched.
    let spec = QuerySpec::new(Query::kind("x"));
    let task = tasks
        .submit(
            &spec,
            TaskOptions::default()
                .with_expected_count(2)
                .with_deadline(LONG),
        )
        .unwrap();
    assert_eq!(task.stage(), TaskStage::Created);
    let queued = task.info();
    assert_eq!(queued.stage, TaskStage::Created);
    assert_eq!(queued.started_micros, None);
    assert_eq!(queued.finished_micros, None);
    assert_eq!(queued.runs, 0);
    assert_eq!(queued.error, None);
    assert!(queued.query.contains("\"x\""), "{}", queued.query);
    assert_eq!(task.wait_timeout(Duration::ZERO).unwrap(), None);

    // A worker takes it: it runs, counts one match of the two it expects, and waits.
    gate.open();
    wait_stage(&task, TaskStage::Running);
    crate::eventually("the task has counted its first run", || {
        task.info().count == Some(1)
    });
    let running = task.info();
    assert_eq!(running.stage, TaskStage::Running);
    assert!(running.started_micros.is_some());
    assert_eq!(running.finished_micros, None);
    assert_eq!(task.wait_timeout(Duration::ZERO).unwrap(), None);

    // The write it waits for finishes it.
    store.put("/x/new", "x", json!({})).unwrap();
    let result = task.wait_timeout(LONG).unwrap().expect("finished");
    assert_eq!(result.count, Some(2));
    assert_eq!(ids(&result), ["/x/0000", "/x/new"]);
    let done = task.info();
    assert_eq!(done.stage, TaskStage::Finished);
    assert!(done.runs >= 2, "runs {}", done.runs);
    assert_eq!(done.count, Some(2));
    assert_eq!(done.error, None);
    let (started, finished) = (done.started_micros.unwrap(), done.finished_micros.unwrap());
    assert!(done.created_micros <= started, "{done:?}");
    assert!(started <= finished, "{done:?}");
    assert_eq!(
        started,
        running.started_micros.unwrap(),
        "started is the first start"
    );
    // A finished task answers again with the same result.
    assert_eq!(task.wait().unwrap(), result);
}

#[test]
fn a_plain_task_finishes_with_its_timings_and_result() {
    let store = memory_store();
    fill(&store, "t", 7);
    let spec = QuerySpec::new(Query::kind("t")).count(true).limit(3);
    let before = strata_now();
    let task = store
        .tasks()
        .submit(&spec, TaskOptions::default().with_submitter("alice"))
        .unwrap();
    let result = finish(&task).unwrap();
    let after = strata_now();
    assert_eq!(result.count, Some(7));
    assert_eq!(result.documents.len(), 3);
    assert_eq!(result.snapshot_seq, store.last_seq());
    // The same answer as the query run directly.
    let direct = store.query(&spec).unwrap();
    assert_eq!(result.documents, direct.documents);
    assert_eq!(result.snapshot_seq, direct.snapshot_seq);
    assert!(result.next_page.is_some() && direct.next_page.is_some());

    let info = task.info();
    assert_eq!(info.id, task.id());
    assert_eq!(info.stage, TaskStage::Finished);
    assert_eq!(info.submitter, "alice");
    assert_eq!(info.runs, 1);
    assert_eq!(info.count, Some(7));
    assert_eq!(info.pages_fetched, 0);
    let started = info.started_micros.expect("started");
    let finished = info.finished_micros.expect("finished");
    assert!(before <= info.created_micros, "{info:?}");
    assert!(
        info.created_micros <= started && started <= finished,
        "{info:?}"
    );
    assert!(finished <= after, "{info:?}");
    // The default expiry is ten minutes after submission.
    assert_eq!(info.expires_micros, info.created_micros + 600_000_000);

    // Another handle on the same task sees the same.
    let again = store.tasks().get(task.id()).unwrap();
    assert_eq!(again.info(), info);
    assert_eq!(again.wait().unwrap(), result);
    assert!(matches!(
        store.tasks().get(u64::MAX),
        Err(Error::UnknownTask { id: u64::MAX })
    ));
}

/// The wall clock in microseconds, as `TaskInfo` reports times.
fn strata_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[test]
fn a_queued_task_cancelled_never_runs() {
    let store = store_with_pool(1, 16);
    fill(&store, "q", 3);
    let tasks = store.tasks();
    let gate = Gate::close(&store, "cancel-queued", "");
    let spec = QuerySpec::new(Query::kind("q")).count(true);
    let task = tasks.submit(&spec, TaskOptions::default()).unwrap();
    assert_eq!(task.stage(), TaskStage::Created);

    task.cancel();
    // Cancelled at once, without waiting for a worker.
    assert_eq!(task.stage(), TaskStage::Cancelled);
    let id = task.id();
    assert!(matches!(task.wait(), Err(Error::TaskCancelled { id: i }) if i == id));
    assert!(matches!(
        task.wait_timeout(Duration::ZERO),
        Err(Error::TaskCancelled { .. })
    ));
    let info = task.info();
    assert_eq!(info.started_micros, None);
    assert!(info.finished_micros.is_some());
    assert!(info.error.is_some());
    task.cancel(); // again: nothing changes
    assert_eq!(task.info(), info);

    // The worker comes free and takes the queue in order: the cancelled task first (skipped),
    // then one submitted after it.
    gate.open();
    let after = tasks.submit(&spec, TaskOptions::default()).unwrap();
    assert_eq!(finish(&after).unwrap().count, Some(3));
    let info = task.info();
    assert_eq!(info.stage, TaskStage::Cancelled);
    assert_eq!(info.runs, 0, "a cancelled task ran");
    assert_eq!(info.started_micros, None);
    assert!(matches!(task.wait(), Err(Error::TaskCancelled { .. })));
}

#[test]
fn cancelling_a_running_query_stops_it() {
    let store = big_store();
    let tasks = store.tasks();
    let task = tasks.submit(&slow_spec(), TaskOptions::default()).unwrap();
    wait_started(&task);
    let cancelled_at = Instant::now();
    task.cancel();
    let outcome = task.wait_timeout(LONG);
    let took = cancelled_at.elapsed();
    let id = task.id();
    assert!(
        matches!(outcome, Err(Error::TaskCancelled { id: i }) if i == id),
        "{outcome:?} (the query may have finished before the cancel: {took:?})"
    );
    assert_eq!(task.stage(), TaskStage::Cancelled);
    let info = task.info();
    assert!(info.started_micros.is_some());
    assert!(info.finished_micros.is_some());
    assert_eq!(info.runs, 1);
    assert!(info.error.unwrap().contains("cancel"));
    // The store and the pool carry on.
    let count = QuerySpec::new(Query::kind("big")).count(true).limit(0);
    let r = tasks.run(&count, TaskOptions::default()).unwrap();
    assert_eq!(r.count, Some(BIG as u64));
}

#[test]
fn cancelling_a_task_waiting_for_its_expected_count_ends_it() {
    let store = memory_store();
    fill(&store, "w", 1);
    let task = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("w")),
            TaskOptions::default()
                .with_expected_count(3)
                .with_deadline(LONG),
        )
        .unwrap();
    crate::eventually("the task has run once and waits", || {
        task.info().count == Some(1)
    });
    assert_eq!(task.stage(), TaskStage::Running);
    task.cancel();
    // Without a write: the cancel itself must wake it (well before its deadline).
    let outcome = task.wait_timeout(LONG / 2);
    assert!(
        matches!(outcome, Err(Error::TaskCancelled { .. })),
        "{outcome:?}"
    );
    let info = task.info();
    assert_eq!(info.stage, TaskStage::Cancelled);
    assert_eq!(info.runs, 1);
    assert!(info.started_micros.is_some() && info.finished_micros.is_some());
    // A write later does not bring it back.
    store.put("/w/more", "w", json!({})).unwrap();
    assert_eq!(task.stage(), TaskStage::Cancelled);
}

#[test]
fn cancelling_a_finished_task_keeps_its_result() {
    let store = memory_store();
    fill(&store, "f", 2);
    let task = store
        .tasks()
        .submit(&QuerySpec::new(Query::kind("f")), TaskOptions::default())
        .unwrap();
    let result = finish(&task).unwrap();
    task.cancel();
    assert_eq!(task.stage(), TaskStage::Finished);
    assert_eq!(task.wait().unwrap(), result);
}

#[test]
fn a_query_past_its_deadline_fails_with_timed_out() {
    let store = big_store();
    let tasks = store.tasks();
    let submitted = Instant::now();
    let task = tasks
        .submit(
            &slow_spec(),
            TaskOptions::default().with_deadline(Duration::from_millis(5)),
        )
        .unwrap();
    let outcome = task.wait_timeout(LONG);
    let id = task.id();
    assert!(
        matches!(outcome, Err(Error::TaskTimedOut { id: i }) if i == id),
        "{outcome:?} after {:?}",
        submitted.elapsed()
    );
    assert_eq!(task.stage(), TaskStage::Failed);
    let info = task.info();
    // On a loaded machine the deadline can pass while the task still waits for a worker: it
    // then fails without having started.
    let finished = info.finished_micros.expect("a failed task has finished");
    assert!(
        info.started_micros.is_none_or(|s| s <= finished),
        "{info:?}"
    );
    assert!(info.error.unwrap().contains("deadline"));
    // The same through a direct run: the typed error, not a generic failure.
    let direct = tasks.run(
        &slow_spec(),
        TaskOptions::default().with_deadline(Duration::from_millis(5)),
    );
    assert!(
        matches!(direct, Err(Error::TaskTimedOut { .. })),
        "{direct:?}"
    );
    // A deadline the query meets changes nothing.
    let quick = QuerySpec::new(Query::kind("big")).limit(1);
    let r = tasks
        .run(&quick, TaskOptions::default().with_deadline(LONG))
        .unwrap();
    assert_eq!(r.documents.len(), 1);
}

#[test]
fn invalid_specs_are_refused_at_submit_and_nothing_is_queued() {
    let store = memory_store();
    fill(&store, "v", 3);
    let tasks = store.tasks();
    let valid = QuerySpec::new(Query::kind("v")).limit(1);
    let page_token = tasks
        .run(&valid, TaskOptions::default())
        .unwrap()
        .next_page
        .expect("a second page");
    let listed = tasks.list().len();

    let refused = [
        // Over the largest page.
        (
            QuerySpec::new(Query::kind("v")).limit(10_001),
            TaskOptions::default(),
        ),
        // A task starts at the first page, even with a token it issued itself.
        (
            valid.clone().page(page_token.clone()),
            TaskOptions::default(),
        ),
        (valid.clone().page("00"), TaskOptions::default()),
        // An expected count needs a deadline.
        (valid.clone(), TaskOptions::default().with_expected_count(5)),
        // Contradictory options.
        (
            valid.clone().ids_only(true).select(["a"]),
            TaskOptions::default(),
        ),
        (
            QuerySpec::new(Query::kind("v")).offset(100_001),
            TaskOptions::default(),
        ),
    ];
    for (spec, options) in refused {
        let submitted = tasks.submit(&spec, options.clone());
        assert!(
            matches!(&submitted, Err(e) if is_invalid_spec(e)),
            "submit {spec:?} {options:?}: {submitted:?}"
        );
        // A direct run answers with the original query error too.
        let direct = tasks.run(&spec, options.clone());
        assert!(
            matches!(&direct, Err(e) if is_invalid_spec(e)),
            "run {spec:?} {options:?}: {direct:?}"
        );
    }
    assert_eq!(tasks.list().len(), listed, "a refused spec left a task");
    // The valid spec still runs.
    assert_eq!(
        tasks
            .run(&valid, TaskOptions::default())
            .unwrap()
            .documents
            .len(),
        1
    );
}
