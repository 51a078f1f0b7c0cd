//! Page tokens, one format for queries and tasks: `base64url(kind | payload | check)` without
//! padding, where `kind` is one byte (which layer issued the token, and its payload's version),
//! `payload` a compact binary encoding ([`Writer`], [`Reader`]: LEB128 integers, length-prefixed
//! strings), and `check` the CRC-32 (little-endian) of `key | kind | payload`.
//!
//! `key` is what a token must belong to and never travels in it: for a query, a fingerprint of
//! its query, sort and snapshot; for a task, a secret drawn when the store opened. So the check
//! catches damage (any change of up to 32 bits, e.g. one character, is caught; longer damage
//! escapes with odds of 2^-32) and accidental reuse with another query or another store. It is
//! not a security boundary: CRC-32 is linear, so whoever holds a valid token can compute others
//! without knowing the key. A token only ever selects a page of a query its holder may run
//! anyway.

use crate::error::{Error, Result};

/// The kind byte of a query's page token (payload version 2; version 1 was hex of JSON).
pub const QUERY: u8 = 2;
/// The kind byte of a task's page token.
pub const TASK: u8 = 0x81;

/// Longest token accepted, in characters.
const MAX_LEN: usize = 1 << 20;

fn invalid(reason: &str) -> Error {
    Error::InvalidPageToken {
        reason: reason.to_owned(),
    }
}

fn check(key: &[u8], kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// A token of `kind` carrying `payload`, checked under `key`.
pub fn seal(kind: u8, key: &[u8], payload: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(payload.len() + 5);
    bytes.push(kind);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&check(key, kind, payload).to_le_bytes());
    base64url_encode(&bytes)
}

/// The payload of a token of `kind` checked under `key`; anything else (not base64url, another
/// kind, damaged, another key) is [`Error::InvalidPageToken`].
pub fn open(text: &str, kind: u8, key: &[u8]) -> Result<Vec<u8>> {
    if text.len() > MAX_LEN {
        return Err(invalid("not a page token (too long)"));
    }
    let bytes = base64url_decode(text).ok_or_else(|| invalid("not a page token"))?;
    let Some((&found, rest)) = bytes.split_first() else {
        return Err(invalid("not a page token"));
    };
    let Some(split) = rest.len().checked_sub(4) else {
        return Err(invalid("not a page token"));
    };
    let (payload, crc) = rest.split_at(split);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| invalid("not a page token"))?);
    if crc != check(key, found, payload) {
        return Err(invalid(match kind {
            QUERY => "damaged, or issued for another query, sort or snapshot",
            _ => "damaged, or issued by another store or before this store was reopened",
        }));
    }
    if found != kind {
        return Err(invalid(match found {
            QUERY => "a query's token, not a task's",
            TASK => "a task's token, not a query's (use Tasks::page)",
            _ => "issued by another version of strata",
        }));
    }
    Ok(payload.to_vec())
}

/// Encodes a token's payload.
#[derive(Debug, Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    /// An empty payload.
    pub fn new() -> Self {
        Writer(Vec::new())
    }

    /// An unsigned integer (LEB128).
    pub fn u64(&mut self, mut v: u64) -> &mut Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return self;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// A signed integer (zigzag, then LEB128).
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(((v << 1) ^ (v >> 63)) as u64)
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// A float, its 8 bytes little-endian.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A string: its length, then its bytes.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// The payload.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// Decodes a token's payload; every read of a truncated or malformed payload is
/// [`Error::InvalidPageToken`].
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads `payload` from its start.
    pub fn new(payload: &'a [u8]) -> Self {
        Reader(payload)
    }

    fn bad() -> Error {
        invalid("malformed payload")
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        let (&b, rest) = self.0.split_first().ok_or_else(Self::bad)?;
        self.0 = rest;
        Ok(b)
    }

    /// An unsigned integer (LEB128, at most 10 bytes).
    pub fn u64(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .filter(|x| x >> shift == u64::from(b & 0x7f))
                .ok_or_else(Self::bad)?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Self::bad())
    }

    /// A signed integer (zigzag).
    pub fn i64(&mut self) -> Result<i64> {
        let u = self.u64()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// A float.
    pub fn f64(&mut self) -> Result<f64> {
        let (bytes, rest) = self.0.split_at_checked(8).ok_or_else(Self::bad)?;
        self.0 = rest;
        Ok(f64::from_le_bytes(
            bytes.try_into().map_err(|_| Self::bad())?,
        ))
    }

    /// A string.
    pub fn str(&mut self) -> Result<String> {
        let len = usize::try_from(self.u64()?).map_err(|_| Self::bad())?;
        let (bytes, rest) = self.0.split_at_checked(len).ok_or_else(Self::bad)?;
        self.0 = rest;
        Ok(std::str::from_utf8(bytes)
            .map_err(|_| Self::bad())?
            .to_owned())
    }

    /// Ends the payload: left-over bytes are malformed.
    pub fn end(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Self::bad())
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url, without padding.
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The bytes of unpadded base64url text; `None` for any other character, an impossible length,
/// or non-zero unused bits in the last character (so each byte string has exactly one text).
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // Bits below the last whole byte must be zero.
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        out.extend((0..bytes).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64url_known_values() {
        // RFC 4648 §10, in the URL alphabet without padding.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url_encode(plain.as_bytes()), coded);
            assert_eq!(base64url_decode(coded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        // `Zh` and `Zm9` have non-zero unused bits: other spellings of `f` and `fo`.
        for bad in ["Z", "Zh", "Zm9", "Zm9v=", "Zm+v", "Zm/v", "é"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_changed_character_or_another_key_is_refused() {
        let token = seal(QUERY, b"key", b"some payload");
        assert_eq!(open(&token, QUERY, b"key").unwrap(), b"some payload");
        assert!(open(&token, QUERY, b"other key").is_err());
        assert!(open(&token, TASK, b"key").is_err());
        for i in 0..token.len() {
            for c in ["A", "f", "_", "0"] {
                let mut changed = token.clone();
                changed.replace_range(i..=i, c);
                if changed != token {
                    assert!(open(&changed, QUERY, b"key").is_err(), "{changed}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn base64url_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(base64url_decode(&base64url_encode(&bytes)), Some(bytes));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = open(&text, QUERY, b"");
        }

        #[test]
        fn payloads_round_trip(u in any::<u64>(), i in any::<i64>(), f in any::<f64>(), s in ".{0,20}") {
            let payload = Writer::new().u64(u).i64(i).f64(f).str(&s).u8(7).finish();
            let mut r = Reader::new(&payload);
            prop_assert_eq!(r.u64().unwrap(), u);
            prop_assert_eq!(r.i64().unwrap(), i);
            prop_assert_eq!(r.f64().unwrap().to_bits(), f.to_bits());
            prop_assert_eq!(r.str().unwrap(), s);
            prop_assert_eq!(r.u8().unwrap(), 7);
            prop_assert!(r.end().is_ok());
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes);
            let _ = r.u64().and_then(|_| r.str()).and_then(|_| r.f64()).and_then(|_| r.i64());
        }
    }
}
