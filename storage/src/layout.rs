//! What is where in a data directory? The names of its directories (FORMAT.md §2): the log's,
//! which this crate writes, and the index's beside it, which the query crate fills. The names
//! of the files inside `log/` live with their formats (`LOCK_FILE`, `HORIZON_FILE`, segment
//! names in `log/segment.rs`).

/// Name of the log directory inside a data directory.
pub const LOG_DIR: &str = "log";

/// Name of the index directory inside a data directory (the query crate's files).
pub const INDEX_DIR: &str = "index";
