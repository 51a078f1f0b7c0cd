//! Queries as tasks (docs/DESIGN.md §6): a bounded worker pool that schedules submitters
//! fairly, task stages, deadlines, expiry, pages of a pinned snapshot, and re-runs until an
//! expected count. `stage.rs` is one task's state, `token.rs` its page tokens, `report.rs` the
//! report file, `pool.rs` the queue and workers (below the store, which owns the pool), and
//! `api.rs` the handles (above it).

mod api;
pub(crate) mod pool;
mod report;
mod stage;
mod token;

pub use api::{Task, Tasks};
pub use report::{TaskReport, TASK_REPORT_FILE};
pub use stage::{TaskInfo, TaskOptions, TaskStage};
