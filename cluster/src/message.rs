//! What is one stream message? A versioned, checksummed encoding of a group of atomic batches
//! with the writer's time (storage/FORMAT.md §13.2). A replica that meets bytes it cannot trust
//! stops that partition with a [`CodecError`] naming what is wrong; it never skips them.

use serde::{Deserialize, Serialize};

/// Magic bytes at the start of every message.
const MAGIC: [u8; 4] = *b"STRM";
/// Length of the fixed header before the payload.
const HEADER_LEN: usize = 16;
/// The message format this build writes and reads.
pub const MESSAGE_FORMAT_VERSION: u16 = 1;
/// The largest message, header included: NATS' own hard limit on a payload (64 MiB).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// One stream message: the batches a writer grouped into one publish, in order, and the
/// writer's time. A replica applies each batch atomically, in order, at
/// `max(time, last + 1 µs)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The writer's hybrid logical time, microseconds since the Unix epoch.
    pub time: u64,
    /// The batches, in the order they are applied.
    pub batches: Vec<MessageBatch>,
}

/// One atomic batch of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBatch {
    /// Its operations, in order.
    pub ops: Vec<MessageOp>,
}

/// One operation of a batch. Patches are resolved by the writer into puts conditioned on the
/// version they were computed from, so a replica's apply needs no patch logic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageOp {
    /// The document id.
    pub id: String,
    /// The condition on the document's newest version.
    pub expect: MessageExpect,
    /// What to write.
    pub write: MessageWrite,
    /// When the new version expires, microseconds since the epoch.
    pub expires_at: Option<u64>,
    /// The operation's own update time, microseconds since the epoch.
    pub time: Option<u64>,
}

/// A condition on a document's newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageExpect {
    /// No condition.
    Any,
    /// The document exists and its newest version is this one.
    Version(u64),
    /// The document does not exist or is deleted.
    Absent,
}

/// What an operation writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageWrite {
    /// A new version with this kind and body (JSON text).
    Put {
        /// The document's kind.
        kind: String,
        /// The body, JSON text.
        body: Vec<u8>,
    },
    /// A tombstone.
    Delete,
    /// The tombstone of an expired document (written through the stream, so every replica
    /// writes it at the same place).
    Expire,
}

/// Bytes that are not a message this build can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Fewer bytes than a header, or than the header's payload length says.
    #[error("message truncated: {len} bytes")]
    Truncated {
        /// The bytes there are.
        len: usize,
    },
    /// Not a Strata message at all.
    #[error("not a strata message (bad magic)")]
    BadMagic,
    /// A message of another format version.
    #[error("message format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The version the message names.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The checksum does not match: the bytes were damaged.
    #[error("message checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The CRC the header holds.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A well-checksummed message whose header or payload breaks the format.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message over [`MAX_MESSAGE_BYTES`].
    #[error("message of {len} bytes is over the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge {
        /// Its size.
        len: usize,
    },
}

impl Message {
    /// The message's bytes (FORMAT.md §13.2).
    ///
    /// ```
    /// use strata_cluster::{Message, MessageBatch, MessageExpect, MessageOp, MessageWrite};
    /// let message = Message {
    ///     time: 1_767_225_600_000_000,
    ///     batches: vec![MessageBatch {
    ///         ops: vec![MessageOp {
    ///             id: "/users/ada".into(),
    ///             expect: MessageExpect::Absent,
    ///             write: MessageWrite::Put { kind: "user".into(), body: br#"{"n":1}"#.to_vec() },
    ///             expires_at: None,
    ///             time: None,
    ///         }],
    ///     }],
    /// };
    /// let bytes = message.encode()?;
    /// assert_eq!(Message::decode(&bytes)?, message);
    /// # Ok::<_, strata_cluster::CodecError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let payload = postcard::to_stdvec(self)
            .map_err(|e| CodecError::Malformed(format!("cannot encode: {e}")))?;
        let len = HEADER_LEN + payload.len();
        if len > MAX_MESSAGE_BYTES {
            return Err(CodecError::TooLarge { len });
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&MESSAGE_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = checksum(&out, &payload);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decodes and checks a message; every byte is checked, nothing is trusted.
    pub fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(CodecError::TooLarge { len: bytes.len() });
        }
        let truncated = CodecError::Truncated { len: bytes.len() };
        let header = bytes.get(..HEADER_LEN).ok_or(truncated.clone())?;
        if header[0..4] != MAGIC {
            return Err(CodecError::BadMagic);
        }
        let version = u16::from_le_bytes([header[4], header[5]]);
        if version != MESSAGE_FORMAT_VERSION {
            return Err(CodecError::UnsupportedVersion {
                found: version,
                supported: MESSAGE_FORMAT_VERSION,
            });
        }
        let payload_len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let payload = &bytes[HEADER_LEN..];
        if (payload.len() as u64) < u64::from(payload_len) {
            return Err(truncated);
        }
        if payload.len() as u64 > u64::from(payload_len) {
            return Err(CodecError::Malformed(format!(
                "{} bytes after a payload of {payload_len}",
                payload.len() as u64 - u64::from(payload_len)
            )));
        }
        let stored = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let computed = checksum(&header[..12], payload);
        if stored != computed {
            return Err(CodecError::Checksum { stored, computed });
        }
        if header[6..8] != [0, 0] {
            return Err(CodecError::Malformed("reserved bytes are not zero".into()));
        }
        let (message, rest) = postcard::take_from_bytes::<Message>(payload)
            .map_err(|e| CodecError::Malformed(format!("payload: {e}")))?;
        if !rest.is_empty() {
            return Err(CodecError::Malformed(format!(
                "{} bytes after the payload's value",
                rest.len()
            )));
        }
        Ok(message)
    }
}

/// CRC-32 (IEEE) of the first 12 header bytes followed by the payload.
fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..12]);
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Message {
        Message {
            time: 42,
            batches: vec![
                MessageBatch {
                    ops: vec![
                        MessageOp {
                            id: "/a".into(),
                            expect: MessageExpect::Version(3),
                            write: MessageWrite::Put {
                                kind: "k".into(),
                                body: b"{}".to_vec(),
                            },
                            expires_at: Some(9),
                            time: Some(41),
                        },
                        MessageOp {
                            id: "/b".into(),
                            expect: MessageExpect::Any,
                            write: MessageWrite::Delete,
                            expires_at: None,
                            time: None,
                        },
                    ],
                },
                MessageBatch {
                    ops: vec![MessageOp {
                        id: "/c".into(),
                        expect: MessageExpect::Absent,
                        write: MessageWrite::Expire,
                        expires_at: None,
                        time: None,
                    }],
                },
            ],
        }
    }

    // Pins the bytes of a message: they are the cluster format (FORMAT.md §13.2). A failure
    // here means the format changed: bump MESSAGE_FORMAT_VERSION and say so in FORMAT.md.
    #[test]
    fn the_bytes_of_a_message_never_change() {
        let bytes = sample().encode().unwrap();
        assert_eq!(&bytes[..8], b"STRM\x01\x00\x00\x00");
        let hex: String = bytes[HEADER_LEN..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "2a0202022f61010300016b027b7d01090129022f620001000001022f6302020000"
        );
        assert_eq!(Message::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn every_damage_is_a_typed_error() {
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                assert!(
                    Message::decode(&b).is_err(),
                    "flip of bit {bit:#x} at {i} undetected"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(
                Message::decode(&bytes[..len]).is_err(),
                "cut at {len} undetected"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Message::decode(&longer),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn another_format_version_is_named() {
        let mut bytes = sample().encode().unwrap();
        bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(
            Message::decode(&bytes),
            Err(CodecError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(
            Message::decode(b"NATS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            Err(CodecError::BadMagic)
        );
    }

    #[test]
    fn a_well_checksummed_bad_payload_is_malformed() {
        // A payload whose CRC checks out but is not a message: a writer of another build.
        let payload = [0xffu8; 7];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"STRM\x01\x00\x00\x00");
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = checksum(&bytes, &payload);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&payload);
        assert!(matches!(
            Message::decode(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }

    fn op() -> impl Strategy<Value = MessageOp> {
        let expect = prop_oneof![
            Just(MessageExpect::Any),
            any::<u64>().prop_map(MessageExpect::Version),
            Just(MessageExpect::Absent),
        ];
        let write = prop_oneof![
            ("[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(kind, body)| MessageWrite::Put { kind, body }),
            Just(MessageWrite::Delete),
            Just(MessageWrite::Expire),
        ];
        (
            ".{1,32}",
            expect,
            write,
            any::<Option<u64>>(),
            any::<Option<u64>>(),
        )
            .prop_map(|(id, expect, write, expires_at, time)| MessageOp {
                id,
                expect,
                write,
                expires_at,
                time,
            })
    }

    proptest! {
        #[test]
        fn round_trip(time in any::<u64>(), batches in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 0..5)) {
            let message = Message {
                time,
                batches: batches.into_iter().map(|ops| MessageBatch { ops }).collect(),
            };
            let bytes = message.encode().unwrap();
            prop_assert_eq!(Message::decode(&bytes).unwrap(), message);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
        }
    }
}
