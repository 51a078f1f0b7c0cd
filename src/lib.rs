//! Strata: an embedded, multi-version document store.
//!
//! Every write makes a new immutable version of a JSON document (a per-document version number,
//! a store-wide sequence number, an update time, a tombstone on delete) and appends it to a
//! crash-safe, checksummed, segmented log. Reads see the present or any moment of the past.
//!
//! ```
//! use serde_json::json;
//! use strata::{Options, Store};
//!
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let store = Store::open(dir.path(), Options::default())?;
//! let created = store.put("/packages/serde", "package", json!({"name": "serde", "downloads": 10}))?;
//! store.patch("/packages/serde", json!({"downloads": 11}))?;
//! store.delete("/packages/serde")?;
//!
//! assert!(store.get("/packages/serde")?.is_none());
//! let then = store.get_at("/packages/serde", created.update_time_micros)?.expect("existed then");
//! assert_eq!(then.body["downloads"], 10);
//! let versions: Vec<u64> = store.history("/packages/serde")?.iter().map(|d| d.meta.version).collect();
//! assert_eq!(versions, [0, 1, 2]);
//! # Ok::<_, strata::Error>(())
//! ```
#![warn(missing_docs)]

mod backup;
mod batch;
mod collection;
mod document;
mod error;
mod lifecycle;
mod open;
mod options;
mod search;
mod stats;
mod store;
mod subscribe;
mod tasks;
mod util;
mod validate;
mod verify;
mod watch;

pub use backup::{BackupReport, RestoreOptions, RestoreReport, BACKUP_MANIFEST, RESTORE_MARKER};
pub use batch::{Batch, Expect, Origin, WriteOptions};
pub use collection::{
    Collection, CollectionOptions, CollectionVersion, COLLECTION_KIND, MAX_COLLECTION_NAME,
    SYSTEM_ID_PREFIX, SYSTEM_KIND_PREFIX,
};
pub use document::{json_type_name, Document, Meta, RawDocument};
pub use error::{CorruptionKind, Error, Result};
pub use lifecycle::{CompactionReport, LifecycleStats};
pub use options::{
    Durability, IndexOptions, Limits, MaintenanceOptions, Options, Retention, TaskPoolOptions,
};
/// Errors of queries (syntax with position, invalid queries and options, page tokens, index).
pub use query::Error as QueryError;
/// Dates: the one RFC 3339 parser that decides which body strings are dates (for the index,
/// the matcher, `_updated` bounds and the CLI), and the proleptic Gregorian calendar.
pub use query::{civil_from_days, format_rfc3339, parse_rfc3339, DateError, Timestamp, UnixTime};
/// Limits and names of the query model: the most documents a page holds ([`MAX_LIMIT`]) and
/// its default ([`DEFAULT_LIMIT`]), the largest offset ([`MAX_OFFSET`]), the pseudo-field of
/// relevance to sort by ([`SCORE`], `"_score"`), the longest string indexed as an exact keyword
/// ([`MAX_KEYWORD_BYTES`]), the longest body path ([`MAX_PATH_BYTES`]) and the deepest nesting
/// of boolean queries ([`MAX_QUERY_DEPTH`]).
pub use query::{
    DEFAULT_LIMIT, MAX_KEYWORD_BYTES, MAX_LIMIT, MAX_OFFSET, MAX_PATH_BYTES, MAX_QUERY_DEPTH, SCORE,
};
pub use search::{
    parse_query, BoolQuery, Field, Group, GroupBy, IndexOpenReport, IndexProgress, Query,
    QueryResult, QuerySpec, Range, Scalar, Snapshot, SortKey, SystemField, Trimmed,
};
pub use stats::{OpStats, Stats};
pub use store::{List, OpenStats, Store};
pub use subscribe::{Event, EventKind, SubscribeOptions, Subscription};
pub use tasks::{Task, TaskInfo, TaskOptions, TaskReport, TaskStage, Tasks, TASK_REPORT_FILE};
pub use verify::{Problem, VerifyReport};

/// File-system backends: the real one, one in memory, and (feature `test-support`) the
/// simulated one of crash tests.
pub use storage::backend;
/// The newest and oldest log format versions this build reads (`storage/FORMAT.md` §1).
pub use storage::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT_VERSION};
