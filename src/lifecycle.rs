//! Lifecycle: version retention and compaction, document expiry, and the maintenance thread
//! that runs both in the background (docs/DESIGN.md §7). `maintenance.rs` does the work below
//! the store; `api.rs` holds the store's calls into it.

mod api;
pub(crate) mod maintenance;

pub use maintenance::{CompactionReport, LifecycleStats};
