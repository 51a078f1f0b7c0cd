//! Power loss at every sync point of a scripted workload, with every way the simulated disk
//! can keep the unsynced bytes: nothing, a torn prefix of them, scrambled ones, or all.

use serde_json::json;
use strata::backend::{CrashMode, SimBackend, SimImage};
use strata::{Durability, Options};

use crate::support::{self, copy_fs, open, Model, Op};

/// The most unsynced bytes any one file of `image` holds.
fn unsynced_tail(image: &SimImage) -> usize {
    let all = image.materialize(CrashMode::KeepAll);
    let synced = image.materialize(CrashMode::DropUnsynced);
    all.paths()
        .iter()
        .map(|path| {
            let kept = all.file_bytes(path).map_or(0, |b| b.len());
            let durable = synced.file_bytes(path).map_or(0, |b| b.len());
            kept.saturating_sub(durable)
        })
        .max()
        .unwrap_or(0)
}

/// The crash modes worth trying for a tail of `tail` unsynced bytes: none, one byte, seven, a
/// frame header, half, all but one, all, and scrambled half and whole.
fn crash_modes(tail: usize) -> Vec<CrashMode> {
    let mut modes = vec![CrashMode::DropUnsynced];
    if tail == 0 {
        return modes;
    }
    for n in [1, 7, support::FRAME_HEADER_LEN, tail / 2, tail - 1] {
        if n > 0 && n < tail && !modes.contains(&CrashMode::KeepPrefix(n)) {
            modes.push(CrashMode::KeepPrefix(n));
        }
    }
    modes.push(CrashMode::KeepAll);
    for n in [tail / 2, tail] {
        if n > 0 && !modes.contains(&CrashMode::GarbagePrefix(n)) {
            modes.push(CrashMode::GarbagePrefix(n));
        }
    }
    modes
}

/// What a sweep saw, so a test can prove it exercised the interesting cases.
#[derive(Debug, Default)]
struct Coverage {
    cases: usize,
    torn_tails_cut: usize,
    unfinished_batches_dropped: usize,
    unacknowledged_batches_kept: usize,
}

/// Crashes `image` in `mode`, reopens, checks the store holds a whole-batch prefix of `model`
/// of at least `must_have` batches, then that it takes a new write and survives a clean reopen.
fn crash_and_check(
    image: &SimImage,
    mode: CrashMode,
    options: &Options,
    model: &Model,
    must_have: usize,
    ctx: &str,
    coverage: &mut Coverage,
) {
    let sim = image.materialize(mode);
    support::check_verify_agrees_with_open(&sim, options, ctx);
    let store = open(&sim, options, ctx);
    let recovered = model.recovered_batches(&store, ctx);
    assert!(
        recovered >= must_have,
        "{ctx}: lost acknowledged writes: recovered {recovered} batches, {must_have} were acknowledged"
    );
    model.check(&store, recovered, ctx);
    let stats = store.open_stats().clone();
    if mode == CrashMode::DropUnsynced {
        assert_eq!(
            stats.truncated_bytes, 0,
            "{ctx}: synced bytes hold whole batches only"
        );
    }
    coverage.cases += 1;
    coverage.torn_tails_cut += usize::from(stats.truncated_bytes > 0);
    coverage.unfinished_batches_dropped += usize::from(stats.truncated_records > 0);
    coverage.unacknowledged_batches_kept += usize::from(recovered > must_have);

    let mut after = model.prefix(recovered);
    let probe = [Op::Put {
        id: "/after-crash".into(),
        kind: "probe".into(),
        body: json!({"ctx": ctx}),
    }];
    after
        .commit(&store, &probe)
        .unwrap_or_else(|e| panic!("{ctx}: write after recovery failed: {e}"));
    after.check(&store, recovered + 1, ctx);
    drop(store);

    // After a clean close everything is there; and after a power loss right after it too, with
    // nothing left to repair: the repair and the probe were both made durable.
    let reopened = open(&copy_fs(&sim), options, ctx);
    after.check(&reopened, recovered + 1, &format!("{ctx}, clean reopen"));
    let crashed_again = open(
        &sim.image().materialize(CrashMode::DropUnsynced),
        options,
        ctx,
    );
    after.check(
        &crashed_again,
        recovered + 1,
        &format!("{ctx}, crash after recovery"),
    );
    assert_eq!(
        crashed_again.open_stats().truncated_bytes,
        0,
        "{ctx}: recovery left a tail to repair"
    );
}

/// Every image recorded under sync durability, crashed in every mode: each write acknowledged
/// before the image's syncs is there with its exact body and version, and no batch is partial.
#[test]
fn crash_at_every_sync_point_keeps_acknowledged_batches_whole() {
    let options = support::small_segments();
    let script = support::workload(0x5eed_0001, 70, 300);
    let sim = SimBackend::new();
    sim.record_images();
    let mut model = Model::default();
    // The sync count when each batch was acknowledged.
    let mut acknowledged_at = Vec::with_capacity(script.len());
    {
        let store = open(&sim, &options, "workload");
        for (i, ops) in script.iter().enumerate() {
            model
                .commit(&store, ops)
                .unwrap_or_else(|e| panic!("batch {i} failed: {e}"));
            acknowledged_at.push(sim.syncs());
        }
        model.check(&store, model.len(), "live store");
    }
    let segments = support::segment_paths(&sim).len();
    assert!(
        segments >= 5,
        "the workload should roll segments, made {segments}"
    );
    let images = sim.images();
    assert!(
        images.len() > 2 * script.len(),
        "expected an image before and after every sync, got {}",
        images.len()
    );

    let mut coverage = Coverage::default();
    for (i, image) in images.iter().enumerate() {
        let must_have = acknowledged_at
            .iter()
            .take_while(|&&s| s <= image.syncs)
            .count();
        for mode in crash_modes(unsynced_tail(image)) {
            let ctx = format!("image {i} (after {} syncs), {mode:?}", image.syncs);
            crash_and_check(
                image,
                mode,
                &options,
                &model,
                must_have,
                &ctx,
                &mut coverage,
            );
        }
    }
    eprintln!("sync-point sweep: {} images, {coverage:?}", images.len());
    assert!(
        coverage.torn_tails_cut > 50,
        "few torn tails were cut: {coverage:?}"
    );
    assert!(
        coverage.unfinished_batches_dropped > 5,
        "no unfinished batch was dropped: {coverage:?}"
    );
    assert!(
        coverage.unacknowledged_batches_kept > 20,
        "no written-but-unacknowledged batch survived: {coverage:?}"
    );
}

/// Without syncs between writes many batches sit unsynced at once; a crash keeps any prefix of
/// their bytes. Whatever survives must be whole batches in commit order, and nothing sealed
/// (synced when its segment rolled) may be lost.
#[test]
fn crash_with_many_unsynced_batches_keeps_a_whole_batch_prefix() {
    let options = support::small_segments().with_durability(Durability::None);
    let script = support::workload(0x5eed_0002, 60, 200);
    let sim = SimBackend::new();
    sim.record_images();
    let mut model = Model::default();
    // (image, batches acknowledged when it was taken).
    let mut images = Vec::new();
    {
        let store = open(&sim, &options, "workload");
        for (i, ops) in script.iter().enumerate() {
            model
                .commit(&store, ops)
                .unwrap_or_else(|e| panic!("batch {i} failed: {e}"));
            images.push((sim.image(), model.len()));
        }
    }
    let mut coverage = Coverage::default();
    for (i, (image, acknowledged)) in images.iter().enumerate() {
        let tail = unsynced_tail(image);
        let mut modes = crash_modes(tail);
        // Tear at a few more places across the several unsynced batches.
        modes.extend(
            (1..8)
                .map(|k| CrashMode::KeepPrefix(tail * k / 8))
                .filter(|m| *m != CrashMode::KeepPrefix(0)),
        );
        for mode in modes {
            let ctx = format!("image after batch {i}, {mode:?}");
            let sim_crashed = image.materialize(mode);
            support::check_verify_agrees_with_open(&sim_crashed, &options, &ctx);
            let store = open(&sim_crashed, &options, &ctx);
            let recovered = model.recovered_batches(&store, &ctx);
            assert!(
                recovered <= *acknowledged,
                "{ctx}: recovered a batch never written"
            );
            model.check(&store, recovered, &ctx);
            if mode == CrashMode::KeepAll {
                assert_eq!(
                    recovered, *acknowledged,
                    "{ctx}: lost bytes that survived the crash"
                );
            }
            let stats = store.open_stats();
            coverage.cases += 1;
            coverage.torn_tails_cut += usize::from(stats.truncated_bytes > 0);
            coverage.unfinished_batches_dropped += usize::from(stats.truncated_records > 0);
        }
    }
    eprintln!("unsynced sweep: {coverage:?}");
    assert!(
        coverage.unfinished_batches_dropped > 5,
        "no unfinished batch was dropped: {coverage:?}"
    );
}

/// "Never sync explicitly, except when a segment is sealed or the store closes": after a clean
/// close under `Durability::None` a power loss loses nothing.
#[test]
fn clean_close_syncs_under_durability_none() {
    let options = Options::default().with_durability(Durability::None);
    let sim = SimBackend::new();
    let mut model = Model::default();
    {
        let store = open(&sim, &options, "workload");
        for ops in support::workload(0x5eed_0003, 10, 50) {
            model.commit(&store, &ops).unwrap();
        }
    }
    let crashed = sim.image().materialize(CrashMode::DropUnsynced);
    let store = open(&crashed, &options, "after close and power loss");
    model.check(&store, model.len(), "after close and power loss");
}
