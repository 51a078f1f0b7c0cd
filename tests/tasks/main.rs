//! Query tasks: stages, cancel, deadlines, expiry, busy, pages of a pinned snapshot.
//!
//! Written from the outside, as a user of `Store::tasks` would (docs/DESIGN.md §6):
//!
//! - `stages`: every stage transition (created, running, finished, failed, cancelled), the
//!   timings of `TaskInfo`, deadlines, and specs refused at submit and by a direct run.
//! - `scheduling`: a full queue is `Error::Busy` until it drains; one submitter's burst does
//!   not starve another; deadlines and cancels of queued tasks.
//! - `paging`: the pages of a task read the snapshot it pinned while other threads write.
//! - `tokens`: forged, damaged and foreign page tokens are `InvalidPageToken`, never a panic.
//! - `expiry`: results and pages go away at a task's expiry; finished tasks are released.
//! - `expected`: re-runs until an expected count, or a timeout at the deadline.
//! - `report`: `Tasks::list` and the report file `Tasks::read_report` reads.
//! - `panics`: a task whose query panics fails alone; the pool serves on.
//!
//! Nothing synchronises by sleeping: tests wait on tasks (`wait`, `wait_timeout`), channels and
//! barriers. A worker is kept busy by a [`Gate`], a task waiting for an expected count that a
//! test releases with a write. Where a test needs to see a stage that has no notification (a
//! task is running), it polls the stage with [`eventually`], which fails after a timeout.

mod expected;
mod expiry;
mod paging;
mod panics;
mod report;
mod scheduling;
mod stages;
mod tokens;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use strata::{
    Batch, Error, Options, Query, QueryError, QueryResult, QuerySpec, Snapshot, SortKey, Store,
    Task, TaskOptions, TaskPoolOptions, TaskStage, Tasks,
};

/// A deadline no passing test comes near: it only bounds a test that hangs.
pub const LONG: Duration = Duration::from_secs(20);

/// How long [`eventually`] polls before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// An in-memory store whose pool has `workers` threads and room for `queue` queued tasks.
pub fn store_with_pool(workers: usize, queue: usize) -> Store {
    let pool = TaskPoolOptions::default()
        .with_workers(workers)
        .with_queue(queue);
    Store::open_in_memory(Options::default().with_task_options(pool)).unwrap()
}

/// An in-memory store with the default pool.
pub fn memory_store() -> Store {
    Store::open_in_memory(Options::default()).unwrap()
}

/// Writes `n` documents `/{kind}/{i:04}` of `kind` with body `{"n": i, "round": 0}`.
pub fn fill(store: &Store, kind: &str, n: usize) {
    let mut batch = Batch::new();
    for i in 0..n {
        batch = batch.put(format!("/{kind}/{i:04}"), kind, json!({"n": i, "round": 0}));
    }
    store.write(batch).unwrap();
}

/// Number of documents in [`big_store`].
pub const BIG: usize = 50_000;

/// A store of 50k small documents (kind `big`), shared by the tests that need a query that
/// runs long enough to be cancelled or to miss a deadline. Nobody writes to it after filling.
pub fn big_store() -> &'static Store {
    static BIG_STORE: OnceLock<Store> = OnceLock::new();
    BIG_STORE.get_or_init(|| {
        let store = memory_store();
        for chunk in 0..BIG / 1000 {
            let mut batch = Batch::new();
            for i in 0..1000 {
                let n = chunk * 1000 + i;
                batch = batch.put(
                    format!("/big/{n:06}"),
                    "big",
                    json!({"n": (n * 7919) % BIG, "s": format!("text {n}")}),
                );
            }
            store.write(batch).unwrap();
        }
        store
    })
}

/// A query over every version of [`big_store`] sorted by a text field: a few hundred
/// milliseconds in a debug build, far more than a tiny deadline or a prompt cancel.
pub fn slow_spec() -> QuerySpec {
    QuerySpec::new(Query::All)
        .snapshot(Snapshot::AllVersions)
        .sort(SortKey::desc("s"))
        .count(true)
        .limit(10)
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`]. For states that have
/// no notification (a task is running, a report file was rewritten).
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// [`Task::wait`] that fails the test instead of hanging when the task does not end.
pub fn finish(task: &Task) -> strata::Result<QueryResult> {
    match task.wait_timeout(LONG) {
        Ok(Some(result)) => Ok(result),
        Ok(None) => panic!(
            "task {} did not end within {LONG:?}: {:?}",
            task.id(),
            task.info()
        ),
        Err(e) => Err(e),
    }
}

/// Waits until `task` has been taken by a worker (it may have ended since).
pub fn wait_started(task: &Task) {
    eventually(&format!("task {} has started", task.id()), || {
        task.info().started_micros.is_some()
    });
}

/// Waits until `task` reaches `stage`.
pub fn wait_stage(task: &Task, stage: TaskStage) {
    eventually(&format!("task {} is {stage}", task.id()), || {
        task.stage() == stage
    });
}

/// A task that occupies one worker until [`Gate::open`]: it waits for an expected count of 1
/// of a kind nobody writes, and ends when the test writes one document of that kind.
pub struct Gate {
    store: Store,
    kind: String,
    pub task: Task,
}

impl Gate {
    /// Submits the gate task (as `submitter`) and waits until a worker runs it.
    pub fn close(store: &Store, name: &str, submitter: &str) -> Gate {
        let kind = format!("gate-{name}");
        let task = store
            .tasks()
            .submit(
                &QuerySpec::new(Query::kind(&kind)),
                TaskOptions::default()
                    .with_expected_count(1)
                    .with_deadline(LONG)
                    .with_submitter(submitter),
            )
            .unwrap();
        wait_stage(&task, TaskStage::Running);
        Gate {
            store: store.clone(),
            kind,
            task,
        }
    }

    /// Releases the worker and waits until the gate task has finished.
    pub fn open(self) {
        self.store
            .put(&format!("/{}/open", self.kind), &self.kind, json!({}))
            .unwrap();
        let result = self.task.wait_timeout(LONG).unwrap();
        assert!(result.is_some(), "the gate task did not end");
        assert_eq!(self.task.stage(), TaskStage::Finished);
    }
}

/// The ids of a result, in order.
pub fn ids(result: &QueryResult) -> Vec<String> {
    result.documents.iter().map(|d| d.meta.id.clone()).collect()
}

/// Whether `e` is the typed error of a bad page token.
pub fn is_invalid_token(e: &Error) -> bool {
    matches!(e, Error::Query(QueryError::InvalidPageToken { .. }))
}

/// Whether `e` is the typed error of an invalid spec.
pub fn is_invalid_spec(e: &Error) -> bool {
    matches!(e, Error::Query(QueryError::InvalidSpec { .. }))
}

/// Opens the store in `dir` again, once its last handle is gone.
pub fn reopen(dir: &Path) -> Store {
    Store::open(dir, Options::default()).unwrap_or_else(|e| panic!("reopen {}: {e}", dir.display()))
}

/// Follows a result's `next_page` tokens to the end with [`Tasks::page`].
pub fn all_pages(tasks: &Tasks, first: QueryResult) -> Vec<QueryResult> {
    let mut pages = vec![first];
    while let Some(token) = pages.last().and_then(|p| p.next_page.clone()) {
        assert!(pages.len() < 1000, "paging does not end");
        pages.push(tasks.page(&token).unwrap());
    }
    pages
}
