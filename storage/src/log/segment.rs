//! Segment files: a header, then frames (FORMAT.md §2); and the creation of a new one, the
//! segment the writer appends to next.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame;
use super::record::Record;
use super::{
    COMPACTED_FORMAT_VERSION, FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT_VERSION,
    ORIGINS_FORMAT_VERSION,
};
use crate::backend::{Backend, BackendFile};
use crate::error::{CorruptionKind, Error, Result};

/// Magic bytes at the start of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"STRATSEG";
/// Length of the segment header (FORMAT.md §2).
pub(crate) const SEGMENT_HEADER_LEN: usize = 40;
/// Segment files are named `<number, 20 digits>.log`.
const SEGMENT_SUFFIX: &str = ".log";
/// Suffix of a segment being rewritten; such files are removed when a store opens.
pub(crate) const COMPACT_SUFFIX: &str = ".compact";
/// Header flag of a segment rewritten by compaction, whose seqs may have gaps (FORMAT.md §2).
const FLAG_COMPACTED: u32 = 1;
/// Header flag of a segment whose batches may carry an origin (FORMAT.md §2).
const FLAG_ORIGINS: u32 = 2;

/// The header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub number: u64,
    /// The seq of the first record the segment holds (or will hold); for a compacted segment,
    /// the first seq of its range, whose record compaction may have dropped.
    pub first_seq: u64,
    /// Whether compaction rewrote the segment: its seqs increase but may have gaps.
    pub compacted: bool,
    /// Whether the segment's batches may carry an origin (a version-3 segment).
    pub origins: bool,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        // Ordinary segments keep version 1 headers, which every build reads; only a compacted
        // segment needs version 2, and only one whose batches carry origins version 3
        // (FORMAT.md §1).
        let compacted = if self.compacted { FLAG_COMPACTED } else { 0 };
        let (version, flags) = if self.origins {
            (ORIGINS_FORMAT_VERSION, FLAG_ORIGINS | compacted)
        } else if self.compacted {
            (COMPACTED_FORMAT_VERSION, FLAG_COMPACTED)
        } else {
            (OLDEST_SUPPORTED_FORMAT_VERSION, 0)
        };
        out[8..12].copy_from_slice(&version.to_le_bytes());
        out[12..16].copy_from_slice(&flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.number.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        // 32..36: reserved, zero.
        let crc = crc32fast::hash(&out[0..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, CorruptionKind> {
        let h = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or(CorruptionKind::Truncated)?;
        if h[0..8] != SEGMENT_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let le32 = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let le64 = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let stored = le32(36);
        let computed = crc32fast::hash(&h[0..36]);
        if stored != computed {
            return Err(CorruptionKind::ChecksumMismatch { stored, computed });
        }
        let version = le32(8);
        if !(OLDEST_SUPPORTED_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(CorruptionKind::UnsupportedVersion {
                found: version,
                oldest: OLDEST_SUPPORTED_FORMAT_VERSION,
                newest: FORMAT_VERSION,
            });
        }
        if le32(32) != 0 {
            return Err(CorruptionKind::BadSegment(
                "reserved header bytes are not zero",
            ));
        }
        // Version 1 has no flags; version 2 is written only for compacted segments; version 3
        // only for segments with origins, compacted or not.
        let flags = le32(12);
        let valid = match version {
            OLDEST_SUPPORTED_FORMAT_VERSION => flags == 0,
            COMPACTED_FORMAT_VERSION => flags == FLAG_COMPACTED,
            _ => flags == FLAG_ORIGINS || flags == FLAG_ORIGINS | FLAG_COMPACTED,
        };
        if !valid {
            return Err(CorruptionKind::BadSegment(
                "header flags do not match its format version",
            ));
        }
        let first_seq = le64(24);
        if first_seq == 0 {
            return Err(CorruptionKind::BadSegment("first seq is zero"));
        }
        Ok(SegmentHeader {
            number: le64(16),
            first_seq,
            compacted: flags & FLAG_COMPACTED != 0,
            origins: flags & FLAG_ORIGINS != 0,
        })
    }
}

pub(crate) fn file_name(number: u64) -> String {
    format!("{number:020}{SEGMENT_SUFFIX}")
}

pub(crate) fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(file_name(number))
}

/// The segment number a file name stands for, if it names a segment.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One step of a scan over the frames of a segment.
#[derive(Debug)]
pub(crate) enum ScanItem<'a> {
    /// A valid frame at `offset` of total length `len`, holding `record`.
    Record {
        offset: u64,
        len: u32,
        record: Record<'a>,
    },
    /// The bytes at `offset` are not a valid frame.
    Bad { offset: u64, kind: CorruptionKind },
}

/// Iterates the frames of a segment's bytes after the header, stopping after the first bad one.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(bytes: &'a [u8], start: usize) -> Self {
        Scanner {
            bytes,
            pos: start,
            done: false,
        }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = ScanItem<'a>;

    fn next(&mut self) -> Option<ScanItem<'a>> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let offset = self.pos as u64;
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let decoded =
            frame::decode(rest).and_then(|(payload, len)| Ok((Record::decode(payload)?, len)));
        match decoded {
            Ok((record, len)) => {
                self.pos += len;
                Some(ScanItem::Record {
                    offset,
                    len: len as u32,
                    record,
                })
            }
            Err(kind) => {
                self.done = true;
                Some(ScanItem::Bad { offset, kind })
            }
        }
    }
}

/// Looks for any valid frame starting after `from` (used to tell a torn tail from damage in the
/// middle of the active segment, FORMAT.md §6). Returns the first one found.
pub(crate) fn find_valid_frame_after(bytes: &[u8], from: usize) -> Option<(u64, Record<'_>)> {
    valid_frames_after(bytes, from).next()
}

/// Every valid frame starting after `from`, in order: a byte-by-byte search that, once it finds
/// a frame, continues after its end. Recovery needs all of them, not only the first: damage
/// inside one batch leaves that batch's later frames valid, and the frames of later writes
/// beyond them are what tells damage from a torn tail (FORMAT.md §6).
pub(crate) fn valid_frames_after(bytes: &[u8], from: usize) -> ValidFramesAfter<'_> {
    ValidFramesAfter {
        bytes,
        pos: from.saturating_add(1),
    }
}

/// The iterator of [`valid_frames_after`].
pub(crate) struct ValidFramesAfter<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ValidFramesAfter<'a> {
    type Item = (u64, Record<'a>);

    fn next(&mut self) -> Option<(u64, Record<'a>)> {
        while self.pos + frame::FRAME_HEADER_LEN <= self.bytes.len() {
            let at = self.pos;
            let rest = self.bytes.get(at..).unwrap_or(&[]);
            if let Ok((payload, len)) = frame::decode(rest) {
                if let Ok(record) = Record::decode(payload) {
                    self.pos = at + len;
                    return Some((at as u64, record));
                }
            }
            self.pos += 1;
        }
        None
    }
}

/// The number of the segment at `path` as the index holds it (file names allow 20 digits).
pub(crate) fn number32(path: &Path, number: u64) -> Result<u32> {
    u32::try_from(number).map_err(|_| {
        Error::corruption(
            path,
            0,
            CorruptionKind::BadSegment("segment number too large"),
        )
    })
}

/// The segment the writer appends to.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub number: u32,
    pub file: Arc<dyn BackendFile>,
    pub len: u64,
    /// Whether its batches may carry an origin (its header is version 3).
    pub origins: bool,
}

/// Creates segment `number` whose first record will have `first_seq`, durably (FORMAT.md §5),
/// with a version-3 header if `origins` (its batches may carry an origin). An existing file
/// of that name is overwritten.
pub(crate) fn create(
    backend: &dyn Backend,
    dir: &Path,
    number: u32,
    first_seq: u64,
    origins: bool,
) -> Result<ActiveSegment> {
    let path = path(dir, u64::from(number));
    let file = backend
        .open(&path, true)
        .map_err(|e| Error::io("create segment", path.clone(), e))?;
    let header = SegmentHeader {
        number: u64::from(number),
        first_seq,
        compacted: false,
        origins,
    }
    .encode();
    file.set_len(0)
        .and_then(|()| file.write_all_at(&header, 0))
        .and_then(|()| file.sync())
        .map_err(|e| Error::io("write segment header", path.clone(), e))?;
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(ActiveSegment {
        number,
        file,
        len: SEGMENT_HEADER_LEN as u64,
        origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        for (compacted, origins) in [(false, false), (true, false), (false, true), (true, true)] {
            let h = SegmentHeader {
                number: 7,
                first_seq: 1234,
                compacted,
                origins,
            };
            let bytes = h.encode();
            assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
            for i in 0..SEGMENT_HEADER_LEN {
                let mut b = bytes;
                b[i] ^= 0x01;
                assert!(SegmentHeader::decode(&b).is_err(), "flip at {i} undetected");
            }
        }
        let bytes = SegmentHeader {
            number: 7,
            first_seq: 1234,
            compacted: false,
            origins: false,
        }
        .encode();
        assert_eq!(
            SegmentHeader::decode(&bytes[..10]),
            Err(CorruptionKind::Truncated)
        );
    }

    #[test]
    fn future_format_version_is_named() {
        let mut b = SegmentHeader {
            number: 1,
            first_seq: 1,
            compacted: false,
            origins: false,
        }
        .encode();
        b[8..12].copy_from_slice(&99u32.to_le_bytes());
        let crc = crc32fast::hash(&b[0..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&b),
            Err(CorruptionKind::UnsupportedVersion {
                found: 99,
                oldest: 1,
                newest: 3
            })
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
    }
}
