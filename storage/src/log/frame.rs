//! Frames: a length, a CRC and a payload (FORMAT.md §3).

use crate::error::CorruptionKind;

/// Bytes before the payload: `len: u32`, `crc: u32`.
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a frame may carry (FORMAT.md §3).
pub(crate) const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// The checksum of a frame: CRC-32 (IEEE) over the length field and the payload.
pub(crate) fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one frame around `payload` to `out`.
#[cfg(test)]
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    let len_bytes = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&checksum(len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends one frame to `out`, with the payload written in place by `fill` (no extra copy).
pub(crate) fn encode_with(out: &mut Vec<u8>, payload_len: usize, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    let len_bytes = (payload_len as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&[0; 4]);
    fill(out);
    debug_assert_eq!(out.len() - start - FRAME_HEADER_LEN, payload_len);
    let crc = checksum(len_bytes, &out[start + FRAME_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `bytes`, returning its payload and its total length.
///
/// Checks the length bounds and the CRC before anything reads the payload.
pub(crate) fn decode(bytes: &[u8]) -> Result<(&[u8], usize), CorruptionKind> {
    let header = bytes
        .get(..FRAME_HEADER_LEN)
        .ok_or(CorruptionKind::Truncated)?;
    let len_bytes: [u8; 4] = header
        .get(0..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(CorruptionKind::Truncated)?;
    let stored = header
        .get(4..8)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(CorruptionKind::Truncated)?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Err(CorruptionKind::BadLength(len as u64));
    }
    let payload = bytes
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
        .ok_or(CorruptionKind::Truncated)?;
    let computed = checksum(len_bytes, payload);
    if computed != stored {
        return Err(CorruptionKind::ChecksumMismatch { stored, computed });
    }
    Ok((payload, FRAME_HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut out = Vec::new();
            encode(&payload, &mut out);
            let (decoded, len) = decode(&out).unwrap();
            prop_assert_eq!(decoded, &payload[..]);
            prop_assert_eq!(len, out.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_single_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..512), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut out = Vec::new();
            encode(&payload, &mut out);
            let i = at.index(out.len());
            out[i] ^= 1 << bit;
            prop_assert!(decode(&out).is_err());
        }
    }

    #[test]
    fn encode_with_matches_encode() {
        let payload = b"hello frames";
        let mut a = Vec::new();
        encode(payload, &mut a);
        let mut b = Vec::new();
        encode_with(&mut b, payload.len(), |out| out.extend_from_slice(payload));
        assert_eq!(a, b);
    }

    #[test]
    fn truncated_frame_is_reported_as_truncated() {
        let mut out = Vec::new();
        encode(b"0123456789", &mut out);
        for cut in 0..out.len() {
            assert_eq!(
                decode(&out[..cut]),
                Err(CorruptionKind::Truncated),
                "cut at {cut}"
            );
        }
    }
}
