//! Records: one version of one document, the payload of a frame (FORMAT.md §4).

use crate::error::CorruptionKind;

/// Length of the fixed part of a record payload.
pub(crate) const RECORD_HEADER_LEN: usize = 56;

/// Largest id, in bytes (FORMAT.md §4).
pub const MAX_ID_LEN: usize = 1024;
/// Largest kind, in bytes (FORMAT.md §4).
pub const MAX_KIND_LEN: usize = 256;

pub(crate) const FLAG_TOMBSTONE: u16 = 1 << 0;
pub(crate) const FLAG_BATCH_END: u16 = 1 << 1;
pub(crate) const FLAG_HAS_EXPIRY: u16 = 1 << 2;
pub(crate) const FLAG_HAS_ORIGIN: u16 = 1 << 3;
const KNOWN_FLAGS: u16 = FLAG_TOMBSTONE | FLAG_BATCH_END | FLAG_HAS_EXPIRY | FLAG_HAS_ORIGIN;
/// Length of the origin that follows the body of a record with `HAS_ORIGIN`.
const ORIGIN_LEN: usize = 8;

/// A decoded record, borrowing its strings and body from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub seq: u64,
    /// The first seq of the group-commit write that holds this record (FORMAT.md §6).
    pub group: u64,
    pub version: u64,
    pub time: u64,
    pub expires_at: Option<u64>,
    pub tombstone: bool,
    pub batch_end: bool,
    pub id: &'a str,
    pub kind: &'a str,
    pub body: &'a [u8],
    /// Where the batch this record ends came from (a replicated log's position, FORMAT.md §4);
    /// only on a `BATCH_END` record.
    pub origin: Option<u64>,
}

impl Record<'_> {
    pub(crate) fn encoded_len(&self) -> usize {
        let origin = if self.origin.is_some() { ORIGIN_LEN } else { 0 };
        RECORD_HEADER_LEN + self.id.len() + self.kind.len() + self.body.len() + origin
    }

    /// Appends the payload bytes of this record to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.id.len() <= MAX_ID_LEN && self.kind.len() <= MAX_KIND_LEN);
        debug_assert!(self.origin.is_none() || self.batch_end);
        let mut flags = 0;
        if self.tombstone {
            flags |= FLAG_TOMBSTONE;
        }
        if self.batch_end {
            flags |= FLAG_BATCH_END;
        }
        if self.expires_at.is_some() {
            flags |= FLAG_HAS_EXPIRY;
        }
        if self.origin.is_some() {
            flags |= FLAG_HAS_ORIGIN;
        }
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.group.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.time.to_le_bytes());
        out.extend_from_slice(&self.expires_at.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(self.kind.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.id.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(self.body);
        if let Some(origin) = self.origin {
            out.extend_from_slice(&origin.to_le_bytes());
        }
    }

    /// Decodes a record payload; every field is checked, nothing is trusted.
    pub(crate) fn decode(payload: &[u8]) -> Result<Record<'_>, CorruptionKind> {
        let header = payload
            .get(..RECORD_HEADER_LEN)
            .ok_or(CorruptionKind::BadRecord(
                "payload shorter than a record header",
            ))?;
        let flags = u16_at(header, 40);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(CorruptionKind::BadRecord("unknown flag bits"));
        }
        let kind_len = u16_at(header, 42) as usize;
        let id_len = u16_at(header, 44) as usize;
        let body_len = u32_at(header, 48) as usize;
        if u16_at(header, 46) != 0 || u32_at(header, 52) != 0 {
            return Err(CorruptionKind::BadRecord("reserved bytes are not zero"));
        }
        if id_len == 0 || id_len > MAX_ID_LEN {
            return Err(CorruptionKind::BadRecord("id length out of range"));
        }
        if kind_len > MAX_KIND_LEN {
            return Err(CorruptionKind::BadRecord("kind length out of range"));
        }
        let has_origin = flags & FLAG_HAS_ORIGIN != 0;
        if has_origin && flags & FLAG_BATCH_END == 0 {
            return Err(CorruptionKind::BadRecord(
                "an origin on a record that ends no batch",
            ));
        }
        let origin_len = if has_origin { ORIGIN_LEN } else { 0 };
        if RECORD_HEADER_LEN + id_len + kind_len + body_len + origin_len != payload.len() {
            return Err(CorruptionKind::BadRecord(
                "field lengths disagree with the frame length",
            ));
        }
        let rest = &payload[RECORD_HEADER_LEN..];
        let (id, rest) = rest.split_at(id_len);
        let (kind, rest) = rest.split_at(kind_len);
        let (body, origin) = rest.split_at(body_len);
        let origin = has_origin.then(|| u64_at(origin, 0));
        let id =
            std::str::from_utf8(id).map_err(|_| CorruptionKind::BadRecord("id is not UTF-8"))?;
        let kind = std::str::from_utf8(kind)
            .map_err(|_| CorruptionKind::BadRecord("kind is not UTF-8"))?;
        let seq = u64_at(header, 0);
        let group = u64_at(header, 8);
        if seq == 0 || group == 0 || group > seq {
            return Err(CorruptionKind::BadRecord("seq or group out of range"));
        }
        let tombstone = flags & FLAG_TOMBSTONE != 0;
        if tombstone && !body.is_empty() {
            return Err(CorruptionKind::BadRecord("tombstone with a body"));
        }
        let expires_raw = u64_at(header, 32);
        let expires_at = if flags & FLAG_HAS_EXPIRY != 0 {
            Some(expires_raw)
        } else if expires_raw != 0 {
            return Err(CorruptionKind::BadRecord("expiry set without its flag"));
        } else {
            None
        };
        Ok(Record {
            seq,
            group,
            version: u64_at(header, 16),
            time: u64_at(header, 24),
            expires_at,
            tombstone,
            batch_end: flags & FLAG_BATCH_END != 0,
            id,
            kind,
            body,
            origin,
        })
    }
}

// The callers below pass a slice of RECORD_HEADER_LEN bytes and constant offsets inside it.
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(
            (seq, group, version, time) in (1u64..u64::MAX, any::<u64>(), any::<u64>(), any::<u64>()),
            (expires_at, tombstone, batch_end) in (proptest::option::of(any::<u64>()), any::<bool>(), any::<bool>()),
            origin in proptest::option::of(any::<u64>()),
            id in "[a-z/]{1,40}",
            kind in "[a-z]{0,20}",
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let group = group % seq + 1;
            let body = if tombstone { Vec::new() } else { body };
            let origin = origin.filter(|_| batch_end);
            let rec = Record { seq, group, version, time, expires_at, tombstone, batch_end, id: &id, kind: &kind, body: &body, origin };
            let mut out = Vec::new();
            rec.encode(&mut out);
            prop_assert_eq!(out.len(), rec.encoded_len());
            prop_assert_eq!(Record::decode(&out).unwrap(), rec);
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(&bytes);
        }
    }
}
