//! Queries as tasks (docs/DESIGN.md §6): a bounded worker pool that schedules submitters fairly, task
//! stages, deadlines, expiry, pages of a pinned snapshot, and re-runs until an expected count.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};
use query::Interrupt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::options::TaskPoolOptions;
use crate::search::{QueryResult, QuerySpec};
use crate::store::{now_micros, Store};
use crate::watch::Watch;

/// File in the data directory where the pool reports running and recent tasks (read by
/// `strata tasks`, also while another process has the store open).
pub const TASK_REPORT_FILE: &str = "tasks.json";

/// How one task runs.
///
/// ```
/// use std::time::Duration;
/// use strata::TaskOptions;
/// let options = TaskOptions::default()
///     .deadline(Duration::from_secs(2))
///     .expected_count(10)
///     .submitter("billing");
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
    inject_panic: Option<(u32, String)>,
}

impl TaskOptions {
    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the expiry.
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = Some(expiry);
        self
    }

    /// Waits for at least `count` matches (re-running as writes arrive) until the deadline.
    pub fn expected_count(mut self, count: u64) -> Self {
        self.expected_count = Some(count);
        self
    }

    /// Names the submitter for fair scheduling.
    pub fn submitter(mut self, submitter: impl Into<String>) -> Self {
        self.submitter = submitter.into();
        self
    }

    /// Test hook: the task's query runs `after_runs` times (its first result, its pages)
    /// as usual, then every run panics with `message`, as a bug would.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn inject_panic(mut self, after_runs: u32, message: impl Into<String>) -> Self {
        self.inject_panic = Some((after_runs, message.into()));
        self
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
/// let task = tasks.submit(&spec, TaskOptions::default().deadline(Duration::from_secs(5)))?;
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

#[derive(Debug)]
struct TaskState {
    id: u64,
    submitter: String,
    spec: QuerySpec,
    deadline: Option<Duration>,
    expected_count: Option<u64>,
    submitted: Instant,
    /// `None`: an expiry too long for an `Instant`, which never comes.
    expires: Option<Instant>,
    expires_micros: u64,
    created_micros: u64,
    cancelled: AtomicBool,
    /// [`TaskOptions::inject_panic`].
    inject_panic: Option<(u32, String)>,
    inner: Mutex<TaskInner>,
    done: Condvar,
}

#[derive(Debug)]
struct TaskInner {
    stage: TaskStage,
    started_micros: Option<u64>,
    finished_micros: Option<u64>,
    runs: u32,
    count: Option<u64>,
    pages_fetched: u32,
    error: Option<String>,
    /// The first page's outcome; taken by a direct run.
    result: Option<std::result::Result<QueryResult, Arc<Error>>>,
    /// `pages[n - 1]`: the query's own token for page `n` (page 0 is the first result).
    pages: Vec<String>,
    /// The interrupt of the query running now.
    running: Option<Arc<Interrupt>>,
}

impl TaskState {
    fn info(&self) -> TaskInfo {
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

    fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }

    fn deadline_at(&self) -> Option<Instant> {
        // A deadline too long for an `Instant` never comes.
        self.deadline.and_then(|d| self.submitted.checked_add(d))
    }

    /// Ends the task if it is still queued (its job stays in the queue until
    /// [`PoolShared::unqueue`] or a worker drops it). True if it did.
    fn end_queued(&self, stage: TaskStage, error: Error) -> bool {
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

    fn finish(&self, stage: TaskStage, result: std::result::Result<QueryResult, Error>) {
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
    fn failure(&self, e: &Arc<Error>) -> Error {
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

/// What a worker does.
enum Work {
    /// Run the task's query (again and again, for an expected count).
    First,
    /// Fetch page `n`, answering through the channel.
    Page(u32, Sender<Result<QueryResult>>),
}

struct Job {
    task: Arc<TaskState>,
    store: Store,
    work: Work,
}

#[derive(Default)]
struct Queue {
    /// One lane per submitter with queued work, served in turn.
    lanes: VecDeque<(String, VecDeque<Job>)>,
    len: usize,
    stop: bool,
    /// Tasks running now, on workers or (direct runs) on their callers' threads.
    running: usize,
    /// Most tasks running at once: the number of workers.
    slots: usize,
}

impl Queue {
    fn push(&mut self, submitter: &str, job: Job) {
        self.len += 1;
        if let Some((_, lane)) = self.lanes.iter_mut().find(|(s, _)| s == submitter) {
            lane.push_back(job);
        } else {
            self.lanes
                .push_back((submitter.to_owned(), VecDeque::from([job])));
        }
    }

    fn pop(&mut self) -> Option<Job> {
        let (submitter, mut lane) = self.lanes.pop_front()?;
        let job = lane.pop_front();
        if !lane.is_empty() {
            self.lanes.push_back((submitter, lane));
        }
        if job.is_some() {
            self.len -= 1;
        }
        job
    }
}

#[derive(Debug)]
pub(crate) struct PoolShared {
    queue: Mutex<QueueBox>,
    ready: Condvar,
    tasks: Mutex<HashMap<u64, Arc<TaskState>>>,
    next_id: AtomicU64,
    /// The key of the tokens' check (`query::token`): tokens of another store or of an earlier
    /// open of this one fail it. Drawn at random when the pool starts.
    secret: [u8; 8],
    options: TaskPoolOptions,
    report: Option<PathBuf>,
    /// Something changed since the report was last written.
    changed: AtomicBool,
    /// A task was ever submitted: a store that ran none leaves the report alone (it may be
    /// another process's).
    used: AtomicBool,
    /// Ids of ended tasks, oldest first: beyond `retained` of them the oldest are forgotten
    /// as new ones end (results can be large; they must not pile up until the housekeeper).
    ended: Mutex<VecDeque<u64>>,
    /// The store's record of background failures, where a task's panic is written.
    failures: Arc<crate::stats::Failures>,
}

impl PoolShared {
    /// Takes a running slot for a direct run on the caller's thread, if one is free and no
    /// task is queued (a queued task is never overtaken).
    fn claim_slot(&self) -> bool {
        let mut q = self.queue.lock();
        if q.0.stop || q.0.len > 0 || q.0.running >= q.0.slots {
            return false;
        }
        q.0.running += 1;
        true
    }

    fn release_slot(&self) {
        self.queue.lock().0.running -= 1;
        self.ready.notify_one();
    }

    /// Records that task `id` ended, forgetting the oldest ended tasks over `retained`.
    fn ended(&self, id: u64) {
        let forget: Vec<u64> = {
            let mut ended = self.ended.lock();
            ended.push_back(id);
            let over = ended.len().saturating_sub(self.options.retained);
            ended.drain(..over).collect()
        };
        if !forget.is_empty() {
            let mut tasks = self.tasks.lock();
            for id in forget {
                // A task with later pages serves them until its expiry; only its first page's
                // result is let go.
                let paged = tasks.get(&id).is_some_and(|t| {
                    let mut inner = t.inner.lock();
                    inner.result = None;
                    !inner.pages.is_empty()
                });
                if !paged {
                    tasks.remove(&id);
                }
            }
            self.changed.store(true, Ordering::Relaxed);
        }
    }

    /// Takes a queued task's first run out of the queue, freeing its place.
    fn unqueue(&self, id: u64) {
        let mut removed = Vec::new();
        {
            let mut q = self.queue.lock();
            for (_, lane) in q.0.lanes.iter_mut() {
                let (gone, kept): (VecDeque<Job>, VecDeque<Job>) = std::mem::take(lane)
                    .into_iter()
                    .partition(|j| j.task.id == id && matches!(j.work, Work::First));
                *lane = kept;
                removed.extend(gone);
            }
            q.0.lanes.retain(|(_, lane)| !lane.is_empty());
            q.0.len -= removed.len();
        }
        // The jobs hold store handles: drop them (maybe the last) outside the queue's lock.
        drop(removed);
        self.changed.store(true, Ordering::Relaxed);
    }

    /// Fails a task still queued at its deadline. True if it did.
    fn fail_if_overdue(&self, task: &TaskState) -> bool {
        let overdue = task.deadline_at().is_some_and(|d| Instant::now() >= d);
        if overdue && task.end_queued(TaskStage::Failed, Error::TaskTimedOut { id: task.id }) {
            self.unqueue(task.id);
            self.ended(task.id);
            return true;
        }
        false
    }
}

/// The queue, behind a type that can be `Debug`.
struct QueueBox(Queue);

impl std::fmt::Debug for QueueBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("len", &self.0.len).finish()
    }
}

/// The worker pool; owned by the store.
#[derive(Debug)]
pub(crate) struct Pool {
    shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
    stop_housekeeper: Option<Sender<()>>,
}

/// Housekeeping period: expired tasks are released and the report file rewritten this often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

impl Pool {
    pub(crate) fn new(
        options: TaskPoolOptions,
        data_dir: Option<&Path>,
        failures: Arc<crate::stats::Failures>,
    ) -> Result<Pool> {
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(QueueBox(Queue {
                slots: options.worker_count(),
                ..Queue::default()
            })),
            ready: Condvar::new(),
            tasks: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            // `RandomState` only as a source of random bits: no token's check depends on
            // its hash algorithm.
            secret: RandomState::new().hash_one(now_micros()).to_le_bytes(),
            report: data_dir.map(|d| d.join(TASK_REPORT_FILE)),
            changed: AtomicBool::new(false),
            used: AtomicBool::new(false),
            ended: Mutex::new(VecDeque::new()),
            failures: Arc::clone(&failures),
            options,
        });
        let spawn_err = |e: std::io::Error| Error::Io {
            op: "start a task thread",
            path: PathBuf::new(),
            source: e,
        };
        let mut threads = Vec::new();
        for i in 0..shared.options.worker_count() {
            let s = Arc::clone(&shared);
            let f = Arc::clone(&failures);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("strata-task-{i}"))
                    .spawn(move || {
                        f.watch("task worker", || worker(&s));
                    })
                    .map_err(spawn_err)?,
            );
        }
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("strata-task-housekeeper".into())
                .spawn(move || {
                    failures.watch("task housekeeper", || housekeeper(&s, &stop_rx));
                })
                .map_err(spawn_err)?,
        );
        Ok(Pool {
            shared,
            threads,
            stop_housekeeper: Some(stop_tx),
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut q = self.shared.queue.lock();
            q.0.stop = true;
            // Queued tasks will never run (queued page fetches answer `Closed` as their reply
            // channel drops).
            while let Some(job) = q.0.pop() {
                if matches!(job.work, Work::First) {
                    job.task.finish(TaskStage::Cancelled, Err(Error::Closed));
                }
            }
        }
        self.shared.ready.notify_all();
        drop(self.stop_housekeeper.take());
        // The last handle on the store may be dropped by a worker finishing its job: never
        // join the thread we run on.
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
        if self.shared.used.load(Ordering::Relaxed) {
            let _ = write_report(&self.shared);
        }
    }
}

fn worker(shared: &PoolShared) {
    loop {
        let job = {
            let mut q = shared.queue.lock();
            loop {
                if q.0.stop {
                    return;
                }
                if q.0.running < q.0.slots {
                    if let Some(job) = q.0.pop() {
                        q.0.running += 1;
                        break job;
                    }
                }
                shared.ready.wait(&mut q);
            }
        };
        run_job_guarded(shared, job);
        shared.release_slot();
    }
}

fn housekeeper(shared: &PoolShared, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(HOUSEKEEPING) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        release_expired(shared);
        let queued: Vec<Arc<TaskState>> = shared
            .tasks
            .lock()
            .values()
            .filter(|t| t.deadline.is_some())
            .cloned()
            .collect();
        for t in queued {
            shared.fail_if_overdue(&t);
        }
        if shared.changed.swap(false, Ordering::Relaxed) {
            let _ = write_report(shared);
        }
    }
}

/// Forgets ended tasks past their expiry.
fn release_expired(shared: &PoolShared) {
    let mut tasks = shared.tasks.lock();
    let before = tasks.len();
    tasks.retain(|_, t| !(t.expired() && t.inner.lock().stage.is_terminal()));
    if tasks.len() != before {
        shared.changed.store(true, Ordering::Relaxed);
    }
}

/// What `strata tasks` reads: the tasks of the process that has the store open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// When the report was written (microseconds since the epoch).
    pub written_micros: u64,
    /// The process that wrote it.
    pub pid: u32,
    /// Running, queued and recent tasks, oldest first.
    pub tasks: Vec<TaskInfo>,
}

fn report_of(shared: &PoolShared) -> Vec<TaskInfo> {
    let mut infos: Vec<TaskInfo> = shared.tasks.lock().values().map(|t| t.info()).collect();
    infos.sort_by_key(|i| i.id);
    infos
}

fn write_report(shared: &PoolShared) -> std::io::Result<()> {
    let Some(path) = &shared.report else {
        return Ok(());
    };
    let report = TaskReport {
        written_micros: now_micros(),
        pid: std::process::id(),
        tasks: report_of(shared),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
    std::fs::rename(&tmp, path)
}

/// [`run_job`], surviving a panic of the pool's own bookkeeping around the query (a panic of
/// the query itself fails its task in [`catch_panic`]): the panic is recorded, a task left
/// unended fails with it, and the caller goes on to free the slot.
fn run_job_guarded(shared: &PoolShared, job: Job) {
    let task = Arc::clone(&job.task);
    let first = matches!(job.work, Work::First);
    let label = format!("task {} job", task.id);
    if let Err(message) = shared.failures.catch(&label, || run_job(shared, job)) {
        if first && !task.inner.lock().stage.is_terminal() {
            shared.ended(task.id);
            task.finish(TaskStage::Failed, Err(Error::TaskPanicked { message }));
        }
    }
}

fn run_job(shared: &PoolShared, job: Job) {
    let Job { task, store, work } = job;
    shared.changed.store(true, Ordering::Relaxed);
    // The worker lets go of the store before it answers: a caller that drops its store right
    // after the answer must find it closed (and its directory unlocked).
    match work {
        Work::First => {
            {
                let mut inner = task.inner.lock();
                if inner.stage.is_terminal() {
                    // Cancelled while queued.
                    return;
                }
                inner.stage = TaskStage::Running;
                inner.started_micros = Some(now_micros());
            }
            let (stage, result) = match catch_panic(shared, &task, || run_first(&task, &store)) {
                Ok(r) => (TaskStage::Finished, Ok(r)),
                Err(e @ Error::TaskCancelled { .. }) => (TaskStage::Cancelled, Err(e)),
                Err(e) => (TaskStage::Failed, Err(e)),
            };
            drop(store);
            // Older tasks are let go before this one's waiters wake, so that they find the
            // pool's list as it stays.
            shared.ended(task.id);
            task.finish(stage, result);
        }
        Work::Page(n, reply) => {
            let result = catch_panic(shared, &task, || run_page(shared, &task, &store, n));
            drop(store);
            let _ = reply.send(result);
        }
    }
    shared.changed.store(true, Ordering::Relaxed);
    // If the store closed while this task ran (its handle here may have been the last), the
    // final report was written before the task ended: write it again.
    let closing = shared.queue.lock().0.stop;
    if closing && shared.used.load(Ordering::Relaxed) {
        let _ = write_report(shared);
    }
}

/// Runs `body` (a run of `task`'s query), turning a panic into [`Error::TaskPanicked`] so that
/// it fails this task alone: its waiters wake, its slot is freed and the worker serves on.
/// The panic is recorded among the store's background failures all the same.
fn catch_panic(
    shared: &PoolShared,
    task: &TaskState,
    body: impl FnOnce() -> Result<QueryResult>,
) -> Result<QueryResult> {
    let label = format!("query task {}", task.id);
    shared
        .failures
        .catch(&label, body)
        .unwrap_or_else(|message| {
            // The query's interrupt is no longer running.
            task.inner.lock().running = None;
            Err(Error::TaskPanicked { message })
        })
}

/// Runs the query once with an interrupt the task can cancel.
fn run_once(
    task: &TaskState,
    store: &Store,
    spec: &QuerySpec,
    deadline: Option<Instant>,
) -> Result<QueryResult> {
    let interrupt = Arc::new(Interrupt::new(deadline));
    let runs = {
        let mut inner = task.inner.lock();
        inner.running = Some(Arc::clone(&interrupt));
        inner.runs += 1;
        inner.runs
    };
    if task.cancelled.load(Ordering::Relaxed) {
        interrupt.cancel();
    }
    if let Some((after, message)) = &task.inject_panic {
        if runs > *after {
            panic!("{message}");
        }
    }
    let result = store.query_interruptible(spec, &interrupt);
    task.inner.lock().running = None;
    result.map_err(|e| match e {
        Error::Query(query::Error::Cancelled) => Error::TaskCancelled { id: task.id },
        Error::Query(query::Error::DeadlineExceeded) => Error::TaskTimedOut { id: task.id },
        e => e,
    })
}

fn run_first(task: &TaskState, store: &Store) -> Result<QueryResult> {
    let deadline = task.deadline_at();
    loop {
        let seen = store.inner.watch.seen();
        let result = run_once(task, store, &task.spec, deadline)?;
        let enough = match (task.expected_count, result.count) {
            (Some(want), Some(got)) => got >= want,
            _ => true,
        };
        task.inner.lock().count = result.count;
        if enough {
            return Ok(result);
        }
        // Wait for the log to grow past what this run read, then run again.
        let mut seen = seen;
        while seen.seq <= result.snapshot_seq {
            if task.cancelled.load(Ordering::Relaxed) {
                return Err(Error::TaskCancelled { id: task.id });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::TaskTimedOut { id: task.id });
            }
            match store.inner.watch.wait(seen, deadline) {
                Some(s) => seen = s,
                None => return Err(Error::Closed),
            }
        }
        if task.cancelled.load(Ordering::Relaxed) {
            return Err(Error::TaskCancelled { id: task.id });
        }
    }
}

fn run_page(shared: &PoolShared, task: &TaskState, store: &Store, n: u32) -> Result<QueryResult> {
    let token = {
        let inner = task.inner.lock();
        let index = n as usize - 1;
        inner.pages.get(index).cloned()
    }
    .ok_or(Error::TaskExpired { id: task.id })?;
    let deadline = task.deadline.and_then(storage::deadline_after);
    let spec = task.spec.clone().page(token);
    let mut result = run_once(task, store, &spec, deadline)?;
    let mut inner = task.inner.lock();
    inner.pages_fetched += 1;
    result.next_page = result.next_page.take().map(|next| {
        if inner.pages.len() == n as usize {
            inner.pages.push(next);
        }
        encode_token(shared, task.id, n + 1)
    });
    Ok(result)
}

/// A task's page token (`query::token`, kind `TASK`): task id and page number, checked under
/// the open store's secret (so a token of another store, or of this one before it was
/// reopened, fails the check).
fn encode_token(shared: &PoolShared, id: u64, page: u32) -> String {
    let payload = query::token::Writer::new()
        .u64(id)
        .u64(u64::from(page))
        .finish();
    query::token::seal(query::token::TASK, &shared.secret, &payload)
}

fn decode_token(shared: &PoolShared, token: &str) -> Result<(u64, u32)> {
    let bad = |reason: &str| {
        Error::Query(query::Error::InvalidPageToken {
            reason: reason.to_owned(),
        })
    };
    let payload = query::token::open(token, query::token::TASK, &shared.secret)?;
    let mut r = query::token::Reader::new(&payload);
    let (id, page) = (r.u64()?, r.u64()?);
    r.end()?;
    match u32::try_from(page) {
        Ok(page) if page > 0 => Ok((id, page)),
        _ => Err(bad("malformed payload")),
    }
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

    fn enqueue(&self, task: &Arc<TaskState>, work: Work) -> Result<()> {
        let pool = self.pool();
        {
            let mut q = pool.queue.lock();
            if q.0.stop {
                return Err(Error::Closed);
            }
            if q.0.len >= pool.options.queue {
                return Err(Error::Busy { queued: q.0.len });
            }
            q.0.push(
                &task.submitter,
                Job {
                    task: Arc::clone(task),
                    store: self.store.clone(),
                    work,
                },
            );
        }
        pool.ready.notify_one();
        pool.changed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Submits `spec` and returns at once with a handle. A full queue is [`Error::Busy`];
    /// an invalid spec or options fail here, before anything is queued.
    pub fn submit(&self, spec: &QuerySpec, options: TaskOptions) -> Result<Task> {
        let state = self.create(spec, options)?;
        if let Err(e) = self.enqueue(&state, Work::First) {
            self.pool().tasks.lock().remove(&state.id);
            return Err(e);
        }
        Ok(self.handle(state))
    }

    /// Checks a spec and its options and registers a new task (not queued yet).
    fn create(&self, spec: &QuerySpec, options: TaskOptions) -> Result<Arc<TaskState>> {
        let pool = self.pool();
        if spec.page.is_some() {
            return Err(query::Error::InvalidSpec {
                reason: "a task starts at the first page; fetch later pages with Tasks::page"
                    .into(),
            }
            .into());
        }
        if options.expected_count.is_some() && options.deadline.is_none() {
            return Err(query::Error::InvalidSpec {
                reason: "an expected count needs a deadline".into(),
            }
            .into());
        }
        spec.validate()?;
        let mut spec = spec.clone();
        if options.expected_count.is_some() {
            spec.count = true;
        }
        let now = Instant::now();
        let expiry = options.expiry.unwrap_or(pool.options.expiry);
        let created = now_micros();
        let state = Arc::new(TaskState {
            id: pool.next_id.fetch_add(1, Ordering::Relaxed),
            submitter: options.submitter,
            spec,
            deadline: options.deadline,
            expected_count: options.expected_count,
            submitted: now,
            expires: now.checked_add(expiry),
            expires_micros: created.saturating_add(storage::micros_of(expiry)),
            created_micros: created,
            cancelled: AtomicBool::new(false),
            inject_panic: options.inject_panic,
            inner: Mutex::new(TaskInner {
                stage: TaskStage::Created,
                started_micros: None,
                finished_micros: None,
                runs: 0,
                count: None,
                pages_fetched: 0,
                error: None,
                result: None,
                pages: Vec::new(),
                running: None,
            }),
            done: Condvar::new(),
        });
        pool.used.store(true, Ordering::Relaxed);
        pool.tasks.lock().insert(state.id, Arc::clone(&state));
        pool.changed.store(true, Ordering::Relaxed);
        Ok(state)
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
            let state = match self.create(spec, options) {
                Ok(state) => state,
                Err(e) => {
                    pool.release_slot();
                    return Err(e);
                }
            };
            let job = Job {
                task: Arc::clone(&state),
                store: self.store.clone(),
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
        let (id, n) = decode_token(pool, token)?;
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
        self.enqueue(&task, Work::Page(n, tx))?;
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
        report_of(self.pool())
    }

    /// Reads the task report that the process holding the store in `data_dir` keeps (about
    /// once a second), for tools like `strata tasks`.
    pub fn read_report(data_dir: &Path) -> Result<TaskReport> {
        let path = data_dir.join(TASK_REPORT_FILE);
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            op: "read the task report",
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            op: "parse the task report",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
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
            r.next_page = Some(encode_token(&self.pool, self.state.id, 1));
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
