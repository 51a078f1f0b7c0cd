//! How big the query task pool is: [`TaskPoolOptions`].

use std::time::Duration;

use crate::error::{Error, Result};

/// Options of the task pool, part of [`crate::Options`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskPoolOptions {
    /// Worker threads; 0 (the default) means the number of cores, at least 2 and at most 8.
    pub workers: usize,
    /// Most tasks queued (not yet running); one more is [`Error::Busy`]. Default 1024.
    pub queue: usize,
    /// How long a task's pages stay available after it was submitted, when its
    /// [`crate::TaskOptions`] do not say. Default 10 minutes. Any duration is accepted: one too long
    /// for an [`Instant`](std::time::Instant) (such as `Duration::MAX`) never expires, and `TaskInfo::expires_micros`
    /// then says `u64::MAX`.
    pub expiry: Duration,
    /// Most ended tasks kept whole (for [`crate::Tasks::list`] and [`crate::Task::wait`]) before their
    /// expiry. Beyond it the oldest are forgotten as others end, except that a task with more
    /// pages keeps serving them until its expiry (only its first result is released).
    /// Default 1000.
    pub retained: usize,
}

impl Default for TaskPoolOptions {
    fn default() -> Self {
        TaskPoolOptions {
            workers: 0,
            queue: 1024,
            expiry: Duration::from_secs(600),
            retained: 1000,
        }
    }
}

impl TaskPoolOptions {
    /// Sets the number of worker threads (0: one per core, 2..=8).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets the queue bound.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// Sets the default expiry.
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.workers > 256 {
            return Err(Error::InvalidOption(format!(
                "task workers {} is over 256",
                self.workers
            )));
        }
        if self.queue == 0 {
            return Err(Error::InvalidOption(
                "task queue must hold at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8),
            n => n,
        }
    }
}
