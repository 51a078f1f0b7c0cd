//! Errors of the storage layer.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error boxed for transport through the update callback of [`crate::Action::Update`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system IO call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"write"`, `"fsync"`, `"open"` ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are not what the format allows (see `FORMAT.md`).
    #[error("corruption in {file} at offset {offset}: {kind}")]
    Corruption {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset of the bad frame or header inside `file`.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// Another open store (in this or another process) holds the directory lock.
    #[error("data directory {path} is locked by another open store{}", fmt_holder(*.holder))]
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// The process holding the lock, as it recorded itself in the lock file (FORMAT.md
        /// §2), when it did.
        holder: Option<u32>,
    },
    /// A write to a log opened read-only ([`crate::Engine::open_read_only`]).
    #[error("log {path} is open read-only: {op} needs the process that holds its lock")]
    ReadOnly {
        /// What was asked (`"commit"`, `"compact"` ...).
        op: &'static str,
        /// The log directory.
        path: PathBuf,
    },
    /// A write or fsync failed earlier; the store refuses writes until it is reopened.
    #[error("store is poisoned by an earlier failed write or fsync; reopen it to recover")]
    Poisoned,
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// An expected version did not match; nothing of the batch was written.
    #[error("version conflict on {id}: expected {}, actual {}", fmt_version(*.expected), fmt_version(*.actual))]
    Conflict {
        /// The document whose version did not match.
        id: String,
        /// The version the caller expected (`None`: expected the document to be absent).
        expected: Option<u64>,
        /// The newest version (`None`: the document does not exist or is deleted).
        actual: Option<u64>,
    },
    /// A patch or delete named a document that does not exist (or is deleted).
    #[error("document {id} not found")]
    NotFound {
        /// The missing document.
        id: String,
    },
    /// A batch or operation asked for an update time not later than the one before it: the
    /// store's last one, or the previous operation's in the same batch.
    #[error(
        "update time {requested} us is not later than the last update time before it, {last} us"
    )]
    TimeNotLater {
        /// The time asked for.
        requested: u64,
        /// The time it must be later than.
        last: u64,
    },
    /// A batch asked for an update time too far ahead of the clock
    /// ([`crate::EngineOptions::max_time_ahead`]).
    #[error("update time {requested} us is more than the allowed skew ahead of the clock (limit {limit} us)")]
    TimeTooFarAhead {
        /// The time asked for.
        requested: u64,
        /// The latest time accepted now.
        limit: u64,
    },
    /// A replicated batch's origin is not later than the last origin the store holds: the
    /// batch was applied already, or the source's positions went backwards. Nothing was
    /// written.
    #[error("origin {requested} is not later than the store's last origin, {last}")]
    OriginNotLater {
        /// The batch's origin.
        requested: u64,
        /// The store's last origin.
        last: u64,
    },
    /// An update callback rejected the newest body of a document.
    #[error("update of {id} rejected: {source}")]
    Rejected {
        /// The document being updated.
        id: String,
        /// Why the callback failed.
        #[source]
        source: BoxError,
    },
    /// A record or batch does not fit the format's limits.
    #[error("{0}")]
    TooLarge(String),
    /// Options are invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The file system has less free space than an operation needs; nothing was changed.
    #[error("not enough free space to {op} {path}: needs {needed} bytes, {available} available")]
    NoSpace {
        /// What was to be done (`"compact"`).
        op: &'static str,
        /// The directory it would write to.
        path: PathBuf,
        /// Bytes it needs free.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// One operation of a batch failed (a condition, a missing document, its time, a callback,
    /// a size limit); nothing of the batch was written. `source` says why.
    #[error("operation {index} of the batch (counting from 0), on {id}: {source}")]
    Op {
        /// The operation's position in the batch, from 0.
        index: usize,
        /// The operation's document.
        id: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// A read of the past needs versions that retention dropped (docs/DESIGN.md §2).
    #[error("{} before {oldest_complete} us was dropped by retention; history is complete from {oldest_complete} us on", .id.as_deref().map(|i| format!("history of {i}")).unwrap_or_else(|| "history".to_owned()))]
    HistoryTrimmed {
        /// The document, when one document's history is concerned.
        id: Option<String>,
        /// The oldest time (microseconds since the epoch) from which history is complete.
        oldest_complete: u64,
    },
}

/// " (process N)" for the holder of a lock, when known.
pub(crate) fn fmt_holder(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (process {pid})"))
}

fn fmt_version(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "absent".to_owned(),
    }
}

impl Error {
    /// The error itself, or for [`Error::Op`] what made the operation fail.
    pub fn reason(&self) -> &Error {
        match self {
            Error::Op { source, .. } => source.reason(),
            other => other,
        }
    }

    /// [`Error::reason`] by value.
    pub fn into_reason(self) -> Error {
        match self {
            Error::Op { source, .. } => source.into_reason(),
            other => other,
        }
    }

    pub(crate) fn op(index: usize, id: &str, source: Error) -> Self {
        Error::Op {
            index,
            id: id.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, kind: CorruptionKind) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            kind,
        }
    }
}

/// What kind of damage a [`Error::Corruption`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A file does not start with the expected magic bytes.
    BadMagic,
    /// A file's format version is not one this build reads.
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The newest version this build reads.
        newest: u32,
    },
    /// A checksum did not match its bytes.
    ChecksumMismatch {
        /// The checksum stored.
        stored: u32,
        /// The checksum computed.
        computed: u32,
    },
    /// A frame or header ends past the end of its file.
    Truncated,
    /// A frame's length field is outside the allowed range.
    BadLength(u64),
    /// A record's fields are inconsistent (a bad flag, a bad UTF-8 string, a field over its limit).
    BadRecord(&'static str),
    /// Sequence numbers are not dense and increasing.
    SeqGap {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// A document's version numbers do not follow each other.
    VersionGap {
        /// The version that should have come next.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// Update times go backwards in seq order.
    TimeBackwards,
    /// A segment's header disagrees with its name or neighbours.
    BadSegment(&'static str),
    /// A sealed segment ends inside a batch.
    IncompleteBatch,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::BadMagic => write!(f, "bad magic"),
            CorruptionKind::UnsupportedVersion {
                found,
                oldest,
                newest,
            } => write!(
                f,
                "unsupported format version {found} (this build reads {oldest}..={newest})"
            ),
            CorruptionKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptionKind::Truncated => write!(f, "truncated frame"),
            CorruptionKind::BadLength(len) => write!(f, "bad frame length {len}"),
            CorruptionKind::BadRecord(what) => write!(f, "bad record: {what}"),
            CorruptionKind::SeqGap { expected, found } => {
                write!(f, "sequence gap (expected seq {expected}, found {found})")
            }
            CorruptionKind::VersionGap { expected, found } => {
                write!(
                    f,
                    "version gap (expected version {expected}, found {found})"
                )
            }
            CorruptionKind::TimeBackwards => write!(f, "update time goes backwards"),
            CorruptionKind::BadSegment(what) => write!(f, "bad segment: {what}"),
            CorruptionKind::IncompleteBatch => write!(f, "sealed segment ends inside a batch"),
        }
    }
}

/// Names every variant of [`Error`] once. The `match` it expands to is exhaustive (inside this
/// crate `#[non_exhaustive]` does not apply), so a new variant does not compile until it is
/// named here; the test below then fails until [`Error::one_of_each`] builds it, and strata's
/// error tests check that each one maps to a variant of its own (not to a fallback).
macro_rules! every_variant {
    ($($variant:ident),* $(,)?) => {
        impl Error {
            /// The variant's name, as written in the enum.
            #[cfg(test)]
            fn variant_name(&self) -> &'static str {
                match self {
                    $(Error::$variant { .. } => stringify!($variant),)*
                }
            }

            /// Every variant's name.
            #[cfg(test)]
            const VARIANT_NAMES: &'static [&'static str] = &[$(stringify!($variant)),*];
        }
    };
}

every_variant!(
    Io,
    Corruption,
    Locked,
    ReadOnly,
    Poisoned,
    Closed,
    Conflict,
    NotFound,
    TimeNotLater,
    TimeTooFarAhead,
    OriginNotLater,
    Rejected,
    TooLarge,
    InvalidOption,
    NoSpace,
    Op,
    HistoryTrimmed,
);

#[cfg(feature = "test-support")]
impl Error {
    /// One error of each variant, for tests of code that converts these errors (strata's error
    /// mapping must give each its own variant: across crates a `match` on this
    /// `#[non_exhaustive]` enum needs a fallback arm, which a new variant would silently reach).
    #[doc(hidden)]
    pub fn one_of_each() -> Vec<Error> {
        let path = || PathBuf::from("/data/log");
        vec![
            Error::io("open", path(), io::Error::other("test")),
            Error::corruption(path(), 8, CorruptionKind::Truncated),
            Error::Locked {
                path: path(),
                holder: Some(7),
            },
            Error::ReadOnly {
                op: "commit",
                path: path(),
            },
            Error::Poisoned,
            Error::Closed,
            Error::Conflict {
                id: "a".into(),
                expected: Some(1),
                actual: Some(2),
            },
            Error::NotFound { id: "a".into() },
            Error::TimeNotLater {
                requested: 1,
                last: 2,
            },
            Error::TimeTooFarAhead {
                requested: 3,
                limit: 2,
            },
            Error::OriginNotLater {
                requested: 4,
                last: 5,
            },
            Error::Rejected {
                id: "a".into(),
                source: "not an object".into(),
            },
            Error::TooLarge("batch of 9 bytes is over the limit of 8".into()),
            Error::InvalidOption("segment_size 0 is below 4096".into()),
            Error::NoSpace {
                op: "compact",
                path: path(),
                needed: 2,
                available: 1,
            },
            Error::op(0, "a", Error::NotFound { id: "a".into() }),
            Error::HistoryTrimmed {
                id: None,
                oldest_complete: 5,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins: a variant added to `Error` without a sample in `one_of_each`, which strata's
    // mapping test would then never see.
    #[test]
    fn one_of_each_builds_every_variant_once() {
        let built: Vec<&str> = Error::one_of_each()
            .iter()
            .map(Error::variant_name)
            .collect();
        assert_eq!(built, Error::VARIANT_NAMES);
    }
}
