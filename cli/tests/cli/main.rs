//! Tests of the `strata` command: the built binary run as a child process on a temporary data
//! directory.

mod collection;
mod dates;
mod import;
mod live;
mod ops;
mod output;
mod query;
mod tasks;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What a run of `strata` did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as JSON (for `--format json`).
    fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(value) => value,
            Err(e) => panic!("stdout is not JSON ({e}): {:?}", self.stdout),
        }
    }
}

/// Runs `strata --data DATA ARGS...`, feeding `stdin` if given.
fn strata(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("STRATA_DATA")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata starts");
    let output = std::thread::scope(|scope| {
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("a stdin pipe");
            // Fed from a thread while the output is read; a command that stops early (a locked
            // store) closes its end, which is no test failure.
            scope.spawn(move || match pipe.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin: {e}"),
                _ => {}
            });
        }
        child.wait_with_output().expect("strata ran")
    });
    Run {
        code: output.status.code().expect("strata exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file of `tests/fixtures/`.
fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// `strata stats` counts documents and versions, sizes the log and the index on disk, and says
/// what opening read.
#[test]
fn stats_reports_counts_sizes_and_the_open() {
    let dir = tempdir();
    for args in [
        &["put", "/a", "doc", r#"{"n":1}"#][..],
        &["put", "/b", "doc", r#"{"n":2}"#],
        &["patch", "/a", r#"{"n":3}"#],
        &["delete", "/b"],
    ] {
        let run = strata(dir.path(), args, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let run = strata(dir.path(), &["--format", "json", "stats"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = run.json();
    assert_eq!(stats["documents"], 1);
    assert_eq!(stats["documents_ever"], 2);
    assert_eq!(stats["versions"], 4);
    assert_eq!(stats["recovery"]["records"], 4);
    assert!(
        stats["log_bytes"].as_u64().is_some_and(|b| b > 0),
        "{stats}"
    );
    assert!(
        stats["index_bytes"].as_u64().is_some_and(|b| b > 0),
        "{stats}"
    );
    // Per-process counters (always zero here) are not printed.
    assert!(stats.get("writes").is_none(), "{stats}");
    let table = strata(dir.path(), &["stats"], None);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("1 current, 2 ever"),
        "{}",
        table.stdout
    );
}
