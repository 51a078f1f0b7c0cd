//! How do records become the version index? [`Replay`] checks each record read from a segment
//! against what came before (FORMAT.md §4: seqs, versions, times, batches) and feeds complete
//! batches to the index. Recovery and read-only opens both replay through it.

use std::collections::HashMap;

use crate::error::{CorruptionKind, Result};
use crate::index::{SeqEntry, VersionIndex, OPEN_END};
use crate::log::record::Record;
use crate::log::segment::SegmentHeader;

/// A record of an unfinished batch: id, version, columns and expiry.
type PendingVersion = (String, u64, SeqEntry, Option<u64>);

/// Checks each record against what came before and feeds complete batches to the index.
pub(crate) struct Replay {
    pub(crate) index: VersionIndex,
    /// Records of the batch being read, applied when its last record arrives (`None`: a seq
    /// whose version compaction dropped).
    pending: Vec<(u64, Option<PendingVersion>)>,
    /// The newest version of each id in `pending` (a batch may hold thousands of records).
    pending_versions: HashMap<String, u64>,
    next_seq: u64,
    last_time: u64,
    pub(crate) records: u64,
    /// Whether the segment being read was compacted: its seqs may skip dropped ones.
    pub(crate) gaps_allowed: bool,
    /// Whether the segment being read may hold batches with an origin (set by `check_header`).
    pub(crate) origins_allowed: bool,
}

impl Replay {
    /// A replay that continues after the last batch `index` holds (`VersionIndex::new(1)`: from
    /// the start of the log), e.g. a read-only open reading what was written since it last
    /// looked.
    pub(crate) fn resume(index: VersionIndex, gaps_allowed: bool) -> Self {
        Replay {
            next_seq: index.last_seq() + 1,
            last_time: index.last_time(),
            index,
            pending: Vec::new(),
            pending_versions: HashMap::new(),
            records: 0,
            gaps_allowed,
            origins_allowed: false,
        }
    }

    /// Whether records of an unfinished batch are waiting for its `BATCH_END`.
    pub(crate) fn has_pending_versions(&self) -> bool {
        self.pending.iter().any(|(_, v)| v.is_some())
    }

    pub(crate) fn record(
        &mut self,
        segment: u32,
        offset: u64,
        len: u32,
        record: &Record<'_>,
    ) -> Result<(), CorruptionKind> {
        if record.seq != self.next_seq && !(self.gaps_allowed && record.seq > self.next_seq) {
            return Err(CorruptionKind::SeqGap {
                expected: self.next_seq,
                found: record.seq,
            });
        }
        while self.next_seq < record.seq {
            self.pending.push((self.next_seq, None));
            self.next_seq += 1;
        }
        if record.time < self.last_time {
            return Err(CorruptionKind::TimeBackwards);
        }
        if let Some(origin) = record.origin {
            if !self.origins_allowed {
                return Err(CorruptionKind::BadRecord(
                    "an origin in a segment whose header allows none",
                ));
            }
            if self.index.last_origin().is_some_and(|last| origin <= last) {
                return Err(CorruptionKind::BadRecord(
                    "an origin not later than the one before",
                ));
            }
        }
        let newest = self
            .pending_versions
            .get(record.id)
            .copied()
            .or_else(|| self.index.chain(record.id).map(|c| c.newest_version()));
        if let Some(newest) = newest {
            let Some(expected) = newest.checked_add(1) else {
                return Err(CorruptionKind::BadRecord(
                    "a version follows version u64::MAX",
                ));
            };
            if record.version != expected {
                return Err(CorruptionKind::VersionGap {
                    expected,
                    found: record.version,
                });
            }
        }
        self.next_seq += 1;
        self.last_time = record.time;
        let offset = u32::try_from(offset).map_err(|_| CorruptionKind::BadLength(offset))?;
        let entry = SeqEntry {
            time: record.time,
            end: OPEN_END,
            segment,
            offset,
            len,
            tombstone: record.tombstone,
            expires: record.expires_at.is_some(),
        };
        if record.batch_end && self.pending.is_empty() {
            // A batch of one record (the common case) needs no copy of its id.
            self.index
                .push(record.id, record.version, record.seq, entry);
            if let Some(at) = record.expires_at {
                self.index.note_expiry(at, record.seq);
            }
            self.note_origin(record.origin);
            self.records += 1;
            return Ok(());
        }
        self.pending_versions
            .insert(record.id.to_owned(), record.version);
        self.pending.push((
            record.seq,
            Some((
                record.id.to_owned(),
                record.version,
                entry,
                record.expires_at,
            )),
        ));
        if record.batch_end {
            self.apply_pending();
            self.note_origin(record.origin);
        }
        Ok(())
    }

    /// Notes the origin of a batch just applied, if it has one.
    fn note_origin(&mut self, origin: Option<u64>) {
        if let Some(origin) = origin {
            self.index.note_origin(origin);
        }
    }

    pub(crate) fn apply_pending(&mut self) {
        self.pending_versions.clear();
        for (seq, version) in self.pending.drain(..) {
            match version {
                Some((id, version, entry, expires_at)) => {
                    self.index.push(&id, version, seq, entry);
                    if let Some(at) = expires_at {
                        self.index.note_expiry(at, seq);
                    }
                    self.records += 1;
                }
                None => self.index.push_dropped(seq),
            }
        }
    }

    /// The seq the next record must have (or, in a compacted segment, may pass).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seqs `next_seq..first_seq` were dropped from the end of the compacted segment before.
    fn dropped_until(&mut self, first_seq: u64) {
        while self.next_seq < first_seq {
            self.index.push_dropped(self.next_seq);
            self.next_seq += 1;
        }
    }

    /// Forgets the records of an unfinished batch, rewinding the expectations.
    pub(crate) fn drop_pending(&mut self) -> u64 {
        let n = self.pending.iter().filter(|(_, v)| v.is_some()).count() as u64;
        self.next_seq -= self.pending.len() as u64;
        self.last_time = self.index.last_time();
        self.pending.clear();
        self.pending_versions.clear();
        n
    }
}

/// Checks a segment's header against what came before. After a compacted segment, whose last
/// seqs may have been dropped, the header's first seq may be later than the next seq read;
/// the seqs between are recorded as dropped.
pub(crate) fn check_header(
    bytes: &[u8],
    number: u64,
    replay: &mut Replay,
) -> Result<SegmentHeader, CorruptionKind> {
    let header = SegmentHeader::decode(bytes)?;
    if header.number != number {
        return Err(CorruptionKind::BadSegment(
            "header number disagrees with the file name",
        ));
    }
    let next_seq = replay.next_seq;
    let gap_ok = replay.gaps_allowed && header.first_seq > next_seq;
    if header.first_seq != next_seq && !gap_ok {
        return Err(CorruptionKind::SeqGap {
            expected: next_seq,
            found: header.first_seq,
        });
    }
    replay.dropped_until(header.first_seq);
    replay.origins_allowed = header.origins;
    Ok(header)
}
