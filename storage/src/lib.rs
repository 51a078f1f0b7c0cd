//! Strata's storage layer: a segmented, checksummed, append-only log of document versions,
//! with the version index and visibility columns that make reads of the present and the past
//! cheap.
//!
//! This crate knows bytes, ids, kinds, versions, seqs and times; it knows nothing of JSON or of
//! search. The on-disk format is specified in `FORMAT.md` beside this crate.
//!
//! ```
//! use strata_storage::{Action, Engine, EngineOptions, Expect, Selector, WriteOp};
//! let dir = tempfile::tempdir()?;
//! let (engine, _stats) = Engine::open(dir.path(), EngineOptions::default())?;
//! let put = WriteOp {
//!     id: "/users/ada".into(),
//!     expect: Expect::Absent,
//!     action: Action::Put { kind: "user".into(), body: br#"{"name":"Ada"}"#.to_vec() },
//!     expires_at: None,
//!     time: None,
//! };
//! let metas = engine.commit(vec![put], None)?;
//! assert_eq!((metas[0].version, metas[0].seq), (0, 1));
//! let newest = engine.get("/users/ada", Selector::Newest)?.unwrap();
//! assert_eq!(newest.body, br#"{"name":"Ada"}"#);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod backend;
mod compact;
mod engine;
mod error;
mod follow;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod fuzzing;
mod horizon;
mod index;
mod layout;
mod log;
mod options;
mod recovery;
mod replay;
mod shared;
mod time;
mod types;
mod verify;
mod writer;

pub use compact::{CompactOptions, CompactReport, RetentionRule, Rules};
pub use engine::{Engine, EngineCounts, LogFile, LogSnapshot, SeqColumns};
pub use error::{BoxError, CorruptionKind, Error, Result};
pub use horizon::HORIZON_FILE;
pub use index::OPEN_END;
pub use layout::{INDEX_DIR, LOG_DIR};
pub use log::record::{MAX_ID_LEN, MAX_KIND_LEN};
pub use log::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT_VERSION};
pub use options::{Durability, EngineOptions, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use recovery::{cut_log_after, cut_log_after_locked, cut_log_after_on};
pub use shared::{lock_dir, LOCK_FILE};
pub use time::{deadline_after, micros_of};
pub use types::{
    Action, Expect, IdScope, OpenStats, Origin, Selector, Unknown, UpdateFn, Version, VersionMeta,
    WriteOp,
};
pub use verify::{verify_log, verify_log_with, LogCheck, Problem};
