//! The commands against a store that a running process holds: this test process opens the
//! store (and writes and compacts it) while it runs the real `strata` binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use strata::{Batch, Options, RestoreOptions, Retention, Store};

use super::{strata, tempdir};

/// How long a child is given to print a line that must come (CI machines are slow).
const WAIT: Duration = Duration::from_secs(60);

fn holder_named(stderr: &str) -> bool {
    stderr.contains(&format!("process {}", std::process::id()))
}

#[test]
fn reads_of_a_live_store_exit_0_and_say_they_read_only() {
    // `strata stats`, `query`, `get` ... exited 5 (Locked) while a process had the store open.
    let dir = tempdir();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for n in 0..10 {
        store
            .put(&format!("/d/{n}"), "doc", json!({"n": n}))
            .unwrap();
    }
    store.wait_for_index().unwrap();
    // Past the index's last commit: matched from the log.
    store.put("/d/3", "doc", json!({"n": 30})).unwrap();

    let stats = strata(dir.path(), &["--format", "json", "stats"], None);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert_eq!(stats.json()["versions"], 11);
    assert!(holder_named(&stats.stderr), "{}", stats.stderr);
    assert_eq!(stats.stderr.lines().count(), 1, "{}", stats.stderr);

    let query = strata(dir.path(), &["--format", "json", "query", "n:>=5"], None);
    assert_eq!(query.code, 0, "{}", query.stderr);
    let found = query.json()["documents"].as_array().map(Vec::len);
    assert_eq!(found, Some(6), "{}", query.stdout);
    let get = strata(dir.path(), &["--format", "json", "get", "/d/3"], None);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(get.json()["documents"][0]["body"]["n"], 30);
    let history = strata(dir.path(), &["--format", "json", "history", "/d/3"], None);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert_eq!(history.json()["count"], 2);
    let list = strata(dir.path(), &["--format", "json", "list", "/d/"], None);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.json()["count"], 10);

    // Verify checks what it can and repairs nothing.
    let verify = strata(dir.path(), &["verify"], None);
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("read-only"), "{}", verify.stdout);

    // The writer never noticed.
    store.put("/d/after", "doc", json!({"n": 1})).unwrap();
}

#[test]
fn writes_to_a_live_store_are_locked_and_name_the_holder() {
    let dir = tempdir();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store.put("/a", "doc", json!({"n": 1})).unwrap();
    for args in [
        &["put", "/b", "doc", "{}"][..],
        &["delete", "/a"],
        &["compact"],
        &["rebuild-index"],
    ] {
        let run = strata(dir.path(), args, None);
        assert_eq!(run.code, 5, "{args:?}: {}", run.stderr);
        assert!(holder_named(&run.stderr), "{args:?}: {}", run.stderr);
    }
    assert_eq!(store.last_seq(), 1);
}

/// A child's stdout lines, handed over one at a time as they come.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(stdout: std::process::ChildStdout) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    #[track_caller]
    fn next(&self) -> Value {
        let line = self.0.recv_timeout(WAIT).expect("watch prints a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

#[test]
fn watch_follows_a_live_writer_and_never_locks_it() {
    // `strata watch` held the store's lock: every writer was refused while it ran, and it saw
    // only its own writes (none).
    let dir = tempdir();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        store.put("/w/a", "doc", json!({"n": 1})).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--format", "json", "--data"])
        .arg(dir.path())
        .args(["watch", "n:>=1", "--replay", "--limit", "3"])
        .env_remove("STRATA_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata starts");
    let lines = Lines::of(child.stdout.take().expect("a stdout pipe"));
    // The replay: watch has the store open from here on.
    let first = lines.next();
    assert_eq!(first["kind"], "existing", "{first}");
    // It holds no lock: a writer opens the store and writes, and watch prints the writes.
    let store = match Store::open(dir.path(), Options::default()) {
        Ok(store) => store,
        Err(e) => {
            let _ = child.kill();
            panic!("a writer cannot open the store while watch runs: {e}");
        }
    };
    store.put("/w/b", "doc", json!({"n": 2})).unwrap();
    store.put("/w/c", "doc", json!({"n": 0})).unwrap();
    store.put("/w/a", "doc", json!({"n": 3})).unwrap();
    let (second, third) = (lines.next(), lines.next());
    assert_eq!(
        (&second["kind"], &second["id"]),
        (&json!("added"), &json!("/w/b"))
    );
    assert_eq!(
        (&third["kind"], &third["id"]),
        (&json!("updated"), &json!("/w/a"))
    );
    let status = child.wait().expect("watch exits after --limit 3");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_backup_of_a_live_store_is_consistent_while_it_writes_and_compacts() {
    // `strata backup` of a running service's store exited 5; taken read-only, it must be a
    // consistent prefix of the log however the writer's batches and compactions fall.
    let dir = tempdir();
    let data = dir.path().join("data");
    let options = Options::default()
        .with_segment_size(8192)
        .with_retention("doc", Retention::default().with_max_versions(2));
    let store = Store::open(&data, options).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Every acknowledged batch: its last seq and the value it wrote to both documents of a pair.
    let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let (started, writing) = std::sync::mpsc::channel();
    let writer = {
        let (store, stop, acked) = (store.clone(), Arc::clone(&stop), Arc::clone(&acked));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pair = i % 16;
                let body = json!({"i": i, "pad": "p".repeat(200)});
                let metas = store
                    .write(
                        Batch::new()
                            .put(format!("/x/{pair}"), "doc", body.clone())
                            .put(format!("/y/{pair}"), "doc", body),
                    )
                    .unwrap();
                acked.lock().unwrap().push((metas[1].seq, i));
                if i == 300 {
                    let _ = started.send(());
                }
                i += 1;
            }
        })
    };
    // Compaction drops only versions the index committed, on the indexer's schedule: the
    // backups start once it has dropped some, so they run among compactions that rewrite
    // segments (they used to start at once and often ended before the first drop).
    let (dropping, compacting) = std::sync::mpsc::channel();
    let compactions = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut dropped = 0;
            while !stop.load(Ordering::Relaxed) {
                let before = dropped;
                dropped += store.compact().unwrap().versions_dropped;
                if before == 0 && dropped > 0 {
                    let _ = dropping.send(());
                }
            }
            dropped
        })
    };
    writing.recv_timeout(WAIT).expect("the writer writes");
    compacting
        .recv_timeout(WAIT)
        .expect("the compactions drop versions");
    let backup = dir.path().join("backup");
    for _ in 0..3 {
        // The first backup copies everything, the next ones what changed.
        let run = strata(&data, &["backup", backup.to_str().unwrap()], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(holder_named(&run.stderr), "{}", run.stderr);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let dropped = compactions.join().unwrap();
    assert!(
        dropped > 0,
        "the compactions dropped nothing: the test tests nothing"
    );
    let acked = acked.lock().unwrap().clone();
    drop(store);

    let restored = dir.path().join("restored");
    Store::restore(&backup, &restored, RestoreOptions::default()).unwrap();
    let report = Store::verify(&restored, Options::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let store = Store::open(&restored, Options::default()).unwrap();
    let last = store.last_seq();
    // A prefix: every batch acknowledged up to the backup's last seq, and nothing after.
    assert!(
        acked.iter().any(|&(seq, _)| seq == last),
        "seq {last} ends no batch"
    );
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for &(_, i) in acked.iter().filter(|&&(seq, _)| seq <= last) {
        expected.insert(i % 16, i);
    }
    for pair in 0..16 {
        let value = |prefix: &str| {
            store
                .get(&format!("/{prefix}/{pair}"))
                .unwrap()
                .map(|d| d.body["i"].as_u64().unwrap())
        };
        // Both documents of a batch, or neither: nothing torn.
        assert_eq!(value("x"), expected.get(&pair).copied(), "/x/{pair}");
        assert_eq!(value("y"), expected.get(&pair).copied(), "/y/{pair}");
    }
    let query = store
        .query(&strata::QuerySpec::new(strata::parse_query("i:>=0").unwrap()).count(true))
        .unwrap();
    assert_eq!(query.count, Some(expected.len() as u64 * 2));
}
