//! Read-only opens: following a log that another process writes (FORMAT.md §12).
//!
//! A follower takes no lock and writes nothing. It reads sealed segments whole (they are final)
//! and the active segment up to the end of its last complete batch, stopping quietly at
//! anything after it: the writer's batch in progress, or a torn tail its next open cuts. A
//! refresh reads what was appended since; after a compaction (the horizon's generation moved)
//! it reads the whole log again, since rewritten segments have new offsets.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{Backend, BackendFile};
use crate::error::{CorruptionKind, Error, Result};
use crate::horizon::{self, Horizon};
use crate::index::VersionIndex;
use crate::log::segment::{self, ScanItem, Scanner, SEGMENT_HEADER_LEN};
use crate::replay::{check_header, Replay};
use crate::shared::{SegmentReader, Shared, State};
use crate::types::OpenStats;

/// How often a load starts over because a file vanished between listing and opening it.
const ATTEMPTS: usize = 16;

/// Where a follower stopped reading.
#[derive(Debug)]
pub(crate) struct Follower {
    /// The segment read as the active one (`None`: the log had no segment yet).
    tail: Option<Tail>,
    /// The horizon generation the state reflects.
    generation: u64,
}

#[derive(Debug)]
struct Tail {
    number: u32,
    /// The file as it was opened: compaction may rename a new file over its name once it is
    /// sealed, and the offsets read so far belong to this one.
    file: Arc<dyn BackendFile>,
    /// The end of the last complete batch read (0: not even the header yet).
    end: u64,
    /// The file's length when last read, to tell quickly that nothing was appended.
    seen: u64,
    gaps_allowed: bool,
    origins_allowed: bool,
}

impl Follower {
    /// The active segment and the end of its last complete batch, for a backup.
    pub(crate) fn position(&self) -> (u32, u64) {
        self.tail.as_ref().map_or((0, 0), |t| (t.number, t.end))
    }
}

/// A log read without the lock.
pub(crate) struct Loaded {
    pub state: State,
    pub horizon: Horizon,
    pub follower: Follower,
    pub stats: OpenStats,
}

fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Reads the log in `dir` without locking or writing anything.
pub(crate) fn load(backend: &dyn Backend, dir: &Path) -> Result<Loaded> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match load_once(backend, dir) {
            Ok(loaded) => return Ok(loaded),
            // A segment named by the listing was gone when opened: list again.
            Err(Error::Io { source, op, path }) if vanished(&source) && path != dir => {
                last = Some(Error::Io { op, path, source });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::io("list directory", dir, io::ErrorKind::NotFound.into())))
}

fn segment_numbers(backend: &dyn Backend, dir: &Path) -> Result<Vec<u64>> {
    let names = backend
        .list_dir(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|name| segment::parse_file_name(name))
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

fn open(backend: &dyn Backend, path: &Path) -> Result<Arc<dyn BackendFile>> {
    backend
        .open_read(path)
        .map_err(|e| Error::io("open segment", path, e))
}

fn load_once(backend: &dyn Backend, dir: &Path) -> Result<Loaded> {
    let numbers = segment_numbers(backend, dir)?;
    let mut replay = Replay::resume(VersionIndex::new(1), false);
    let mut segments = BTreeMap::new();
    let mut stats = OpenStats::default();
    let mut tail = None;
    for (i, &number) in numbers.iter().enumerate() {
        let path = segment::path(dir, number);
        let n32 = segment::number32(&path, number)?;
        let file = open(backend, &path)?;
        stats.segments += 1;
        if i + 1 < numbers.len() {
            // A later segment exists, so this one was sealed: complete and final (FORMAT.md §5).
            let map = file
                .map()
                .map_err(|e| Error::io("map segment", path.clone(), e))?;
            scan(&mut replay, number, &path, &map, 0, true)?;
            segments.insert(n32, SegmentReader::Mapped(map));
        } else {
            let (bytes, seen) = read_from(&*file, &path, 0)?;
            let end = scan(&mut replay, number, &path, &bytes, 0, false)?;
            segments.insert(n32, SegmentReader::File(Arc::clone(&file)));
            tail = Some(Tail {
                number: n32,
                file,
                end,
                seen,
                gaps_allowed: replay.gaps_allowed,
                origins_allowed: replay.origins_allowed,
            });
        }
    }
    // Read after the segments: compaction raises the horizon before it renames a rewritten
    // segment into place, so a segment read above never has dropped versions the horizon read
    // here does not cover (FORMAT.md §9).
    let horizon = horizon::read_horizon(backend, dir)?;
    let horizon = horizon::required(dir, replay.index.dropped(), horizon)?;
    stats.records = replay.records;
    Ok(Loaded {
        follower: Follower {
            tail,
            generation: horizon.generation,
        },
        state: State {
            index: replay.index,
            segments,
        },
        horizon,
        stats,
    })
}

/// The bytes of `file` from `from` to its end, and its length.
fn read_from(file: &dyn BackendFile, path: &Path, from: u64) -> Result<(Vec<u8>, u64)> {
    let len = file.len().map_err(|e| Error::io("stat segment", path, e))?;
    let size = usize::try_from(len.saturating_sub(from))
        .map_err(|_| Error::corruption(path, from, CorruptionKind::BadLength(len)))?;
    let mut bytes = vec![0u8; size];
    match file.read_exact_at(&mut bytes, from) {
        Ok(()) => Ok((bytes, len)),
        // Shorter than it was a moment ago: the writer's open cut a torn tail. What is there
        // is read at the next refresh.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok((Vec::new(), from)),
        Err(e) => Err(Error::io("read segment", path, e)),
    }
}

/// Feeds the bytes of segment `number` from offset `base` (0: the whole file, header first)
/// to `replay` and returns the end of the last complete batch. A `sealed` segment must be
/// perfect; in the active one, the first frame that does not decode and any unfinished batch
/// end the read quietly (the writer's batch in progress, or a torn tail).
fn scan(
    replay: &mut Replay,
    number: u64,
    path: &Path,
    bytes: &[u8],
    base: u64,
    sealed: bool,
) -> Result<u64> {
    let n32 = segment::number32(path, number)?;
    let corrupt = |offset, kind| Error::corruption(path, offset, kind);
    let mut start = 0;
    if base == 0 {
        match check_header(bytes, number, replay) {
            Ok(header) => replay.gaps_allowed = header.compacted,
            // A segment being created: its header is not written yet (or was torn, and the
            // writer's next open writes it again).
            Err(_) if !sealed && bytes.len() <= SEGMENT_HEADER_LEN => return Ok(0),
            Err(kind) => return Err(corrupt(0, kind)),
        }
        start = SEGMENT_HEADER_LEN;
    }
    let mut end = base + start as u64;
    for item in Scanner::new(bytes, start) {
        match item {
            ScanItem::Record {
                offset,
                len,
                record,
            } => {
                let at = base + offset;
                replay
                    .record(n32, at, len, &record)
                    .map_err(|k| corrupt(at, k))?;
                if record.batch_end {
                    end = at + u64::from(len);
                }
            }
            ScanItem::Bad { offset, kind } if sealed => return Err(corrupt(base + offset, kind)),
            ScanItem::Bad { .. } => break,
        }
    }
    if sealed {
        if replay.has_pending_versions() {
            return Err(corrupt(
                base + bytes.len() as u64,
                CorruptionKind::IncompleteBatch,
            ));
        }
        // A compacted segment's last batch may have lost every record but dropped seqs.
        replay.apply_pending();
    } else {
        replay.drop_pending();
    }
    Ok(end)
}

/// Reads what the writer appended since the last look; after a compaction, or whenever the
/// quick way fails (a file vanished, a segment was rewritten), the whole log again. Returns
/// whether anything changed.
pub(crate) fn refresh(shared: &Shared, follower: &mut Follower) -> Result<bool> {
    match append(shared, follower) {
        Ok(Some(changed)) => Ok(changed),
        Ok(None) | Err(_) => {
            let loaded = load(shared.backend.as_ref(), &shared.dir)?;
            *shared.state.write() = loaded.state;
            *shared.horizon.write() = loaded.horizon;
            *follower = loaded.follower;
            Ok(true)
        }
    }
}

/// What reading the newest segment left: the end of its last complete batch, and whether it
/// allows seq gaps and origins.
type NewTail = (u64, bool, bool);

/// A segment that appeared since the last look, opened.
struct Later {
    number: u64,
    path: PathBuf,
    file: Arc<dyn BackendFile>,
}

/// The quick refresh: the bytes appended to the active segment and any segments created since.
/// `Ok(None)` when it cannot be done that way.
fn append(shared: &Shared, follower: &mut Follower) -> Result<Option<bool>> {
    let (backend, dir) = (shared.backend.as_ref(), shared.dir.as_path());
    let Some(tail) = &mut follower.tail else {
        return Ok(None);
    };
    let numbers = segment_numbers(backend, dir)?;
    let mut later = Vec::new();
    for number in numbers.into_iter().filter(|&n| n > u64::from(tail.number)) {
        let path = segment::path(dir, number);
        let file = open(backend, &path)?;
        later.push(Later { number, path, file });
    }
    let tail_path = segment::path(dir, u64::from(tail.number));
    let len = tail
        .file
        .len()
        .map_err(|e| Error::io("stat segment", tail_path.clone(), e))?;
    let generation = horizon::read_horizon(backend, dir)?.map_or(0, |h| h.generation);
    if generation != follower.generation {
        return Ok(None);
    }
    if later.is_empty() && len == tail.seen {
        return Ok(Some(false));
    }
    let (old_bytes, seen) = read_from(&*tail.file, &tail_path, tail.end)?;
    // The reads of the new segments happen before the lock is taken.
    let mut new_bytes = Vec::with_capacity(later.len());
    for (i, segment) in later.iter().enumerate() {
        if i + 1 < later.len() {
            let map = segment
                .file
                .map()
                .map_err(|e| Error::io("map segment", segment.path.clone(), e))?;
            new_bytes.push(Bytes::Mapped(map));
        } else {
            let (bytes, seen) = read_from(&*segment.file, &segment.path, 0)?;
            new_bytes.push(Bytes::Read(bytes, seen));
        }
    }
    let mut state = shared.state.write();
    let index = std::mem::replace(&mut state.index, VersionIndex::new(1));
    let mut replay = Replay::resume(index, tail.gaps_allowed);
    replay.origins_allowed = tail.origins_allowed;
    let before = replay.index.last_seq();
    let read = (|| -> Result<(u64, Option<NewTail>)> {
        let sealed = !later.is_empty();
        let old_end = scan(
            &mut replay,
            u64::from(tail.number),
            &tail_path,
            &old_bytes,
            tail.end,
            sealed,
        )?;
        let mut last = None;
        for (segment, bytes) in later.iter().zip(&new_bytes) {
            let end = scan(
                &mut replay,
                segment.number,
                &segment.path,
                bytes.bytes(),
                0,
                matches!(bytes, Bytes::Mapped(_)),
            )?;
            last = Some((end, replay.gaps_allowed, replay.origins_allowed));
        }
        Ok((old_end, last))
    })();
    state.index = replay.index;
    let (old_end, last) = read?;
    let changed = state.index.last_seq() != before || !later.is_empty();
    if later.is_empty() {
        tail.end = old_end;
        tail.seen = seen;
        return Ok(Some(changed));
    }
    // The old active segment is sealed now: read it through a map from here on (of the file
    // as it was opened, whose offsets the index holds).
    let map = tail
        .file
        .map()
        .map_err(|e| Error::io("map segment", tail_path, e))?;
    state
        .segments
        .insert(tail.number, SegmentReader::Mapped(map));
    let mut new_tail = None;
    for (segment, bytes) in later.into_iter().zip(new_bytes) {
        let n32 = segment::number32(&segment.path, segment.number)?;
        match bytes {
            Bytes::Mapped(map) => {
                state.segments.insert(n32, SegmentReader::Mapped(map));
            }
            Bytes::Read(_, seen) => {
                state
                    .segments
                    .insert(n32, SegmentReader::File(Arc::clone(&segment.file)));
                let (end, gaps_allowed, origins_allowed) = last.unwrap_or((0, false, false));
                new_tail = Some(Tail {
                    number: n32,
                    file: segment.file,
                    end,
                    seen,
                    gaps_allowed,
                    origins_allowed,
                });
            }
        }
    }
    follower.tail = new_tail;
    Ok(Some(true))
}

enum Bytes {
    Mapped(Arc<dyn crate::backend::Mapped>),
    Read(Vec<u8>, u64),
}

impl Bytes {
    fn bytes(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Read(bytes, _) => bytes,
        }
    }
}
