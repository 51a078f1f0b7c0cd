//! Reads and queries running while writers write and compaction drops versions: every answer
//! is consistent (current reads are never behind what was acknowledged, a version is never
//! seen twice or with another body, a read of a dropped version is `HistoryTrimmed`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use strata::{Error, IndexOptions, Meta, Query, QuerySpec, Retention, Snapshot, Store};

use crate::*;

const WRITERS: usize = 2;
const DOCS_PER_WRITER: usize = 6;
const WRITES_PER_WRITER: u64 = 300;
const READERS: usize = 2;

/// The body of version `v` of `id`: readers check any version they meet against it.
fn versioned(id: &str, v: u64) -> Value {
    json!({ "id": id, "v": v, "pad": "w".repeat(40 + (v as usize * 37) % 160) })
}

/// Kinds by document: "trim" keeps 2 versions, "young" only those superseded in the last
/// second (at least 1), "all" everything.
fn kind_of(i: usize) -> &'static str {
    ["trim", "young", "all"][i % 3]
}

struct Shared {
    ids: Vec<String>,
    /// Per document: its newest acknowledged version + 1 (0: none yet).
    acked: Vec<AtomicU64>,
    /// Per document: the metadata of every acknowledged version.
    metas: Vec<Mutex<Vec<Meta>>>,
    done: AtomicBool,
}

impl Shared {
    fn acked(&self) -> Vec<u64> {
        self.acked
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect()
    }

    fn random_meta(&self, rng: &mut impl Rng) -> Option<Meta> {
        let i = rng.random_range(0..self.ids.len());
        let metas = self.metas[i].lock().unwrap();
        if metas.is_empty() {
            return None;
        }
        Some(metas[rng.random_range(0..metas.len())].clone())
    }
}

#[track_caller]
fn check_body(doc: &strata::Document) {
    assert_eq!(
        doc.body,
        versioned(&doc.meta.id, doc.meta.version),
        "{:?}",
        doc.meta
    );
}

/// What each reader did, to be sure every kind of read ran.
#[derive(Debug, Default, Clone)]
struct Counts {
    gets: u64,
    old: u64,
    trimmed: u64,
    current: u64,
    all_versions: u64,
    as_of: u64,
    histories: u64,
    /// Queries that failed with an error no read should give, by kind of query.
    failed: BTreeMap<&'static str, u64>,
    first_failure: Option<String>,
}

impl Counts {
    fn failed(&mut self, what: &'static str, e: &Error) {
        *self.failed.entry(what).or_default() += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(format!("{what}: {e:?}"));
        }
    }
}

fn read_once(store: &Store, shared: &Shared, rng: &mut impl Rng, counts: &mut Counts) {
    let prefix = QuerySpec::new(Query::id_prefix("/w/"));
    match rng.random_range(0..7) {
        // The current version: never behind what was acknowledged before the read.
        0 => {
            let i = rng.random_range(0..shared.ids.len());
            let acked = shared.acked[i].load(Ordering::Acquire);
            let got = store.get(&shared.ids[i]).unwrap();
            if acked > 0 {
                let doc = got.expect("an acknowledged document is present");
                assert!(
                    doc.meta.version + 1 >= acked,
                    "{:?} behind {acked}",
                    doc.meta
                );
                check_body(&doc);
            }
            counts.gets += 1;
        }
        // An old version by number, or the version current at its time: exact, or trimmed
        // from a time after it.
        1 | 2 => {
            let Some(m) = shared.random_meta(rng) else {
                return;
            };
            let got = if rng.random_bool(0.5) {
                store.get_version(&m.id, m.version)
            } else {
                store.get_at(&m.id, m.update_time_micros)
            };
            match got {
                Ok(Some(doc)) => {
                    assert_eq!(doc.meta, m);
                    check_body(&doc);
                    counts.old += 1;
                }
                Err(Error::HistoryTrimmed {
                    id,
                    oldest_complete,
                }) => {
                    assert_eq!(id.as_deref(), Some(m.id.as_str()));
                    assert!(oldest_complete > m.update_time_micros, "{m:?}");
                    counts.trimmed += 1;
                }
                other => panic!("{m:?}: {other:?}"),
            }
        }
        // The current state of every document: each once, none behind.
        3 => {
            let acked = shared.acked();
            let r = match store.query(&prefix.clone().limit(1000).count(true)) {
                Ok(r) => r,
                Err(e) => return counts.failed("current query", &e),
            };
            assert_eq!(r.count, Some(r.documents.len() as u64));
            let mut seen = vec![false; shared.ids.len()];
            for doc in &r.documents {
                let i = shared.ids.iter().position(|id| *id == doc.meta.id).unwrap();
                assert!(!seen[i], "{} twice", doc.meta.id);
                seen[i] = true;
                assert!(doc.meta.version + 1 >= acked[i], "{:?}", doc.meta);
                check_body(doc);
            }
            for (i, &a) in acked.iter().enumerate() {
                assert!(a == 0 || seen[i], "{} missing", shared.ids[i]);
            }
            counts.current += 1;
        }
        // Every version: none twice, each with its own body, the newest of each there.
        4 => {
            let acked = shared.acked();
            let r = match store.query(
                &prefix
                    .clone()
                    .snapshot(Snapshot::AllVersions)
                    .limit(10_000)
                    .count(true),
            ) {
                Ok(r) => r,
                Err(e) => return counts.failed("all-versions query", &e),
            };
            assert_eq!(r.count, Some(r.documents.len() as u64));
            let mut keys: Vec<(String, u64)> = r
                .documents
                .iter()
                .map(|d| (d.meta.id.clone(), d.meta.version))
                .collect();
            let mut seqs: Vec<u64> = r.documents.iter().map(|d| d.meta.seq).collect();
            keys.sort();
            seqs.sort_unstable();
            let n = keys.len();
            keys.dedup();
            seqs.dedup();
            assert_eq!((keys.len(), seqs.len()), (n, n), "a version twice");
            r.documents.iter().for_each(check_body);
            for (i, &a) in acked.iter().enumerate() {
                if a > 0 {
                    assert!(
                        keys.iter()
                            .any(|(id, v)| *id == shared.ids[i] && v + 1 >= a),
                        "{} v{} missing",
                        shared.ids[i],
                        a - 1
                    );
                }
            }
            counts.all_versions += 1;
        }
        // The state at an acknowledged version's time: exact (that version is there), or
        // trimmed.
        5 => {
            let Some(m) = shared.random_meta(rng) else {
                return;
            };
            let t = m.update_time_micros;
            match store.query(&prefix.clone().snapshot(Snapshot::AsOf(t)).limit(1000)) {
                Ok(r) => {
                    let mut ids: Vec<&str> =
                        r.documents.iter().map(|d| d.meta.id.as_str()).collect();
                    ids.sort_unstable();
                    let n = ids.len();
                    ids.dedup();
                    assert_eq!(ids.len(), n, "a document twice");
                    for doc in &r.documents {
                        assert!(doc.meta.update_time_micros <= t);
                        check_body(doc);
                    }
                    assert!(
                        r.documents.iter().any(|d| d.meta == m),
                        "{m:?} missing at its own time"
                    );
                    counts.as_of += 1;
                }
                Err(Error::HistoryTrimmed {
                    id: None,
                    oldest_complete,
                }) => {
                    assert!(oldest_complete > t);
                    counts.trimmed += 1;
                }
                Err(e) => counts.failed("as-of query", &e),
            }
        }
        // A history: consecutive versions up to at least the acknowledged one.
        _ => {
            let i = rng.random_range(0..shared.ids.len());
            let acked = shared.acked[i].load(Ordering::Acquire);
            let history = store.history(&shared.ids[i]).unwrap();
            for w in history.windows(2) {
                assert_eq!(w[0].meta.version + 1, w[1].meta.version);
            }
            history.iter().for_each(check_body);
            if acked > 0 {
                assert!(history.last().unwrap().meta.version + 1 >= acked);
            }
            counts.histories += 1;
        }
    }
}

#[test]
fn reads_stay_consistent_while_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let options = options()
        .with_index_options(IndexOptions::default().with_commit_interval(Duration::from_millis(20)))
        .with_retention("trim", Retention::default().with_max_versions(2))
        .with_retention(
            "young",
            Retention::default()
                .with_min_versions(1)
                .with_max_age(Duration::from_secs(1)),
        );
    let store = open(dir.path(), options);
    let ids: Vec<String> = (0..WRITERS * DOCS_PER_WRITER)
        .map(|i| format!("/w/{i:02}"))
        .collect();
    let shared = Arc::new(Shared {
        acked: ids.iter().map(|_| AtomicU64::new(0)).collect(),
        metas: ids.iter().map(|_| Mutex::new(Vec::new())).collect(),
        ids,
        done: AtomicBool::new(false),
    });

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, shared) = (store.clone(), Arc::clone(&shared));
            thread::spawn(move || {
                let mut rng = rng(100 + w as u64);
                let own: Vec<usize> = (w * DOCS_PER_WRITER..(w + 1) * DOCS_PER_WRITER).collect();
                let mut next = vec![0u64; shared.ids.len()];
                for _ in 0..WRITES_PER_WRITER {
                    let i = own[rng.random_range(0..own.len())];
                    let id = &shared.ids[i];
                    let v = next[i];
                    let meta = store.put(id, kind_of(i), versioned(id, v)).unwrap();
                    assert_eq!(meta.version, v);
                    next[i] += 1;
                    shared.metas[i].lock().unwrap().push(meta);
                    shared.acked[i].store(v + 1, Ordering::Release);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, shared) = (store.clone(), Arc::clone(&shared));
            thread::spawn(move || {
                let mut rng = rng(200 + r as u64);
                let mut counts = Counts::default();
                while !shared.done.load(Ordering::Acquire) {
                    read_once(&store, &shared, &mut rng, &mut counts);
                }
                counts
            })
        })
        .collect();
    let compactor = {
        let (store, shared) = (store.clone(), Arc::clone(&shared));
        thread::spawn(move || {
            let (mut runs, mut dropped) = (0u64, 0u64);
            while !shared.done.load(Ordering::Acquire) {
                // Paced by the index: compaction drops only what it has committed.
                store.wait_for_index().unwrap();
                dropped += store.compact().unwrap().versions_dropped;
                runs += 1;
            }
            (runs, dropped)
        })
    };

    for w in writers {
        w.join().unwrap();
    }
    shared.done.store(true, Ordering::Release);
    let counts: Vec<Counts> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let (runs, mut dropped) = compactor.join().unwrap();
    assert!(
        dropped > 0,
        "compaction dropped versions while readers ran ({runs} runs)"
    );
    for c in &counts {
        assert!(
            c.gets > 0 && c.old > 0 && c.current > 0 && c.all_versions > 0 && c.histories > 0,
            "{counts:?}"
        );
    }

    // At rest: exactly what the rules keep.
    settle(&store);
    dropped += store.compact().unwrap().versions_dropped;
    let mut expected_dropped = 0;
    for (i, id) in shared.ids.iter().enumerate() {
        let metas = shared.metas[i].lock().unwrap();
        let history = store.history(id).unwrap();
        let keep = match kind_of(i) {
            "trim" => 2.min(metas.len()),
            // Written in the last few seconds: at least the newest, at most everything.
            "young" => history.len(),
            _ => metas.len(),
        };
        assert!(keep >= 1);
        assert_eq!(history.len(), keep, "{id}");
        let kept: Vec<&Meta> = history.iter().map(|d| &d.meta).collect();
        let expected: Vec<&Meta> = metas[metas.len() - keep..].iter().collect();
        assert_eq!(kept, expected, "{id}");
        history.iter().for_each(check_body);
        expected_dropped += (metas.len() - keep) as u64;
    }
    let stats = store.stats();
    assert_eq!(dropped, expected_dropped);
    assert_eq!(stats.dropped_versions, expected_dropped);
    assert_eq!(stats.lifecycle.versions_dropped, expected_dropped);

    // No read failed: a query that matched a version compaction dropped meanwhile must still
    // answer (that version, or the snapshot without it), never fail.
    let failed: u64 = counts.iter().flat_map(|c| c.failed.values()).sum();
    let reads: u64 = counts
        .iter()
        .map(|c| c.current + c.all_versions + c.as_of)
        .sum::<u64>()
        + failed;
    assert_eq!(
        failed, 0,
        "{failed} of {reads} queries failed while compaction ran: {counts:#?}"
    );
}
