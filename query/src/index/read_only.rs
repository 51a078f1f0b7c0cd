//! How does a read-only open read the index another process writes? Its last commit, read
//! without an `IndexWriter`, a lock or any write.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage::Engine;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::{IndexReader, ReloadPolicy};

use super::files::{payload_on_disk, Payload, META_FILE};
use super::open::IndexOpenReport;
use crate::convert::{text_analyzer, TEXT_TOKENIZER};

/// How often an open starts over because the commit changed while it read it.
const ATTEMPTS: usize = 16;

/// A tantivy directory that reads and never writes: no lock files either. tantivy takes its
/// meta lock while it opens a commit's segments so that the writer's garbage collection does
/// not delete them meanwhile; here a vanished file fails the open instead, which starts over
/// (an open segment file stays readable after it is deleted).
#[derive(Debug, Clone)]
pub(crate) struct ReadOnlyDir {
    inner: Box<dyn Directory>,
    dir: PathBuf,
}

fn refused(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: a read-only open writes nothing", path.display()),
    )
}

impl Directory for ReadOnlyDir {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        Err(DeleteError::IoError {
            io_error: Arc::new(refused(&self.dir.join(path))),
            filepath: path.to_path_buf(),
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::wrap_io_error(
            refused(&self.dir.join(path)),
            path.to_path_buf(),
        ))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, _data: &[u8]) -> io::Result<()> {
        Err(refused(&self.dir.join(path)))
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, _watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}

/// An index read from disk: its reader, and the seq and generation of the commit the reader
/// holds.
pub(crate) struct Opened {
    pub index: tantivy::Index,
    pub reader: IndexReader,
    pub seq: u64,
    pub generation: u64,
}

/// Opens the last commit of the index in `dir`; `Err` says why it cannot be used (queries then
/// read every version from the log).
pub(crate) fn open(dir: &Path, schema: &tantivy::schema::Schema) -> Result<Opened, String> {
    if !dir.join(META_FILE).exists() {
        return Err(format!("{} has no {META_FILE}", dir.display()));
    }
    let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| e.to_string())?;
    let directory = ReadOnlyDir {
        inner: Box::new(mmap),
        dir: dir.to_path_buf(),
    };
    let index = tantivy::Index::open(directory).map_err(|e| format!("it does not open: {e}"))?;
    let same = serde_json::to_string(&index.schema()).ok() == serde_json::to_string(schema).ok();
    if !same {
        return Err("its schema is not this version's".to_owned());
    }
    index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e: tantivy::TantivyError| format!("it does not open: {e}"))?;
    let (seq, generation) = reload(dir, &reader)?;
    Ok(Opened {
        index,
        reader,
        seq,
        generation,
    })
}

/// Reloads `reader` with the newest commit and returns the seq and generation it covers. The
/// payload is read before and after the reload: when both agree, the reader holds that commit
/// (or a merge of it, which holds the same versions); otherwise the writer committed meanwhile,
/// and it starts over.
pub(crate) fn reload(dir: &Path, reader: &IndexReader) -> Result<(u64, u64), String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let before = payload_on_disk(dir);
        if let Err(e) = reader.reload() {
            // A file the commit names was deleted by a merge meanwhile: read the new commit.
            last = format!("its segments do not open: {e}");
            continue;
        }
        let after = payload_on_disk(dir);
        if before != after {
            last = "it changed while it was read".to_owned();
            continue;
        }
        return match after.as_deref().map(Payload::parse) {
            None => Ok((0, 0)),
            Some(Some(found)) => Ok(found),
            Some(None) => Err(format!("its commit payload {after:?} is not understood")),
        };
    }
    Err(last)
}

/// The index a read-only open reads: the last commit in `dir` if it opens and the log (read
/// up to it if need be) covers it, otherwise an empty index in memory (every version is then
/// matched from the log), with the report saying why. Returns the index, its reader, and its
/// directory when it is the one on disk.
pub(crate) fn open_or_empty(
    engine: &Engine,
    dir: PathBuf,
    schema: &tantivy::schema::Schema,
) -> crate::Result<(
    tantivy::Index,
    IndexReader,
    Option<PathBuf>,
    IndexOpenReport,
)> {
    let mut report = IndexOpenReport::default();
    let opened = match open(&dir, schema) {
        Ok(opened) => {
            // The log batches the commit covers were written before it: read them if
            // the engine was opened before they were.
            if opened.seq > engine.last_seq() {
                engine.refresh()?;
            }
            if opened.seq > engine.last_seq() {
                report.unused = Some(format!(
                    "it covers seq {} but the log ends at {}",
                    opened.seq,
                    engine.last_seq()
                ));
                None
            } else {
                Some(opened)
            }
        }
        Err(reason) => {
            report.unused = Some(reason);
            None
        }
    };
    Ok(match opened {
        Some(opened) => {
            report.committed_seq = opened.seq;
            report.compaction_generation = opened.generation;
            (opened.index, opened.reader, Some(dir), report)
        }
        None => {
            let index = tantivy::Index::create_in_ram(schema.clone());
            index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
            let reader: IndexReader = index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()?;
            (index, reader, None, report)
        }
    })
}
