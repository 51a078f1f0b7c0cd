//! Errors of the query crate.

/// What can go wrong while parsing, indexing or running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text query does not parse.
    #[error("query syntax error at byte {position}: expected {expected}, found {found}")]
    Syntax {
        /// Byte offset into the query text.
        position: usize,
        /// What the parser expected there.
        expected: String,
        /// What it found (a quoted excerpt, or "end of input").
        found: String,
    },
    /// The JSON form of a query does not decode.
    #[error("invalid JSON query: {message}")]
    InvalidJsonQuery {
        /// serde's message, with line and column.
        message: String,
    },
    /// A field name is not a valid body path.
    #[error("invalid field {field:?}: {reason}")]
    InvalidField {
        /// The field (at most 64 characters of it).
        field: String,
        /// Why.
        reason: String,
    },
    /// A query is well formed but cannot be evaluated as asked.
    #[error("invalid query: {reason}")]
    InvalidQuery {
        /// Why.
        reason: String,
    },
    /// Boolean queries are nested deeper than the limit.
    #[error("query nested deeper than {limit} levels")]
    QueryTooDeep {
        /// The limit.
        limit: usize,
    },
    /// The query options do not go together, or a value is out of range.
    #[error("invalid query options: {reason}")]
    InvalidSpec {
        /// Why.
        reason: String,
    },
    /// A page token that this store did not issue, or for another query.
    #[error("invalid page token: {reason}")]
    InvalidPageToken {
        /// Why.
        reason: String,
    },
    /// The index failed (tantivy's message; the index can be rebuilt from the log).
    #[error("index error: {message}")]
    Index {
        /// What failed.
        message: String,
    },
    /// The index directory was unusable and could not be emptied and created again to rebuild
    /// it from the log (a permission or disk problem). Nothing outside it was touched; the log
    /// is intact.
    #[error("the index in {} is unusable and cannot be rebuilt from the log: {reason}", dir.display())]
    IndexRebuildFailed {
        /// The index directory.
        dir: std::path::PathBuf,
        /// Why it was unusable, and what failed while rebuilding it.
        reason: String,
    },
    /// The indexer failed (e.g. its disk is full): the message names the failed write and its
    /// file. It retries in the background and at once on a rebuild; until a commit succeeds,
    /// queries that must wait for one (scored ones, or a tail past `max_tail`) fail with this,
    /// while the others are answered from the last commit and the log.
    #[error("the indexer stopped: {message}")]
    IndexerStopped {
        /// Why it stopped.
        message: String,
    },
    /// A query on a read-only open needs more of the index than the writing process has
    /// committed (a sort by score).
    #[error("the index on disk covers seq {committed} and this query needs seq {needed}: on a read-only open only the process writing the store commits its index (refresh once it has)")]
    ReadOnlyIndexBehind {
        /// The seq the index's last commit covers.
        committed: u64,
        /// The seq the query needs covered (a sort by score reads scores from the index only).
        needed: u64,
    },
    /// The query was cancelled while it ran (see [`crate::Interrupt`]).
    #[error("the query was cancelled")]
    Cancelled,
    /// The query ran past its deadline (see [`crate::Interrupt`]).
    #[error("the query ran past its deadline")]
    DeadlineExceeded,
    /// The log failed.
    #[error(transparent)]
    Storage(#[from] storage::Error),
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index {
            message: e.to_string(),
        }
    }
}
