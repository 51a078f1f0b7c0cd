//! Retention and online compaction: sealed segments are rewritten without the versions that
//! retention drops (FORMAT.md §9).
//!
//! A run plans under the read lock, then rewrites one segment at a time: the kept frames go to
//! `<segment>.compact`, which is synced; the horizon file (what history is no longer complete)
//! is replaced and made durable; the new file is renamed over the old one and the directory
//! synced; only then does the in-memory index point at the new file. A crash before the rename
//! leaves the old segment (and a stray temporary file, removed on open); after it, the new one.
//! Readers that located a version in the old file keep reading its map, which stays valid.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{CorruptionKind, Error, Result};
use crate::horizon::{write_horizon, Horizon};
use crate::log::frame;
use crate::log::record::Record;
use crate::log::segment::{
    self, ScanItem, Scanner, SegmentHeader, COMPACT_SUFFIX, SEGMENT_HEADER_LEN,
};
use crate::shared::{SegmentReader, Shared};

/// How many versions of a document compaction keeps. The newest version is always kept;
/// [`RetentionRule::default`] keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRule {
    /// Versions kept whatever the other limits say (the floor).
    pub min_versions: u64,
    /// Versions kept at most (the limit); `None`: no limit.
    pub max_versions: Option<u64>,
    /// Versions superseded longer ago than this are dropped (unless the floor keeps them), so
    /// history stays complete for at least this long; `None`: no age limit. An age longer
    /// than `u64::MAX` microseconds (such as `Duration::MAX`) drops nothing by age.
    pub max_age: Option<Duration>,
}

impl RetentionRule {
    /// Whether the rule keeps every version.
    pub fn keeps_everything(&self) -> bool {
        self.max_versions.is_none() && self.max_age.is_none()
    }

    /// How many of a chain's oldest versions the rule drops. `ends[i]` is the time version `i`
    /// (oldest first) was superseded; the newest version has no entry.
    pub(crate) fn droppable(&self, ends: &[u64], now: u64) -> usize {
        let n = ends.len() + 1;
        let floor = self.min_versions.max(1);
        let most = n.saturating_sub(usize::try_from(floor).unwrap_or(usize::MAX));
        let by_limit = self.max_versions.map_or(0, |m| {
            n.saturating_sub(usize::try_from(m.max(1)).unwrap_or(usize::MAX))
        });
        let by_age = self.max_age.map_or(0, |age| {
            let cutoff = now.saturating_sub(crate::time::micros_of(age));
            ends.iter().take_while(|&&end| end < cutoff).count()
        });
        by_limit.max(by_age).min(most)
    }
}

/// Options of one compaction run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactOptions {
    /// Most bytes written per second (`None`: as fast as the disk goes).
    pub io_bytes_per_sec: Option<u64>,
    /// Only versions superseded at or before this seq are dropped (e.g. what the index
    /// committed, or what every reader of the log has passed).
    pub max_seq: u64,
    /// The time age limits are judged at, microseconds since the epoch.
    pub now: u64,
    /// When set, the run stops at the next chunk (dropping the segment it was rewriting) and
    /// returns what it finished.
    pub stop: Option<Arc<AtomicBool>>,
}

impl CompactOptions {
    /// Options judging ages at `now`, dropping versions superseded up to `max_seq`, at full
    /// speed.
    pub fn new(now: u64, max_seq: u64) -> Self {
        CompactOptions {
            io_bytes_per_sec: None,
            max_seq,
            now,
            stop: None,
        }
    }

    /// Stops the run early when `stop` is set.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
    }

    /// Limits the write rate.
    pub fn with_io_rate(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.io_bytes_per_sec = bytes_per_sec;
        self
    }
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// Segments rewritten.
    pub segments_rewritten: u64,
    /// Versions dropped.
    pub versions_dropped: u64,
    /// The seqs of the dropped versions, in order (to remove them from derived indexes).
    pub dropped_seqs: Vec<u64>,
    /// Bytes of the rewritten segments before.
    pub bytes_before: u64,
    /// Bytes of the rewritten segments after.
    pub bytes_after: u64,
    /// The horizon generation after the run (see [`crate::Engine::compaction_generation`]).
    pub generation: u64,
    /// Wall time of the run, in microseconds.
    pub micros: u64,
}

/// Keeps a write rate: sleeps after each chunk until the bytes written fit the budget.
struct Throttle {
    rate: Option<u64>,
    started: Instant,
    bytes: u64,
    stop: Option<Arc<AtomicBool>>,
}

/// Longest single pause of the throttle: a stop request is noticed within it.
const PAUSE_SLICE: Duration = Duration::from_millis(20);

impl Throttle {
    /// Whether the run was asked to stop.
    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
    }

    fn wrote(&mut self, n: usize) {
        self.bytes += n as u64;
        let Some(rate) = self.rate.filter(|&r| r > 0) else {
            return;
        };
        let due =
            Duration::try_from_secs_f64(self.bytes as f64 / rate as f64).unwrap_or(Duration::MAX);
        // Pacing IO, not waiting for another thread: nothing signals "the budget grew". The
        // pause is cut in slices so that a stop (the store closing) is seen at once.
        while let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            if ahead.is_zero() || self.stopped() {
                break;
            }
            std::thread::sleep(ahead.min(PAUSE_SLICE));
        }
    }
}

/// A dropped version: the `(seq, time)` of the version that superseded it.
type Superseded = (u64, u64);

/// Bytes written per call while rewriting a segment.
const CHUNK: usize = 1 << 20;

/// The retention rules that apply to a document, given its id and the kind of its newest
/// version. A version is kept if any rule keeps it; no rule keeps everything.
pub type Rules<'a> = &'a dyn Fn(&str, &str) -> Vec<RetentionRule>;

pub(crate) fn compact(
    shared: &Arc<Shared>,
    rules: Rules<'_>,
    options: &CompactOptions,
) -> Result<CompactReport> {
    let started = Instant::now();
    let _running = shared.compact_lock.lock();
    let plan = plan(shared, rules, options)?;
    check_space(shared, &plan)?;
    {
        let state = shared.state.read();
        let total: u64 = plan
            .keys()
            .filter_map(|n| match state.segments.get(n) {
                Some(SegmentReader::Mapped(map)) => Some(map.len() as u64),
                _ => None,
            })
            .sum();
        shared.compact_progress.0.store(0, Ordering::Relaxed);
        shared.compact_progress.1.store(total, Ordering::Relaxed);
    }
    let mut report = CompactReport::default();
    let mut throttle = Throttle {
        rate: options.io_bytes_per_sec,
        started: Instant::now(),
        bytes: 0,
        stop: options.stop.clone(),
    };
    for (number, dropped) in plan {
        if options.stopped() {
            break;
        }
        rewrite(shared, number, &dropped, &mut report, &mut throttle)?;
    }
    report.generation = shared.horizon.read().generation;
    report.micros = started.elapsed().as_micros() as u64;
    Ok(report)
}

/// Room kept free beyond the largest rewritten segment: the new horizon file, file-system
/// blocks and metadata.
const SPACE_MARGIN: u64 = 64 << 10;

/// Refuses a run that could not write its largest new segment (segments are rewritten one at
/// a time, each replacing its old file before the next starts), before anything is written.
fn check_space(shared: &Shared, plan: &BTreeMap<u32, BTreeMap<u64, Superseded>>) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let dir = &shared.dir;
    let Some(available) = shared
        .backend
        .available_space(dir)
        .map_err(|e| Error::io("check free space of", dir, e))?
    else {
        return Ok(());
    };
    let largest = {
        let state = shared.state.read();
        plan.iter()
            .filter_map(|(number, dropped)| {
                let Some(SegmentReader::Mapped(map)) = state.segments.get(number) else {
                    return None;
                };
                let dropped_bytes: u64 = dropped
                    .keys()
                    .filter_map(|&seq| state.index.entry(seq))
                    .map(|e| u64::from(e.len))
                    .sum();
                Some((map.len() as u64).saturating_sub(dropped_bytes))
            })
            .max()
            .unwrap_or(0)
    };
    let horizon = shared.horizon.read().encode().len() as u64;
    let needed = largest + horizon + SPACE_MARGIN;
    if available < needed {
        return Err(Error::NoSpace {
            op: "compact",
            path: dir.clone(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Which versions of which sealed segments to drop.
fn plan(
    shared: &Shared,
    rules: Rules<'_>,
    options: &CompactOptions,
) -> Result<BTreeMap<u32, BTreeMap<u64, Superseded>>> {
    // Chains of one version drop nothing; for the others, the rule depends on the newest kind,
    // which is in the record.
    let candidates: Vec<(String, u64)> = {
        let state = shared.state.read();
        state
            .index
            .chains()
            .filter(|(_, chain)| chain.seqs.as_slice().len() > 1)
            .map(|(id, chain)| (id.to_owned(), chain.newest_seq()))
            .collect()
    };
    let mut ruled = Vec::new();
    for (id, newest) in candidates {
        let Some(meta) = shared.read_meta(newest)? else {
            continue;
        };
        let rules = rules(&id, &meta.kind);
        if !rules.is_empty() && rules.iter().all(|r| !r.keeps_everything()) {
            ruled.push((id, rules));
        }
    }
    let state = shared.state.read();
    let active = state.segments.keys().next_back().copied().unwrap_or(0);
    let mut plan: BTreeMap<u32, BTreeMap<u64, Superseded>> = BTreeMap::new();
    let mut ends = Vec::new();
    for (id, rules) in ruled {
        let Some(chain) = state.index.chain(&id) else {
            continue;
        };
        let seqs = chain.seqs.as_slice();
        ends.clear();
        for pair in seqs.windows(2) {
            ends.push(state.index.entry(pair[1]).map_or(u64::MAX, |e| e.time));
        }
        // What any rule keeps stays: each drops a prefix, so the shortest prefix goes.
        let n = rules
            .iter()
            .map(|r| r.droppable(&ends, options.now))
            .min()
            .unwrap_or(0);
        for pair in seqs[..n].iter().zip(&seqs[1..]) {
            let (&seq, &next) = pair;
            let (Some(entry), Some(next_entry)) = (state.index.entry(seq), state.index.entry(next))
            else {
                break;
            };
            // Only a prefix of the chain can go: stop at the first version that must stay.
            if next > options.max_seq || entry.segment >= active {
                break;
            }
            plan.entry(entry.segment)
                .or_default()
                .insert(seq, (next, next_entry.time));
        }
    }
    Ok(plan)
}

/// Rewrites segment `number` without the versions in `dropped`, then switches to it.
fn rewrite(
    shared: &Arc<Shared>,
    number: u32,
    dropped: &BTreeMap<u64, Superseded>,
    report: &mut CompactReport,
    throttle: &mut Throttle,
) -> Result<()> {
    let path = segment::path(&shared.dir, u64::from(number));
    let map = match shared.state.read().segments.get(&number) {
        Some(SegmentReader::Mapped(map)) => Arc::clone(map),
        _ => return Ok(()),
    };
    let mut horizon = shared.horizon.read().clone();
    let Some(copied) = copy_kept(shared, &path, &map, dropped, &mut horizon, throttle)? else {
        return Ok(());
    };
    switch(shared, number, &path, &copied, horizon)?;
    shared
        .compact_progress
        .0
        .fetch_add(map.len() as u64, Ordering::Relaxed);
    report.segments_rewritten += 1;
    report.versions_dropped += dropped.len() as u64;
    report.dropped_seqs.extend(dropped.keys());
    report.bytes_before += map.len() as u64;
    report.bytes_after += copied.written;
    Ok(())
}

/// What [`copy_kept`] wrote.
struct Copied {
    /// Where the new segment is, until it is renamed over the old one.
    tmp: PathBuf,
    /// Its length.
    written: u64,
    /// The new locations `(seq, offset, len)` of the kept versions.
    moved: Vec<(u64, u32, u32)>,
    /// The dropped versions of each document, oldest first.
    gone: HashMap<String, Vec<u64>>,
}

/// Copies the frames of the sealed segment `map` (at `path`) that `dropped` does not name into
/// a new compacted segment beside it, synced, and raises `horizon` over the dropped versions.
/// `None` when the run was stopped; the new file is removed then.
fn copy_kept(
    shared: &Shared,
    path: &Path,
    map: &[u8],
    dropped: &BTreeMap<u64, Superseded>,
    horizon: &mut Horizon,
    throttle: &mut Throttle,
) -> Result<Option<Copied>> {
    let backend = shared.backend.as_ref();
    let corrupt = |offset, kind| Error::corruption(path, offset, kind);
    let header = SegmentHeader::decode(map).map_err(|k| corrupt(0, k))?;
    let tmp = PathBuf::from(format!("{}{COMPACT_SUFFIX}", path.display()));
    let file = backend
        .open(&tmp, true)
        .map_err(|e| Error::io("create", tmp.clone(), e))?;
    file.set_len(0)
        .map_err(|e| Error::io("truncate", tmp.clone(), e))?;
    let io = |e| Error::io("write compacted segment", tmp.clone(), e);

    let mut out = SegmentHeader {
        number: header.number,
        first_seq: header.first_seq,
        compacted: true,
        origins: header.origins,
    }
    .encode()
    .to_vec();
    let mut written = 0u64;
    let mut moved = Vec::new();
    let mut gone: HashMap<String, Vec<u64>> = HashMap::new();
    // The kept frames of the batch being read: a batch whose last record is dropped must end
    // at its last kept one (FORMAT.md §4).
    let mut batch: Vec<KeptFrame> = Vec::new();
    for item in Scanner::new(map, SEGMENT_HEADER_LEN) {
        let (offset, len, record) = match item {
            ScanItem::Record {
                offset,
                len,
                record,
            } => (offset as usize, len as usize, record),
            ScanItem::Bad { offset, kind } => return Err(corrupt(offset, kind)),
        };
        if let Some(&(end_seq, end_time)) = dropped.get(&record.seq) {
            horizon.raise(record.kind, end_seq, end_time);
            gone.entry(record.id.to_owned())
                .or_default()
                .push(record.seq);
        } else {
            batch.push(KeptFrame {
                seq: record.seq,
                offset,
                len,
                batch_end: record.batch_end,
            });
        }
        if !record.batch_end {
            continue;
        }
        copy_batch(map, &batch, record.origin, written, &mut out, &mut moved)
            .map_err(|(o, k)| corrupt(o, k))?;
        batch.clear();
        if out.len() >= CHUNK {
            file.write_all_at(&out, written).map_err(io)?;
            written += out.len() as u64;
            throttle.wrote(out.len());
            out.clear();
            if throttle.stopped() {
                drop(file);
                backend
                    .remove_file(&tmp)
                    .map_err(|e| Error::io("remove", tmp.clone(), e))?;
                return Ok(None);
            }
        }
    }
    if !batch.is_empty() {
        return Err(corrupt(map.len() as u64, CorruptionKind::IncompleteBatch));
    }
    file.write_all_at(&out, written).map_err(io)?;
    written += out.len() as u64;
    throttle.wrote(out.len());
    file.sync()
        .map_err(|e| Error::io("sync compacted segment", tmp.clone(), e))?;
    Ok(Some(Copied {
        tmp,
        written,
        moved,
        gone,
    }))
}

/// A frame of the old segment that compaction keeps.
struct KeptFrame {
    seq: u64,
    offset: usize,
    len: usize,
    batch_end: bool,
}

/// Appends the kept frames of one batch to `out` (which the new segment holds from offset
/// `written` on), the last of them with `BATCH_END` and the batch's `origin`, and notes their
/// new locations in `moved`. A frame that does not decode is answered with its offset in the
/// old segment.
fn copy_batch(
    map: &[u8],
    batch: &[KeptFrame],
    origin: Option<u64>,
    written: u64,
    out: &mut Vec<u8>,
    moved: &mut Vec<(u64, u32, u32)>,
) -> Result<(), (u64, CorruptionKind)> {
    let last = batch.len().saturating_sub(1);
    for (i, kept) in batch.iter().enumerate() {
        let at = u32::try_from(written + out.len() as u64)
            .map_err(|_| (kept.offset as u64, CorruptionKind::BadLength(written)))?;
        let frame = &map[kept.offset..kept.offset + kept.len];
        if i == last && !kept.batch_end {
            let (payload, _) = frame::decode(frame).map_err(|k| (kept.offset as u64, k))?;
            let mut r = Record::decode(payload).map_err(|k| (kept.offset as u64, k))?;
            r.batch_end = true;
            r.origin = origin;
            frame::encode_with(out, r.encoded_len(), |o| r.encode(o));
        } else {
            out.extend_from_slice(frame);
        }
        let new_len = (written + out.len() as u64) as u32 - at;
        moved.push((kept.seq, at, new_len));
    }
    Ok(())
}

/// Puts the new segment of [`copy_kept`] in the place of segment `number` (at `path`), on disk
/// and then in memory, with the raised `horizon` (FORMAT.md §9).
fn switch(
    shared: &Shared,
    number: u32,
    path: &Path,
    copied: &Copied,
    mut horizon: Horizon,
) -> Result<()> {
    let (dir, backend) = (&shared.dir, shared.backend.as_ref());
    // The horizon first: if a crash comes between, history is reported incomplete a little too
    // early, never silently incomplete.
    horizon.generation += 1;
    write_horizon(backend, dir, &horizon)?;
    backend
        .rename(&copied.tmp, path)
        .map_err(|e| Error::io("rename", copied.tmp.clone(), e))?;
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    let file = backend
        .open(path, false)
        .map_err(|e| Error::io("open segment", path, e))?;
    let new_map = file.map().map_err(|e| Error::io("map segment", path, e))?;
    let mut state = shared.state.write();
    for (id, seqs) in &copied.gone {
        let trimmed = state.index.drop_oldest(id, seqs);
        debug_assert!(trimmed, "compaction planned a non-prefix of {id}");
    }
    for &(seq, offset, len) in &copied.moved {
        state.index.relocate(seq, number, offset, len);
    }
    state
        .segments
        .insert(number, SegmentReader::Mapped(new_map));
    *shared.horizon.write() = horizon;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_drop_a_prefix() {
        let all = RetentionRule::default();
        assert_eq!(all.droppable(&[1, 2, 3], 100), 0);
        let three = RetentionRule {
            max_versions: Some(3),
            ..RetentionRule::default()
        };
        assert_eq!(three.droppable(&[1, 2, 3, 4, 5], 100), 3);
        assert_eq!(three.droppable(&[1], 100), 0);
        let young = RetentionRule {
            max_age: Some(Duration::from_micros(10)),
            ..RetentionRule::default()
        };
        // Superseded before 90: dropped; the newest always stays.
        assert_eq!(young.droppable(&[80, 85, 95], 100), 2);
        assert_eq!(young.droppable(&[1, 2, 3], 100), 3);
        let floor = RetentionRule {
            min_versions: 2,
            ..young
        };
        assert_eq!(floor.droppable(&[1, 2, 3], 100), 2);
        let zero = RetentionRule {
            max_versions: Some(0),
            ..RetentionRule::default()
        };
        assert_eq!(zero.droppable(&[1, 2], 100), 2);
    }
}

#[cfg(test)]
mod crash_tests;
