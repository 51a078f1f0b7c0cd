//! Compaction on the simulated backend: what it keeps, and a power loss at every sync point of
//! a run, in two crash modes, each reopened and checked against a model of the history.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{CrashMode, SimBackend};
use crate::{
    Action, CompactOptions, Durability, Engine, EngineOptions, Error, Expect, RetentionRule,
    Selector, WriteOp,
};

const DIR: &str = "/db/log";
const DOCS: usize = 8;
const VERSIONS: u64 = 12;
const KEEP: u64 = 3;

fn options() -> EngineOptions {
    EngineOptions::default()
        .with_segment_size(4096)
        .with_durability(Durability::Sync)
}

fn open(sim: &SimBackend) -> Engine {
    Engine::open_with(Arc::new(sim.clone()), Path::new(DIR), options())
        .unwrap_or_else(|e| panic!("open failed: {e}"))
        .0
}

fn kind_of(doc: usize) -> &'static str {
    if doc.is_multiple_of(2) {
        "trimmed"
    } else {
        "kept"
    }
}

/// Every version written, by document: (version, seq, body).
type Model = BTreeMap<String, Vec<(u64, u64, Vec<u8>)>>;

fn put(engine: &Engine, id: &str, kind: &str, body: Vec<u8>) -> crate::VersionMeta {
    let op = WriteOp {
        id: id.to_owned(),
        expect: Expect::Any,
        action: Action::Put {
            kind: kind.to_owned(),
            body,
        },
        expires_at: None,
        time: None,
    };
    engine.commit(vec![op], None).unwrap().remove(0)
}

/// Interleaved updates of every document, some in multi-document batches.
fn write_history(engine: &Engine) -> Model {
    let mut model = Model::new();
    for v in 0..VERSIONS {
        for doc in 0..DOCS {
            let id = format!("/d/{doc}");
            let body = format!(
                "{{\"doc\":{doc},\"v\":{v},\"pad\":\"{}\"}}",
                "x".repeat(40 + doc * 7)
            )
            .into_bytes();
            let meta = if doc == 3 && v % 3 == 0 {
                // A batch of two: this document and a one-off.
                let ops = vec![
                    WriteOp {
                        id: id.clone(),
                        expect: Expect::Any,
                        action: Action::Put {
                            kind: kind_of(doc).to_owned(),
                            body: body.clone(),
                        },
                        expires_at: None,
                        time: None,
                    },
                    WriteOp {
                        id: format!("/once/{v}"),
                        expect: Expect::Any,
                        action: Action::Put {
                            kind: "trimmed".to_owned(),
                            body: b"{}".to_vec(),
                        },
                        expires_at: None,
                        time: None,
                    },
                ];
                let metas = engine.commit(ops, None).unwrap();
                model.entry(metas[1].id.clone()).or_default().push((
                    0,
                    metas[1].seq,
                    b"{}".to_vec(),
                ));
                metas[0].clone()
            } else {
                put(engine, &id, kind_of(doc), body.clone())
            };
            model
                .entry(id)
                .or_default()
                .push((meta.version, meta.seq, body));
        }
    }
    model
}

fn rules(_id: &str, kind: &str) -> Vec<RetentionRule> {
    if kind == "trimmed" {
        vec![RetentionRule {
            max_versions: Some(KEEP),
            ..RetentionRule::default()
        }]
    } else {
        Vec::new()
    }
}

/// The engine holds, for every document, a suffix of its history (all of it for kind `kept`,
/// at least `KEEP` versions otherwise), every kept version readable with its bytes, and older
/// ones answered as trimmed.
fn check(engine: &Engine, model: &Model, ctx: &str) -> u64 {
    let mut dropped = 0;
    for (id, versions) in model {
        let history = engine.history(id).unwrap();
        let kept = history.len();
        let expect_all =
            id.starts_with("/d/") && kind_of(id[3..].parse::<usize>().unwrap()) == "kept";
        assert!(kept >= 1, "{ctx}: {id} lost its newest version");
        if expect_all {
            assert_eq!(
                kept,
                versions.len(),
                "{ctx}: {id} of kind kept lost history"
            );
        } else {
            assert!(
                kept as u64 >= KEEP.min(versions.len() as u64),
                "{ctx}: {id} kept {kept}"
            );
        }
        let suffix = &versions[versions.len() - kept..];
        for (got, (version, seq, body)) in history.iter().zip(suffix) {
            assert_eq!(
                (got.meta.version, got.meta.seq),
                (*version, *seq),
                "{ctx}: {id}"
            );
            assert_eq!(&got.body, body, "{ctx}: {id} v{version} body");
        }
        for (version, seq, body) in versions {
            match engine.get(id, Selector::Version(*version)) {
                Ok(Some(v)) => {
                    assert_eq!(&v.body, body, "{ctx}: {id} v{version}");
                    assert_eq!(engine.get_seq(*seq).unwrap().unwrap().body, *body);
                }
                Err(Error::HistoryTrimmed {
                    oldest_complete, ..
                }) => {
                    assert_eq!(Some(oldest_complete), engine.trimmed_at(id), "{ctx}");
                    assert!(
                        engine.get_seq(*seq).unwrap().is_none(),
                        "{ctx}: {id} seq {seq}"
                    );
                    dropped += 1;
                }
                other => panic!("{ctx}: {id} v{version}: {other:?}"),
            }
        }
    }
    assert_eq!(
        engine.counts().dropped_versions,
        dropped,
        "{ctx}: dropped count"
    );
    if dropped > 0 {
        assert!(
            engine.horizon(Some("trimmed")).is_some(),
            "{ctx}: no horizon"
        );
    }
    assert_eq!(
        engine.horizon(Some("kept")),
        None,
        "{ctx}: kind kept lost nothing"
    );
    dropped
}

fn compact_all(engine: &Engine) -> crate::CompactReport {
    engine
        .compact(&rules, &CompactOptions::new(u64::MAX, engine.last_seq()))
        .unwrap()
}

#[test]
fn compaction_keeps_the_newest_versions_and_reclaims_space() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    let model = write_history(&engine);
    let before: usize = sim
        .paths()
        .iter()
        .map(|p| sim.file_bytes(p).unwrap().len())
        .sum();
    let report = compact_all(&engine);
    assert!(
        report.segments_rewritten > 0 && report.versions_dropped > 0,
        "{report:?}"
    );
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    // Progress ends at the bytes of the rewritten segments.
    assert_eq!(
        engine.compaction_progress(),
        (report.bytes_before, report.bytes_before)
    );
    let after: usize = sim
        .paths()
        .iter()
        .map(|p| sim.file_bytes(p).unwrap().len())
        .sum();
    assert!(after < before, "disk use {before} -> {after}");
    let dropped = check(&engine, &model, "after compaction");
    assert_eq!(dropped, report.versions_dropped);
    assert_eq!(report.dropped_seqs.len() as u64, dropped);
    assert_eq!(engine.dropped_seqs(u64::MAX), report.dropped_seqs);
    // A second run finds nothing more in the segments it already rewrote.
    let again = compact_all(&engine);
    let newly_sealed_drops = again.versions_dropped;
    check(&engine, &model, "after a second run");
    drop(engine);
    let engine = open(&sim);
    assert_eq!(
        check(&engine, &model, "reopened"),
        dropped + newly_sealed_drops
    );
    // The log takes new writes after its compacted segments, and reopens again.
    put(&engine, "/d/0", "trimmed", b"{\"after\":1}".to_vec());
    drop(engine);
    let engine = open(&sim);
    let newest = engine.get("/d/0", Selector::Newest).unwrap().unwrap();
    assert_eq!(newest.body, b"{\"after\":1}");
}

#[test]
fn reads_before_the_oldest_kept_version_are_trimmed_errors() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    let model = write_history(&engine);
    compact_all(&engine);
    let id = "/d/0";
    let oldest = engine.trimmed_at(id).expect("trimmed");
    let first_kept = &engine.history(id).unwrap()[0];
    assert_eq!(first_kept.meta.time, oldest);
    for selector in [
        Selector::Version(0),
        Selector::AtTime(oldest - 1),
        Selector::AtSeq(first_kept.meta.seq - 1),
    ] {
        match engine.get(id, selector) {
            Err(Error::HistoryTrimmed {
                id: Some(got),
                oldest_complete,
            }) => assert_eq!((got.as_str(), oldest_complete), (id, oldest)),
            other => panic!("{selector:?}: {other:?}"),
        }
    }
    assert!(engine.get(id, Selector::AtTime(oldest)).unwrap().is_some());
    // A document of the kept kind answers every past read.
    let full = &model["/d/1"];
    assert!(engine
        .get("/d/1", Selector::AtSeq(full[0].1))
        .unwrap()
        .is_some());
}

#[test]
fn age_rule_drops_versions_superseded_long_enough_ago() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    let model = write_history(&engine);
    let rule = |_: &str, _: &str| {
        vec![RetentionRule {
            max_age: Some(Duration::from_secs(3600)),
            ..RetentionRule::default()
        }]
    };
    // Judged now, nothing is an hour old; judged two hours on, everything is.
    let now = engine.last_time();
    let none = engine
        .compact(&rule, &CompactOptions::new(now, u64::MAX))
        .unwrap();
    assert_eq!(none.versions_dropped, 0);
    let later = now + 2 * 3600 * 1_000_000;
    let all = engine
        .compact(&rule, &CompactOptions::new(later, u64::MAX))
        .unwrap();
    assert!(all.versions_dropped > 0);
    for id in model.keys() {
        let h = engine.history(id).unwrap();
        // What stays: versions in the active segment (never rewritten) and the newest.
        let newest = h.last().unwrap();
        assert_eq!(newest.meta.seq, model[id].last().unwrap().1);
    }
}

#[test]
fn power_loss_at_every_sync_point_of_a_compaction_loses_nothing() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    let model = write_history(&engine);
    sim.record_images();
    let report = compact_all(&engine);
    drop(engine);
    let images = sim.images();
    assert!(
        images.len() > 4 * report.segments_rewritten as usize,
        "{}",
        images.len()
    );
    let mut outcomes = std::collections::BTreeSet::new();
    for (i, image) in images.iter().enumerate() {
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepAll] {
            let ctx = format!("image {i}/{} {mode:?}", images.len());
            let crashed = image.materialize(mode);
            // verify (before open removes the leftovers) calls the crash's traces notes: open
            // succeeds here, so no problem.
            let log = crate::verify_log_with(&crashed, Path::new(DIR), &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
            assert!(log.problems.is_empty(), "{ctx}: {:?}", log.problems);
            let engine = open(&crashed);
            let dropped = check(&engine, &model, &ctx);
            outcomes.insert(dropped);
            // No leftover of the interrupted run, and the store takes writes and compacts again.
            assert!(
                !crashed
                    .paths()
                    .iter()
                    .any(|p| p.to_string_lossy().ends_with(".compact")),
                "{ctx}: temporary file left"
            );
            put(&engine, "/d/0", "trimmed", b"{\"more\":true}".to_vec());
            compact_all(&engine);
            drop(engine);
            let engine = open(&crashed);
            assert_eq!(
                engine.get("/d/0", Selector::Newest).unwrap().unwrap().body,
                b"{\"more\":true}"
            );
        }
    }
    // The sweep saw the run before it dropped anything, part way, and finished.
    assert!(outcomes.contains(&0), "{outcomes:?}");
    assert!(outcomes.contains(&report.versions_dropped), "{outcomes:?}");
    assert!(outcomes.len() > 2, "{outcomes:?}");
}
