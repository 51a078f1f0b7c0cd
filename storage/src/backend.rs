//! The seam between the engine and the file system.
//!
//! Every byte the engine reads or writes goes through [`Backend`] and [`BackendFile`]:
//! [`OsBackend`] is the real file system, [`MemoryBackend`] keeps files in memory, and tests
//! swap in `SimBackend` (feature `test-support`), which separates written from synced bytes,
//! tears writes at a crash and fails chosen calls.

mod memory;
mod mmap;
mod os;
#[cfg(any(test, feature = "test-support"))]
mod sim;

use std::any::Any;
use std::fmt::Debug;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

pub use memory::MemoryBackend;
pub use os::OsBackend;
#[cfg(any(test, feature = "test-support"))]
pub use sim::{CrashMode, Fault, FaultOp, SimBackend, SimImage};

/// A file system the engine can run on.
pub trait Backend: Send + Sync + Debug + 'static {
    /// Creates `path` and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of directory `path`.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for reading and writing, creating it if `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn BackendFile>>;
    /// Opens the existing file `path` for reading only (a read-only open of a log another
    /// process writes). Never creates, writes or locks anything.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        self.open(path, false)
    }
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes the empty directory `path`.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Renames the file `from` to `to` atomically, replacing any file named `to`. The new name
    /// is durable only once the directory is synced; open handles and maps of a replaced file
    /// keep reading its old bytes.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of directory `path` (creations, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on the file `path` (created if missing); `Ok(None)` when another
    /// holder has it. The lock lasts as long as the returned guard. The holder records its
    /// process id in the file (FORMAT.md §2), for [`Backend::lock_holder`].
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>>;
    /// The process id the holder of the lock file `path` recorded in it, if any. Only a hint for
    /// messages: the lock itself (not the file's content) says whether it is held.
    fn lock_holder(&self, path: &Path) -> Option<u32> {
        let _ = path;
        None
    }
    /// Bytes an unprivileged writer can still use on the file system holding `path`;
    /// `Ok(None)` when unknown (compaction then does not check before it writes).
    fn available_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let _ = path;
        Ok(None)
    }
}

/// Holds a directory lock until dropped.
pub struct LockGuard(
    #[expect(dead_code, reason = "held only for its Drop")] Box<dyn Any + Send + Sync>,
);

impl LockGuard {
    pub(crate) fn new(inner: impl Any + Send + Sync) -> Self {
        LockGuard(Box::new(inner))
    }
}

impl Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// An open file of a [`Backend`].
pub trait BackendFile: Send + Sync + Debug {
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the written bytes of this file durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Maps the whole file read-only. Only called for files that are never written again.
    fn map(&self) -> io::Result<Arc<dyn Mapped>>;
}

/// The bytes of a read-only mapped file.
pub trait Mapped: Deref<Target = [u8]> + Send + Sync + Debug {}
