//! Replicated batches (FORMAT.md §4 "origin"): a batch applied from a log of record stores its
//! position there atomically with its records, takes its time from the source without a clock
//! check, and the store's last origin survives crashes, reopens, segment rolls and compaction.

use std::path::Path;
use std::sync::Arc;

use strata_storage::backend::{CrashMode, SimBackend};
use strata_storage::fuzzing::{decode_frames, reseal_checksums};
use strata_storage::{
    verify_log_with, Action, CompactOptions, CorruptionKind, Durability, Engine, EngineOptions,
    Error, Expect, Origin, RetentionRule, WriteOp,
};

const DIR: &str = "/db/log";

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

fn put(id: &str, kind: &str, body: &str) -> WriteOp {
    WriteOp {
        id: id.into(),
        expect: Expect::Any,
        action: Action::Put {
            kind: kind.into(),
            body: body.as_bytes().to_vec(),
        },
        expires_at: None,
        time: None,
    }
}

/// Retention that keeps only the newest version of kind `trim`.
fn trim_to_newest(_: &str, kind: &str) -> Vec<RetentionRule> {
    if kind == "trim" {
        vec![RetentionRule {
            max_versions: Some(1),
            ..RetentionRule::default()
        }]
    } else {
        Vec::new()
    }
}

fn origin(position: u64, min_time: u64) -> Origin {
    Origin { position, min_time }
}

/// The format version in the header of segment `number`.
fn header_version(sim: &SimBackend, number: u64) -> u32 {
    let path = Path::new(DIR).join(format!("{number:020}.log"));
    let bytes = sim.file_bytes(&path).expect("segment file");
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

#[test]
fn origins_and_source_times_are_kept_across_reopen() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    assert_eq!(engine.last_origin(), None);
    let first = engine
        .commit_replicated(vec![put("/a", "k", "{}")], origin(5, 1_000))
        .unwrap();
    assert_eq!((first[0].seq, first[0].time), (1, 1_000));
    assert_eq!(engine.last_origin(), Some(5));
    // A source time not after the store's last one: the next microsecond, as on every replica.
    let second = engine
        .commit_replicated(
            vec![put("/a", "k", "{}"), put("/b", "k", "{}")],
            origin(9, 500),
        )
        .unwrap();
    assert_eq!(
        second.iter().map(|m| m.time).collect::<Vec<_>>(),
        [1_001, 1_001]
    );
    // Far ahead of the clock: no TimeTooFarAhead, the source decided the time.
    let far = 4_000_000_000_000_000;
    let third = engine
        .commit_replicated(vec![put("/c", "k", "{}")], origin(10, far))
        .unwrap();
    assert_eq!(third[0].time, far);
    assert_eq!(engine.last_origin(), Some(10));
    // The store was empty: its first segment was written again with a version-3 header, no
    // second segment was needed.
    assert_eq!(engine.counts().segments, 1);
    drop(engine);
    assert_eq!(header_version(&sim, 1), 3);

    let engine = open(&sim.image().materialize(CrashMode::DropUnsynced));
    assert_eq!(engine.last_origin(), Some(10));
    assert_eq!(engine.last_time(), far);
}

#[test]
fn an_origin_not_later_than_the_last_is_refused_and_writes_nothing() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    engine
        .commit_replicated(vec![put("/a", "k", "{}")], origin(5, 1))
        .unwrap();
    for position in [5, 4, 0] {
        let err = engine
            .commit_replicated(vec![put("/b", "k", "{}")], origin(position, 2))
            .unwrap_err();
        assert!(
            matches!(err, Error::OriginNotLater { requested, last: 5 } if requested == position),
            "{err}"
        );
    }
    assert_eq!(engine.last_seq(), 1);
    assert_eq!(engine.last_origin(), Some(5));
}

#[test]
fn a_batch_that_fails_its_expectation_keeps_no_origin() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    let mut op = put("/a", "k", "{}");
    op.expect = Expect::Version(7);
    let err = engine
        .commit_replicated(vec![op], origin(3, 1))
        .unwrap_err();
    assert!(matches!(err, Error::Op { .. }), "{err}");
    assert_eq!(engine.last_origin(), None);
    // The position was not used up: the same origin applies once the batch can.
    engine
        .commit_replicated(vec![put("/a", "k", "{}")], origin(3, 1))
        .unwrap();
    assert_eq!(engine.last_origin(), Some(3));
    // An empty batch writes nothing, its origin neither.
    assert!(engine
        .commit_replicated(Vec::new(), origin(4, 2))
        .unwrap()
        .is_empty());
    assert_eq!(engine.last_origin(), Some(3));
}

#[test]
fn a_store_with_ordinary_writes_seals_its_segment_before_the_first_origin() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    engine.commit(vec![put("/a", "k", "{}")], None).unwrap();
    engine.commit(vec![put("/b", "k", "{}")], None).unwrap();
    engine
        .commit_replicated(vec![put("/c", "k", "{}")], origin(1, 1))
        .unwrap();
    // Ordinary writes after it go on in the new segment.
    engine.commit(vec![put("/d", "k", "{}")], None).unwrap();
    assert_eq!(engine.counts().segments, 2);
    drop(engine);
    // Old builds read segment 1 still; segment 2 names the format that knows origins.
    assert_eq!(header_version(&sim, 1), 1);
    assert_eq!(header_version(&sim, 2), 3);
    let engine = open(&sim.image().materialize(CrashMode::DropUnsynced));
    assert_eq!(engine.last_origin(), Some(1));
    assert_eq!(engine.last_seq(), 4);
    let check = verify_log_with(&sim, Path::new(DIR), &mut |_, _| {}).unwrap();
    drop(engine);
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

/// (last seq, origin) after each replicated batch of the workload, which rolls segments.
fn replicated_workload(engine: &Engine) -> Vec<(u64, u64)> {
    let mut after = Vec::new();
    for i in 0..60u64 {
        let ops: Vec<WriteOp> = (0..1 + i % 3)
            .map(|j| {
                put(
                    &format!("/d/{}", (i * 7 + j) % 11),
                    "k",
                    &format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(60)),
                )
            })
            .collect();
        let position = 2 * i + 1;
        let metas = engine
            .commit_replicated(ops, origin(position, 1_000 + i))
            .unwrap();
        after.push((metas.last().unwrap().seq, position));
    }
    after
}

// A crash at any sync point keeps, as the last origin, exactly the origin of the last batch
// that survived: never a later one (a replica would skip a batch) nor an earlier one (it would
// apply one twice).
#[test]
fn a_crash_at_every_sync_point_keeps_the_origin_of_the_last_surviving_batch() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    sim.record_images();
    let after = replicated_workload(&engine);
    assert!(engine.counts().segments > 3, "the workload rolls segments");
    drop(engine);
    let images = sim.images();
    assert!(images.len() > 100, "{} images", images.len());
    let mut recovered_some = 0;
    for (i, image) in images.iter().enumerate() {
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::KeepPrefix(7),
            CrashMode::KeepPrefix(60),
            CrashMode::KeepAll,
        ] {
            let ctx = format!("image {i}, {mode:?}");
            let crashed = image.materialize(mode);
            let engine = Engine::open_with(Arc::new(crashed.clone()), Path::new(DIR), options())
                .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"))
                .0;
            let last_seq = engine.last_seq();
            let expected = match after.iter().rposition(|&(seq, _)| seq <= last_seq) {
                Some(k) => {
                    assert_eq!(after[k].0, last_seq, "{ctx}: a batch was cut in half");
                    recovered_some += 1;
                    Some(after[k].1)
                }
                None => None,
            };
            assert_eq!(engine.last_origin(), expected, "{ctx}");
            // The replica goes on from there.
            let next = expected.map_or(1, |o| o + 2);
            engine
                .commit_replicated(vec![put("/next", "k", "{}")], origin(next, 1))
                .unwrap_or_else(|e| panic!("{ctx}: apply after recovery failed: {e}"));
            assert_eq!(engine.last_origin(), Some(next), "{ctx}");
        }
    }
    assert!(recovered_some > 100, "{recovered_some}");
}

#[test]
fn compaction_moves_an_origin_to_the_last_kept_record_of_its_batch() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    // Batch 1 ends with /t's first version, which batch 2 supersedes and retention drops.
    engine
        .commit_replicated(
            vec![put("/kept", "keep", "{}"), put("/t", "trim", "{\"v\":0}")],
            origin(1, 1),
        )
        .unwrap();
    engine
        .commit_replicated(vec![put("/t", "trim", "{\"v\":1}")], origin(2, 2))
        .unwrap();
    // Fill segments so that both batches are sealed.
    let pad = "y".repeat(400);
    for position in 3..40 {
        engine
            .commit_replicated(
                vec![put(
                    &format!("/f/{position}"),
                    "keep",
                    &format!("\"{pad}\""),
                )],
                origin(position, position),
            )
            .unwrap();
    }
    assert!(engine.counts().segments > 2);
    let report = engine
        .compact(
            &trim_to_newest,
            &CompactOptions::new(u64::MAX, engine.last_seq()),
        )
        .unwrap();
    assert_eq!(report.versions_dropped, 1, "{report:?}");
    assert_eq!(engine.last_origin(), Some(39));
    drop(engine);

    let segment = sim
        .file_bytes(&Path::new(DIR).join(format!("{:020}.log", 1)))
        .unwrap();
    let scan = decode_frames(&segment);
    let records = scan.result().unwrap();
    let kept = records.iter().find(|r| r.id == "/kept").unwrap();
    assert!(kept.batch_end, "{kept:?}");
    assert_eq!(kept.origin, Some(1));
    let origins: Vec<u64> = records.iter().filter_map(|r| r.origin).collect();
    assert_eq!(origins[..2], [1, 2]);

    let engine = open(&sim.image().materialize(CrashMode::DropUnsynced));
    assert_eq!(engine.last_origin(), Some(39));
    drop(engine);
    let check = verify_log_with(&sim, Path::new(DIR), &mut |_, _| {}).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

// An origin in a segment whose header is of a version without origins (1 or 2) is damage:
// open refuses it and verify names it, nothing is cut as a torn tail.
#[test]
fn an_origin_in_a_segment_without_origins_is_refused() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    engine
        .commit_replicated(vec![put("/a", "k", "{}")], origin(1, 1))
        .unwrap();
    engine
        .commit_replicated(vec![put("/b", "k", "{}")], origin(2, 2))
        .unwrap();
    drop(engine);
    let path = Path::new(DIR).join(format!("{:020}.log", 1));
    let mut bytes = sim.file_bytes(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&0u32.to_le_bytes());
    reseal_checksums(&mut bytes);
    let damaged = sim.image().materialize(CrashMode::DropUnsynced);
    damaged.set_file_bytes(&path, bytes.clone());

    let err = Engine::open_with(Arc::new(damaged.clone()), Path::new(DIR), options())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Corruption {
                kind: CorruptionKind::BadRecord(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("origin"), "{err}");
    let check = verify_log_with(&damaged, Path::new(DIR), &mut |_, _| {}).unwrap();
    assert!(
        check.problems.iter().any(|p| p.message.contains("origin")),
        "{:?}",
        check.problems
    );
    // The bytes were not touched.
    assert_eq!(damaged.file_bytes(&path).unwrap(), bytes);
}

#[test]
fn a_read_only_follower_sees_the_origins_the_writer_applies() {
    let sim = SimBackend::new();
    let writer = open(&sim);
    let (follower, _) =
        Engine::open_read_only_with(Arc::new(sim.clone()), Path::new(DIR), options()).unwrap();
    assert_eq!(follower.last_origin(), None);
    // The writer writes its empty segment again, with a version-3 header.
    writer
        .commit_replicated(vec![put("/a", "k", "{}")], origin(1, 1))
        .unwrap();
    assert!(follower.refresh().unwrap());
    assert_eq!(follower.last_origin(), Some(1));
    let after = replicated_workload_from(&writer, 10);
    assert!(writer.counts().segments > 2);
    assert!(follower.refresh().unwrap());
    assert_eq!(follower.last_origin(), Some(after));
    assert_eq!(follower.last_seq(), writer.last_seq());
}

/// Replicated batches big enough to roll segments, from origin `first` on; returns the last.
fn replicated_workload_from(engine: &Engine, first: u64) -> u64 {
    let pad = "z".repeat(300);
    let last = first + 40;
    for position in first..=last {
        engine
            .commit_replicated(
                vec![put(
                    &format!("/w/{}", position % 5),
                    "k",
                    &format!("\"{pad}\""),
                )],
                origin(position, position),
            )
            .unwrap();
    }
    last
}

// Format 3 pinned by a fixture (FORMAT.md §10): ordinary batches in a version-1 segment, then
// replicated ones in version-3 segments, one of them compacted (version 3 with `COMPACTED`).

const FIXTURE_TIME: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn fixture_v3_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format-v3/log")
}

fn fixture_options() -> EngineOptions {
    EngineOptions::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

/// The fixed workload: explicit times and origins make every byte deterministic.
fn write_v3_workload(dir: &Path) {
    let (engine, _) = Engine::open(dir, fixture_options()).unwrap();
    for i in 0..3u64 {
        let op = put(&format!("/plain/{i}"), "plain", &format!("{{\"i\":{i}}}"));
        engine.commit(vec![op], Some(FIXTURE_TIME + i)).unwrap();
    }
    let pad = "p".repeat(200);
    for i in 0..30u64 {
        let mut ops = vec![put(
            &format!("/r/{}", i % 4),
            "trim",
            &format!("{{\"i\":{i},\"pad\":\"{pad}\"}}"),
        )];
        if i % 5 == 0 {
            ops.insert(0, put(&format!("/once/{i}"), "keep", "{}"));
        }
        engine
            .commit_replicated(ops, origin(100 + 2 * i, FIXTURE_TIME + 1_000 * i))
            .unwrap();
    }
    let report = engine
        .compact(
            &trim_to_newest,
            &CompactOptions::new(u64::MAX, engine.last_seq()),
        )
        .unwrap();
    assert!(report.segments_rewritten > 0, "{report:?}");
}

/// The log files of `dir` (segments and the horizon file), by name.
fn log_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "run with --ignored to regenerate the v3 fixture after a deliberate format change"]
fn regenerate_v3_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    write_v3_workload(tmp.path());
    let dir = fixture_v3_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in log_files(tmp.path()) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn v3_fixture_opens_with_its_origins() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in log_files(&fixture_v3_dir()) {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let versions: Vec<u32> = log_files(tmp.path())
        .iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .map(|(_, b)| u32::from_le_bytes(b[8..12].try_into().unwrap()))
        .collect();
    assert_eq!(versions.first(), Some(&1), "{versions:?}");
    assert!(versions[1..].iter().all(|&v| v == 3), "{versions:?}");
    let (engine, _) = Engine::open(tmp.path(), fixture_options()).unwrap();
    assert_eq!(engine.last_origin(), Some(158));
    assert_eq!(engine.last_time(), FIXTURE_TIME + 29_000);
    assert_eq!(engine.last_seq(), 3 + 30 + 6);
    drop(engine);
    let check = strata_storage::verify_log(tmp.path(), &mut |_, _| {}).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert!(check.dropped > 0, "{check:?}");
}

#[test]
fn todays_writer_produces_the_v3_fixture_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    write_v3_workload(tmp.path());
    let fresh = log_files(tmp.path());
    let fixture = log_files(&fixture_v3_dir());
    let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
        files.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(names(&fresh), names(&fixture), "files differ");
    for ((name, a), (_, b)) in fresh.iter().zip(&fixture) {
        assert!(
            a == b,
            "{name} differs from the v3 fixture: the format changed"
        );
    }
}

// The edges of both numbers: a source time of u64::MAX is taken (nothing can follow it, and the
// next batch says so without storing its origin); origin 0 and u64::MAX are stored and
// survive a reopen.
#[test]
fn extreme_origins_and_source_times_are_typed_answers() {
    let sim = SimBackend::new();
    let engine = open(&sim);
    engine
        .commit_replicated(vec![put("/a", "k", "{}")], origin(0, 1))
        .unwrap();
    assert_eq!(engine.last_origin(), Some(0));
    let metas = engine
        .commit_replicated(vec![put("/b", "k", "{}")], origin(u64::MAX - 1, u64::MAX))
        .unwrap();
    assert_eq!(metas[0].time, u64::MAX);
    let err = engine
        .commit_replicated(vec![put("/c", "k", "{}")], origin(u64::MAX, 5))
        .unwrap_err();
    assert!(
        matches!(err, Error::TimeNotLater { last: u64::MAX, .. }),
        "{err}"
    );
    assert_eq!(engine.last_origin(), Some(u64::MAX - 1));
    drop(engine);
    let engine = open(&sim.image().materialize(CrashMode::DropUnsynced));
    assert_eq!(engine.last_origin(), Some(u64::MAX - 1));
    assert_eq!(engine.last_time(), u64::MAX);
    let err = engine
        .commit_replicated(vec![put("/c", "k", "{}")], origin(u64::MAX - 1, 5))
        .unwrap_err();
    assert!(matches!(err, Error::OriginNotLater { .. }), "{err}");
}
