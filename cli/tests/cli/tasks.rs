//! `strata tasks`: the report of the process that has (or had) the store open, read without
//! opening the store.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{Options, Query, QuerySpec, Store, TaskOptions, TaskStage};

use super::{strata, tempdir};

/// Runs `strata --format json tasks` until the report satisfies `ready`. A store that is
/// still open rewrites its report only about once a second, with no signal another process
/// could wait on, so this polls (every 50 ms, failing after 20 s).
fn report_when(dir: &std::path::Path, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let run = strata(dir, &["--format", "json", "tasks"], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        if ready(&report) {
            return report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the report never showed {what}: {report}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tasks_without_a_report_says_so_and_exits_0() {
    let dir = tempdir();
    let run = strata(dir.path(), &["tasks"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("no task report in")
            && run
                .stdout
                .contains("no store with this data directory has run a task"),
        "{}",
        run.stdout
    );
    let run = strata(dir.path(), &["--format", "json", "tasks"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["tasks"], json!([]));
    // A data directory that does not exist is no error either, and is not created.
    let missing = dir.path().join("missing");
    let run = strata(&missing, &["tasks"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!missing.exists());
}

#[test]
fn tasks_lists_the_finished_tasks_of_a_closed_store() {
    let dir = tempdir();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for i in 0..3 {
            store
                .put(&format!("/n/{i}"), "number", json!({"n": i}))
                .unwrap();
        }
        let spec = QuerySpec::new(Query::kind("number")).count(true).limit(1);
        let result = store
            .tasks()
            .run(&spec, TaskOptions::default().with_submitter("billing"))
            .unwrap();
        assert_eq!(result.count, Some(3));
    }
    let report = report_when(dir.path(), "the finished task", |r| {
        r["tasks"][0]["stage"] == "finished"
    });
    assert_eq!(report["pid"], std::process::id());
    let tasks = report["tasks"].as_array().expect("a task list");
    assert_eq!(tasks.len(), 1, "{report}");
    let task = &tasks[0];
    assert_eq!(task["stage"], "finished");
    assert_eq!(task["submitter"], "billing");
    assert_eq!(task["count"], 3);
    assert_eq!(task["runs"], 1);
    assert!(task["error"].is_null());
    assert!(task["query"].as_str().unwrap().contains("number"), "{task}");
    let created = task["created_micros"].as_u64().unwrap();
    let started = task["started_micros"].as_u64().unwrap();
    let finished = task["finished_micros"].as_u64().unwrap();
    assert!(created <= started && started <= finished, "{task}");

    let run = strata(dir.path(), &["tasks"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains("billing"))
        .unwrap_or_else(|| panic!("no row of the task: {}", run.stdout));
    assert!(row.contains("finished") && row.contains("number"), "{row}");
    assert!(
        run.stdout
            .starts_with(&format!("tasks of process {}", std::process::id())),
        "{}",
        run.stdout
    );
}

#[test]
fn tasks_reads_the_report_while_another_process_holds_the_store() {
    let dir = tempdir();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    // A task that runs until it is cancelled: it waits for a document nobody writes.
    let waiting = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("never")),
            TaskOptions::default()
                .with_expected_count(1)
                .with_deadline(Duration::from_secs(60))
                .with_submitter("waiter"),
        )
        .unwrap();
    // The store is locked: commands that write to it fail (reads open it read-only), `tasks`
    // does not.
    let run = strata(dir.path(), &["put", "/x", "doc", "{}"], None);
    assert_eq!(run.code, 5, "{}", run.stderr);
    // The housekeeper rewrites the report about once a second.
    let report = report_when(dir.path(), "the running task", |r| {
        r["tasks"][0]["id"] == waiting.id() && r["tasks"][0]["stage"] == "running"
    });
    let task = &report["tasks"][0];
    assert_eq!(task["submitter"], "waiter");
    assert!(task["finished_micros"].is_null());
    let run = strata(dir.path(), &["tasks"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("waiter") && l.contains("running")),
        "{}",
        run.stdout
    );

    waiting.cancel();
    assert!(waiting.wait().is_err());
    assert_eq!(waiting.stage(), TaskStage::Cancelled);
    drop(waiting);
    drop(store);
    let report = report_when(dir.path(), "the cancelled task", |r| {
        r["tasks"][0]["stage"] == "cancelled"
    });
    assert!(report["tasks"][0]["error"].is_string(), "{report}");
    let run = strata(dir.path(), &["tasks"], None);
    assert!(
        run.stdout.contains("error: task"),
        "the error is printed under its task: {}",
        run.stdout
    );
}
