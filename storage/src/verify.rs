//! Verification of a log directory: every header and frame checksum, the order of seqs and
//! times, the version chains and the horizon file, with every problem named by file and
//! offset. Unlike opening, it does not stop at the first problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, OsBackend};
use crate::error::{Error, Result};
use crate::horizon::{self, HORIZON_FILE, HORIZON_TMP};
use crate::log::record::Record;
use crate::log::segment::{
    self, ScanItem, Scanner, SegmentHeader, COMPACT_SUFFIX, SEGMENT_HEADER_LEN,
};
use crate::recovery;
use crate::shared::lock_dir;

/// One problem [`verify_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Byte offset of the bad header or frame in it.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// What [`verify_log`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogCheck {
    /// Segment files read.
    pub segments: u64,
    /// Frames that checked out.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// The newest seq seen.
    pub last_seq: u64,
    /// Seqs compaction dropped (gaps in compacted segments).
    pub dropped: u64,
    /// Problems, in file order. Empty: the log is sound.
    pub problems: Vec<Problem>,
    /// Things that are not damage, because the next open repairs them: a torn tail or an
    /// unfinished batch at the end of the active segment (a crash; open cuts it), an active
    /// segment whose creation was interrupted (open writes it again), leftovers of an
    /// interrupted compaction (open removes them).
    pub notes: Vec<Problem>,
    /// Whether the active segment ends in what a crash left (a torn write, an unfinished
    /// batch, an interrupted creation): its last writes were lost, as writes that were not yet
    /// synced may be.
    pub tail_cut: bool,
}

/// Checks the log in `dir`, which must not be open (its lock is taken for the check).
/// `progress(bytes done, bytes in all)` is called as segments are read.
pub fn verify_log(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<LogCheck> {
    verify_log_with(&OsBackend, dir, progress)
}

/// [`verify_log`] on any backend (e.g. the crash images of the simulated one).
///
/// What open would repair is a note, not a problem: the active segment is judged with the very
/// functions recovery decides with (FORMAT.md §6.4), so a torn tail open cuts, or a segment
/// whose creation open writes again, is a note; only what open refuses is a problem.
pub fn verify_log_with(
    backend: &dyn Backend,
    dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LogCheck> {
    let _lock = lock_dir(backend, dir)?;
    let names = backend
        .list_dir(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    let mut check = LogCheck::default();
    for name in &names {
        if name.ends_with(COMPACT_SUFFIX) || name == HORIZON_TMP {
            check.notes.push(Problem {
                file: dir.join(name),
                offset: 0,
                message: "left by an interrupted compaction; the next open removes it".into(),
            });
        }
    }
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|n| segment::parse_file_name(n))
        .collect();
    numbers.sort_unstable();
    let mut files = Vec::with_capacity(numbers.len());
    let mut total = 0;
    for &number in &numbers {
        let path = segment::path(dir, number);
        let file = backend
            .open(&path, false)
            .map_err(|e| Error::io("open segment", path.clone(), e))?;
        let len = file
            .len()
            .map_err(|e| Error::io("stat segment", path.clone(), e))?;
        total += len;
        files.push((number, path, file, len));
    }
    let mut state = Walk::default();
    let last = files.len();
    for (i, (number, path, file, len)) in files.into_iter().enumerate() {
        let active = i + 1 == last;
        let size = usize::try_from(len).map_err(|_| {
            Error::io(
                "read segment",
                path.clone(),
                std::io::Error::other("the segment does not fit in memory"),
            )
        })?;
        let mut bytes = vec![0u8; size];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read segment", path.clone(), e))?;
        check.segments += 1;
        state.segment(&mut check, &path, number, &bytes, active);
        check.bytes += len;
        progress(check.bytes, total);
    }
    match horizon::read_horizon(backend, dir) {
        Ok(None) if check.dropped > 0 => check.problems.push(Problem {
            file: dir.join(HORIZON_FILE),
            offset: 0,
            message: "the log has dropped versions but no horizon file".into(),
        }),
        Ok(_) => {}
        Err(Error::Corruption { file, offset, kind }) => check.problems.push(Problem {
            file,
            offset,
            message: kind.to_string(),
        }),
        Err(e) => return Err(e),
    }
    check.last_seq = state.next_seq.saturating_sub(1);
    Ok(check)
}

/// What the walk over the segments expects next.
struct Walk {
    next_seq: u64,
    last_time: u64,
    /// The newest version of each document.
    versions: HashMap<String, u64>,
    previous_compacted: bool,
    /// The origin of the last batch that carried one.
    last_origin: Option<u64>,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            next_seq: 1,
            last_time: 0,
            versions: HashMap::new(),
            previous_compacted: false,
            last_origin: None,
        }
    }
}

impl Walk {
    fn segment(
        &mut self,
        check: &mut LogCheck,
        path: &Path,
        number: u64,
        bytes: &[u8],
        active: bool,
    ) {
        let Some(header) = self.header(check, path, number, bytes, active) else {
            return;
        };
        let mut pos = SEGMENT_HEADER_LEN;
        let mut open_batch: Option<u64> = None;
        // What recovery tracks to judge the active segment's end (FORMAT.md §6.4): the
        // (seq, group) of the last good record, and the end of the last whole batch.
        let mut last_good: Option<(u64, u64)> = None;
        let mut valid_end = SEGMENT_HEADER_LEN as u64;
        let mut torn_at = None;
        loop {
            let mut resync = None;
            for item in Scanner::new(bytes, pos) {
                match item {
                    ScanItem::Record {
                        offset,
                        len,
                        record,
                    } => {
                        last_good = Some((record.seq, record.group));
                        if record.batch_end {
                            valid_end = offset + u64::from(len);
                        }
                        self.record(check, path, offset, &record, header);
                        open_batch = (!record.batch_end).then_some(offset);
                    }
                    ScanItem::Bad { offset, .. }
                        if active
                            && recovery::is_torn_tail(
                                bytes,
                                offset,
                                last_good,
                                header.first_seq,
                            ) =>
                    {
                        torn_at = Some(offset);
                        break;
                    }
                    ScanItem::Bad { offset, kind } => {
                        check.problems.push(Problem {
                            file: path.to_path_buf(),
                            offset,
                            message: format!("bad frame: {kind}"),
                        });
                        // Go on from the next frame that checks out, if any.
                        resync = segment::find_valid_frame_after(bytes, offset as usize)
                            .map(|(at, _)| at as usize);
                        break;
                    }
                }
            }
            match resync {
                Some(at) => pos = at,
                None => break,
            }
        }
        let end = bytes.len() as u64;
        if active && (torn_at.is_some() || open_batch.is_some()) && valid_end < end {
            let what = match (open_batch.is_some(), torn_at) {
                (true, Some(at)) => {
                    format!("an unfinished batch and a torn write from offset {at} (a crash)")
                }
                (false, Some(at)) => format!("a torn write from offset {at} (a crash)"),
                _ => "a batch without its last record (a crash)".to_owned(),
            };
            check.tail_cut = true;
            check.notes.push(Problem {
                file: path.to_path_buf(),
                offset: valid_end,
                message: format!(
                    "{what}: the next open cuts the {} bytes from here",
                    end - valid_end
                ),
            });
        } else if let Some(offset) = open_batch {
            check.problems.push(Problem {
                file: path.to_path_buf(),
                offset,
                message: "a batch without its last record".to_owned(),
            });
        }
    }

    /// Checks the header of segment `number` against the file name and the seqs before it;
    /// `None` when there is no header to go on from.
    fn header(
        &mut self,
        check: &mut LogCheck,
        path: &Path,
        number: u64,
        bytes: &[u8],
        active: bool,
    ) -> Option<SegmentHeader> {
        let mut problem = |offset: u64, message: String| {
            check.problems.push(Problem {
                file: path.to_path_buf(),
                offset,
                message,
            })
        };
        let header = match SegmentHeader::decode(bytes) {
            Ok(h) => h,
            Err(_) if active && recovery::is_interrupted_creation(bytes) => {
                check.tail_cut = true;
                check.notes.push(Problem {
                    file: path.to_path_buf(),
                    offset: 0,
                    message: format!(
                        "a segment whose creation was interrupted ({} header bytes of {}); the \
                         next open writes it again",
                        bytes.len(),
                        SEGMENT_HEADER_LEN
                    ),
                });
                return None;
            }
            Err(kind) => {
                problem(0, format!("bad segment header: {kind}"));
                return None;
            }
        };
        if header.number != number {
            problem(0, "the header's number disagrees with the file name".into());
        }
        let gap_ok = self.previous_compacted && header.first_seq > self.next_seq;
        if header.first_seq != self.next_seq && !gap_ok {
            problem(
                0,
                format!(
                    "the segment starts at seq {}, expected {}",
                    header.first_seq, self.next_seq
                ),
            );
        }
        if header.first_seq > self.next_seq {
            check.dropped += header.first_seq - self.next_seq;
        }
        self.next_seq = self.next_seq.max(header.first_seq);
        self.previous_compacted = header.compacted;
        Some(header)
    }

    /// Checks one record's seq, time and version against those before it (FORMAT.md §4).
    fn record(
        &mut self,
        check: &mut LogCheck,
        path: &Path,
        offset: u64,
        record: &Record<'_>,
        header: SegmentHeader,
    ) {
        let compacted = header.compacted;
        let mut problem = |message: String| {
            check.problems.push(Problem {
                file: path.to_path_buf(),
                offset,
                message,
            })
        };
        check.records += 1;
        let expected = self.next_seq;
        if record.seq < expected || (record.seq > expected && !compacted) {
            problem(format!("seq {} where {expected} was expected", record.seq));
        } else if record.seq > expected {
            check.dropped += record.seq - expected;
        }
        self.next_seq = self.next_seq.max(record.seq + 1);
        if record.time < self.last_time {
            problem(format!(
                "time {} goes back from {}",
                record.time, self.last_time
            ));
        }
        self.last_time = self.last_time.max(record.time);
        match self.versions.get(record.id) {
            Some(&v) if v.checked_add(1) != Some(record.version) => problem(format!(
                "{} version {} follows version {v}",
                record.id, record.version
            )),
            _ => {}
        }
        self.versions.insert(record.id.to_owned(), record.version);
        if let Some(origin) = record.origin {
            if !header.origins {
                problem(format!(
                    "origin {origin} in a segment whose header allows none"
                ));
            }
            if let Some(last) = self.last_origin.filter(|&last| origin <= last) {
                problem(format!("origin {origin} does not follow origin {last}"));
            }
            self.last_origin = Some(origin);
        }
    }
}
