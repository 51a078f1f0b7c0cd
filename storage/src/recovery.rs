//! What happens on open after a crash? Opening the log under its lock: remove what an
//! interrupted compaction left, replay every segment into the version index, and decide the
//! active segment's tail: a torn tail is cut, damage refused (FORMAT.md §6). Also the cut of a
//! restored log at a point in time (`cut_log_after`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::backend::{Backend, BackendFile, LockGuard, Mapped};
use crate::error::{CorruptionKind, Error, Result};
use crate::horizon::{self, Horizon, HORIZON_FILE, HORIZON_TMP};
use crate::index::VersionIndex;
use crate::log::frame;
use crate::log::record::Record;
use crate::log::segment::{
    self, ActiveSegment, ScanItem, Scanner, SegmentHeader, COMPACT_SUFFIX, SEGMENT_HEADER_LEN,
};
use crate::replay::{check_header, Replay};
use crate::shared::{lock_dir, SegmentReader, State};
use crate::types::OpenStats;

pub(crate) struct Recovered {
    pub state: State,
    pub active: ActiveSegment,
    pub stats: OpenStats,
    pub horizon: Horizon,
}

/// Opens the log in `dir` (under its lock): finds the segments, replays the sealed ones,
/// then reads the active one and decides its tail (FORMAT.md §6).
pub(crate) fn recover(backend: &dyn Backend, dir: &Path) -> Result<Recovered> {
    let (numbers, horizon) = scan_dir(backend, dir)?;
    let Some((&last_number, sealed)) = numbers.split_last() else {
        return new_log(backend, dir, horizon.unwrap_or_default());
    };
    let mut stats = OpenStats::default();
    let mut replay = Replay::resume(VersionIndex::new(1), false);
    let mut segments = BTreeMap::new();
    for &number in sealed {
        let (number32, map) = replay_sealed(backend, dir, number, &mut replay)?;
        stats.segments += 1;
        segments.insert(number32, SegmentReader::Mapped(map));
    }
    let active = open_active(backend, dir, last_number, &mut replay, &mut stats)?;
    segments.insert(active.number, SegmentReader::File(Arc::clone(&active.file)));
    stats.records = replay.records;
    let horizon = horizon::required(dir, replay.index.dropped(), horizon)?;
    Ok(Recovered {
        state: State {
            index: replay.index,
            segments,
        },
        active,
        stats,
        horizon,
    })
}

/// The scan of the log directory: removes what an interrupted compaction left, and returns the
/// segment numbers in order and the horizon file, if any.
fn scan_dir(backend: &dyn Backend, dir: &Path) -> Result<(Vec<u64>, Option<Horizon>)> {
    let names = backend
        .list_dir(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    remove_leftovers(backend, dir, &names)?;
    let horizon = horizon::read_horizon(backend, dir)?;
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|name| segment::parse_file_name(name))
        .collect();
    numbers.sort_unstable();
    Ok((numbers, horizon))
}

/// A log directory without segments: creates the first one.
fn new_log(backend: &dyn Backend, dir: &Path, horizon: Horizon) -> Result<Recovered> {
    let active = segment::create(backend, dir, 1, 1, false)?;
    // A new log directory: make its own entry durable too (FORMAT.md §5), or a power loss
    // could drop the directory with everything acknowledged in it.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        backend
            .sync_dir(parent)
            .map_err(|e| Error::io("sync directory", parent, e))?;
    }
    let mut segments = BTreeMap::new();
    segments.insert(1, SegmentReader::File(Arc::clone(&active.file)));
    Ok(Recovered {
        state: State {
            index: VersionIndex::new(1),
            segments,
        },
        active,
        stats: OpenStats::default(),
        horizon,
    })
}

/// Replays sealed segment `number`, which must be whole and perfect (FORMAT.md §6.3), and
/// returns its map.
fn replay_sealed(
    backend: &dyn Backend,
    dir: &Path,
    number: u64,
    replay: &mut Replay,
) -> Result<(u32, Arc<dyn Mapped>)> {
    let path = segment::path(dir, number);
    let corrupt = |offset, kind| Error::corruption(path.clone(), offset, kind);
    let number32 = segment::number32(&path, number)?;
    let file = backend
        .open(&path, false)
        .map_err(|e| Error::io("open segment", path.clone(), e))?;
    let map = file
        .map()
        .map_err(|e| Error::io("map segment", path.clone(), e))?;
    let header = check_header(&map, number, replay).map_err(|k| corrupt(0, k))?;
    replay.gaps_allowed = header.compacted;
    for item in Scanner::new(&map, SEGMENT_HEADER_LEN) {
        match item {
            ScanItem::Record {
                offset,
                len,
                record,
            } => replay
                .record(number32, offset, len, &record)
                .map_err(|k| corrupt(offset, k))?,
            ScanItem::Bad { offset, kind } => return Err(corrupt(offset, kind)),
        }
    }
    if replay.has_pending_versions() {
        return Err(corrupt(map.len() as u64, CorruptionKind::IncompleteBatch));
    }
    // A compacted segment's last batch may have lost every record but dropped seqs.
    replay.apply_pending();
    Ok((number32, map))
}

/// Reads the active segment `number` whole (it will be written again), replays its complete
/// batches and decides its tail: a torn tail is cut, damage before durable data refused, and
/// what is kept made durable (FORMAT.md §6.4).
fn open_active(
    backend: &dyn Backend,
    dir: &Path,
    number: u64,
    replay: &mut Replay,
    stats: &mut OpenStats,
) -> Result<ActiveSegment> {
    let path = segment::path(dir, number);
    let number32 = segment::number32(&path, number)?;
    let file = backend
        .open(&path, false)
        .map_err(|e| Error::io("open segment", path.clone(), e))?;
    stats.segments += 1;
    let len = file
        .len()
        .map_err(|e| Error::io("stat segment", path.clone(), e))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read segment", path.clone(), e))?;
    let header = match check_header(&bytes, number, replay) {
        Ok(header) => header,
        // A crash while the segment was being created (FORMAT.md §6): start it again.
        // Only a header that is short or whose magic or checksum fails can be an
        // interrupted write; a whole, well-checksummed header of another format version (or
        // with bad fields) is refused, never rewritten.
        Err(_) if is_interrupted_creation(&bytes) => {
            stats.truncated_bytes += len;
            // Its version is decided again by the first batch written to it.
            return segment::create(backend, dir, number32, replay.next_seq(), false);
        }
        Err(kind) => return Err(Error::corruption(path, 0, kind)),
    };
    replay.gaps_allowed = header.compacted;
    let valid_end = replay_active(&bytes, number32, header.first_seq, replay)
        .map_err(|(offset, kind)| Error::corruption(path.clone(), offset, kind))?;
    stats.truncated_records += replay.drop_pending();
    if valid_end < len {
        stats.truncated_bytes += len - valid_end;
        file.set_len(valid_end)
            .and_then(|()| file.sync())
            .map_err(|e| Error::io("truncate torn tail", path.clone(), e))?;
    } else {
        // What recovery accepted must be durable before writes build on it: an earlier
        // process may have died, or failed a sync, after writing these bytes (FORMAT.md §6.4).
        file.sync()
            .map_err(|e| Error::io("sync active segment", path.clone(), e))?;
    }
    // Likewise the segment's directory entry: a failed open or roll may have created the
    // file and never synced the directory, and syncing the file alone does not make its
    // name durable.
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(ActiveSegment {
        number: number32,
        file,
        len: valid_end,
        origins: header.origins,
    })
}

/// Replays the frames of the active segment's `bytes` up to the first that does not decode,
/// and returns the end of the last complete batch. A frame that does not decode must start a
/// torn tail; anything else is damage, refused with its offset.
fn replay_active(
    bytes: &[u8],
    number32: u32,
    first_seq: u64,
    replay: &mut Replay,
) -> Result<u64, (u64, CorruptionKind)> {
    let mut valid_end = SEGMENT_HEADER_LEN as u64;
    let mut last_good: Option<(u64, u64)> = None;
    for item in Scanner::new(bytes, SEGMENT_HEADER_LEN) {
        match item {
            ScanItem::Record {
                offset,
                len,
                record,
            } => {
                replay
                    .record(number32, offset, len, &record)
                    .map_err(|k| (offset, k))?;
                last_good = Some((record.seq, record.group));
                if record.batch_end {
                    valid_end = offset + u64::from(len);
                }
            }
            ScanItem::Bad { offset, kind } => {
                if !is_torn_tail(bytes, offset, last_good, first_seq) {
                    return Err((offset, kind));
                }
                break;
            }
        }
    }
    Ok(valid_end)
}

/// Removes what an interrupted compaction left (called on open, under the lock).
pub(crate) fn remove_leftovers(backend: &dyn Backend, dir: &Path, names: &[String]) -> Result<()> {
    for name in names {
        if name.ends_with(COMPACT_SUFFIX) || name == HORIZON_TMP {
            let path = dir.join(name);
            backend
                .remove_file(&path)
                .map_err(|e| Error::io("remove", path, e))?;
        }
    }
    Ok(())
}

/// Whether an active segment whose header does not decode is one whose creation was
/// interrupted, which open writes again (FORMAT.md §6.4), rather than damage it refuses. Only
/// a file no longer than a header, whose header is short or fails its magic or its checksum,
/// can be an interrupted write; a whole, well-checksummed header of another format version (or
/// with bad fields) was written completely. [`crate::verify_log`] asks the same question, so
/// that what it calls damage is exactly what open refuses.
pub(crate) fn is_interrupted_creation(bytes: &[u8]) -> bool {
    bytes.len() <= SEGMENT_HEADER_LEN
        && matches!(
            SegmentHeader::decode(bytes),
            Err(CorruptionKind::Truncated
                | CorruptionKind::BadMagic
                | CorruptionKind::ChecksumMismatch { .. })
        )
}

/// Whether the bytes of the active segment from `offset` on, where a frame does not decode, are
/// a torn tail that open cuts, rather than damage before data a later sync made durable, which
/// it refuses (FORMAT.md §6.4). `last_good` is the (seq, group) of the last record before
/// `offset` in this segment, `first_seq` the segment header's. Every later valid frame must
/// belong to the write torn at `offset`; the first one alone is not enough, since damage inside
/// a batch leaves that batch's own later frames valid. [`crate::verify_log`] calls this too.
pub(crate) fn is_torn_tail(
    bytes: &[u8],
    offset: u64,
    last_good: Option<(u64, u64)>,
    first_seq: u64,
) -> bool {
    let same_write = |group: u64| match last_good {
        Some((seq, last_group)) => group == last_group || Some(group) == seq.checked_add(1),
        None => group == first_seq,
    };
    let from = usize::try_from(offset).unwrap_or(usize::MAX);
    !segment::valid_frames_after(bytes, from).any(|(_, later)| !same_write(later.group))
}

/// Cuts the log in `dir` after the last version written at or before `time` (a point-in-time
/// restore): later segments are removed and the segment holding that version is truncated
/// after it. Operations of one batch may carry increasing times (FORMAT.md §5), so the cut may
/// fall inside a batch: its last kept record then gets `BATCH_END` (rewritten in place, as
/// compaction does), so the kept part opens as a whole batch. Returns the newest seq kept. Refuses with [`Error::HistoryTrimmed`] a time before
/// the log's horizon, where the cut log would miss versions compaction dropped.
pub fn cut_log_after(dir: &Path, time: u64) -> Result<u64> {
    cut_log_after_on(&crate::backend::OsBackend, dir, time)
}

/// Sets `BATCH_END` on the record in the frame at `offset` (of `len` bytes) of `file`, unless
/// it has it already.
fn end_batch_at(file: &dyn BackendFile, path: &Path, offset: u64, len: u32) -> Result<()> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| Error::io("read segment", path.to_owned(), e))?;
    let corrupt = |kind| Error::corruption(path.to_owned(), offset, kind);
    let (payload, _) = frame::decode(&bytes).map_err(corrupt)?;
    let mut record = Record::decode(payload).map_err(corrupt)?;
    if record.batch_end {
        return Ok(());
    }
    record.batch_end = true;
    let mut out = Vec::with_capacity(bytes.len());
    frame::encode_with(&mut out, record.encoded_len(), |o| record.encode(o));
    file.write_all_at(&out, offset)
        .map_err(|e| Error::io("write segment", path.to_owned(), e))
}

/// [`cut_log_after`] on any [`Backend`] (a restore into the simulated one of crash tests).
/// Not atomic: a crash part way leaves some later segments removed and others not, which is
/// why a restore marks its directory unfinished until the cut is synced (FORMAT.md §11).
pub fn cut_log_after_on(backend: &dyn Backend, dir: &Path, time: u64) -> Result<u64> {
    let lock = lock_dir(backend, dir)?;
    cut_log_after_locked(backend, dir, time, &lock)
}

/// [`cut_log_after_on`] for a caller that already holds the lock of `dir` (taken with
/// [`crate::lock_dir`]; `_held` is that lock), e.g. a restore, which holds it throughout.
pub fn cut_log_after_locked(
    backend: &dyn Backend,
    dir: &Path,
    time: u64,
    _held: &LockGuard,
) -> Result<u64> {
    let recovered = recover(backend, dir)?;
    let index = &recovered.state.index;
    let snapshot = index.seq_at_time(time);
    if let Some((seq, horizon_time)) = recovered.horizon.of(None) {
        if seq > snapshot {
            return Err(Error::HistoryTrimmed {
                id: None,
                oldest_complete: horizon_time,
            });
        }
    }
    let kept = (1..=snapshot)
        .rev()
        .find_map(|seq| index.entry(seq).map(|e| (seq, e.segment, e.offset, e.len)));
    let numbers: Vec<u32> = recovered.state.segments.keys().copied().collect();
    drop(recovered);
    let (last_seq, keep_segment, end) = match kept {
        Some((seq, segment, offset, len)) => (seq, segment, u64::from(offset) + u64::from(len)),
        // Nothing at or before `time`: an empty log, created again on open.
        None => (0, 0, 0),
    };
    for number in numbers.iter().rev().filter(|&&n| n > keep_segment) {
        let path = segment::path(dir, u64::from(*number));
        backend
            .remove_file(&path)
            .map_err(|e| Error::io("remove segment", path, e))?;
    }
    if keep_segment == 0 {
        let horizon = dir.join(HORIZON_FILE);
        let names = backend
            .list_dir(dir)
            .map_err(|e| Error::io("list directory", dir, e))?;
        if names.iter().any(|n| n == HORIZON_FILE) {
            backend
                .remove_file(&horizon)
                .map_err(|e| Error::io("remove", horizon, e))?;
        }
    } else {
        let path = segment::path(dir, u64::from(keep_segment));
        let file = backend
            .open(&path, false)
            .map_err(|e| Error::io("open segment", path.clone(), e))?;
        if let Some((_, _, offset, len)) = kept {
            end_batch_at(file.as_ref(), &path, u64::from(offset), len)?;
        }
        file.set_len(end)
            .and_then(|()| file.sync())
            .map_err(|e| Error::io("truncate segment", path, e))?;
    }
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(last_seq)
}
