//! Expected counts: a task re-runs as writes arrive until it counts enough matches, or fails
//! at its deadline.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;
use strata::{Error, Query, QuerySpec, TaskOptions, TaskStage};

use crate::{eventually, fill, finish, memory_store, LONG};

#[test]
fn a_task_finishes_once_other_threads_write_the_matches_it_expects() {
    let store = memory_store();
    fill(&store, "e", 2);
    fill(&store, "noise", 3);
    let task = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("e")),
            TaskOptions::default()
                .with_expected_count(5)
                .with_deadline(LONG),
        )
        .unwrap();
    eventually("the task has run once and counted 2", || {
        task.info().count == Some(2)
    });
    assert_eq!(task.stage(), TaskStage::Running);

    // Writes that do not match wake it, but do not finish it.
    store.put("/noise/more", "noise", json!({})).unwrap();
    assert_eq!(task.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    assert_eq!(task.stage(), TaskStage::Running);

    // Three writers, one matching document each, at once.
    let barrier = Arc::new(Barrier::new(3));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .put(&format!("/e/w{w}"), "e", json!({"w": w}))
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let result = task.wait_timeout(LONG).unwrap().expect("finished");
    assert!(result.count.unwrap() >= 5, "{:?}", result.count);
    assert_eq!(result.count, Some(5));
    assert_eq!(result.documents.len(), 5);
    assert!(result.documents.iter().all(|d| d.meta.kind == "e"));
    let info = task.info();
    assert_eq!(info.stage, TaskStage::Finished);
    assert_eq!(info.count, Some(5));
    assert!(info.runs >= 2, "runs {}", info.runs);
}

#[test]
fn a_task_without_the_writes_it_expects_times_out_at_its_deadline() {
    let store = memory_store();
    fill(&store, "e", 2);
    let deadline = Duration::from_millis(300);
    let submitted = Instant::now();
    let task = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("e")),
            TaskOptions::default()
                .with_expected_count(5)
                .with_deadline(deadline),
        )
        .unwrap();
    let outcome = task.wait_timeout(LONG);
    let waited = submitted.elapsed();
    let id = task.id();
    assert!(
        matches!(outcome, Err(Error::TaskTimedOut { id: i }) if i == id),
        "{outcome:?}"
    );
    assert!(
        waited >= deadline,
        "gave up after {waited:?}, before its deadline"
    );
    let info = task.info();
    assert_eq!(info.stage, TaskStage::Failed);
    assert_eq!(info.runs, 1, "re-ran without a write");
    assert_eq!(info.count, Some(2));
    assert!(info.error.unwrap().contains("deadline"));
    // A direct run says the same.
    let direct = store.tasks().run(
        &QuerySpec::new(Query::kind("e")),
        TaskOptions::default()
            .with_expected_count(5)
            .with_deadline(Duration::from_millis(20)),
    );
    assert!(
        matches!(direct, Err(Error::TaskTimedOut { .. })),
        "{direct:?}"
    );
}

#[test]
fn a_task_whose_count_is_met_at_once_runs_once() {
    let store = memory_store();
    fill(&store, "e", 4);
    let spec = QuerySpec::new(Query::kind("e")).limit(2);
    let task = store
        .tasks()
        .submit(
            &spec,
            TaskOptions::default()
                .with_expected_count(3)
                .with_deadline(LONG),
        )
        .unwrap();
    let result = finish(&task).unwrap();
    // The count is computed (the spec did not ask for it) and the limit kept.
    assert_eq!(result.count, Some(4));
    assert_eq!(result.documents.len(), 2);
    assert!(result.next_page.is_some());
    assert_eq!(task.info().runs, 1);
    assert_eq!(task.stage(), TaskStage::Finished);
}

#[test]
fn deletes_do_not_count_toward_an_expected_count() {
    let store = memory_store();
    fill(&store, "e", 3);
    let task = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("e")),
            TaskOptions::default()
                .with_expected_count(4)
                .with_deadline(LONG),
        )
        .unwrap();
    eventually("the task has counted 3", || task.info().count == Some(3));
    store.delete("/e/0000").unwrap();
    eventually("the task has counted the delete", || {
        task.info().count == Some(2)
    });
    assert_eq!(task.stage(), TaskStage::Running);
    store.put("/e/a", "e", json!({})).unwrap();
    store.put("/e/b", "e", json!({})).unwrap();
    let result = task.wait_timeout(LONG).unwrap().expect("finished");
    assert_eq!(result.count, Some(4));
}
