//! What does `strata tasks` read? The report file (`tasks.json`) in which the pool of the
//! process holding a store lists its running and recent tasks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tasks::stage::TaskInfo;
use crate::util::now_micros;

/// File in the data directory where the pool reports running and recent tasks (read by
/// `strata tasks`, also while another process has the store open).
pub const TASK_REPORT_FILE: &str = "tasks.json";

/// What `strata tasks` reads: the tasks of the process that has the store open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// When the report was written (microseconds since the epoch).
    pub written_micros: u64,
    /// The process that wrote it.
    pub pid: u32,
    /// Running, queued and recent tasks, oldest first.
    pub tasks: Vec<TaskInfo>,
}

/// Writes the report of `tasks` to `path` (through a temporary file, renamed over it).
pub(crate) fn write(path: &Path, tasks: Vec<TaskInfo>) -> std::io::Result<()> {
    let report = TaskReport {
        written_micros: now_micros(),
        pid: std::process::id(),
        tasks,
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
    std::fs::rename(&tmp, path)
}

/// Reads the report in `data_dir`.
pub(crate) fn read(data_dir: &Path) -> Result<TaskReport> {
    let path = data_dir.join(TASK_REPORT_FILE);
    let bytes = std::fs::read(&path).map_err(|source| Error::Io {
        op: "read the task report",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Io {
        op: "parse the task report",
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}
