//! History import benchmarks (issue 12 §1): a JSON Lines history file (one line per version,
//! each with its own `ts`) imported the way `strata import` does it, one `Store::write` of
//! 1000 lines at a time, each line's `ts` its operation's own time (`Batch::timed`).
//!
//! `cargo bench -p strata-benches --bench import`. Sizes: `STRATA_BENCH_IMPORT` versions
//! (default 20 000, one document per five versions, the package corpus of the query benches).
//! Two groups:
//!
//! - `history_import`: the file with a `ts` per line against the same lines without `ts`
//!   (goal: at least 0.9x as fast), durable (`Durability::Sync`), until the last write returns.
//! - `indexed_history_import`: the file with times, end to end until queryable: Strata's
//!   writes then `wait_for_index`, against SQLite's batched ingest (1000 rows a transaction,
//!   each row its own time) into the schema of the query benches (versions, current, tags,
//!   FTS5), both parsing the same lines (goal: Strata at least 2x as fast).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde_json::{json, Value};
use strata::{Batch, Options, Store};
use strata_benches::{Corpus, SqliteFtsEngine, Version, BASE_TIME, SQLITE_FTS_SETTINGS};
use tempfile::TempDir;

/// Seed of the imported corpus.
const SEED: u64 = 0x5EED_0012;
/// Lines per batch, as `strata import --batch` defaults to.
const BATCH: usize = 1000;

/// The history file's lines: version `i` of the corpus at `BASE_TIME + i ms` (with `ts`) or
/// without a time.
fn history(versions: u64, with_ts: bool) -> Vec<String> {
    let corpus = Corpus {
        docs: (versions / 5).max(1),
        versions,
        batch: BATCH as u64,
        seed: SEED,
    };
    (0..versions)
        .map(|i| {
            let v = corpus.version(i);
            let mut line = json!({"id": v.id, "kind": "package", "doc": v.body});
            if with_ts {
                line["ts"] = json!(BASE_TIME + i * 1000);
            }
            line.to_string()
        })
        .collect()
}

/// One parsed line: id, kind, time, body.
fn parse(line: &str) -> (String, String, Option<u64>, Value) {
    let mut v: Value = serde_json::from_str(line).expect("a generated line");
    let id = v["id"].as_str().expect("id").to_owned();
    let kind = v["kind"].as_str().expect("kind").to_owned();
    let ts = v["ts"].as_u64();
    (id, kind, ts, v["doc"].take())
}

/// Imports `lines` into `store` as `strata import` does: batches of [`BATCH`] lines, each
/// line's `ts` its operation's time.
fn import_strata(store: &Store, lines: &[String]) {
    for chunk in lines.chunks(BATCH) {
        let batch = chunk.iter().fold(Batch::new(), |batch, line| {
            let (id, kind, ts, body) = parse(line);
            let batch = batch.put(id, kind, body);
            match ts {
                Some(ts) => batch.timed(ts),
                None => batch,
            }
        });
        store.write(batch).expect("import a batch");
    }
}

/// Imports `lines` into SQLite: batches of [`BATCH`] rows, each at its line's `ts`.
fn import_sqlite(engine: &SqliteFtsEngine, lines: &[String]) {
    for chunk in lines.chunks(BATCH) {
        let batch = chunk
            .iter()
            .map(|line| {
                let (id, _, ts, body) = parse(line);
                let version = Version {
                    docno: 0,
                    version: 0,
                    id,
                    body,
                };
                (version, ts.expect("a time"))
            })
            .collect();
        engine.ingest_timed(batch).expect("import a batch");
    }
}

fn versions() -> u64 {
    let default = if strata_benches::quick_mode() {
        2_000
    } else {
        20_000
    };
    strata_benches::env_u64("STRATA_BENCH_IMPORT", default).max(1)
}

/// Runs `import` `iters` times on a fresh directory each, timing only the import: what it
/// returns (the open engine) is closed after the clock stops.
fn fresh<T>(iters: u64, mut import: impl FnMut(&std::path::Path) -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = TempDir::new().expect("a temporary directory");
        let started = Instant::now();
        let engine = import(dir.path());
        total += started.elapsed();
        drop(engine);
    }
    total
}

fn history_import(c: &mut Criterion, versions: u64) {
    let mut group = c.benchmark_group("history_import");
    group.throughput(Throughput::Elements(versions));
    group.sampling_mode(SamplingMode::Flat);
    for (name, with_ts) in [("ts_per_line", true), ("no_ts", false)] {
        let lines = history(versions, with_ts);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                fresh(iters, |dir| {
                    let store = Store::open(dir, Options::default()).expect("open");
                    import_strata(&store, &lines);
                    store
                })
            });
        });
    }
    group.finish();
}

fn indexed_history_import(c: &mut Criterion, versions: u64) {
    let mut group = c.benchmark_group("indexed_history_import");
    group.throughput(Throughput::Elements(versions));
    group.sampling_mode(SamplingMode::Flat);
    let lines = history(versions, true);
    group.bench_function(BenchmarkId::from_parameter("strata"), |b| {
        b.iter_custom(|iters| {
            fresh(iters, |dir| {
                let store = Store::open(dir, Options::default()).expect("open");
                import_strata(&store, &lines);
                store.wait_for_index().expect("indexed");
                store
            })
        });
    });
    group.bench_function(BenchmarkId::from_parameter("sqlite"), |b| {
        b.iter_custom(|iters| {
            fresh(iters, |dir| {
                use strata_benches::QueryEngine as _;
                let engine = SqliteFtsEngine::open(dir).expect("open");
                import_sqlite(&engine, &lines);
                engine
            })
        });
    });
    group.finish();
}

fn main() {
    let versions = versions();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    eprintln!(
        "history: {versions} versions, {} documents, batches of {BATCH}\n\
         strata: Options::default() (Durability::Sync)\nsqlite: {SQLITE_FTS_SETTINGS}",
        (versions / 5).max(1)
    );
    history_import(&mut c, versions);
    indexed_history_import(&mut c, versions);
    c.final_summary();
}
