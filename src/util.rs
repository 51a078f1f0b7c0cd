//! Small things every room needs, with no room of their own: the clock, the names of a data
//! directory's parts, and the refusal of writes on a read-only open. A leaf: it imports
//! nothing of the crate but its errors.

use std::time::{SystemTime, UNIX_EPOCH};

use storage::Engine;

use crate::error::{Error, Result};

/// Names of the log and index directories inside a data directory (storage's layout).
pub(crate) use storage::{INDEX_DIR, LOG_DIR};

/// Microseconds since the Unix epoch, by the system clock (0 before the epoch).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// [`Error::ReadOnly`] for `op` when `engine` was opened read-only.
pub(crate) fn refuse_read_only(engine: &Engine, op: &'static str) -> Result<()> {
    if !engine.is_read_only() {
        return Ok(());
    }
    let log = engine.dir();
    Err(Error::ReadOnly {
        op,
        path: log.parent().unwrap_or(log).to_path_buf(),
    })
}
