//! What does the rest of the system call? The engine: the log, its version index and its single
//! writer, behind one handle. It stands on top of the storage crate: it opens through
//! `recovery` (or `follow`, read-only), writes through `writer` and shrinks through `compact`,
//! and none of them imports it (ARCHITECTURE.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::backend::{Backend, LockGuard, OsBackend};
use crate::compact::{self, CompactOptions, CompactReport, Rules};
use crate::error::{Error, Result};
use crate::follow::{self, Follower};
use crate::index::SeqEntry;
use crate::log::segment;
use crate::options::{Durability, EngineOptions};
use crate::recovery;
use crate::shared::{locate, lock_dir, SegmentReader, Shared};
use crate::types::{
    Action, Expect, IdScope, OpenStats, Origin, Selector, Unknown, Version, VersionMeta, WriteOp,
};
use crate::writer::{Committer, Writer};

/// The write side: the group committer, the flusher thread of buffered durability, and the
/// directory lock. Dropped with the last handle: stops the flusher, syncs, unlocks.
struct WriterHandle {
    committer: Arc<Committer>,
    flusher: Option<(Sender<()>, JoinHandle<()>)>,
    _lock: LockGuard,
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterHandle")
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.flusher.take() {
            drop(stop);
            let _ = thread.join();
        }
        self.committer.close();
    }
}

/// Starts the thread that syncs buffered writes once their interval has passed.
fn spawn_flusher(
    committer: &Arc<Committer>,
    interval: Duration,
    dir: &Path,
) -> Result<(Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let committer = Arc::clone(committer);
    // Checking four times per interval bounds the delay of a sync to 1.25 intervals.
    let tick = (interval / 4).max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name("strata-flusher".into())
        .spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(tick)
                {
                    committer.sync_if_due();
                }
            }));
            // Buffered writes would never be synced again: refuse writes from now on (the
            // next write answers `Poisoned`) rather than acknowledge what cannot be made
            // durable.
            if run.is_err() {
                committer.poison();
            }
        })
        .map_err(|e| Error::io("spawn flusher thread", dir, e))?;
    Ok((stop, thread))
}

/// An open log: append batches, read versions. Cheap to clone and share across threads.
#[derive(Debug, Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// `None` for a read-only open, which has a follower instead.
    writer: Option<Arc<WriterHandle>>,
    follower: Option<Arc<Mutex<Follower>>>,
}

impl Engine {
    /// Opens (or creates) the log in `dir` on the real file system.
    pub fn open(dir: &Path, options: EngineOptions) -> Result<(Engine, OpenStats)> {
        Self::open_with(Arc::new(OsBackend), dir, options)
    }

    /// Opens (or creates) the log in `dir` on `backend`, recovering from any crash.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        dir: &Path,
        options: EngineOptions,
    ) -> Result<(Engine, OpenStats)> {
        options.validate()?;
        let started = std::time::Instant::now();
        backend
            .create_dir_all(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
        let lock = lock_dir(backend.as_ref(), dir)?;
        let recovered = recovery::recover(backend.as_ref(), dir)?;
        let mut stats = recovered.stats;
        let shared = Arc::new(Shared::new(
            dir,
            backend,
            options,
            recovered.state,
            recovered.horizon,
        ));
        let committer = Arc::new(Committer::new(Writer::new(
            Arc::clone(&shared),
            recovered.active,
        )));
        let flusher = match shared.options.durability {
            Durability::Buffered(interval) => Some(spawn_flusher(&committer, interval, dir)?),
            _ => None,
        };
        stats.open_micros = started.elapsed().as_micros() as u64;
        Ok((
            Engine {
                shared,
                writer: Some(Arc::new(WriterHandle {
                    committer,
                    flusher,
                    _lock: lock,
                })),
                follower: None,
            },
            stats,
        ))
    }

    /// Opens the log in `dir` read-only, on the real file system: see
    /// [`Engine::open_read_only_with`].
    pub fn open_read_only(dir: &Path, options: EngineOptions) -> Result<(Engine, OpenStats)> {
        Self::open_read_only_with(Arc::new(OsBackend), dir, options)
    }

    /// Opens the log in `dir` read-only, while another process (or none) writes it: no lock is
    /// taken and nothing is created, written, cut or removed. It holds every batch complete in
    /// the files when it opened; the active segment's bytes after its last complete batch (a
    /// batch being written, or a torn tail) are left alone, not judged. [`Engine::refresh`]
    /// reads newer batches. Writes answer [`Error::ReadOnly`] (FORMAT.md §12).
    pub fn open_read_only_with(
        backend: Arc<dyn Backend>,
        dir: &Path,
        options: EngineOptions,
    ) -> Result<(Engine, OpenStats)> {
        options.validate()?;
        let started = std::time::Instant::now();
        let loaded = follow::load(backend.as_ref(), dir)?;
        let mut stats = loaded.stats;
        stats.open_micros = started.elapsed().as_micros() as u64;
        let shared = Arc::new(Shared::new(
            dir,
            backend,
            options,
            loaded.state,
            loaded.horizon,
        ));
        Ok((
            Engine {
                shared,
                writer: None,
                follower: Some(Arc::new(Mutex::new(loaded.follower))),
            },
            stats,
        ))
    }

    /// Whether this engine was opened read-only ([`Engine::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    /// Reads the batches another process completed since the open or the last refresh (after
    /// a compaction, the whole log again) and returns whether anything changed. A no-op for
    /// the writer's own engine, which sees its writes as it makes them.
    pub fn refresh(&self) -> Result<bool> {
        match &self.follower {
            Some(follower) => follow::refresh(&self.shared, &mut follower.lock()),
            None => Ok(false),
        }
    }

    fn writer(&self, op: &'static str) -> Result<&WriterHandle> {
        self.writer.as_deref().ok_or_else(|| Error::ReadOnly {
            op,
            path: self.shared.dir.clone(),
        })
    }

    /// Appends `ops` as one atomic batch and returns the new versions, once they are as durable
    /// as the durability mode promises. `time` asks for an explicit update time of the batch,
    /// which must be later than every time in the store; an operation may carry its own time
    /// ([`WriteOp::time`]), later than the previous operation's, and one without shares the
    /// previous operation's (the first: the batch's time, or the clock). An error that one
    /// operation caused is [`Error::Op`], naming it; nothing of the batch is written then.
    pub fn commit(&self, ops: Vec<WriteOp>, time: Option<u64>) -> Result<Vec<VersionMeta>> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let writer = self.writer("commit")?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        writer.committer.commit(ops, time, None)
    }

    /// Appends `ops` as one atomic batch applied from a log of record (a replica), storing
    /// `origin.position` with it atomically (FORMAT.md §4). The batch's time is
    /// `max(origin.min_time, last + 1 µs)` and no time of it is checked against the clock, so
    /// every replica applying the same batches in the same order writes the same versions.
    /// Expectations are checked as by [`Engine::commit`]; a batch that fails them is written
    /// nowhere and its origin is not stored. `origin.position` must be later than
    /// [`Engine::last_origin`], or the batch is [`Error::OriginNotLater`]. An empty batch
    /// writes nothing, not even its origin.
    pub fn commit_replicated(&self, ops: Vec<WriteOp>, origin: Origin) -> Result<Vec<VersionMeta>> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let writer = self.writer("commit")?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        writer.committer.commit(ops, None, Some(origin))
    }

    /// The origin of the newest batch written with one ([`Engine::commit_replicated`]), as
    /// stored in the log: after a crash, the position a replica resumes after. `None` if no
    /// batch carried one.
    pub fn last_origin(&self) -> Option<u64> {
        self.shared.state.read().index.last_origin()
    }

    /// Makes every acknowledged write durable now (useful with buffered durability). Nothing
    /// to do for a read-only engine.
    pub fn flush(&self) -> Result<()> {
        match &self.writer {
            Some(writer) => writer.committer.flush(),
            None => Ok(()),
        }
    }

    /// Whether an earlier IO failure poisoned the engine.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// Reads one version of `id`, tombstones included; `Ok(None)` if there is none.
    ///
    /// A version compaction dropped is [`Error::HistoryTrimmed`], never `Ok(None)`: asking for a
    /// version older than the oldest kept one, or for the version current at a time or seq
    /// before it.
    pub fn get(&self, id: &str, selector: Selector) -> Result<Option<Version>> {
        let found = {
            let state = self.shared.state.read();
            let index = &state.index;
            if let Some((first_seq, first_time)) = index.trimmed_at(id) {
                let below = match selector {
                    Selector::Newest => false,
                    Selector::Version(v) => index.chain(id).is_some_and(|c| v < c.first_version),
                    Selector::AtTime(t) => t < first_time,
                    Selector::AtSeq(s) => s < first_seq,
                };
                if below {
                    return Err(Error::HistoryTrimmed {
                        id: Some(id.to_owned()),
                        oldest_complete: first_time,
                    });
                }
            }
            let seq = match selector {
                Selector::Newest => index.chain(id).map(|c| c.newest_seq()),
                Selector::Version(v) => index.chain(id).and_then(|c| {
                    let i = usize::try_from(v.checked_sub(c.first_version)?).ok()?;
                    c.seqs.as_slice().get(i).copied()
                }),
                Selector::AtTime(t) => index.seq_current_at_time(id, t),
                Selector::AtSeq(s) => index.seq_current_at(id, s),
            };
            // Find the location under the same lock: one acquisition per read.
            seq.and_then(|seq| locate(&state, seq))
        };
        self.shared.read_located(found)
    }

    /// Every retained version of `id`, oldest first, tombstones included (compaction may have
    /// dropped older ones: see [`Engine::trimmed_at`]).
    pub fn history(&self, id: &str) -> Result<Vec<Version>> {
        // Find every location under one read lock, then read without it.
        let located: Vec<(SeqEntry, SegmentReader)> = {
            let state = self.shared.state.read();
            let Some(chain) = state.index.chain(id) else {
                return Ok(Vec::new());
            };
            chain
                .seqs
                .as_slice()
                .iter()
                .filter_map(|&seq| locate(&state, seq))
                .collect()
        };
        located
            .iter()
            .map(|(entry, reader)| self.shared.read_entry(entry, reader))
            .collect()
    }

    /// Reads the version with this seq (`None` past the end, and for a version compaction
    /// dropped).
    pub fn get_seq(&self, seq: u64) -> Result<Option<Version>> {
        self.shared.read_seq(seq)
    }

    /// The file and offset of the frame of the version with `seq`, if the log holds it.
    pub fn location(&self, seq: u64) -> Option<(PathBuf, u64)> {
        let state = self.shared.state.read();
        let entry = state.index.entry(seq)?;
        Some((
            segment::path(&self.shared.dir, u64::from(entry.segment)),
            u64::from(entry.offset),
        ))
    }

    /// The time of the oldest version of `id` still kept, if compaction dropped older ones.
    pub fn trimmed_at(&self, id: &str) -> Option<u64> {
        self.shared
            .state
            .read()
            .index
            .trimmed_at(id)
            .map(|(_, t)| t)
    }

    /// Rewrites sealed segments without the versions `rules` no longer keep (see
    /// [`crate::RetentionRule`]) and returns what was dropped. Reads and writes go on meanwhile; one
    /// run at a time. Crash-safe at every step (FORMAT.md §9).
    pub fn compact(&self, rules: Rules<'_>, options: &CompactOptions) -> Result<CompactReport> {
        self.writer("compact")?;
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        compact::compact(&self.shared, rules, options)
    }

    /// How far the running (or last) compaction has come: bytes of the segments it rewrites
    /// read so far, and in all.
    pub fn compaction_progress(&self) -> (u64, u64) {
        let (done, total) = &self.shared.compact_progress;
        (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed))
    }

    /// The `(seq, time)` from which snapshots see every version of `kind` they should (`None`
    /// for the whole store): before it, compaction dropped some. `None` when nothing of it was
    /// dropped.
    pub fn horizon(&self, kind: Option<&str>) -> Option<(u64, u64)> {
        self.shared.horizon.read().of(kind)
    }

    /// Segments compaction has rewritten, ever: indexes derived from the log store it to know
    /// whether they have removed every dropped version.
    pub fn compaction_generation(&self) -> u64 {
        self.shared.horizon.read().generation
    }

    /// The documents (of `scope`, or all) whose state at snapshot seq `at` is not known because
    /// compaction dropped versions: their number and the first `list` ids in id order. A
    /// document's state at `at` is known when nothing of its history was dropped, when the newest
    /// of its versions at or before `at` is kept, or when no version at or before `at` was
    /// dropped at all (it did not exist yet). Costs a pass over the documents in scope (none
    /// when no version at or before `at` was dropped).
    pub fn unknown_at(&self, at: u64, scope: Option<&IdScope>, list: usize) -> Unknown {
        self.shared.state.read().index.unknown_at(at, scope, list)
    }

    /// The seqs, up to `up_to`, of the versions compaction dropped.
    pub fn dropped_seqs(&self, up_to: u64) -> Vec<u64> {
        self.shared.state.read().index.dropped_seqs(up_to)
    }

    /// The earliest expiry among documents' newest versions (possibly of a version since
    /// superseded), to know when to call [`Engine::expire`] next.
    pub fn next_expiry(&self) -> Option<u64> {
        self.shared.state.read().index.next_expiry()
    }

    /// Writes the tombstones of up to `limit` documents whose newest version expired at or
    /// before `now` ([`Action::Expire`]), and returns them. A document changed meanwhile is
    /// skipped: its new version carries its own expiry, if any.
    pub fn expire(&self, now: u64, limit: usize) -> Result<Vec<VersionMeta>> {
        self.writer("expire")?;
        let taken = self.shared.state.write().index.take_expired(now, limit);
        let mut ops = Vec::with_capacity(taken.len());
        for &(_, seq) in &taken {
            if let Some(meta) = self.shared.read_meta(seq)? {
                ops.push(WriteOp {
                    id: meta.id,
                    expect: Expect::Version(meta.version),
                    action: Action::Expire,
                    expires_at: None,
                    time: None,
                });
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let put_back = |taken: &[(u64, u64)]| {
            let mut state = self.shared.state.write();
            for &(at, seq) in taken {
                state.index.note_expiry(at, seq);
            }
        };
        // One batch for all; if a document changed meanwhile, one batch each.
        let singles: Vec<WriteOp> = ops
            .iter()
            .map(|op| WriteOp {
                id: op.id.clone(),
                expect: op.expect,
                action: Action::Expire,
                expires_at: None,
                time: None,
            })
            .collect();
        match self.commit(ops, None).map_err(Error::into_reason) {
            Ok(metas) => Ok(metas),
            Err(Error::Conflict { .. }) => {
                let mut written = Vec::new();
                for op in singles {
                    match self.commit(vec![op], None).map_err(Error::into_reason) {
                        Ok(metas) => written.extend(metas),
                        Err(Error::Conflict { .. } | Error::NotFound { .. }) => {}
                        Err(e) => {
                            put_back(&taken);
                            return Err(e);
                        }
                    }
                }
                Ok(written)
            }
            Err(e) => {
                put_back(&taken);
                Err(e)
            }
        }
    }

    /// A consistent view of the log's files for a backup: every acknowledged batch up to
    /// [`LogSnapshot::last_seq`], whole. Compaction waits while it lives; writes go on (the
    /// active segment is read up to the length it had).
    pub fn snapshot(&self) -> Result<LogSnapshot<'_>> {
        let pause = self.shared.compact_lock.lock();
        self.flush()?;
        // A read-only engine's position is where its follower stopped; holding the follower
        // keeps a refresh from moving the state past it until the state is read.
        let follower = self.follower.as_ref().map(|f| f.lock());
        let (active, active_len, last_seq) = match (&self.writer, &follower) {
            (Some(writer), _) => writer.committer.position(),
            (None, Some(follower)) => {
                let (active, end) = follower.position();
                (active, end, self.shared.state.read().index.last_seq())
            }
            (None, None) => (0, 0, 0),
        };
        let state = self.shared.state.read();
        drop(follower);
        let mut files = Vec::new();
        for (&number, reader) in state.segments.range(..=active) {
            let len = match reader {
                _ if number == active => active_len,
                SegmentReader::Mapped(map) => map.len() as u64,
                SegmentReader::File(file) => file.len().map_err(|e| {
                    Error::io(
                        "stat",
                        segment::path(&self.shared.dir, u64::from(number)),
                        e,
                    )
                })?,
            };
            files.push(LogFile {
                name: segment::file_name(u64::from(number)),
                len,
                reader: reader.clone(),
            });
        }
        let horizon = {
            let h = self.shared.horizon.read();
            (h.generation > 0).then(|| h.encode())
        };
        Ok(LogSnapshot {
            _pause: pause,
            files,
            horizon,
            last_seq,
            // The time of the seq the files end at (a batch may have been published since).
            last_time: state.index.time_of(last_seq).unwrap_or(0),
        })
    }
    /// Up to `limit` document ids (deleted ones included) that start with `prefix` and sort
    /// after `after`, in id order.
    pub fn ids_with_prefix(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<String> {
        let state = self.shared.state.read();
        state
            .index
            .ids_with_prefix(prefix, after, limit)
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The newest seq (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.shared.state.read().index.last_seq()
    }

    /// The newest update time (0 when empty).
    pub fn last_time(&self) -> u64 {
        self.shared.state.read().index.last_time()
    }

    /// The time of `seq` (also of a seq whose version compaction dropped); `None` past the end.
    pub fn seq_time(&self, seq: u64) -> Option<u64> {
        self.shared.state.read().index.time_of(seq)
    }

    /// The snapshot seq of `AsOf(time)`: the last seq whose time is `<= time`.
    pub fn seq_at_time(&self, time: u64) -> u64 {
        self.shared.state.read().index.seq_at_time(time)
    }

    /// Whether the version with `seq` is visible at snapshot seq `at` (docs/DESIGN.md §4).
    pub fn visible_at(&self, seq: u64, at: u64) -> bool {
        self.shared.state.read().index.visible_at(seq, at)
    }

    /// The visibility columns of each of `seqs`, under one read lock: `out[i]` describes
    /// `seqs[i]` (`None` for a seq the log does not hold). Queries check visibility with these.
    pub fn seq_columns(&self, seqs: &[u64], out: &mut Vec<Option<SeqColumns>>) {
        out.clear();
        let state = self.shared.state.read();
        out.extend(seqs.iter().map(|&seq| {
            state.index.entry(seq).map(|e| SeqColumns {
                time: e.time,
                end: e.end,
                tombstone: e.tombstone,
                expires: e.expires,
            })
        }));
    }

    /// Counts: (documents ever written, documents not deleted, versions, approximate index bytes).
    pub fn counts(&self) -> EngineCounts {
        let state = self.shared.state.read();
        EngineCounts {
            documents: state.index.documents(),
            live_documents: state.index.live_documents(),
            versions: state.index.last_seq() - state.index.dropped(),
            dropped_versions: state.index.dropped(),
            index_heap_bytes: state.index.approximate_heap_bytes() as u64,
            segments: state.segments.len() as u64,
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

/// The log's files as [`Engine::snapshot`] found them.
#[derive(Debug)]
pub struct LogSnapshot<'a> {
    _pause: parking_lot::MutexGuard<'a, ()>,
    /// The segment files, oldest first, with the length that belongs to the snapshot.
    pub files: Vec<LogFile>,
    /// The bytes of the horizon file, if compaction ever ran (FORMAT.md §9).
    pub horizon: Option<Vec<u8>>,
    /// The newest seq the files hold.
    pub last_seq: u64,
    /// The time of that seq.
    pub last_time: u64,
}

/// One segment file of a [`LogSnapshot`].
#[derive(Debug)]
pub struct LogFile {
    /// The file name inside the log directory.
    pub name: String,
    /// The bytes that belong to the snapshot (the active segment may have grown since).
    pub len: u64,
    reader: SegmentReader,
}

impl LogFile {
    /// Fills `buf` with the file's bytes from `offset` (within [`LogFile::len`]).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.len)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        match &self.reader {
            SegmentReader::Mapped(map) => {
                let src = map
                    .get(offset as usize..end as usize)
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
            SegmentReader::File(file) => file.read_exact_at(buf, offset),
        }
    }
}

/// The visibility columns of one version (docs/DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeqColumns {
    /// Update time, microseconds since the Unix epoch.
    pub time: u64,
    /// The seq of the next version of the same document, or [`crate::OPEN_END`].
    pub end: u64,
    /// Whether the version is a tombstone.
    pub tombstone: bool,
    /// Whether the version carries an expiry time (read the record to learn it).
    pub expires: bool,
}

/// Sizes of an engine, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineCounts {
    /// Documents ever written (deleted ones included).
    pub documents: u64,
    /// Documents whose newest version is not a tombstone.
    pub live_documents: u64,
    /// Versions the log holds (the newest seq, less those compaction dropped).
    pub versions: u64,
    /// Versions compaction dropped.
    pub dropped_versions: u64,
    /// Approximate heap bytes of the version index.
    pub index_heap_bytes: u64,
    /// Segment files.
    pub segments: u64,
}
