//! A task's result and pages go away at its expiry; expired and surplus finished tasks are
//! released from the pool.
//!
//! Sleeping here only lets time pass an expiry instant; threads synchronise otherwise.

use std::time::Duration;

use strata::{Error, Options, Query, QuerySpec, Store, TaskOptions, TaskPoolOptions, TaskStage};

use crate::{eventually, fill, finish, ids, memory_store};

/// The wall clock in microseconds, as `TaskInfo` reports times.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Lets time pass `micros` (a `TaskInfo::expires_micros`, stamped a moment after the expiry
/// instant the pool checks).
fn pass(micros: u64) {
    let target = micros + 1_000;
    loop {
        let now = now_micros();
        if now > target {
            return;
        }
        std::thread::sleep(Duration::from_micros(target + 1 - now));
    }
}

fn spec() -> QuerySpec {
    QuerySpec::new(Query::kind("x")).limit(5).count(true)
}

#[test]
fn after_its_expiry_a_task_has_no_pages_and_no_result_and_is_released() {
    let store = memory_store();
    fill(&store, "x", 20);
    let tasks = store.tasks();
    let expiry = Duration::from_millis(50);
    // A direct run answers whatever the expiry; a submitted task's result is kept until it.
    let first = tasks
        .run(&spec(), TaskOptions::default().with_expiry(expiry))
        .unwrap();
    let token = first.next_page.clone().unwrap();
    let submitted = tasks
        .submit(&spec(), TaskOptions::default().with_expiry(expiry))
        .unwrap();
    let keeper = tasks.submit(&spec(), TaskOptions::default()).unwrap();
    let keeper_token = finish(&keeper).unwrap().next_page.unwrap();
    let infos = tasks.list();
    assert_eq!(infos.len(), 3);
    let (run_id, submitted_id) = (infos[0].id, submitted.id());
    for info in &infos[..2] {
        assert_eq!(info.expires_micros, info.created_micros + 50_000);
    }
    submitted.wait_timeout(Duration::from_secs(20)).ok();
    assert!(submitted.stage().is_terminal());

    pass(infos[0].expires_micros.max(infos[1].expires_micros));
    let page = tasks.page(&token);
    assert!(
        matches!(page, Err(Error::TaskExpired { id }) if id == run_id),
        "{page:?}"
    );
    for outcome in [
        submitted.wait(),
        submitted.wait_timeout(Duration::ZERO).map(|r| r.unwrap()),
    ] {
        assert!(
            matches!(outcome, Err(Error::TaskExpired { id }) if id == submitted_id),
            "{outcome:?}"
        );
    }
    // Until the pool releases it, the task is still known, and it did finish.
    if let Ok(task) = tasks.get(run_id) {
        assert_eq!(task.stage(), TaskStage::Finished);
        assert!(matches!(task.wait(), Err(Error::TaskExpired { .. })));
    }

    // The pool releases expired tasks (about once a second); the others stay.
    eventually("the expired tasks are released", || {
        matches!(tasks.get(run_id), Err(Error::UnknownTask { .. }))
            && matches!(tasks.get(submitted_id), Err(Error::UnknownTask { .. }))
    });
    let listed: Vec<u64> = tasks.list().iter().map(|i| i.id).collect();
    assert_eq!(listed, [keeper.id()]);
    // Their tokens are still the store's own: expired, not invalid.
    assert!(matches!(
        tasks.page(&token),
        Err(Error::TaskExpired { id }) if id == run_id
    ));
    // The one without a short expiry still pages.
    assert_eq!(ids(&tasks.page(&keeper_token).unwrap()).len(), 5);
    // A handle kept on a released task still says why it has nothing.
    assert!(matches!(submitted.wait(), Err(Error::TaskExpired { .. })));
}

#[test]
fn the_pool_expiry_applies_unless_the_task_sets_its_own() {
    let pool = TaskPoolOptions::default().with_expiry(Duration::from_millis(50));
    let store = Store::open_in_memory(Options::default().with_task_options(pool)).unwrap();
    fill(&store, "x", 20);
    let tasks = store.tasks();
    let short = tasks.run(&spec(), TaskOptions::default()).unwrap();
    let long = tasks
        .run(
            &spec(),
            TaskOptions::default().with_expiry(Duration::from_secs(600)),
        )
        .unwrap();
    let infos = tasks.list();
    assert_eq!(infos[0].expires_micros, infos[0].created_micros + 50_000);
    assert_eq!(
        infos[1].expires_micros,
        infos[1].created_micros + 600_000_000
    );
    pass(infos[0].expires_micros);
    let expired = tasks.page(short.next_page.as_deref().unwrap());
    assert!(
        matches!(expired, Err(Error::TaskExpired { .. })),
        "{expired:?}"
    );
    let page = tasks.page(long.next_page.as_deref().unwrap()).unwrap();
    assert_eq!(page.snapshot_seq, long.snapshot_seq);
    assert_eq!(page.documents.len(), 5);
}

#[test]
fn only_the_newest_finished_tasks_are_retained() {
    let mut pool = TaskPoolOptions::default();
    pool.retained = 3;
    let store = Store::open_in_memory(Options::default().with_task_options(pool)).unwrap();
    fill(&store, "x", 20);
    let tasks = store.tasks();
    let whole = spec().limit(100);

    // Tasks of one page: beyond 3 ended ones, the oldest are forgotten as others end.
    let single: Vec<u64> = (0..6)
        .map(|_| tasks.submit(&whole, TaskOptions::default()).unwrap())
        .map(|t| {
            t.wait().unwrap();
            t.id()
        })
        .collect();
    let kept: Vec<u64> = tasks.list().iter().map(|i| i.id).collect();
    assert_eq!(kept, single[3..]);
    for id in &single[..3] {
        assert!(matches!(tasks.get(*id), Err(Error::UnknownTask { .. })));
    }
    assert_eq!(
        tasks
            .get(single[5])
            .unwrap()
            .wait()
            .unwrap()
            .documents
            .len(),
        20
    );

    // A task with more pages serves them until its expiry, even once 3 later tasks ended;
    // only its first result is released.
    let paged = tasks.submit(&spec(), TaskOptions::default()).unwrap();
    let token = paged.wait().unwrap().next_page.unwrap();
    for _ in 0..3 {
        tasks.run(&whole, TaskOptions::default()).unwrap();
    }
    assert!(tasks.list().iter().any(|i| i.id == paged.id()));
    assert_eq!(tasks.page(&token).unwrap().documents.len(), 5);
    assert!(matches!(paged.wait(), Err(Error::TaskExpired { .. })));
}
