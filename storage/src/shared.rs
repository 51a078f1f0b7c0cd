//! What do the writer, the readers, recovery, compaction and a follower share? The open log's
//! state (the version index and a reader per segment), the handle they all hold ([`Shared`]),
//! the reading of one version's frame, and the lock of the log directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::backend::{Backend, BackendFile, LockGuard, Mapped};
use crate::error::{CorruptionKind, Error, Result};
use crate::horizon::Horizon;
use crate::index::{SeqEntry, VersionIndex};
use crate::log::frame;
use crate::log::record::Record;
use crate::log::segment;
use crate::options::EngineOptions;
use crate::types::{Version, VersionMeta};

/// How a segment is read.
#[derive(Debug, Clone)]
pub(crate) enum SegmentReader {
    /// A sealed segment, mapped read-only.
    Mapped(Arc<dyn Mapped>),
    /// The active segment, read with positioned reads.
    File(Arc<dyn BackendFile>),
}

/// The version index and how to read each segment, behind `Shared::state`.
#[derive(Debug)]
pub(crate) struct State {
    pub index: VersionIndex,
    pub segments: BTreeMap<u32, SegmentReader>,
}

/// What the committers and the readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub backend: Arc<dyn Backend>,
    pub options: EngineOptions,
    pub state: RwLock<State>,
    pub poisoned: AtomicBool,
    /// Where history stops being complete (compaction raises it).
    pub horizon: RwLock<Horizon>,
    /// Held by a compaction run, and by whatever needs the sealed segments to stay as they are.
    pub compact_lock: Mutex<()>,
    /// Bytes of segments the running compaction has read, and will read in all.
    pub compact_progress: (AtomicU64, AtomicU64),
}

impl Shared {
    /// The handle of a log just opened (read-write or read-only) with `state` and `horizon`.
    pub(crate) fn new(
        dir: &Path,
        backend: Arc<dyn Backend>,
        options: EngineOptions,
        state: State,
        horizon: Horizon,
    ) -> Self {
        Shared {
            dir: dir.to_path_buf(),
            backend,
            options,
            state: RwLock::new(state),
            poisoned: AtomicBool::new(false),
            horizon: RwLock::new(horizon),
            compact_lock: Mutex::new(()),
            compact_progress: (AtomicU64::new(0), AtomicU64::new(0)),
        }
    }

    /// Reads and checks the frame of one version.
    pub(crate) fn read_entry(&self, entry: &SeqEntry, reader: &SegmentReader) -> Result<Version> {
        self.with_record(entry, reader, |record| Version {
            meta: meta_of(record),
            body: record.body.to_vec(),
        })
    }

    /// Reads and checks the frame of one version and hands its record to `f`.
    fn with_record<T>(
        &self,
        entry: &SeqEntry,
        reader: &SegmentReader,
        f: impl FnOnce(&Record<'_>) -> T,
    ) -> Result<T> {
        // The path is built only when an error needs it: this is the hot read path.
        let path = || segment::path(&self.dir, u64::from(entry.segment));
        let offset = u64::from(entry.offset);
        let corrupt = |kind| Error::corruption(path(), offset, kind);
        let owned;
        let bytes: &[u8] = match reader {
            SegmentReader::Mapped(map) => map
                .get(entry.offset as usize..entry.offset as usize + entry.len as usize)
                .ok_or_else(|| corrupt(CorruptionKind::Truncated))?,
            SegmentReader::File(file) => {
                let mut buf = vec![0u8; entry.len as usize];
                file.read_exact_at(&mut buf, offset)
                    .map_err(|e| Error::io("read", path(), e))?;
                owned = buf;
                &owned
            }
        };
        let (payload, _) = frame::decode(bytes).map_err(corrupt)?;
        let record = Record::decode(payload).map_err(corrupt)?;
        Ok(f(&record))
    }

    /// The metadata of the version with `seq`, without copying its body.
    pub(crate) fn read_meta(&self, seq: u64) -> Result<Option<VersionMeta>> {
        match locate(&self.state.read(), seq) {
            Some((entry, reader)) => self.with_record(&entry, &reader, meta_of).map(Some),
            None => Ok(None),
        }
    }

    /// Looks up where `seq` lives (under the read lock), then reads it (without the lock).
    pub(crate) fn read_seq(&self, seq: u64) -> Result<Option<Version>> {
        let found = locate(&self.state.read(), seq);
        self.read_located(found)
    }

    pub(crate) fn read_located(
        &self,
        found: Option<(SeqEntry, SegmentReader)>,
    ) -> Result<Option<Version>> {
        match found {
            Some((entry, reader)) => self.read_entry(&entry, &reader).map(Some),
            None => Ok(None),
        }
    }
}

fn meta_of(record: &Record<'_>) -> VersionMeta {
    VersionMeta {
        id: record.id.to_owned(),
        kind: record.kind.to_owned(),
        version: record.version,
        seq: record.seq,
        time: record.time,
        tombstone: record.tombstone,
        expires_at: record.expires_at,
    }
}

/// Where the version with `seq` lives, and how to read its segment.
pub(crate) fn locate(state: &State, seq: u64) -> Option<(SeqEntry, SegmentReader)> {
    let entry = state.index.entry(seq)?;
    Some((*entry, state.segments.get(&entry.segment)?.clone()))
}

/// Name of the lock file in the log directory.
pub const LOCK_FILE: &str = "LOCK";

/// Takes the exclusive lock of the log directory `dir` (which must exist), the one every open
/// engine holds; [`Error::Locked`] if a store (or a tool, or a restore) holds it. Never unlink
/// the lock file: a second opener would lock a new one.
pub fn lock_dir(backend: &dyn Backend, dir: &Path) -> Result<LockGuard> {
    let lock_path = dir.join(LOCK_FILE);
    backend
        .try_lock(&lock_path)
        .map_err(|e| Error::io("lock", lock_path.clone(), e))?
        .ok_or_else(|| Error::Locked {
            path: dir.to_path_buf(),
            holder: backend.lock_holder(&lock_path),
        })
}
