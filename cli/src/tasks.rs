//! `strata tasks`: the query tasks of the process that has the store open, read from the report
//! that process writes (`DATA/tasks.json`), so that the store is not opened (it is locked).

use std::path::Path;

use clap::Args;
use serde_json::json;
use strata::{TaskInfo, TaskReport, Tasks};

use super::fmt;
use super::time::now_micros;
use super::{Failure, Format};

/// Arguments of `strata tasks`.
#[derive(Args)]
#[command(
    after_help = "A process that has the store open and has run tasks rewrites DATA/tasks.json \
    about once a second and when it closes the store: the list can be a second old, and once \
    that process has ended it shows the tasks it had at the end (until a later process runs \
    tasks). Queued and run times of unfinished tasks are counted up to the report's time."
)]
pub(crate) struct TasksArgs {}

pub(crate) fn run(data: &Path, _args: TasksArgs, format: Format) -> Result<(), Failure> {
    let report = match Tasks::read_report(data) {
        Ok(report) => report,
        Err(strata::Error::Io { ref source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            match format {
                Format::Json => out!(
                    "{}",
                    json!({"written_micros": null, "pid": null, "tasks": []})
                ),
                Format::Table => out!(
                    "no task report in {}: no store with this data directory has run a task",
                    data.display()
                ),
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match format {
        Format::Json => out!(
            "{}",
            serde_json::to_value(&report).map_err(|e| Failure {
                message: format!("cannot print the task report: {e}"),
                code: 1,
            })?
        ),
        Format::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(report: &TaskReport) {
    let now = now_micros();
    let age = now.saturating_sub(report.written_micros);
    out!(
        "tasks of process {}{}, reported at {} ({} ago)",
        report.pid,
        if process_gone(report.pid) {
            " (no longer running)"
        } else {
            ""
        },
        fmt::time(report.written_micros),
        fmt::duration(age)
    );
    if report.tasks.is_empty() {
        out!("no tasks");
        return;
    }
    out!(
        "{:>6} {:<9} {:<12} {:<27} {:>9} {:>9} {:>7} QUERY",
        "ID",
        "STAGE",
        "SUBMITTER",
        "CREATED",
        "QUEUED",
        "RUN",
        "COUNT"
    );
    for t in &report.tasks {
        let (queued, run) = durations(t, report.written_micros);
        out!(
            "{:>6} {:<9} {:<12} {:<27} {:>9} {:>9} {:>7} {}",
            t.id,
            t.stage.to_string(),
            if t.submitter.is_empty() {
                "-"
            } else {
                &t.submitter
            },
            fmt::time(t.created_micros),
            queued.map_or_else(|| "-".to_owned(), fmt::duration),
            run.map_or_else(|| "-".to_owned(), fmt::duration),
            t.count.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            t.query
        );
        if let Some(error) = &t.error {
            out!("{:>6} error: {error}", "");
        }
    }
}

/// How long a task waited in the queue and how long it has run, in microseconds; unfinished
/// stages count up to `reported` (the report's time).
fn durations(t: &TaskInfo, reported: u64) -> (Option<u64>, Option<u64>) {
    let end = t.finished_micros.unwrap_or(reported);
    match t.started_micros {
        Some(started) => (
            Some(started.saturating_sub(t.created_micros)),
            Some(end.saturating_sub(started)),
        ),
        // Never started: still queued, or cancelled (or closed) while queued.
        None => (Some(end.saturating_sub(t.created_micros)), None),
    }
}

/// Whether the process that wrote the report has ended, where `/proc` tells (Linux); a
/// reused pid reads as running.
fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}
