//! How is the index configured? Where it lives ([`IndexLocation`]) and how the indexer is
//! tuned ([`IndexOptions`]): plain values that the reader, the writer and the handle all read,
//! so they sit below all of them.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Where the index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    /// In this directory (created if missing).
    Dir(PathBuf),
    /// In memory; rebuilt from the log at every open.
    Memory,
}

/// Tuning of the indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexOptions {
    /// Longest time an indexed version waits for a commit. Default 500 ms.
    pub commit_interval: Duration,
    /// Most versions indexed between two commits. Default 50 000.
    pub commit_versions: u64,
    /// Writers wait while the log is more than this many versions ahead of the last index
    /// commit. Default 100 000.
    pub max_lag: u64,
    /// A query whose snapshot is more than this many versions past the last commit waits for a
    /// commit instead of matching the tail in memory. Default 10 000.
    pub max_tail: u64,
    /// Indexing memory budget of tantivy's writer, in bytes. Default 128 MiB.
    pub writer_memory: usize,
    /// Indexing threads (0: half the cores, 1 to 4; the indexer thread and writers need the
    /// rest). Default 0.
    pub writer_threads: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            commit_interval: Duration::from_millis(500),
            commit_versions: 50_000,
            max_lag: 100_000,
            max_tail: 10_000,
            writer_memory: 128 << 20,
            writer_threads: 0,
        }
    }
}

impl IndexOptions {
    /// Sets the longest wait of an indexed version for its commit.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Sets the most versions between two commits.
    pub fn with_commit_versions(mut self, versions: u64) -> Self {
        self.commit_versions = versions;
        self
    }

    /// Sets how far the log may run ahead of the last commit before writers wait.
    pub fn with_max_lag(mut self, versions: u64) -> Self {
        self.max_lag = versions;
        self
    }

    /// Sets the largest tail a query matches in memory before it waits for a commit.
    pub fn with_max_tail(mut self, versions: u64) -> Self {
        self.max_tail = versions;
        self
    }

    /// Sets tantivy's indexing memory budget.
    pub fn with_writer_memory(mut self, bytes: usize) -> Self {
        self.writer_memory = bytes;
        self
    }

    /// Sets the number of indexing threads (0: automatic).
    pub fn with_writer_threads(mut self, threads: usize) -> Self {
        self.writer_threads = threads;
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidSpec {
                reason: format!("index options: {reason}"),
            })
        };
        if self.commit_versions == 0 || self.max_lag == 0 {
            return bad("commit_versions and max_lag must be positive");
        }
        if self.max_lag < self.commit_versions {
            return bad("max_lag must be at least commit_versions");
        }
        if self.writer_memory < (16 << 20) {
            return bad("writer_memory must be at least 16 MiB");
        }
        if self.writer_threads > 64 {
            return bad("writer_threads is at most 64");
        }
        Ok(())
    }
}
