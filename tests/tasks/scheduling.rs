//! The bounded queue (`Busy`), fair turns between submitters, and queued tasks' deadlines.

use std::time::{Duration, Instant};

use strata::{Error, Query, QuerySpec, TaskOptions, TaskStage};

use crate::{fill, finish, store_with_pool, Gate, LONG};

#[test]
fn a_full_queue_is_busy_until_it_drains() {
    let store = store_with_pool(1, 1);
    fill(&store, "b", 3);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("b")).count(true).limit(1);
    // A token from before the queue fills (the page fetch is queued work too).
    let token = tasks
        .run(&spec, TaskOptions::default())
        .unwrap()
        .next_page
        .unwrap();

    let gate = Gate::close(&store, "busy", "");
    let queued = tasks.submit(&spec, TaskOptions::default()).unwrap();
    assert_eq!(queued.stage(), TaskStage::Created);
    let listed = tasks.list().len();
    for _ in 0..3 {
        let refused = tasks.submit(&spec, TaskOptions::default().with_submitter("other"));
        assert!(
            matches!(refused, Err(Error::Busy { queued: 1 })),
            "{refused:?}"
        );
        let page = tasks.page(&token);
        assert!(matches!(page, Err(Error::Busy { queued: 1 })), "{page:?}");
        let direct = tasks.run(&spec, TaskOptions::default());
        assert!(matches!(direct, Err(Error::Busy { .. })), "{direct:?}");
    }
    assert_eq!(tasks.list().len(), listed, "a refused task is listed");

    // The worker comes free, takes the queued task, and the queue has room again.
    gate.open();
    assert_eq!(finish(&queued).unwrap().count, Some(3));
    let later = tasks.submit(&spec, TaskOptions::default()).unwrap();
    assert_eq!(finish(&later).unwrap().count, Some(3));
    assert_eq!(tasks.page(&token).unwrap().documents.len(), 1);
    assert_eq!(
        tasks.run(&spec, TaskOptions::default()).unwrap().count,
        Some(3)
    );
}

#[test]
fn a_burst_of_one_submitter_does_not_starve_another() {
    let store = store_with_pool(1, 64);
    fill(&store, "fair", 50);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("fair")).count(true);
    let gate = Gate::close(&store, "fair", "gate");
    // A queues its burst first, then B queues one task.
    let a: Vec<_> = (0..10)
        .map(|_| {
            tasks
                .submit(&spec, TaskOptions::default().with_submitter("a"))
                .unwrap()
        })
        .collect();
    let b = tasks
        .submit(&spec, TaskOptions::default().with_submitter("b"))
        .unwrap();
    gate.open();
    for t in a.iter().chain([&b]) {
        assert_eq!(finish(t).unwrap().count, Some(50));
    }
    let started = |t: &strata::Task| t.info().started_micros.unwrap();
    let finished = |t: &strata::Task| t.info().finished_micros.unwrap();
    let a_after_b = a.iter().filter(|t| started(t) > finished(&b)).count();
    assert!(
        a_after_b >= 8,
        "B's task waited behind A's burst: only {a_after_b} of A's 10 started after it finished"
    );
}

/// A task's deadline counts from its submission, queued time included: a task that waits in
/// the queue past its deadline should fail with `TaskTimedOut` then, not when a worker
/// finally takes it.
#[test]
fn a_queued_task_fails_at_its_deadline_while_the_pool_is_busy() {
    let store = store_with_pool(1, 16);
    fill(&store, "d", 1);
    let tasks = store.tasks();
    let gate = Gate::close(&store, "deadline", "");
    let deadline = Duration::from_millis(100);
    let submitted = Instant::now();
    let task = tasks
        .submit(
            &QuerySpec::new(Query::kind("d")),
            TaskOptions::default().with_deadline(deadline),
        )
        .unwrap();
    let outcome = task.wait_timeout(Duration::from_secs(2));
    let waited = submitted.elapsed();
    let stage = task.stage();
    gate.open();
    assert!(
        matches!(outcome, Err(Error::TaskTimedOut { .. })),
        "{outcome:?}: still {stage} {waited:?} after submission, its deadline was {deadline:?}"
    );
    assert_eq!(stage, TaskStage::Failed);
}

/// A cancelled task is no longer queued: its place in the bounded queue should be free for
/// another submission.
#[test]
fn cancelling_a_queued_task_frees_its_place_in_the_queue() {
    let store = store_with_pool(1, 1);
    fill(&store, "c", 1);
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("c"));
    let gate = Gate::close(&store, "cancel-slot", "");
    let first = tasks.submit(&spec, TaskOptions::default()).unwrap();
    first.cancel();
    assert_eq!(first.stage(), TaskStage::Cancelled);
    let second = tasks.submit(&spec, TaskOptions::default());
    gate.open();
    let second = second.expect("room in the queue after the cancel");
    assert_eq!(
        second.wait_timeout(LONG).unwrap().unwrap().documents.len(),
        1
    );
}
