//! Entry points for the fuzz targets in `fuzz/` and their replay test; not part of the API.
//!
//! The log decoders are crate-private, so the fuzzers reach them through here. Every function
//! takes arbitrary bytes and returns what the decoders made of them. On the way it checks the
//! decoders' own invariants (a decoded frame, record or header encodes back to exactly the bytes
//! it came from; a scan advances frame by frame and stops at its first bad frame) and panics
//! when one breaks: such a panic is the bug the fuzzer looks for.

use crate::error::CorruptionKind;
use crate::log::frame::{self, FRAME_HEADER_LEN};
use crate::log::record::Record;
use crate::log::segment::{self, ScanItem, Scanner, SegmentHeader, SEGMENT_HEADER_LEN};

/// What one valid frame of a scan held.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScannedRecord {
    /// Offset of the frame in the scanned bytes.
    pub offset: u64,
    /// Total length of the frame.
    pub len: u32,
    /// The record's seq.
    pub seq: u64,
    /// The first seq of the record's write group.
    pub group: u64,
    /// The document id.
    pub id: String,
    /// The per-document version.
    pub version: u64,
    /// The update time.
    pub time: u64,
    /// Whether the record is a tombstone.
    pub tombstone: bool,
    /// Whether the record ends its batch.
    pub batch_end: bool,
    /// The batch's origin, on the record that ends it.
    pub origin: Option<u64>,
}

/// What the log decoders made of arbitrary bytes read as one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameScan {
    /// The segment header at the start: `(number, first_seq)`, or why it is not one.
    pub header: Result<(u64, u64), CorruptionKind>,
    /// The first frame and its record, decoded directly at offset 0.
    pub first_frame: Result<ScannedRecord, CorruptionKind>,
    /// The valid frames of a scan that starts after the header when the header is valid and at
    /// offset 0 otherwise, in order.
    pub records: Vec<ScannedRecord>,
    /// `Err((offset, kind))` if the scan stopped at a bad frame, `Ok(())` if it reached the end.
    pub end: Result<(), (u64, CorruptionKind)>,
    /// The first valid frame after the bad one, as recovery looks for it to tell a torn tail
    /// from damage in the middle of a segment.
    pub resync: Option<u64>,
}

impl FrameScan {
    /// `Ok` with the records if the bytes are a valid header followed by valid frames only,
    /// otherwise the first corruption found.
    pub fn result(&self) -> Result<&[ScannedRecord], CorruptionKind> {
        self.header.as_ref().map_err(Clone::clone)?;
        self.end.as_ref().map_err(|(_, kind)| kind.clone())?;
        Ok(&self.records)
    }
}

/// Runs `bytes` through the segment header, frame and record decoders and a segment scan.
///
/// # Panics
///
/// Only when a decoder breaks one of its invariants (see the module docs).
pub fn decode_frames(bytes: &[u8]) -> FrameScan {
    let header = SegmentHeader::decode(bytes).map(|h| {
        assert_eq!(
            Some(&h.encode()[..]),
            bytes.get(..SEGMENT_HEADER_LEN),
            "header does not re-encode"
        );
        (h.number, h.first_seq)
    });
    let first_frame = decode_one(bytes, 0);
    let start = if header.is_ok() {
        SEGMENT_HEADER_LEN
    } else {
        0
    };
    let mut records = Vec::new();
    let mut end = Ok(());
    let mut expected_offset = start as u64;
    for item in Scanner::new(bytes, start) {
        assert!(end.is_ok(), "the scan went on after a bad frame");
        match item {
            ScanItem::Record {
                offset,
                len,
                record,
            } => {
                assert_eq!(offset, expected_offset, "the scan skipped bytes");
                let direct = decode_one(bytes, offset);
                assert_eq!(
                    direct.as_ref().map(|r| (r.len, r.seq)),
                    Ok((len, record.seq))
                );
                expected_offset = offset + u64::from(len);
                records.extend(direct.ok());
            }
            ScanItem::Bad { offset, kind } => {
                assert_eq!(offset, expected_offset, "the scan skipped bytes");
                assert_eq!(decode_one(bytes, offset).err(), Some(kind.clone()));
                end = Err((offset, kind));
            }
        }
    }
    if end.is_ok() {
        // `start` is past the end only when there is no header, and then it is 0.
        assert_eq!(
            expected_offset,
            bytes.len() as u64,
            "the scan stopped early"
        );
    }
    let resync = match &end {
        Ok(()) => None,
        Err((offset, _)) => {
            segment::find_valid_frame_after(bytes, *offset as usize).map(|(at, record)| {
                assert!(at > *offset, "a resync went backwards");
                let direct = decode_one(bytes, at);
                assert_eq!(direct.map(|r| r.seq), Ok(record.seq));
                at
            })
        }
    };
    FrameScan {
        header,
        first_frame,
        records,
        end,
        resync,
    }
}

/// Decodes the frame at `offset` and its record, checking that both re-encode to their bytes.
fn decode_one(bytes: &[u8], offset: u64) -> Result<ScannedRecord, CorruptionKind> {
    let at = usize::try_from(offset).map_err(|_| CorruptionKind::BadLength(offset))?;
    let rest = bytes.get(at..).ok_or(CorruptionKind::Truncated)?;
    let (payload, len) = frame::decode(rest)?;
    assert_eq!(
        len,
        FRAME_HEADER_LEN + payload.len(),
        "frame length disagrees with its payload"
    );
    let record = Record::decode(payload)?;
    assert_eq!(
        record.encoded_len(),
        payload.len(),
        "record length disagrees with its payload"
    );
    let mut again = Vec::with_capacity(len);
    frame::encode_with(&mut again, payload.len(), |out| record.encode(out));
    assert_eq!(
        Some(&again[..]),
        rest.get(..len),
        "frame does not re-encode to its bytes"
    );
    Ok(ScannedRecord {
        offset,
        len: u32::try_from(len).map_err(|_| CorruptionKind::BadLength(len as u64))?,
        seq: record.seq,
        group: record.group,
        id: record.id.to_owned(),
        version: record.version,
        time: record.time,
        tombstone: record.tombstone,
        batch_end: record.batch_end,
        origin: record.origin,
    })
}

/// Rewrites the checksums of a segment file's header and of every frame that its length fields
/// chain together, so that a fuzzer's mutations of the other fields get past the checksums and
/// reach the checks behind them. Bytes that do not hold a whole header or frame are left alone.
pub fn reseal_checksums(bytes: &mut [u8]) {
    if let Some(header) = bytes.get_mut(..SEGMENT_HEADER_LEN) {
        let crc = crc32fast::hash(&header[..SEGMENT_HEADER_LEN - 4]);
        header[SEGMENT_HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    let mut pos = SEGMENT_HEADER_LEN;
    while let Some(frame) = bytes.get_mut(pos..) {
        let Some((header, rest)) = frame.split_first_chunk_mut::<FRAME_HEADER_LEN>() else {
            break;
        };
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let Some(payload) = rest.get(..len) else {
            break;
        };
        header[4..].copy_from_slice(&frame::checksum(len_bytes, payload).to_le_bytes());
        pos += FRAME_HEADER_LEN + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[(u64, &str, u64, bool)]) -> Vec<u8> {
        let mut out = SegmentHeader {
            number: 1,
            first_seq: 1,
            compacted: false,
            origins: false,
        }
        .encode()
        .to_vec();
        for &(seq, id, version, batch_end) in records {
            let record = Record {
                seq,
                group: seq,
                version,
                time: seq * 10,
                expires_at: None,
                tombstone: false,
                batch_end,
                id,
                kind: "k",
                body: b"{}",
                origin: None,
            };
            frame::encode_with(&mut out, record.encoded_len(), |o| record.encode(o));
        }
        out
    }

    #[test]
    fn a_valid_segment_scans_clean() {
        let bytes = segment(&[(1, "/a", 0, true), (2, "/b", 0, false), (3, "/a", 1, true)]);
        let scan = decode_frames(&bytes);
        assert_eq!(scan.header, Ok((1, 1)));
        let records = scan.result().unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            scan.first_frame,
            Err(CorruptionKind::BadLength(
                u32::from_le_bytes(*b"STRA") as u64
            ))
        );
    }

    #[test]
    fn a_flipped_byte_stops_the_scan_and_a_reseal_hides_it() {
        let mut bytes = segment(&[(1, "/a", 0, true), (2, "/b", 0, true), (3, "/a", 1, true)]);
        let offsets: Vec<u64> = decode_frames(&bytes)
            .records
            .iter()
            .map(|r| r.offset)
            .collect();
        // The time field of the second record, covered only by the frame checksum.
        bytes[offsets[1] as usize + FRAME_HEADER_LEN + 24] ^= 1;
        let scan = decode_frames(&bytes);
        assert!(
            matches!(scan.end, Err((o, CorruptionKind::ChecksumMismatch { .. })) if o == offsets[1]),
            "{:?}",
            scan.end
        );
        assert_eq!(scan.resync, Some(offsets[2]));
        reseal_checksums(&mut bytes);
        assert_eq!(decode_frames(&bytes).result().map(<[_]>::len), Ok(3));
    }

    #[test]
    fn short_and_empty_inputs_are_truncated() {
        assert_eq!(decode_frames(&[]).header, Err(CorruptionKind::Truncated));
        assert_eq!(decode_frames(&[]).end, Ok(()));
        assert_eq!(
            decode_frames(&[1, 2, 3]).end,
            Err((0, CorruptionKind::Truncated))
        );
        reseal_checksums(&mut []);
        reseal_checksums(&mut [0; 41]);
    }
}
