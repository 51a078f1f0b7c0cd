//! Where does history stop being complete? The `HORIZON` file of the log directory (FORMAT.md
//! §9): for each kind, the point from which snapshots see every version compaction should have
//! kept, and how many segments compaction has rewritten. Compaction raises it before it drops
//! anything; recovery, read-only opens, backups and `verify` read it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::backend::Backend;
use crate::error::{CorruptionKind, Error, Result};

/// The horizon file in the log directory (FORMAT.md §9).
pub const HORIZON_FILE: &str = "HORIZON";
/// The horizon file being replaced (FORMAT.md §9); removed when a store opens.
pub(crate) const HORIZON_TMP: &str = "HORIZON.tmp";
const HORIZON_MAGIC: [u8; 8] = *b"STRAHRZN";
const HORIZON_VERSION: u32 = 1;

/// Where history stops being complete, by kind: for each kind, the `(seq, time)` at which the
/// newest dropped version of that kind was superseded. Snapshots at or after it see no dropped
/// version of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Horizon {
    /// Segments rewritten so far, ever.
    pub generation: u64,
    pub kinds: BTreeMap<String, (u64, u64)>,
}

impl Horizon {
    /// The horizon of `kind`, or of the whole store.
    pub(crate) fn of(&self, kind: Option<&str>) -> Option<(u64, u64)> {
        match kind {
            Some(k) => self.kinds.get(k).copied(),
            None => self.kinds.values().copied().max(),
        }
    }

    /// Raises the horizon of `kind` to `(seq, time)`, unless it is later already.
    pub(crate) fn raise(&mut self, kind: &str, seq: u64, time: u64) {
        let slot = self.kinds.entry(kind.to_owned()).or_insert((seq, time));
        if seq > slot.0 {
            *slot = (seq, time);
        }
    }

    /// FORMAT.md §9.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&HORIZON_MAGIC);
        out.extend_from_slice(&HORIZON_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.kinds.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        for (kind, (seq, time)) in &self.kinds {
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&time.to_le_bytes());
            out.extend_from_slice(&(kind.len() as u16).to_le_bytes());
            out.extend_from_slice(kind.as_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Horizon, CorruptionKind> {
        let body_len = bytes
            .len()
            .checked_sub(4)
            .ok_or(CorruptionKind::Truncated)?;
        let (body, crc) = bytes.split_at(body_len);
        let stored = u32::from_le_bytes(crc.try_into().map_err(|_| CorruptionKind::Truncated)?);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(CorruptionKind::ChecksumMismatch { stored, computed });
        }
        let mut r = Reader(body);
        if r.take(8)? != HORIZON_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let version = r.u32()?;
        if version != HORIZON_VERSION {
            return Err(CorruptionKind::UnsupportedVersion {
                found: version,
                oldest: HORIZON_VERSION,
                newest: HORIZON_VERSION,
            });
        }
        let count = r.u32()?;
        let generation = r.u64()?;
        let mut kinds = BTreeMap::new();
        for _ in 0..count {
            let seq = r.u64()?;
            let time = r.u64()?;
            let len = r.u16()?;
            let kind = std::str::from_utf8(r.take(usize::from(len))?)
                .map_err(|_| CorruptionKind::BadRecord("a horizon kind is not UTF-8"))?;
            kinds.insert(kind.to_owned(), (seq, time));
        }
        if !r.0.is_empty() {
            return Err(CorruptionKind::BadRecord("bytes after the horizon entries"));
        }
        Ok(Horizon { generation, kinds })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptionKind> {
        if self.0.len() < n {
            return Err(CorruptionKind::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, CorruptionKind> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CorruptionKind> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, CorruptionKind> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// Reads the horizon file of `dir`; an empty horizon if there is none.
pub(crate) fn read_horizon(backend: &dyn Backend, dir: &Path) -> Result<Option<Horizon>> {
    let path = dir.join(HORIZON_FILE);
    let names = backend
        .list_dir(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    if !names.iter().any(|n| n == HORIZON_FILE) {
        return Ok(None);
    }
    let file = backend
        .open(&path, false)
        .map_err(|e| Error::io("open", path.clone(), e))?;
    let len = file.len().map_err(|e| Error::io("stat", path.clone(), e))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 30)];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", path.clone(), e))?;
    Horizon::decode(&bytes)
        .map(Some)
        .map_err(|kind| Error::corruption(path, 0, kind))
}

/// The horizon an open log goes on with: the file's, or an empty one for a log from which
/// nothing was dropped. Compaction writes the horizon before it drops anything: a log with
/// `dropped` versions but no horizon file is damaged, since reads of the past could not tell a
/// complete answer from one missing dropped versions.
pub(crate) fn required(dir: &Path, dropped: u64, horizon: Option<Horizon>) -> Result<Horizon> {
    if dropped > 0 && horizon.is_none() {
        return Err(Error::corruption(
            dir.join(HORIZON_FILE),
            0,
            CorruptionKind::BadSegment("the log has dropped versions but no horizon file"),
        ));
    }
    Ok(horizon.unwrap_or_default())
}

/// Replaces the horizon file durably: temporary file, sync, rename, directory sync.
pub(crate) fn write_horizon(backend: &dyn Backend, dir: &Path, horizon: &Horizon) -> Result<()> {
    let tmp = dir.join(HORIZON_TMP);
    let path = dir.join(HORIZON_FILE);
    let file = backend
        .open(&tmp, true)
        .map_err(|e| Error::io("create", tmp.clone(), e))?;
    let bytes = horizon.encode();
    file.set_len(0)
        .and_then(|()| file.write_all_at(&bytes, 0))
        .and_then(|()| file.sync())
        .map_err(|e| Error::io("write horizon", tmp.clone(), e))?;
    backend
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", tmp, e))?;
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_round_trip_and_damage() {
        let mut h = Horizon {
            generation: 7,
            ..Horizon::default()
        };
        h.raise("user", 10, 1000);
        h.raise("user", 5, 500);
        h.raise("pkg", 20, 2000);
        let bytes = h.encode();
        assert_eq!(Horizon::decode(&bytes), Ok(h.clone()));
        assert_eq!(h.of(Some("user")), Some((10, 1000)));
        assert_eq!(h.of(None), Some((20, 2000)));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Horizon::decode(&b).is_err(), "flip at {i} undetected");
        }
        assert!(Horizon::decode(&bytes[..3]).is_err());
    }
}
