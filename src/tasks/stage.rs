//! Where is a task in its life? What a caller asks of one task ([`TaskOptions`]), its stages
//! ([`TaskStage`]), what is known of it ([`TaskInfo`]), and the state machine the pool and the
//! handles share (`TaskState`: queued, running, ended; its result, pages and interrupt).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use query::Interrupt;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::search::result::{QueryResult, QuerySpec};
use crate::util::now_micros;

/// How one task runs.
///
/// ```
/// use std::time::Duration;
/// use strata::TaskOptions;
/// let options = TaskOptions::default()
///     .with_deadline(Duration::from_secs(2))
///     .with_expected_count(10)
///     .with_submitter("billing");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// Longest time from submission to the result (and for each later page); past it the task
    /// fails with [`Error::TaskTimedOut`]. Default: none. A deadline too long for an
    /// [`Instant`] (such as `Duration::MAX`) is the same as none.
    pub deadline: Option<Duration>,
    /// How long after submission the task's result and pages stay available; after it they are
    /// released and fetching them is [`Error::TaskExpired`]. Default: the pool's expiry. An
    /// expiry too long for an [`Instant`] (such as `Duration::MAX`) never comes.
    pub expiry: Option<Duration>,
    /// Re-run the query as writes arrive until it counts at least this many matches
    /// (Xenon's `expectedResultCount`); needs a deadline.
    pub expected_count: Option<u64>,
    /// Who submits: queued tasks are taken from submitters in turn, so one submitter's burst
    /// does not starve the others. Default `""`.
    pub submitter: String,
    /// Test hook: the runs of the task's query after this many panic with this message.
    pub(crate) inject_panic: Option<(u32, String)>,
}

impl TaskOptions {
    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the expiry.
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = Some(expiry);
        self
    }

    /// Waits for at least `count` matches (re-running as writes arrive) until the deadline.
    pub fn with_expected_count(mut self, count: u64) -> Self {
        self.expected_count = Some(count);
        self
    }

    /// Names the submitter for fair scheduling.
    pub fn with_submitter(mut self, submitter: impl Into<String>) -> Self {
        self.submitter = submitter.into();
        self
    }

    /// Test hook: the task's query runs `after_runs` times (its first result, its pages)
    /// as usual, then every run panics with `message`, as a bug would.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn with_inject_panic(mut self, after_runs: u32, message: impl Into<String>) -> Self {
        self.inject_panic = Some((after_runs, message.into()));
        self
    }

    /// Renamed [`TaskOptions::with_deadline`] (setters are `with_*`).
    #[deprecated(note = "use `TaskOptions::with_deadline`")]
    #[doc(hidden)]
    pub fn deadline(self, deadline: Duration) -> Self {
        self.with_deadline(deadline)
    }

    /// Renamed [`TaskOptions::with_expiry`] (setters are `with_*`).
    #[deprecated(note = "use `TaskOptions::with_expiry`")]
    #[doc(hidden)]
    pub fn expiry(self, expiry: Duration) -> Self {
        self.with_expiry(expiry)
    }

    /// Renamed [`TaskOptions::with_expected_count`] (setters are `with_*`).
    #[deprecated(note = "use `TaskOptions::with_expected_count`")]
    #[doc(hidden)]
    pub fn expected_count(self, count: u64) -> Self {
        self.with_expected_count(count)
    }

    /// Renamed [`TaskOptions::with_submitter`] (setters are `with_*`).
    #[deprecated(note = "use `TaskOptions::with_submitter`")]
    #[doc(hidden)]
    pub fn submitter(self, submitter: impl Into<String>) -> Self {
        self.with_submitter(submitter)
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStage {
    /// Queued, not started.
    Created,
    /// A worker runs it (or it waits for its expected count).
    Running,
    /// It has a result.
    Finished,
    /// It failed (its deadline passed, the query was invalid, the store failed, the query
    /// panicked).
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl TaskStage {
    /// Finished, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStage::Finished | TaskStage::Failed | TaskStage::Cancelled
        )
    }
}

impl std::fmt::Display for TaskStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskStage::Created => "created",
            TaskStage::Running => "running",
            TaskStage::Finished => "finished",
            TaskStage::Failed => "failed",
            TaskStage::Cancelled => "cancelled",
        })
    }
}

/// What is known of a task: its stage and timings. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id, unique in this store while it is open.
    pub id: u64,
    /// Its stage.
    pub stage: TaskStage,
    /// Who submitted it.
    pub submitter: String,
    /// The query, in its JSON form (cut to 200 bytes).
    pub query: String,
    /// When it was submitted.
    pub created_micros: u64,
    /// When a worker first took it.
    pub started_micros: Option<u64>,
    /// When it reached a terminal stage.
    pub finished_micros: Option<u64>,
    /// How many times the query ran (more than once while waiting for an expected count).
    pub runs: u32,
    /// The matches counted by the last run, when the spec or the expected count asked.
    pub count: Option<u64>,
    /// Pages fetched after the first.
    pub pages_fetched: u32,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// When its result and pages are released.
    pub expires_micros: u64,
}

#[derive(Debug)]
pub(crate) struct TaskState {
    pub(crate) id: u64,
    pub(crate) submitter: String,
    pub(crate) spec: QuerySpec,
    pub(crate) deadline: Option<Duration>,
    pub(crate) expected_count: Option<u64>,
    pub(crate) submitted: Instant,
    /// `None`: an expiry too long for an `Instant`, which never comes.
    pub(crate) expires: Option<Instant>,
    pub(crate) expires_micros: u64,
    pub(crate) created_micros: u64,
    pub(crate) cancelled: AtomicBool,
    /// [`TaskOptions::inject_panic`].
    pub(crate) inject_panic: Option<(u32, String)>,
    pub(crate) inner: Mutex<TaskInner>,
    pub(crate) done: Condvar,
}

#[derive(Debug)]
pub(crate) struct TaskInner {
    pub(crate) stage: TaskStage,
    pub(crate) started_micros: Option<u64>,
    pub(crate) finished_micros: Option<u64>,
    pub(crate) runs: u32,
    pub(crate) count: Option<u64>,
    pub(crate) pages_fetched: u32,
    pub(crate) error: Option<String>,
    /// The first page's outcome; taken by a direct run.
    pub(crate) result: Option<std::result::Result<QueryResult, Arc<Error>>>,
    /// `pages[n - 1]`: the query's own token for page `n` (page 0 is the first result).
    pub(crate) pages: Vec<String>,
    /// The interrupt of the query running now.
    pub(crate) running: Option<Arc<Interrupt>>,
}

impl TaskState {
    pub(crate) fn info(&self) -> TaskInfo {
        let inner = self.inner.lock();
        let mut query = self.spec.query.to_json();
        if query.len() > 200 {
            let mut cut = 200;
            while !query.is_char_boundary(cut) {
                cut -= 1;
            }
            query.truncate(cut);
        }
        TaskInfo {
            id: self.id,
            stage: inner.stage,
            submitter: self.submitter.clone(),
            query,
            created_micros: self.created_micros,
            started_micros: inner.started_micros,
            finished_micros: inner.finished_micros,
            runs: inner.runs,
            count: inner.count,
            pages_fetched: inner.pages_fetched,
            error: inner.error.clone(),
            expires_micros: self.expires_micros,
        }
    }

    pub(crate) fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }

    pub(crate) fn deadline_at(&self) -> Option<Instant> {
        // A deadline too long for an `Instant` never comes.
        self.deadline.and_then(|d| self.submitted.checked_add(d))
    }

    /// Ends the task if it is still queued (its job stays in the queue until
    /// [`PoolShared::unqueue`] or a worker drops it). True if it did.
    pub(crate) fn end_queued(&self, stage: TaskStage, error: Error) -> bool {
        let mut inner = self.inner.lock();
        if inner.stage != TaskStage::Created {
            return false;
        }
        inner.stage = stage;
        inner.finished_micros = Some(now_micros());
        inner.error = Some(error.to_string());
        inner.result = Some(Err(Arc::new(error)));
        self.done.notify_all();
        true
    }

    pub(crate) fn finish(&self, stage: TaskStage, result: std::result::Result<QueryResult, Error>) {
        let mut inner = self.inner.lock();
        inner.stage = stage;
        inner.finished_micros = Some(now_micros());
        inner.running = None;
        match result {
            Ok(r) => {
                inner.count = r.count.or(inner.count);
                inner.result = Some(Ok(r));
            }
            Err(e) => {
                inner.error = Some(e.to_string());
                inner.result = Some(Err(Arc::new(e)));
            }
        }
        self.done.notify_all();
    }

    /// The typed error a failed or cancelled task answers with.
    pub(crate) fn failure(&self, e: &Arc<Error>) -> Error {
        match &**e {
            Error::TaskCancelled { .. } => Error::TaskCancelled { id: self.id },
            Error::TaskTimedOut { .. } => Error::TaskTimedOut { id: self.id },
            _ => Error::TaskFailed {
                id: self.id,
                source: Arc::clone(e),
            },
        }
    }
}
