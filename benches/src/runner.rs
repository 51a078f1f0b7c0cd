//! What a bench run shares beyond criterion's estimates: the loop that runs a workload once per
//! criterion iteration and keeps every run (for the bench's own medians and percentiles), the
//! summary file those measurements go to, and the machine's load average to set beside them.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};

/// The body of criterion's `iter_custom`: runs `once` `iters` times, keeps every run in `runs`
/// and returns the sum of what `measured` picks from each as the time criterion records.
pub fn timed_runs<R>(
    iters: u64,
    runs: &mut Vec<R>,
    mut once: impl FnMut() -> R,
    measured: impl Fn(&R) -> Duration,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let run = once();
        total += measured(&run);
        runs.push(run);
    }
    total
}

/// What a bench measured itself, by section, written to a JSON file beside criterion's
/// estimates after each section (a filtered run keeps the other sections of an earlier run).
#[derive(Debug)]
pub struct Summary {
    file: &'static str,
    sections: Mutex<Option<Map<String, Value>>>,
}

impl Summary {
    /// The summary written to `file` in [`criterion_dir`].
    pub const fn new(file: &'static str) -> Summary {
        Summary {
            file,
            sections: Mutex::new(None),
        }
    }

    /// Where the summary is written.
    pub fn path(&self) -> PathBuf {
        let dir = criterion_dir();
        std::fs::canonicalize(&dir).unwrap_or(dir).join(self.file)
    }

    /// Records one section's measurements, merged into the summary file.
    pub fn record(&self, section: &str, value: Value) {
        let mut guard = self.sections();
        let summary = guard.get_or_insert_with(|| {
            std::fs::read_to_string(self.path())
                .ok()
                .and_then(|s| serde_json::from_str::<Map<String, Value>>(&s).ok())
                .unwrap_or_default()
        });
        summary.insert(section.to_owned(), value);
        let path = self.path();
        let written = std::fs::create_dir_all(criterion_dir()).and_then(|()| {
            let text = serde_json::to_string_pretty(&*summary).unwrap_or_default();
            std::fs::write(&path, text)
        });
        if let Err(e) = written {
            eprintln!("could not write {}: {e}", path.display());
        }
    }

    /// The sections recorded (by this run, or read back from an earlier one), if any.
    pub fn sections(&self) -> MutexGuard<'_, Option<Map<String, Value>>> {
        self.sections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the workspace's
/// `target/criterion`: where criterion writes its estimates.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("criterion")
}

/// The load averages of the last 1, 5 and 15 minutes (`/proc/loadavg`), or nothing.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
