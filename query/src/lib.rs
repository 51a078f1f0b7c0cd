//! Strata's index of document versions and its query model.
//!
//! Every version of every document is indexed in one tantivy index; visibility (current, as of a
//! time, all versions) is decided outside tantivy from the storage engine's columns, so counts,
//! sorts and pages stay exact. The not-yet-indexed tail of the log is evaluated by an in-memory
//! matcher that agrees with the index. No tantivy type appears in this crate's public API.
//!
//! The query model is usable on its own: the builder, the text syntax and the JSON form make the
//! same AST, and the matcher evaluates it on one version.
//!
//! ```
//! use serde_json::json;
//! use strata_query::{parse, Matcher, Query, VersionInfo};
//!
//! let q = parse(r#"_kind:package AND section:python AND size:[1000 TO 5000} AND NOT priority:optional"#)?;
//! assert_eq!(Query::from_json(&q.to_json())?, q);
//!
//! let info = VersionInfo {
//!     seq: 7, id: "/pkg/flask".into(), kind: "package".into(), version: 2, time: 0,
//!     tombstone: false, expires_at: None,
//! };
//! let m = Matcher::new(&q)?;
//! assert!(m.matches(&info, &json!({"section": "python", "size": 4999, "priority": "high"})));
//! assert!(!m.matches(&info, &json!({"section": "python", "size": 5000})));
//! # Ok::<_, strata_query::Error>(())
//! ```

mod ast;
mod convert;
mod error;
mod forward;
mod index;
mod keys;
mod matcher;
mod options;
mod parser;
mod plan;
mod prefilter;
mod reader;
mod schema;
mod search;
mod spec;
mod timestamp;
pub mod token;
mod translate;

pub use ast::{
    check_path, BoolQuery, Field, Query, Range, Scalar, SystemField, MAX_PATH_BYTES,
    MAX_QUERY_DEPTH,
};
pub use convert::{civil_from_days, format_rfc3339, parse_rfc3339, DateError, UnixTime};
pub use error::{Error, Result};
#[doc(hidden)]
#[cfg(feature = "test-support")]
pub use index::fail_index_writes;
pub use index::{
    committed_seq_on_disk, CommittedFiles, Index, IndexLocation, IndexOpenReport, IndexOptions,
    IndexProgress, META_FILE,
};
pub use matcher::{Flat, Matcher, Required};
pub use parser::parse;
pub use prefilter::RawPrefilter;
pub use schema::VersionInfo;
pub use search::Interrupt;
pub use search::{GroupOutput, Hit, QueryOutput, Trimmed};
pub use spec::{
    GroupBy, QuerySpec, Snapshot, SortKey, DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_UNKNOWN_IDS,
    SCORE,
};
pub use timestamp::Timestamp;

/// Longest string, in bytes, indexed as an exact keyword; longer strings are searchable as text,
/// and a term of one word matches a word of them ([`Query::Term`]).
pub const MAX_KEYWORD_BYTES: usize = 256;
