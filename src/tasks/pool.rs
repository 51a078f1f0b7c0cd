//! Who runs a task, and when? The fair queue (one lane per submitter, served in turn), the
//! worker threads and the housekeeper (expiry, overdue tasks, the report file), and each run
//! of a task's query (first result, re-runs until an expected count, page fetches), a panic
//! failing its task alone. Below the store: the store owns the pool, and the pool reaches the
//! store only through [`Runner`], never by name.

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

use crate::error::{Error, Result};
use crate::options::TaskPoolOptions;
use crate::search::result::{QueryResult, QuerySpec};
use crate::stats::counters::Failures;
use crate::tasks::report::{self, TASK_REPORT_FILE};
use crate::tasks::stage::{TaskInfo, TaskInner, TaskOptions, TaskStage, TaskState};
use crate::tasks::token;
use crate::util::now_micros;
use crate::watch::Watch;

/// What a task's query runs on: the store, as the pool sees it from below (the store owns
/// the pool, so the pool never names `Store`; `tasks/api.rs` implements this for it).
pub(crate) trait Runner: Send {
    /// Runs `spec`, stopping when `interrupt` says (counted in the store's stats).
    fn query(&self, spec: &QuerySpec, interrupt: &Arc<Interrupt>) -> Result<QueryResult>;
    /// The doorbell writers ring after each commit (a task waiting for an expected count
    /// waits on it).
    fn watch(&self) -> &Watch;
}

/// What a worker does.
pub(crate) enum Work {
    /// Run the task's query (again and again, for an expected count).
    First,
    /// Fetch page `n`, answering through the channel.
    Page(u32, Sender<Result<QueryResult>>),
}

pub(crate) struct Job {
    pub(crate) task: Arc<TaskState>,
    /// The store the query runs on (a handle: the worker lets go of it before it answers).
    pub(crate) store: Box<dyn Runner>,
    pub(crate) work: Work,
}

#[derive(Default)]
pub(crate) struct Queue {
    /// One lane per submitter with queued work, served in turn.
    pub(crate) lanes: VecDeque<(String, VecDeque<Job>)>,
    pub(crate) len: usize,
    pub(crate) stop: bool,
    /// Tasks running now, on workers or (direct runs) on their callers' threads.
    pub(crate) running: usize,
    /// Most tasks running at once: the number of workers.
    pub(crate) slots: usize,
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
    pub(crate) queue: Mutex<QueueBox>,
    pub(crate) ready: Condvar,
    pub(crate) tasks: Mutex<HashMap<u64, Arc<TaskState>>>,
    pub(crate) next_id: AtomicU64,
    /// The key of the tokens' check (`query::token`): tokens of another store or of an earlier
    /// open of this one fail it. Drawn at random when the pool starts.
    pub(crate) secret: [u8; 8],
    pub(crate) options: TaskPoolOptions,
    pub(crate) report: Option<PathBuf>,
    /// Something changed since the report was last written.
    pub(crate) changed: AtomicBool,
    /// A task was ever submitted: a store that ran none leaves the report alone (it may be
    /// another process's).
    pub(crate) used: AtomicBool,
    /// Ids of ended tasks, oldest first: beyond `retained` of them the oldest are forgotten
    /// as new ones end (results can be large; they must not pile up until the housekeeper).
    pub(crate) ended: Mutex<VecDeque<u64>>,
    /// The store's record of background failures, where a task's panic is written.
    pub(crate) failures: Arc<Failures>,
}

impl PoolShared {
    /// Queues `work` of `task` on its submitter's lane; a full queue is [`Error::Busy`].
    pub(crate) fn enqueue(
        &self,
        task: &Arc<TaskState>,
        store: Box<dyn Runner>,
        work: Work,
    ) -> Result<()> {
        let pool = self;
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
                    store,
                    work,
                },
            );
        }
        pool.ready.notify_one();
        pool.changed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Checks a spec and its options and registers a new task (not queued yet).
    pub(crate) fn create(&self, spec: &QuerySpec, options: TaskOptions) -> Result<Arc<TaskState>> {
        let pool = self;
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

    /// Tasks kept now (queued, running and recent), oldest first.
    pub(crate) fn infos(&self) -> Vec<TaskInfo> {
        let mut infos: Vec<TaskInfo> = self.tasks.lock().values().map(|t| t.info()).collect();
        infos.sort_by_key(|i| i.id);
        infos
    }

    /// Writes the report file, if the pool has one.
    pub(crate) fn write_report(&self) -> std::io::Result<()> {
        match &self.report {
            Some(path) => report::write(path, self.infos()),
            None => Ok(()),
        }
    }

    /// Takes a running slot for a direct run on the caller's thread, if one is free and no
    /// task is queued (a queued task is never overtaken).
    pub(crate) fn claim_slot(&self) -> bool {
        let mut q = self.queue.lock();
        if q.0.stop || q.0.len > 0 || q.0.running >= q.0.slots {
            return false;
        }
        q.0.running += 1;
        true
    }

    pub(crate) fn release_slot(&self) {
        self.queue.lock().0.running -= 1;
        self.ready.notify_one();
    }

    /// Records that task `id` ended, forgetting the oldest ended tasks over `retained`.
    pub(crate) fn ended(&self, id: u64) {
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
    pub(crate) fn unqueue(&self, id: u64) {
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
    pub(crate) fn fail_if_overdue(&self, task: &TaskState) -> bool {
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
pub(crate) struct QueueBox(pub(crate) Queue);

impl std::fmt::Debug for QueueBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("len", &self.0.len).finish()
    }
}

/// The worker pool; owned by the store.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
    stop_housekeeper: Option<Sender<()>>,
}

/// Housekeeping period: expired tasks are released and the report file rewritten this often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

impl Pool {
    pub(crate) fn new(
        options: TaskPoolOptions,
        data_dir: Option<&Path>,
        failures: Arc<Failures>,
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
            let _ = self.shared.write_report();
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
            let _ = shared.write_report();
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

/// [`run_job`], surviving a panic of the pool's own bookkeeping around the query (a panic of
/// the query itself fails its task in [`catch_panic`]): the panic is recorded, a task left
/// unended fails with it, and the caller goes on to free the slot.
pub(crate) fn run_job_guarded(shared: &PoolShared, job: Job) {
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
            let (stage, result) = match catch_panic(shared, &task, || run_first(&task, &*store)) {
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
            let result = catch_panic(shared, &task, || run_page(shared, &task, &*store, n));
            drop(store);
            let _ = reply.send(result);
        }
    }
    shared.changed.store(true, Ordering::Relaxed);
    // If the store closed while this task ran (its handle here may have been the last), the
    // final report was written before the task ended: write it again.
    let closing = shared.queue.lock().0.stop;
    if closing && shared.used.load(Ordering::Relaxed) {
        let _ = shared.write_report();
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
    store: &dyn Runner,
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
    let result = store.query(spec, &interrupt);
    task.inner.lock().running = None;
    result.map_err(|e| match e {
        Error::Query(query::Error::Cancelled) => Error::TaskCancelled { id: task.id },
        Error::Query(query::Error::DeadlineExceeded) => Error::TaskTimedOut { id: task.id },
        e => e,
    })
}

fn run_first(task: &TaskState, store: &dyn Runner) -> Result<QueryResult> {
    let deadline = task.deadline_at();
    loop {
        let seen = store.watch().seen();
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
            match store.watch().wait(seen, deadline) {
                Some(s) => seen = s,
                None => return Err(Error::Closed),
            }
        }
        if task.cancelled.load(Ordering::Relaxed) {
            return Err(Error::TaskCancelled { id: task.id });
        }
    }
}

fn run_page(
    shared: &PoolShared,
    task: &TaskState,
    store: &dyn Runner,
    n: u32,
) -> Result<QueryResult> {
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
        token::encode(&shared.secret, task.id, n + 1)
    });
    Ok(result)
}
