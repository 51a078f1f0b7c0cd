//! How does a user run queries as tasks? [`Store::tasks`], the [`Tasks`] handle (submit, run
//! directly, fetch pages, list) and the [`Task`] handle (poll, wait, cancel), over the pool
//! below the store.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use query::Interrupt;

use crate::error::{Error, Result};
use crate::search::result::{QueryResult, QuerySpec};
use crate::store::Store;
use crate::tasks::pool::{run_job_guarded, Job, PoolShared, Runner, Work};
use crate::tasks::report::{self, TaskReport};
use crate::tasks::stage::{TaskInfo, TaskOptions, TaskStage, TaskState};
use crate::tasks::token;
use crate::watch::Watch;

/// The tasks of a store: submit queries, follow them, fetch their pages. From
/// [`Store::tasks`].
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use strata::{Query, QuerySpec, Store, TaskOptions, TaskStage};
///
/// let store = Store::open_in_memory(Default::default())?;
/// for i in 0..5 {
///     store.put(&format!("/n/{i}"), "number", json!({"n": i}))?;
/// }
/// let tasks = store.tasks();
///
/// // Direct: the call returns the result.
/// let spec = QuerySpec::new(Query::kind("number")).limit(2).count(true);
/// let first = tasks.run(&spec, TaskOptions::default())?;
/// assert_eq!(first.count, Some(5));
/// // Later pages read the snapshot the task pinned, whatever was written since.
/// store.put("/n/9", "number", json!({"n": 9}))?;
/// let second = tasks.page(first.next_page.as_deref().expect("more pages"))?;
/// assert_eq!(second.documents.len(), 2);
/// assert_eq!(second.snapshot_seq, first.snapshot_seq);
///
/// // Asynchronous: a handle to poll, wait on or cancel.
/// let task = tasks.submit(&spec, TaskOptions::default().with_deadline(Duration::from_secs(5)))?;
/// let result = task.wait()?;
/// assert_eq!(task.stage(), TaskStage::Finished);
/// assert_eq!(result.count, Some(6));
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tasks {
    store: Store,
}

/// A submitted task: poll its stage, wait for its result, cancel it.
#[derive(Debug, Clone)]
pub struct Task {
    state: Arc<TaskState>,
    pool: Arc<PoolShared>,
    /// Poked on cancel, to wake a task waiting for its expected count.
    watch: Arc<Watch>,
}

impl Store {
    /// The store's query tasks.
    pub fn tasks(&self) -> Tasks {
        Tasks {
            store: self.clone(),
        }
    }
}

impl Tasks {
    fn pool(&self) -> &Arc<PoolShared> {
        &self.store.inner.tasks.shared
    }

    fn runner(&self) -> Box<dyn Runner> {
        Box::new(self.store.clone())
    }

    /// Submits `spec` and returns at once with a handle. A full queue is [`Error::Busy`];
    /// an invalid spec or options fail here, before anything is queued.
    pub fn submit(&self, spec: &QuerySpec, options: TaskOptions) -> Result<Task> {
        let state = self.pool().create(spec, options)?;
        if let Err(e) = self.pool().enqueue(&state, self.runner(), Work::First) {
            self.pool().tasks.lock().remove(&state.id);
            return Err(e);
        }
        Ok(self.handle(state))
    }

    fn handle(&self, state: Arc<TaskState>) -> Task {
        Task {
            state,
            pool: Arc::clone(self.pool()),
            watch: Arc::clone(&self.store.inner.watch),
        }
    }

    /// Runs `spec` as a task and returns its first page (direct mode). The result's
    /// `next_page` is a token for [`Tasks::page`].
    ///
    /// When a worker slot is free and nothing is queued, the task runs on the calling thread
    /// (it counts against the pool's bound all the same); otherwise it is queued like
    /// [`Tasks::submit`].
    pub fn run(&self, spec: &QuerySpec, options: TaskOptions) -> Result<QueryResult> {
        let pool = self.pool();
        let task = if pool.claim_slot() {
            let state = match pool.create(spec, options) {
                Ok(state) => state,
                Err(e) => {
                    pool.release_slot();
                    return Err(e);
                }
            };
            let job = Job {
                task: Arc::clone(&state),
                store: self.runner(),
                work: Work::First,
            };
            run_job_guarded(pool, job);
            pool.release_slot();
            self.handle(state)
        } else {
            self.submit(spec, options)?
        };
        task.wait_terminal(None);
        let outcome = task.state.inner.lock().result.take();
        match outcome {
            Some(Ok(r)) => Ok(task.with_token(r)),
            Some(Err(e)) => Err(Arc::try_unwrap(e).unwrap_or_else(|e| task.state.failure(&e))),
            None => Err(Error::TaskExpired { id: task.id() }),
        }
    }

    /// Fetches the page a token names, from the snapshot its task pinned. Tokens of another
    /// store, or forged ones, are [`QueryError::InvalidPageToken`](crate::QueryError); a
    /// token of an expired task is [`Error::TaskExpired`].
    pub fn page(&self, token: &str) -> Result<QueryResult> {
        let pool = self.pool();
        let (id, n) = token::decode(&pool.secret, token)?;
        let task = pool
            .tasks
            .lock()
            .get(&id)
            .cloned()
            .ok_or(Error::TaskExpired { id })?;
        if task.expired() {
            return Err(Error::TaskExpired { id });
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.enqueue(&task, self.runner(), Work::Page(n, tx))?;
        rx.recv().unwrap_or(Err(Error::Closed))
    }

    /// The task with this id, while it is kept (until its expiry).
    pub fn get(&self, id: u64) -> Result<Task> {
        let pool = self.pool();
        let state = pool
            .tasks
            .lock()
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownTask { id })?;
        Ok(self.handle(state))
    }

    /// Queued, running and recent tasks, oldest first.
    pub fn list(&self) -> Vec<TaskInfo> {
        self.pool().infos()
    }

    /// Reads the task report that the process holding the store in `data_dir` keeps (about
    /// once a second), for tools like `strata tasks`.
    pub fn read_report(data_dir: &Path) -> Result<TaskReport> {
        report::read(data_dir)
    }
}

impl Task {
    /// The task's id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// Its stage now.
    pub fn stage(&self) -> TaskStage {
        self.pool.fail_if_overdue(&self.state);
        self.state.inner.lock().stage
    }

    /// Its stage and timings.
    pub fn info(&self) -> TaskInfo {
        self.state.info()
    }

    /// Asks the task to stop: a queued task never runs, a running query stops within a few
    /// hundred versions. Its stage becomes [`TaskStage::Cancelled`] (unless it finished first).
    pub fn cancel(&self) {
        {
            let inner = self.state.inner.lock();
            if inner.stage.is_terminal() {
                return;
            }
            self.state.cancelled.store(true, Ordering::Relaxed);
            if let Some(i) = &inner.running {
                i.cancel();
            }
        }
        let error = Error::TaskCancelled { id: self.state.id };
        if self.state.end_queued(TaskStage::Cancelled, error) {
            self.pool.unqueue(self.state.id);
            self.pool.ended(self.state.id);
        }
        self.pool.changed.store(true, Ordering::Relaxed);
        self.watch.poke();
    }

    /// Waits until the task ends or `timeout` passes; true if it ended. A task still queued at
    /// its deadline fails then, whoever is waiting.
    fn wait_terminal(&self, timeout: Option<Duration>) -> bool {
        // A timeout too long for an `Instant` waits as long as it takes.
        let until = timeout.and_then(storage::deadline_after);
        loop {
            // A deadline still ahead: a queued task fails then (a running one stops itself).
            let deadline = self.state.deadline_at().filter(|d| *d > Instant::now());
            let wake = match (until, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            {
                let mut inner = self.state.inner.lock();
                if inner.stage.is_terminal() {
                    return true;
                }
                match wake {
                    Some(t) => {
                        let _ = self.state.done.wait_until(&mut inner, t);
                    }
                    None => self.state.done.wait(&mut inner),
                }
                if inner.stage.is_terminal() {
                    return true;
                }
            }
            self.pool.fail_if_overdue(&self.state);
            if until.is_some_and(|t| Instant::now() >= t) {
                return self.state.inner.lock().stage.is_terminal();
            }
        }
    }

    fn with_token(&self, mut r: QueryResult) -> QueryResult {
        if let Some(next) = r.next_page.take() {
            let mut inner = self.state.inner.lock();
            if inner.pages.is_empty() {
                inner.pages.push(next);
            }
            r.next_page = Some(token::encode(&self.pool.secret, self.state.id, 1));
        }
        r
    }

    fn outcome(&self) -> Result<QueryResult> {
        if self.state.expired() {
            return Err(Error::TaskExpired { id: self.state.id });
        }
        let outcome = self.state.inner.lock().result.clone();
        match outcome {
            Some(Ok(r)) => Ok(self.with_token(r)),
            Some(Err(e)) => Err(self.state.failure(&e)),
            None => Err(Error::TaskExpired { id: self.state.id }),
        }
    }

    /// Blocks until the task ends; its first page, or why it failed
    /// ([`Error::TaskTimedOut`], [`Error::TaskCancelled`], [`Error::TaskFailed`]).
    pub fn wait(&self) -> Result<QueryResult> {
        self.wait_terminal(None);
        self.outcome()
    }

    /// [`Task::wait`] for at most `timeout`; `Ok(None)` if the task is still queued or running.
    /// A timeout too long for an [`Instant`] (such as `Duration::MAX`) waits like [`Task::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<QueryResult>> {
        if self.wait_terminal(Some(timeout)) {
            self.outcome().map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Runner for Store {
    fn query(&self, spec: &QuerySpec, interrupt: &Arc<Interrupt>) -> Result<QueryResult> {
        self.query_interruptible(spec, interrupt)
    }

    fn watch(&self) -> &Watch {
        &self.inner.watch
    }
}
