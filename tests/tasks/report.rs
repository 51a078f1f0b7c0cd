//! `Tasks::list` and the report file that `Tasks::read_report` reads (`strata tasks`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use strata::{
    Error, Options, Query, QuerySpec, Store, TaskInfo, TaskOptions, TaskPoolOptions, TaskStage,
    Tasks, TASK_REPORT_FILE,
};

use crate::{eventually, fill, finish, reopen, store_with_pool, Gate};

fn stages(infos: &[TaskInfo]) -> HashMap<u64, TaskStage> {
    infos.iter().map(|i| (i.id, i.stage)).collect()
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Submits, on a store with one worker: a finished task, a failed one (deadline), a cancelled
/// one (cancelled while queued) and a queued one behind a gate. Returns the gate and the ids
/// with their expected final stages.
fn a_task_of_each_stage(store: &Store) -> (Gate, Vec<(u64, TaskStage)>) {
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("r")).count(true).limit(2);
    let finished = tasks
        .submit(&spec, TaskOptions::default().with_submitter("alice"))
        .unwrap();
    finish(&finished).unwrap();
    let failed = tasks
        .submit(
            &spec,
            TaskOptions::default()
                .with_expected_count(100)
                .with_deadline(Duration::from_millis(1))
                .with_submitter("bob"),
        )
        .unwrap();
    assert!(matches!(finish(&failed), Err(Error::TaskTimedOut { .. })));
    let gate = Gate::close(store, "report", "gatekeeper");
    let cancelled = tasks.submit(&spec, TaskOptions::default()).unwrap();
    cancelled.cancel();
    let queued = tasks.submit(&spec, TaskOptions::default()).unwrap();
    let ids = vec![
        (finished.id(), TaskStage::Finished),
        (failed.id(), TaskStage::Failed),
        (gate.task.id(), TaskStage::Finished),
        (cancelled.id(), TaskStage::Cancelled),
        (queued.id(), TaskStage::Finished),
    ];
    (gate, ids)
}

#[test]
fn list_shows_every_task_with_its_stage() {
    let store = store_with_pool(1, 16);
    fill(&store, "r", 3);
    let tasks = store.tasks();
    assert!(tasks.list().is_empty());
    let (gate, ids) = a_task_of_each_stage(&store);

    let now: Vec<TaskInfo> = tasks.list();
    let listed: Vec<u64> = now.iter().map(|i| i.id).collect();
    let mut want: Vec<u64> = ids.iter().map(|(id, _)| *id).collect();
    want.sort_unstable();
    assert_eq!(listed, want, "oldest first");
    let s = stages(&now);
    assert_eq!(s[&ids[0].0], TaskStage::Finished);
    assert_eq!(s[&ids[1].0], TaskStage::Failed);
    assert_eq!(s[&ids[2].0], TaskStage::Running);
    assert_eq!(s[&ids[3].0], TaskStage::Cancelled);
    assert_eq!(s[&ids[4].0], TaskStage::Created);
    let by_id: HashMap<u64, &TaskInfo> = now.iter().map(|i| (i.id, i)).collect();
    assert_eq!(by_id[&ids[0].0].submitter, "alice");
    assert_eq!(by_id[&ids[0].0].count, Some(3));
    assert_eq!(by_id[&ids[1].0].submitter, "bob");
    assert!(by_id[&ids[1].0]
        .error
        .as_deref()
        .unwrap()
        .contains("deadline"));
    assert!(by_id[&ids[3].0]
        .error
        .as_deref()
        .unwrap()
        .contains("cancel"));
    assert!(now.iter().all(|i| i.query.contains("kind")), "{now:?}");

    gate.open();
    let queued = tasks.get(ids[4].0).unwrap();
    finish(&queued).unwrap();
    let after = stages(&tasks.list());
    for (id, stage) in &ids {
        assert_eq!(after[id], *stage, "task {id}");
    }
}

fn report_stages(dir: &Path) -> Option<HashMap<u64, TaskStage>> {
    Tasks::read_report(dir).ok().map(|r| stages(&r.tasks))
}

#[test]
fn the_report_file_shows_the_tasks_while_open_and_after_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let pool = TaskPoolOptions::default().with_workers(1);
    let store = Store::open(dir.path(), Options::default().with_task_options(pool)).unwrap();
    fill(&store, "r", 3);
    let tasks = store.tasks();
    let (gate, ids) = a_task_of_each_stage(&store);
    let queued_id = ids[4].0;

    // While the store is open the report is rewritten about once a second.
    eventually("the report shows the running and queued tasks", || {
        report_stages(dir.path()).is_some_and(|s| {
            s.len() == ids.len()
                && s.get(&ids[2].0) == Some(&TaskStage::Running)
                && s.get(&queued_id) == Some(&TaskStage::Created)
        })
    });
    let report = Tasks::read_report(dir.path()).unwrap();
    assert_eq!(report.pid, std::process::id());
    gate.open();
    let queued = tasks.get(queued_id).unwrap();
    let token = finish(&queued).unwrap().next_page.unwrap();
    tasks.page(&token).unwrap();

    // Dropped: the report holds the final state.
    let dropped_at = now_micros();
    drop((tasks, store));
    eventually("the report is rewritten after the drop", || {
        Tasks::read_report(dir.path()).is_ok_and(|r| r.written_micros >= dropped_at)
    });
    let report = Tasks::read_report(dir.path()).unwrap();
    let s = stages(&report.tasks);
    assert_eq!(s.len(), ids.len());
    for (id, stage) in &ids {
        assert_eq!(s[id], *stage, "task {id}");
    }
    let queued = report.tasks.iter().find(|i| i.id == queued_id).unwrap();
    assert_eq!(queued.pages_fetched, 1);
    assert!(queued.finished_micros.is_some());

    // A store opened on the directory that runs no task leaves the report alone.
    let written = report.written_micros;
    drop(reopen(dir.path()));
    let again = Tasks::read_report(dir.path()).unwrap();
    assert_eq!(again.written_micros, written);
    assert_eq!(stages(&again.tasks), s);
}

#[test]
fn a_store_that_ran_no_task_writes_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    drop(store);
    assert!(!dir.path().join(TASK_REPORT_FILE).exists());
    assert!(matches!(
        Tasks::read_report(dir.path()),
        Err(Error::Io { .. })
    ));
}

/// When `wait` (or a page fetch) has returned and the caller drops its last handle, the store
/// is closed at once: its report written and its directory free to open again (a pool worker
/// must not hold a handle of its own past the answer).
#[test]
fn dropping_the_store_after_an_answer_closes_it_at_once() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        fill(&store, "r", 3);
        let tasks = store.tasks();
        let spec = QuerySpec::new(Query::kind("r")).limit(1);
        let task = tasks.submit(&spec, TaskOptions::default()).unwrap();
        let token = finish(&task).unwrap().next_page.unwrap();
        if round % 2 == 1 {
            // The last answer is a page.
            tasks.page(&token).unwrap();
        }
        drop((tasks, store));
        let report = Tasks::read_report(dir.path());
        let info = report.as_ref().ok().and_then(|r| r.tasks.first());
        assert_eq!(
            info.map(|i| (i.stage, i.pages_fetched)),
            Some((TaskStage::Finished, round % 2)),
            "round {round}: {report:?}"
        );
        match Store::open(dir.path(), Options::default()) {
            Ok(_) => {}
            Err(e) => panic!("round {round}: reopen: {e}"),
        }
    }
}

/// A caller may drop its store while a task still runs, keeping only the task's handle. The
/// store closes when the task ends; the report it leaves should show how the task ended.
#[test]
fn the_final_report_shows_a_task_that_outlived_its_store_handles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    fill(&store, "r", 1);
    let task = store
        .tasks()
        .submit(
            &QuerySpec::new(Query::kind("r")),
            TaskOptions::default()
                .with_expected_count(2)
                .with_deadline(Duration::from_millis(300)),
        )
        .unwrap();
    crate::wait_stage(&task, TaskStage::Running);
    drop(store);
    assert!(matches!(finish(&task), Err(Error::TaskTimedOut { .. })));
    // The store closed when the task ended.
    drop(reopen(dir.path()));
    let report = Tasks::read_report(dir.path()).unwrap();
    let stage = report
        .tasks
        .iter()
        .find(|i| i.id == task.id())
        .map(|i| i.stage);
    assert_eq!(stage, Some(TaskStage::Failed), "{report:?}");
}
