//! The values that cross the engine's API.

use crate::error::BoxError;

/// A condition on a document's newest version, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// No condition.
    #[default]
    Any,
    /// The document exists (not deleted) and its newest version is this one.
    Version(u64),
    /// The document does not exist or is deleted.
    Absent,
}

/// Computes a document's new body from its newest body.
///
/// It runs on whichever committing thread leads the group commit, while that thread holds the
/// writer lock: it must be quick and must not commit to the same engine (that would deadlock).
/// An error or a panic rejects its batch with [`crate::Error::Rejected`]; nothing is written.
pub type UpdateFn = Box<dyn FnOnce(&[u8]) -> Result<Vec<u8>, BoxError> + Send>;

/// What an operation writes.
pub enum Action {
    /// A new body (and kind) replacing whatever was there.
    Put {
        /// The document's kind.
        kind: String,
        /// The new body bytes.
        body: Vec<u8>,
    },
    /// A body computed from the newest one; the kind and the expiry stay unless the operation
    /// sets an expiry. The document must exist.
    Update(UpdateFn),
    /// A tombstone. The document must exist.
    Delete,
    /// The tombstone of a document whose newest version expired: written by maintenance so the
    /// expiry shows in history. The operation's [`Expect::Version`] must name the newest
    /// version, which must carry an expiry at or before the batch's time; anything else is a
    /// [`crate::Error::Conflict`].
    Expire,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Put { kind, body } => f
                .debug_struct("Put")
                .field("kind", kind)
                .field("body_len", &body.len())
                .finish(),
            Action::Update(_) => f.write_str("Update(..)"),
            Action::Delete => f.write_str("Delete"),
            Action::Expire => f.write_str("Expire"),
        }
    }
}

/// One operation of an atomic batch.
#[derive(Debug)]
pub struct WriteOp {
    /// The document.
    pub id: String,
    /// The condition on its newest version.
    pub expect: Expect,
    /// What to write.
    pub action: Action,
    /// When the new version expires (microseconds since the epoch).
    pub expires_at: Option<u64>,
    /// This operation's own update time (microseconds since the epoch), for imports of history
    /// and replicas: later than the previous operation's time (or, for the first operation, the
    /// store's last time). `None`: the previous operation's time, or for the first operation
    /// the batch's time (FORMAT.md §5).
    pub time: Option<u64>,
}

/// Where a replicated batch comes from ([`crate::Engine::commit_replicated`]): its position in
/// the log of record it is applied from (e.g. a stream sequence number), stored with the batch
/// (FORMAT.md §4), and the time it was written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The batch's position in its source: later than every origin the store holds.
    pub position: u64,
    /// The batch's time at its source (microseconds since the epoch). The batch gets
    /// `max(min_time, last + 1 µs)`, whatever the local clock says.
    pub min_time: u64,
}

/// What the store knows of one version, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    /// The document id.
    pub id: String,
    /// The document kind.
    pub kind: String,
    /// Per-document version number.
    pub version: u64,
    /// Store-wide sequence number.
    pub seq: u64,
    /// Update time, microseconds since the Unix epoch.
    pub time: u64,
    /// Whether this version is a tombstone.
    pub tombstone: bool,
    /// Expiry, microseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// One version with its body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The version's metadata.
    pub meta: VersionMeta,
    /// The body bytes (empty for a tombstone).
    pub body: Vec<u8>,
}

/// Which version of a document a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// The newest version.
    Newest,
    /// A given version number.
    Version(u64),
    /// The version current at this time (microseconds since the epoch).
    AtTime(u64),
    /// The version current at this snapshot seq.
    AtSeq(u64),
}

/// What opening a store found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenStats {
    /// Segment files read.
    pub segments: u64,
    /// Records (versions) read.
    pub records: u64,
    /// Bytes cut from the end of the active segment (a torn or unfinished tail).
    pub truncated_bytes: u64,
    /// Whole or partial records among those bytes that were valid frames of an unfinished batch.
    pub truncated_records: u64,
    /// Time spent opening, in microseconds.
    pub open_micros: u64,
}

/// Which documents a query can match, when it names them: those with one of `ids`, or an id
/// starting with one of `prefixes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdScope {
    /// Exact ids.
    pub ids: Vec<String>,
    /// Id prefixes.
    pub prefixes: Vec<String>,
}

impl IdScope {
    /// The documents with these ids or an id under these prefixes.
    pub fn new(ids: Vec<String>, prefixes: Vec<String>) -> IdScope {
        IdScope { ids, prefixes }
    }
}

/// Documents whose state at a snapshot is not known, because compaction dropped the versions
/// that would tell it ([`crate::Engine::unknown_at`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unknown {
    /// How many.
    pub count: u64,
    /// The first of their ids, in id order, as many as were asked for.
    pub ids: Vec<String>,
}
