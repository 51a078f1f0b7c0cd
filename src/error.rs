//! Errors of the store.

use std::io;
use std::path::PathBuf;

pub use storage::CorruptionKind;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when using a [`crate::Store`].
///
/// Domain outcomes a caller branches on ([`Error::Conflict`], [`Error::NotFound`]) are distinct
/// from input errors (`Invalid*`, `*TooLarge`, ...) and from failures of the disk
/// ([`Error::Io`], [`Error::Corruption`], [`Error::Poisoned`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A document id is empty, too long or contains NUL.
    #[error("invalid document id {id:?}: {reason}")]
    InvalidId {
        /// The id as given (cut to 64 characters).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A kind is empty, too long or contains NUL.
    #[error("invalid kind {kind:?}: {reason}")]
    InvalidKind {
        /// The kind as given (cut to 64 characters).
        kind: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A body or patch is not a JSON object, or is malformed.
    #[error("invalid body for {id}: {reason}")]
    InvalidBody {
        /// The document.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A body is larger than [`crate::Limits::max_document_bytes`].
    #[error("document {id} is {size} bytes, over the limit of {limit}")]
    DocumentTooLarge {
        /// The document.
        id: String,
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A body nests deeper than [`crate::Limits::max_depth`].
    #[error("document {id} nests deeper than the limit of {limit} levels")]
    DocumentTooDeep {
        /// The document.
        id: String,
        /// The limit.
        limit: usize,
    },
    /// A field name is longer than [`crate::Limits::max_field_name_bytes`].
    #[error("document {id} has a field name of {len} bytes, over the limit of {limit}")]
    FieldNameTooLong {
        /// The document.
        id: String,
        /// The field name's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// An expected version did not match; nothing of the batch was written.
    #[error("version conflict on {id}: expected {}, actual {}", show(*.expected), show(*.actual))]
    Conflict {
        /// The document.
        id: String,
        /// The version expected (`None`: expected absent).
        expected: Option<u64>,
        /// Its newest version (`None`: absent or deleted).
        actual: Option<u64>,
    },
    /// A patch or delete named a document that does not exist or is deleted.
    #[error("document {id} not found")]
    NotFound {
        /// The document.
        id: String,
    },
    /// A batch or operation asked for an update time that is not later than the one before it:
    /// the store's last update time, or the previous operation's in the same batch.
    #[error("update time {} is not later than the last update time before it, {}", query::format_rfc3339(*.requested), query::format_rfc3339(*.last))]
    TimeNotLater {
        /// The time asked for.
        requested: u64,
        /// The time it must be later than.
        last: u64,
    },
    /// A batch asked for an update time too far ahead of the clock
    /// ([`crate::Options::max_time_ahead`]): probably nanoseconds given for microseconds.
    #[error("update time {} is too far ahead of the clock (latest accepted now: {})", query::format_rfc3339(*.requested), query::format_rfc3339(*.limit))]
    TimeTooFarAhead {
        /// The time asked for.
        requested: u64,
        /// The latest time accepted now.
        limit: u64,
    },
    /// A replicated batch's origin (its position in the log it is applied from) is not later
    /// than the store's last origin: it was applied already, or the source went backwards.
    /// Nothing was written.
    #[error("origin {requested} is not later than the store's last origin, {last}")]
    OriginNotLater {
        /// The batch's origin.
        requested: u64,
        /// The store's last origin.
        last: u64,
    },
    /// One operation of a batch written with [`crate::Store::write`] failed; nothing of the
    /// batch was written. `source` says why (a [`Error::Conflict`], [`Error::NotFound`],
    /// [`Error::TimeNotLater`], an invalid id or body ...); [`Error::reason`] reaches it. The
    /// single-operation calls ([`crate::Store::put`], `patch`, `delete` ...) return the reason
    /// itself.
    #[error("operation {index} of {len} in the batch (counting from 0), on {id}: {source}")]
    BatchOp {
        /// The operation's position in the batch, from 0.
        index: usize,
        /// The number of operations in the batch.
        len: usize,
        /// The operation's document.
        id: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// A body could not be turned into the requested type (or back).
    #[error("cannot convert document {id}: {source}")]
    Decode {
        /// The document.
        id: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Bytes on disk are damaged; the store names the file and offset.
    #[error("corruption in {file} at offset {offset}: {kind}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Offset of the bad frame or header.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// Another open store holds the data directory. Reads need no lock:
    /// [`crate::Store::open_read_only`].
    #[error("data directory {path} is locked by another open store{}", holder.map_or_else(String::new, |pid| format!(" (process {pid})")))]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The process holding the lock, as it recorded itself in the lock file (FORMAT.md §2),
        /// when it did.
        holder: Option<u32>,
    },
    /// A write (or compaction, expiry, index rebuild) asked of a store opened with
    /// [`crate::Store::open_read_only`]: only the process holding the lock writes.
    #[error("store {path} is open read-only: {op} needs the process that holds its lock")]
    ReadOnly {
        /// What was asked (`"write"`, `"compact"` ...).
        op: &'static str,
        /// The data directory.
        path: PathBuf,
    },
    /// The directory holds a restore that did not finish (it was killed, or failed and could
    /// not clean up): it is not a store, and nothing opens it. Run the restore again into the
    /// same directory (it starts over), or remove the directory.
    #[error("{path} holds an unfinished restore of backup {backup}: it is not a usable store; run the restore again into it (it starts over) or remove it")]
    RestoreUnfinished {
        /// The directory.
        path: PathBuf,
        /// The backup being restored, as the marker names it.
        backup: String,
    },
    /// An earlier write or fsync failed; reopen the store to recover.
    #[error("store is poisoned by an earlier failed write or fsync; reopen it to recover")]
    Poisoned,
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// A query failed: bad syntax (with its position), an invalid query or option, a bad page
    /// token, or an index failure (the index can be rebuilt from the log).
    #[error(transparent)]
    Query(query::Error),
    /// An IO call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An option is out of range, or an argument does not go with the others.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The store cannot do what was asked in the way it was opened (e.g. back up a store kept
    /// in memory); nothing was changed.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was asked, and why it cannot be done.
        what: String,
    },
    /// A failure that is a bug in Strata, not in the input or the disk (e.g. a value that does
    /// not serialize, or a lower layer's error this version does not know); nothing was changed.
    #[error("internal error (a bug in strata): {message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// The task queue is full ([`crate::TaskPoolOptions::queue`]); retry later.
    #[error("busy: {queued} query tasks are queued already; retry later")]
    Busy {
        /// Tasks queued when this one was refused.
        queued: usize,
    },
    /// A task was cancelled before it finished.
    #[error("task {id} was cancelled")]
    TaskCancelled {
        /// The task.
        id: u64,
    },
    /// A task ran past its deadline.
    #[error("task {id} ran past its deadline")]
    TaskTimedOut {
        /// The task.
        id: u64,
    },
    /// A task's result and pages were released at its expiry.
    #[error("task {id} has expired; its pages are gone (run the query again)")]
    TaskExpired {
        /// The task.
        id: u64,
    },
    /// No task with this id is kept (never was, or released at its expiry).
    #[error("no task {id}")]
    UnknownTask {
        /// The id asked for.
        id: u64,
    },
    /// A task failed; the cause is its source.
    #[error("task {id} failed: {source}")]
    TaskFailed {
        /// The task.
        id: u64,
        /// Why.
        #[source]
        source: std::sync::Arc<Error>,
    },
    /// A task's query panicked (a bug in Strata): the task failed with this as its cause
    /// (the source of [`Error::TaskFailed`]); the pool's worker serves the next task, and the
    /// panic is in [`crate::Stats::background_failures`].
    #[error("the query panicked: {message}")]
    TaskPanicked {
        /// The panic's message.
        message: String,
    },
    /// No collection has this name (now, or at the time asked for).
    #[error("no collection named {name:?}")]
    UnknownCollection {
        /// The name asked for.
        name: String,
    },
    /// A collection name is empty, too long or has characters other than ASCII letters,
    /// digits, `_`, `-` and `.`.
    #[error("invalid collection name {name:?}: {reason}")]
    InvalidCollectionName {
        /// The name as given (cut to 64 characters).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A subscription delivered its last event up to its `until_seq`.
    #[error("the subscription ended at seq {seq}")]
    SubscriptionEnded {
        /// Its `until_seq`.
        seq: u64,
    },
    /// The continuous-query feed stopped after a failure (e.g. reading the log).
    #[error("the subscription ended: {reason}")]
    SubscriptionFailed {
        /// Why.
        reason: String,
    },
    /// A batch is too large for one log segment.
    #[error("{0}")]
    BatchTooLarge(String),
    /// A read of the past needs versions that retention dropped (docs/DESIGN.md §2): the answer would
    /// be incomplete, so there is none. History is complete from `oldest_complete` on.
    #[error("{} before {} was dropped by retention; history is complete from that time on", .id.as_deref().map(|i| format!("history of {i}")).unwrap_or_else(|| "history".to_owned()), query::format_rfc3339(*.oldest_complete))]
    HistoryTrimmed {
        /// The document, when a point read asked for it.
        id: Option<String>,
        /// The oldest time (microseconds since the epoch) from which history is complete.
        oldest_complete: u64,
    },
    /// The file system has less free space than an operation needs (compaction checks before
    /// it writes); nothing was changed and the store works on.
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
    /// A backup is incomplete or damaged: restoring it would not give back the store it was.
    #[error("backup {path} cannot be restored: {reason}")]
    BackupDamaged {
        /// The backup directory, or the damaged file in it.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A backup's or a restore's destination already holds files (for a backup: files that
    /// are not an earlier backup).
    #[error("cannot {op} into {path}: it is not empty")]
    DestinationNotEmpty {
        /// The operation refused: `"back up"` or `"restore"`.
        op: &'static str,
        /// The destination directory.
        path: PathBuf,
    },
}

impl Error {
    /// The error itself, or for [`Error::BatchOp`] what made the operation fail: match on this
    /// to handle a conflict the same way whether it came from a batch or a single write.
    pub fn reason(&self) -> &Error {
        match self {
            Error::BatchOp { source, .. } => source.reason(),
            other => other,
        }
    }

    /// [`Error::reason`] by value.
    pub fn into_reason(self) -> Error {
        match self {
            Error::BatchOp { source, .. } => source.into_reason(),
            other => other,
        }
    }

    /// For [`Error::BatchOp`], the failing operation's index in its batch (from 0) and its id.
    pub fn batch_op(&self) -> Option<(usize, &str)> {
        match self {
            Error::BatchOp { index, id, .. } => Some((*index, id)),
            _ => None,
        }
    }

    /// Names operation `index` of a batch of `len` as the cause of `self`.
    pub(crate) fn in_batch(self, index: usize, len: usize, id: &str) -> Error {
        Error::BatchOp {
            index,
            len,
            id: id.to_owned(),
            source: Box::new(self),
        }
    }

    /// A storage error from committing a batch of `len` operations.
    pub(crate) fn from_commit(e: storage::Error, len: usize) -> Error {
        match e {
            storage::Error::Op { index, id, source } => {
                Error::from(*source).in_batch(index, len, &id)
            }
            other => Error::from(other),
        }
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "absent".to_owned(), |v| v.to_string())
}

impl From<query::Error> for Error {
    fn from(e: query::Error) -> Self {
        match e {
            query::Error::Storage(e) => Error::from(e),
            e => Error::Query(e),
        }
    }
}

impl From<storage::Error> for Error {
    fn from(e: storage::Error) -> Self {
        match e {
            storage::Error::Io { op, path, source } => Error::Io { op, path, source },
            storage::Error::Corruption { file, offset, kind } => {
                Error::Corruption { file, offset, kind }
            }
            storage::Error::Locked { path, holder } => Error::Locked { path, holder },
            storage::Error::ReadOnly { op, path } => Error::ReadOnly { op, path },
            storage::Error::Poisoned => Error::Poisoned,
            storage::Error::Closed => Error::Closed,
            storage::Error::Conflict {
                id,
                expected,
                actual,
            } => Error::Conflict {
                id,
                expected,
                actual,
            },
            storage::Error::NotFound { id } => Error::NotFound { id },
            storage::Error::TimeTooFarAhead { requested, limit } => {
                Error::TimeTooFarAhead { requested, limit }
            }
            storage::Error::TimeNotLater { requested, last } => {
                Error::TimeNotLater { requested, last }
            }
            storage::Error::OriginNotLater { requested, last } => {
                Error::OriginNotLater { requested, last }
            }
            storage::Error::Rejected { id, source } => match source.downcast::<Error>() {
                Ok(inner) => *inner,
                Err(other) => Error::InvalidBody {
                    id,
                    reason: other.to_string(),
                },
            },
            storage::Error::TooLarge(msg) => Error::BatchTooLarge(msg),
            storage::Error::InvalidOption(msg) => Error::InvalidOption(msg),
            storage::Error::NoSpace {
                op,
                path,
                needed,
                available,
            } => Error::NoSpace {
                op,
                path,
                needed,
                available,
            },
            storage::Error::HistoryTrimmed {
                id,
                oldest_complete,
            } => Error::HistoryTrimmed {
                id,
                oldest_complete,
            },
            // Commits go through `from_commit`, which knows the batch's length; here it is only
            // known to be past `index`.
            storage::Error::Op { index, id, source } => {
                Error::from(*source).in_batch(index, index + 1, &id)
            }
            // `storage::Error` is `#[non_exhaustive]`, so across crates this arm is required; every
            // variant there is mapped above (`mapping_gives_every_storage_error_its_own_variant`
            // checks it with `storage::Error::one_of_each`, whose own test fails on a variant it
            // does not build), so only a storage error this file has not learned reaches it.
            other => unmapped(other),
        }
    }
}

/// A storage error that [`Error::from`] does not map to a variant of its own: a bug in Strata.
fn unmapped(e: storage::Error) -> Error {
    Error::Internal {
        message: format!("storage error this version does not map: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins: a storage error that the mapping does not name falls into its fallback arm, where
    // it used to become `InvalidOption` ("invalid option: ..."), blaming the caller's options.
    #[test]
    fn mapping_gives_every_storage_error_its_own_variant() {
        for e in storage::Error::one_of_each() {
            let shown = e.to_string();
            let was_invalid_option = matches!(e, storage::Error::InvalidOption(_));
            let mapped = Error::from(e);
            assert!(
                !matches!(mapped, Error::Internal { .. }),
                "{shown} reached the fallback: {mapped:?}"
            );
            assert!(
                was_invalid_option || !matches!(mapped, Error::InvalidOption(_)),
                "{shown} became an invalid option: {mapped:?}"
            );
        }
    }

    // Pins: the fallback for a storage error the mapping does not know is an internal error
    // that keeps its message, not an invalid option.
    #[test]
    fn an_unmapped_storage_error_is_internal() {
        let mapped = unmapped(storage::Error::Closed);
        match &mapped {
            Error::Internal { message } => {
                assert!(message.ends_with("store is closed"), "{message}")
            }
            other => panic!("expected Internal, got {other:?}"),
        }
        assert_eq!(
            mapped.to_string(),
            "internal error (a bug in strata): storage error this version does not map: store is closed"
        );
    }

    #[test]
    fn unsupported_says_what() {
        let e = Error::Unsupported {
            what: "backing up a store in memory".into(),
        };
        assert_eq!(e.to_string(), "unsupported: backing up a store in memory");
    }
}
