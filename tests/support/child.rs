//! The SIGKILL harness the suites share (STYLE.md "Tests" 3): the test binary re-executed to
//! run one ignored test as a child process that writes and prints a line per acknowledged
//! write, read until enough acknowledgements came, then killed with SIGKILL. A suite includes
//! it with `#[path = "../support/child.rs"] mod child;`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Marks the child's acknowledgement lines among the test harness's own output: a child prints
/// `{ACK}<fields>` and the parser it is run with reads what follows the marker.
pub const ACK: &str = "@@ack ";

/// What follows [`ACK`] on a line of the child's output, if the line is an acknowledgement.
pub fn ack_fields(line: &str) -> Option<&str> {
    line.split_once(ACK).map(|(_, rest)| rest)
}

/// Kills the child if the parent fails first.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the ignored test `test` (its full name, for `--exact`) of this test binary as a child
/// process with the environment `envs`, reads its output lines through `parse` until it has
/// made `kill_after` acknowledgements, kills it with SIGKILL, and returns every acknowledgement
/// it made, those it wrote before it died included.
///
/// # Panics
/// If the child ends before it is killed (with its stderr), makes fewer than `kill_after`
/// acknowledgements in a minute, or dies of anything but the SIGKILL.
pub fn run_child_and_kill<A>(
    test: &str,
    envs: &[(&str, &OsStr)],
    kill_after: usize,
    parse: impl Fn(&str) -> Option<A>,
) -> Vec<A> {
    let exe = std::env::current_exe().expect("the test binary");
    let child = Command::new(exe)
        .args([
            test,
            "--exact",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("child stdout");
    let mut stderr = child.0.stderr.take().expect("child stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut acks = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    while acks.len() < kill_after {
        match lines.next() {
            Some(Ok(line)) => acks.extend(parse(&line)),
            _ => {
                let status = child.0.wait();
                let stderr = stderr_reader.join().unwrap_or_default();
                panic!("the child ended before it was killed ({status:?}); its stderr:\n{stderr}");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child made {} acknowledgements in a minute",
            acks.len()
        );
    }
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child was not killed by SIGKILL: {status:?}"
    );
    // Lines the child wrote before it died are acknowledgements too.
    for line in lines {
        match line {
            Ok(line) => acks.extend(parse(&line)),
            Err(e) => panic!("reading the child's output: {e}"),
        }
    }
    acks
}
