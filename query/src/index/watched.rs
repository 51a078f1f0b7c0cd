//! A tantivy `Directory` that remembers the last failed write (which file, which error), so an
//! indexer failure names its cause instead of tantivy's "An index writer was killed", and that
//! lets fault tests fail the writes of one index directory (a full disk, without filling one).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};

/// Index directories whose writes fail, with the error kind (see [`fail_index_writes`]).
static FAULTS: Mutex<Vec<(PathBuf, io::ErrorKind)>> = Mutex::new(Vec::new());
/// Whether [`FAULTS`] holds anything: the common case reads one atomic, not the lock.
static ARMED: AtomicBool = AtomicBool::new(false);

/// Makes every write into the index directory `dir` (new files, their bytes, `meta.json`,
/// directory syncs) fail with `kind`, or, with `None`, work again. For fault tests of the
/// indexer: a full disk is `io::ErrorKind::StorageFull`.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub fn fail_index_writes(dir: &Path, kind: Option<io::ErrorKind>) {
    let mut faults = FAULTS.lock();
    faults.retain(|(d, _)| d != dir);
    if let Some(kind) = kind {
        faults.push((dir.to_path_buf(), kind));
    }
    ARMED.store(!faults.is_empty(), Ordering::Release);
}

fn injected(dir: Option<&Path>) -> io::Result<()> {
    if !ARMED.load(Ordering::Acquire) {
        return Ok(());
    }
    let Some(dir) = dir else { return Ok(()) };
    match FAULTS.lock().iter().find(|(d, _)| d == dir) {
        Some((_, kind)) => Err(io::Error::new(
            *kind,
            "no space left on device (injected by a test)",
        )),
        None => Ok(()),
    }
}

/// The last write that failed in a [`Watched`] directory, as "op file failed: error".
#[derive(Debug, Clone, Default)]
pub(crate) struct LastFailure(Arc<Mutex<Option<String>>>);

impl LastFailure {
    fn record(&self, op: &str, path: &Path, e: &io::Error) {
        *self.0.lock() = Some(format!("{op} {} failed: {e}", path.display()));
    }

    /// The failure recorded since the last call, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().take()
    }
}

/// Wraps the directory an index lives in (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    inner: Box<dyn Directory>,
    /// The index directory on disk (`None` in memory): faults are armed by it, and failures
    /// name files under it.
    dir: Option<PathBuf>,
    failure: LastFailure,
}

impl Watched {
    pub(crate) fn new(
        inner: Box<dyn Directory>,
        dir: Option<PathBuf>,
        failure: LastFailure,
    ) -> Self {
        Watched {
            inner,
            dir,
            failure,
        }
    }

    fn full(&self, path: &Path) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(|| path.to_path_buf(), |d| d.join(path))
    }

    fn check(&self, op: &str, path: &Path) -> io::Result<()> {
        injected(self.dir.as_deref()).inspect_err(|e| self.failure.record(op, &self.full(path), e))
    }
}

impl Directory for Watched {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.check("create", path)
            .map_err(|e| OpenWriteError::wrap_io_error(e, path.to_path_buf()))?;
        let inner = self.inner.open_write(path).inspect_err(|e| {
            if let OpenWriteError::IoError { io_error, .. } = e {
                self.failure.record("create", &self.full(path), io_error);
            }
        })?;
        // Nothing was written yet, so taking the writer out of its buffer loses nothing.
        let inner = inner
            .into_inner()
            .map_err(|e| OpenWriteError::wrap_io_error(e.into_error(), path.to_path_buf()))?;
        Ok(io::BufWriter::new(Box::new(WatchedWrite {
            inner,
            path: path.to_path_buf(),
            directory: self.clone(),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.check("write", path)?;
        self.inner
            .atomic_write(path, data)
            .inspect_err(|e| self.failure.record("write", &self.full(path), e))
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.check("sync", Path::new("."))?;
        self.inner
            .sync_directory()
            .inspect_err(|e| self.failure.record("sync", &self.full(Path::new(".")), e))
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

/// A file being written in a [`Watched`] directory.
struct WatchedWrite {
    inner: Box<dyn TerminatingWrite + Send + Sync>,
    path: PathBuf,
    directory: Watched,
}

impl WatchedWrite {
    /// Records `result`'s error, if any, as this file's.
    fn watch<T>(&self, op: &str, result: io::Result<T>) -> io::Result<T> {
        result.inspect_err(|e| {
            self.directory
                .failure
                .record(op, &self.directory.full(&self.path), e)
        })
    }
}

impl Write for WatchedWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.directory.check("write", &self.path)?;
        let result = self.inner.write(buf);
        self.watch("write", result)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.directory.check("write", &self.path)?;
        let result = self.inner.flush();
        self.watch("write", result)
    }
}

impl TerminatingWrite for WatchedWrite {
    fn terminate_ref(&mut self, token: AntiCallToken) -> io::Result<()> {
        self.directory.check("write", &self.path)?;
        let result = self.inner.terminate_ref(token);
        self.watch("write", result)
    }
}
