//! The interface every benchmarked engine implements.

use std::path::Path;

use serde_json::Value;

/// Errors of the adapters: whatever the engine returned, boxed.
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// One version of a document as a reader gets it: its numbers and its parsed body.
///
/// Both adapters build exactly this from what they read, so a read benchmark compares the same
/// work: find the version, fetch its bytes, parse the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Per-document version, 0 on create.
    pub version: u64,
    /// Store-wide commit sequence number.
    pub seq: u64,
    /// Update time, microseconds since the Unix epoch.
    pub time: u64,
    /// The JSON body.
    pub body: Value,
}

/// A multi-version JSON document store under benchmark.
///
/// Every write is acknowledged only when durable (an `fdatasync`/`fsync` of the log has
/// returned). Implementations are shared by reference across threads.
pub trait BenchEngine: Send + Sync {
    /// The name used as the criterion `BenchmarkId`.
    fn name(&self) -> &'static str;

    /// Opens (creating if needed) the store in directory `dir`, ready for reads and writes.
    fn open(dir: &Path) -> Result<Self>
    where
        Self: Sized;

    /// Commits one new version of `id` as its own durable transaction, at the current time.
    fn put(&self, id: &str, body: Value) -> Result<()>;

    /// Commits new versions of these documents as one atomic, durable transaction, at `time`
    /// (microseconds, later than every earlier commit) or at the current time.
    fn put_batch(&self, docs: Vec<(String, Value)>, time: Option<u64>) -> Result<()>;

    /// The newest version of `id`.
    fn get(&self, id: &str) -> Result<Option<Doc>>;

    /// The newest version of `id` with its body as the stored JSON bytes, unparsed: the read a
    /// service makes when it forwards the JSON.
    fn get_raw(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>>;

    /// The version of `id` current at `time`: the newest one committed at or before it.
    fn get_at(&self, id: &str, time: u64) -> Result<Option<Doc>>;

    /// Every version of `id`, oldest first.
    fn history(&self, id: &str) -> Result<Vec<Doc>>;
}
