//! A child process writing with sync durability while its index commits often, killed with
//! SIGKILL; the reopened store's queries find every acknowledged version and agree with its
//! reads. The child is this test binary, re-executed to run only `child_writer_entry` (the
//! harness of tests/support/child.rs, shared with tests/crash/kill.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use strata::{Batch, Durability, IndexOptions, Options, Query, QuerySpec, Snapshot, Store};

use crate::child::{self, ack_fields, ACK};

/// Where the child writes; without it `child_writer_entry` does nothing.
const CHILD_DIR_ENV: &str = "STRATA_QUERY_CRASH_DIR";
/// Which run this child is, so ids of different runs differ.
const CHILD_RUN_ENV: &str = "STRATA_QUERY_CRASH_RUN";
const CHILD_TEST: &str = "crash::child_writer_entry";
const KIND: &str = "crash";

fn child_options() -> Options {
    let mut index = IndexOptions::default();
    index.commit_interval = Duration::from_millis(5);
    index.commit_versions = 40;
    index.writer_threads = 1;
    Options::default()
        .with_durability(Durability::Sync)
        .with_segment_size(32 << 10)
        .with_index_options(index)
}

/// The child: writes forever, printing `@@ack <seq> <id> <version> <deleted>` for every version
/// of every acknowledged write.
#[test]
#[ignore = "the child process of sigkill_while_indexing_loses_no_acknowledged_version; only runs when re-executed by it"]
fn child_writer_entry() {
    let (Some(dir), Some(run)) = (
        std::env::var_os(CHILD_DIR_ENV),
        std::env::var(CHILD_RUN_ENV).ok(),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&dir), child_options()).expect("child: open");
    let mut out = std::io::stdout().lock();
    // Bounded only so that a lost parent cannot leave a writer running for ever.
    for i in 0..1_000_000u64 {
        let id = format!("/c/{run}/{i:06}");
        let mut batch = Batch::new().put(
            id.clone(),
            KIND,
            json!({"run": run, "i": i, "text": format!("entry number {i}")}),
        );
        if i % 3 == 2 {
            batch = batch.patch(format!("/c/{run}/{:06}", i - 1), json!({"patched": true}));
        }
        if i % 5 == 4 {
            batch = batch.delete(format!("/c/{run}/{:06}", i - 3));
        }
        let metas = store.write(batch).expect("child: write");
        let mut lines = String::new();
        for m in metas {
            lines.push_str(&format!(
                "{ACK}{} {} {} {}\n",
                m.seq, m.id, m.version, m.deleted
            ));
        }
        if out
            .write_all(lines.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    seq: u64,
    id: String,
    version: u64,
    deleted: bool,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = ack_fields(line)?.split_whitespace();
    Some(Ack {
        seq: parts.next()?.parse().ok()?,
        id: parts.next()?.to_owned(),
        version: parts.next()?.parse().ok()?,
        deleted: parts.next()?.parse().ok()?,
    })
}

/// Runs a child until it has acknowledged `kill_after` versions, SIGKILLs it and returns every
/// version it acknowledged.
fn run_child_and_kill(dir: &Path, run: u64, kill_after: usize) -> Vec<Ack> {
    let run = run.to_string();
    child::run_child_and_kill(
        CHILD_TEST,
        &[
            (CHILD_DIR_ENV, dir.as_os_str()),
            (CHILD_RUN_ENV, OsStr::new(&run)),
        ],
        kill_after,
        parse_ack,
    )
}

/// Checks the reopened store: every acknowledged version is found by a query, and the current
/// documents of the query are those `list` and `get` find.
fn check(store: &Store, acks: &[Ack], ctx: &str) {
    // Every acknowledged version, by id over all versions.
    let mut by_id: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for a in acks {
        by_id.entry(a.id.as_str()).or_default().push(a);
    }
    for (id, acked) in &by_id {
        let r = store
            .query(
                &QuerySpec::new(Query::term("_id", *id))
                    .snapshot(Snapshot::AllVersions)
                    .include_deleted(true),
            )
            .unwrap_or_else(|e| panic!("{ctx}: query {id}: {e}"));
        let found: BTreeSet<(u64, u64, bool)> = r
            .documents
            .iter()
            .map(|d| (d.meta.seq, d.meta.version, d.meta.deleted))
            .collect();
        for a in acked {
            assert!(
                found.contains(&(a.seq, a.version, a.deleted)),
                "{ctx}: acknowledged {a:?} not found by a query; found {found:?}"
            );
        }
    }
    // The present: the query's documents are exactly the live ones.
    let live: Vec<String> = store
        .list("/c/")
        .map(|d| d.map(|d| d.meta.id))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{ctx}: list: {e}"));
    let r = store
        .query(
            &QuerySpec::new(Query::kind(KIND))
                .count(true)
                .limit(10_000)
                .sort(strata::SortKey::asc("_id")),
        )
        .unwrap_or_else(|e| panic!("{ctx}: query: {e}"));
    let ids: Vec<String> = r.documents.iter().map(|d| d.meta.id.clone()).collect();
    assert_eq!(r.count, Some(live.len() as u64), "{ctx}");
    assert_eq!(ids, live, "{ctx}");
    for d in &r.documents {
        let got = store.get(&d.meta.id).unwrap().expect("listed, so present");
        assert_eq!(got, *d, "{ctx}");
    }
    // Acknowledged live documents are among them.
    let mut last: BTreeMap<&str, &Ack> = BTreeMap::new();
    for a in acks {
        last.insert(a.id.as_str(), a);
    }
    for (id, a) in last {
        if !a.deleted && store.get(id).unwrap().is_none() {
            // Only a later version (written, but killed before it was acknowledged) may hide it.
            let newest = store.history(id).unwrap().last().map(|d| d.meta.version);
            assert!(
                newest > Some(a.version),
                "{ctx}: {id} acknowledged live at version {}, now gone",
                a.version
            );
        }
    }
}

#[test]
fn sigkill_while_indexing_loses_no_acknowledged_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for run in 0..4u64 {
        let kill_after = 60 + (run as usize * 97) % 200;
        let acks = run_child_and_kill(dir.path(), run, kill_after);
        all.extend(acks);
        let ctx = format!("run {run}");
        let store = Store::open(dir.path(), child_options())
            .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        eprintln!(
            "{ctx}: {} acknowledged versions; log seq {}; index {:?}",
            all.len(),
            store.last_seq(),
            store.index_open_report()
        );
        check(&store, &all, &format!("{ctx}, as reopened"));
        store.wait_for_index().unwrap();
        check(&store, &all, &format!("{ctx}, index committed"));
    }
}
