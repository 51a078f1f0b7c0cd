//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz target bodies,
//! so that an input that once broke a target, kept there as a seed, fails `cargo test` if the bug
//! comes back. The targets themselves are in `fuzz/src/targets.rs`; `fuzz/README.md` tells how to
//! run a campaign and add a crash to a corpus.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/targets.rs"]
mod targets;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus(target);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap();
    paths.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    paths.sort();
    assert!(
        paths.len() >= 10,
        "{} holds only {} seeds",
        dir.display(),
        paths.len()
    );
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            targets::replay(run, &name, &fs::read(path).unwrap()).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {target} seeds fail:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", targets::frame_decode);
}

#[test]
fn open_dir_corpus() {
    replay("open_dir", targets::open_dir);
}

#[test]
fn ops_model_corpus() {
    replay("ops_model", targets::ops_model);
}

// Huge durations in the options (issue 11 E: they panicked, or wrapped `max_time_ahead` to
// 0.45 s) through the model: every duration the generator picks, with writes, reads and crashes.
#[test]
fn ops_model_with_every_option_duration() {
    targets::run_steps(&targets::durations_steps());
}

#[test]
fn query_parse_corpus() {
    replay("query_parse", targets::query_parse);
}

#[test]
fn query_json_corpus() {
    replay("query_json", targets::query_json);
}

/// Stores made through the API on the simulated file system, with explicit times so that their
/// bytes are the same on every run.
mod seeds {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;
    use strata::backend::{CrashMode, SimBackend};
    use strata::{Batch, Expect, Store};

    use super::targets::{open_dir_options, segment_files};

    pub const T0: u64 = 1_700_000_000_000_000;

    /// A store that `fill` writes to; its segment files, and the backend for crash images.
    pub fn store(fill: impl FnOnce(&Store, &mut u64)) -> (SimBackend, Vec<Vec<u8>>) {
        let sim = SimBackend::new();
        sim.record_images();
        let store =
            Store::open_with_backend(Arc::new(sim.clone()), Path::new("/db"), open_dir_options())
                .unwrap();
        let mut time = T0;
        fill(&store, &mut time);
        drop(store);
        let files = segment_files(&sim);
        (sim, files)
    }

    fn at(time: &mut u64) -> u64 {
        *time += 1_000;
        *time
    }

    pub fn small(store: &Store, time: &mut u64) {
        store
            .write(
                Batch::new()
                    .put(
                        "/users/ada",
                        "user",
                        json!({"name": "Ada", "langs": ["en"]}),
                    )
                    .at_time(at(time)),
            )
            .unwrap();
        store
            .write(
                Batch::new()
                    .put("/users/bob", "user", json!({"name": "Bob"}))
                    .at_time(at(time)),
            )
            .unwrap();
        store
            .write(
                Batch::new()
                    .patch("/users/ada", json!({"langs": ["en", "fr"]}))
                    .at_time(at(time)),
            )
            .unwrap();
        store
            .write(Batch::new().delete("/users/bob").at_time(at(time)))
            .unwrap();
        store
            .write(
                Batch::new()
                    .put("/users/bob", "user", json!({"name": "Bob", "back": true}))
                    .at_time(at(time)),
            )
            .unwrap();
    }

    pub fn batches(store: &Store, time: &mut u64) {
        for i in 0..6 {
            let batch = Batch::new()
                .put(format!("/items/{i}"), "item", json!({"i": i}))
                .put_if(
                    format!("/items/{}", i + 100),
                    "item",
                    json!({"tags": ["x", i]}),
                    Expect::Absent,
                )
                .patch(format!("/items/{i}"), json!({"seen": true}));
            store.write(batch.at_time(at(time))).unwrap();
        }
        store
            .write(
                Batch::new()
                    .delete("/items/0")
                    .delete("/items/1")
                    .at_time(at(time)),
            )
            .unwrap();
    }

    /// Enough writes for three or four 4 KiB segments.
    pub fn many(store: &Store, time: &mut u64) {
        for i in 0..90u64 {
            let body = json!({"n": i, "pad": "p".repeat((i % 7 * 20) as usize)});
            store
                .write(
                    Batch::new()
                        .put(format!("/docs/{}", i % 13), "doc", body)
                        .at_time(at(time)),
                )
                .unwrap();
        }
    }

    pub fn expiring(store: &Store, time: &mut u64) {
        let options = strata::WriteOptions::default().with_expires_at(T0 + 5_000);
        store
            .write(
                Batch::new()
                    .put_with("/tmp/a", "tmp", json!({"a": 1}), options)
                    .at_time(at(time)),
            )
            .unwrap();
        store
            .write(
                Batch::new()
                    .put("/tmp/b", "tmp", json!({}))
                    .at_time(at(time)),
            )
            .unwrap();
        store
            .write(
                Batch::new()
                    .patch("/tmp/a", json!({"a": null}))
                    .at_time(at(time)),
            )
            .unwrap();
    }

    /// Crash images of `sim` at a few of its syncs, keeping some unsynced bytes, torn or garbled.
    pub fn crashes(sim: &SimBackend) -> Vec<(String, Vec<Vec<u8>>)> {
        let images = sim.images();
        let mut out = Vec::new();
        for (i, image) in images
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 7 == 3)
            .take(4)
        {
            for (mode, name) in [
                (CrashMode::KeepPrefix(37), "torn"),
                (CrashMode::GarbagePrefix(23), "garbled"),
                (CrashMode::KeepAll, "kept"),
            ] {
                let files = segment_files(&image.materialize(mode));
                out.push((format!("crash-{i}-{name}"), files));
            }
        }
        out
    }
}

/// Rewrites the generated seeds of the three corpora (hand-added regression seeds stay). Run by
/// hand after a format change: `cargo test --test fuzz_replay -- --ignored write_seed_corpora`.
#[test]
#[ignore = "rewrites fuzz/corpus; run by hand"]
fn write_seed_corpora() {
    use rand::{Rng, SeedableRng};
    use targets::SegmentFiles;

    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let pack = |files: &[Vec<u8>], reseal: bool, first: u8| {
        SegmentFiles {
            reseal,
            first,
            files: files.to_vec(),
        }
        .pack()
    };

    let (empty_sim, empty) = seeds::store(|_, _| {});
    let (small_sim, small) = seeds::store(seeds::small);
    let (_, batches) = seeds::store(seeds::batches);
    let (many_sim, many) = seeds::store(seeds::many);
    let (_, expiring) = seeds::store(seeds::expiring);
    assert!(many.len() >= 3, "{} segments", many.len());
    let _ = (&empty_sim, &small_sim);

    let stores = [
        ("empty", &empty),
        ("small", &small),
        ("batches", &batches),
        ("many", &many),
        ("expiring", &expiring),
    ];
    for (name, files) in stores {
        write("open_dir", name, &pack(files, false, 0));
        for (i, file) in files.iter().enumerate() {
            write("frame_decode", &format!("{name}-{i}"), file);
        }
    }
    let mut crashes = seeds::crashes(&small_sim);
    crashes.extend(
        seeds::crashes(&many_sim)
            .into_iter()
            .map(|(n, f)| (format!("many-{n}"), f)),
    );
    for (name, files) in &crashes {
        write("open_dir", name, &pack(files, false, 0));
        if let Some(last) = files.last() {
            write("frame_decode", name, last);
        }
    }

    // Damage: the open must end in a corruption (or a repaired tail), never a panic.
    let flip = |file: &[u8], at: usize| {
        let mut f = file.to_vec();
        let at = at.min(f.len() - 1);
        f[at] ^= 0x40;
        f
    };
    let last = many.len() - 1;
    let mut damaged = Vec::new();
    let with = |i: usize, file: Vec<u8>| {
        let mut files = many.clone();
        files[i] = file;
        files
    };
    damaged.push(("sealed-flip", with(0, flip(&many[0], 300)), false, 0));
    damaged.push((
        "sealed-flip-resealed",
        with(0, flip(&many[0], 300)),
        true,
        0,
    ));
    damaged.push(("sealed-header-flip", with(1, flip(&many[1], 20)), false, 0));
    damaged.push((
        "sealed-header-resealed",
        with(1, flip(&many[1], 20)),
        true,
        0,
    ));
    damaged.push((
        "sealed-cut",
        with(0, many[0][..many[0].len() - 10].to_vec()),
        false,
        0,
    ));
    damaged.push((
        "active-cut",
        with(last, many[last][..many[last].len() - 5].to_vec()),
        false,
        0,
    ));
    damaged.push((
        "active-mid-flip",
        with(last, flip(&many[last], 60)),
        false,
        0,
    ));
    damaged.push((
        "active-header-only",
        with(last, many[last][..40].to_vec()),
        false,
        0,
    ));
    damaged.push((
        "active-short-header",
        with(last, many[last][..17].to_vec()),
        false,
        0,
    ));
    damaged.push(("first-missing", many[1..].to_vec(), false, 1));
    damaged.push(("misnumbered", many.clone(), false, 3));
    damaged.push(("u32-max-numbers", many.clone(), false, 15));
    damaged.push((
        "duplicate-segment",
        [many[0].clone(), many[0].clone()].to_vec(),
        false,
        0,
    ));
    let mut version = many[0].clone();
    version[8] = 2;
    damaged.push(("future-version", with(0, version), true, 0));
    let mut seq = small[0].clone();
    seq[40 + 8] ^= 1; // the first record's seq
    damaged.push(("seq-gap-resealed", [seq].to_vec(), true, 0));
    for (name, files, reseal, first) in damaged {
        write("open_dir", name, &pack(&files, reseal, first));
        write("frame_decode", name, files.last().unwrap());
    }
    write("open_dir", "nothing", &[]);
    write("open_dir", "no-files", &[0xf0]);
    write("frame_decode", "nothing", &[]);
    write("frame_decode", "header-only", &empty[0][..40]);
    write("frame_decode", "frames-without-header", &small[0][40..]);
    write("frame_decode", "one-frame-cut", &small[0][40..80]);

    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x0571_2a7a);
    for i in 0..32 {
        let len = [8, 32, 64, 128, 256, 512, 1024, 2048][i % 8] + rng.random_range(0..8);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        write("ops_model", &format!("random-{i:02}"), &bytes);
    }
    for i in 0..4 {
        let bytes: Vec<u8> = (0..200 + i * 100).map(|_| rng.random()).collect();
        write("frame_decode", &format!("random-{i}"), &bytes);
        write("open_dir", &format!("random-{i}"), &bytes);
    }
}
