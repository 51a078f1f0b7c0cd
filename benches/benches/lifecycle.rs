//! Benchmarks of the lifecycle API (`src/lifecycle.rs`, `src/backup.rs`): compaction, its impact
//! on a concurrent workload, backups and restores, each with SQLite as the peer. Settings and
//! results are in `benches/RESULTS.md` ("Lifecycle: compaction, backup, restore").
//!
//! `cargo bench -p strata-benches --bench lifecycle`. One fixture is built first, outside every
//! measurement: `STRATA_BENCH_DOCS` documents (default 20 000) × `STRATA_BENCH_VERSIONS_PER_DOC`
//! versions (default 10) of about 1 KB of JSON each (`strata_benches::document`), written in
//! durable batches of up to 1000 in a shuffled order (every document's versions spread over the
//! whole log, as random updates would leave them), into a Strata store with
//! `STRATA_BENCH_SEGMENT_MIB`-MiB segments (default 8) and into the SQLite adapter's versions
//! table. Every measured iteration works on a fresh copy of the fixture's directory (copied and
//! synced before its timer starts). Four parts:
//!
//! - `compaction`: `Store::compact` with retention `max_versions(2)` on the documents' kind, at
//!   an unlimited IO rate and at the default 32 MiB/s; SQLite deletes all but the newest 2
//!   versions of each id, then `VACUUM` and `wal_checkpoint(TRUNCATE)`. Criterion's throughput
//!   is the store's bytes before (Strata: the sealed segments, which is what a run rewrites;
//!   SQLite: the database file).
//! - `compaction_impact` (the bench's own measurement, no criterion group): a copy opened with
//!   retention `max_versions(STRATA_BENCH_IMPACT_KEEP)` (default 8, so that the run rewrites
//!   most of the log and lasts several seconds at 32 MiB/s), then windows of work, each a
//!   durable ingest (`STRATA_BENCH_WINDOW_BATCHES` batches of 100 new versions of existing
//!   documents, default 20), `wait_for_index` (untimed, given up after 300 ms: while a
//!   compaction removes its dropped versions from the index, the windows go on without it) and
//!   `STRATA_BENCH_WINDOW_GETS` timed current gets (default 500). After `STRATA_BENCH_SETTLE_MS` (4000) of discarded windows
//!   (fsyncs are slow for a few seconds after the copy's writes), `STRATA_BENCH_BASELINE_WINDOWS`
//!   (8) without compaction, then as many as fit while `Store::compact` runs at the default rate
//!   in another thread, then `STRATA_BENCH_AFTER_WINDOWS` (8) without again. A window counts as "during" only if the
//!   compaction had not finished when it ended. `STRATA_BENCH_IMPACT_ROUNDS` rounds (default 5),
//!   each on a fresh copy; the ratios compare "during" with the windows before and after.
//! - `backup`: a full `Store::backup` into an empty directory; an incremental one into the same
//!   directory after 1% more versions (durable batches of 100, then `wait_for_index`, both
//!   untimed); SQLite's `VACUUM INTO` a new file, synced.
//! - `restore`: `Store::restore` of a full backup, `Store::open`, one `get` and one query (a
//!   term on `category`, limit 10); SQLite: copy the `VACUUM INTO` file (synced), open, one
//!   get, one query (the same filter by `json_extract` on current versions, limit 10).
//!
//! Medians and per-phase times are printed, written to `target/criterion/lifecycle-summary.json`
//! and printed as a Markdown table at the end. With criterion's `--test` or
//! `STRATA_BENCH_QUICK=1` every size is tiny, so the whole run takes seconds.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::seq::SliceRandom;
use rand::Rng as _;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use strata::{
    BackupReport, Batch, CompactionReport, MaintenanceOptions, Options, Query, QuerySpec,
    RestoreOptions, Retention, Store,
};
use strata_benches::{
    document, id, load_average, timed_runs, BenchEngine, DocPool, SqliteEngine, Summary, BASE_TIME,
    SQLITE_FILE,
};
use tempfile::TempDir;

/// Seed of the fixture's bodies and order.
const SEED: u64 = 0x5EED_0005;
/// Seed of the versions written after the fixture (incremental backups, impact windows).
const WRITE_SEED: u64 = 0x5EED_0006;
/// Seed of the ids the workloads pick.
const PICK_SEED: u64 = 0x5EED_0007;
/// The kind every document is written with (the SQLite adapter writes `item` too).
const KIND: &str = "item";
/// Most versions per committed batch when loading the fixture (a twentieth of the documents if
/// that is less, so that batches, which hold a document once, can mix their versions).
const LOAD_BATCH: usize = 1000;
/// Versions per committed batch of the workloads.
const BATCH: usize = 100;
/// Retention of the `compaction` group.
const KEEP: u64 = 2;
/// The default compaction rate, which the bench checks against `MaintenanceOptions::default`.
const DEFAULT_RATE: u64 = 32 << 20;
/// SQLite's retention: all but the newest `KEEP` versions of each id go.
const SQLITE_DELETE_OLD: &str = "DELETE FROM versions WHERE version < \
    (SELECT MAX(v.version) FROM versions AS v WHERE v.id = versions.id) - 1";
const SQLITE_GET: &str = "SELECT version, body FROM versions WHERE id = ?1 \
    ORDER BY version DESC LIMIT 1";
const SQLITE_QUERY: &str = "SELECT id, body FROM versions AS v \
    WHERE json_extract(body, '$.category') = ?1 \
    AND version = (SELECT MAX(version) FROM versions WHERE id = v.id) LIMIT 10";
/// The category the first query asks for (one document in ten has it).
const CATEGORY: &str = "garden";

const MIB: f64 = 1024.0 * 1024.0;

/// Sizes of this run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    quick: bool,
    docs: u64,
    versions_per_doc: u64,
    segment_size: u64,
    impact_keep: u64,
    impact_rounds: usize,
    /// Time of discarded windows after each copy opens (fsyncs are slow for a few seconds after
    /// the copy's writes).
    settle: Duration,
    baseline_windows: usize,
    after_windows: usize,
    window_batches: usize,
    window_gets: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = strata_benches::quick_mode();
        let env = strata_benches::env_u64;
        let (docs, segment_mib, rounds, settle_ms, baseline, after, batches, gets) = if quick {
            (1_000, 1, 1, 0, 3, 1, 5, 100)
        } else {
            (20_000, 8, 5, 4_000, 8, 8, 20, 500)
        };
        Sizes {
            quick,
            docs: env("STRATA_BENCH_DOCS", docs).max(10),
            versions_per_doc: env("STRATA_BENCH_VERSIONS_PER_DOC", 10).max(KEEP + 1),
            segment_size: env("STRATA_BENCH_SEGMENT_MIB", segment_mib).max(1) << 20,
            impact_keep: env("STRATA_BENCH_IMPACT_KEEP", 8).max(1),
            impact_rounds: env("STRATA_BENCH_IMPACT_ROUNDS", rounds).max(1) as usize,
            settle: Duration::from_millis(env("STRATA_BENCH_SETTLE_MS", settle_ms)),
            baseline_windows: env("STRATA_BENCH_BASELINE_WINDOWS", baseline).max(1) as usize,
            after_windows: env("STRATA_BENCH_AFTER_WINDOWS", after).max(1) as usize,
            window_batches: env("STRATA_BENCH_WINDOW_BATCHES", batches).max(1) as usize,
            window_gets: env("STRATA_BENCH_WINDOW_GETS", gets).max(1) as usize,
        }
    }

    fn versions(&self) -> u64 {
        self.docs * self.versions_per_doc
    }

    /// The store's options: the fixture's segment size, no background compaction (runs are
    /// started by the bench), compaction at `io_rate`, and `keep` versions of [`KIND`].
    fn options(&self, keep: Option<u64>, io_rate: Option<u64>) -> Options {
        let options = Options::default()
            .with_segment_size(self.segment_size)
            .with_maintenance(
                MaintenanceOptions::default()
                    .with_compaction_interval(None)
                    .with_compaction_io_rate(io_rate),
            );
        match keep {
            Some(k) => options.with_retention(KIND, Retention::default().max_versions(k)),
            None => options,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bench's own measurements (as in the tasks bench)

/// What the bench measured itself, by section.
static SUMMARY: Summary = Summary::new("lifecycle-summary.json");

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let at = ((v.len() - 1) as f64 * p).round() as usize;
    v[at.min(v.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Files

/// Copies the file `from` to `to` and syncs it; returns its length.
fn copy_file(from: &Path, to: &Path) -> u64 {
    let len = fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    File::open(to)
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("sync {}: {e}", to.display()));
    len
}

fn sync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .unwrap_or_else(|e| panic!("sync {}: {e}", dir.display()));
}

/// Copies the directory `from` to `to` (created), every file and directory synced; returns
/// the bytes copied.
fn copy_dir(from: &Path, to: &Path) -> u64 {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let mut bytes = 0;
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("list {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            bytes += copy_dir(&entry.path(), &target);
        } else {
            bytes += copy_file(&entry.path(), &target);
        }
    }
    sync_dir(to);
    bytes
}

/// Bytes of the files under `path` (a file or a directory).
fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| disk_bytes(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes of the log's sealed segments: every file of `log/` but the newest segment and the
/// horizon file. A compaction run rewrites at most these.
fn sealed_bytes(store_dir: &Path) -> (u64, usize) {
    let log = store_dir.join("log");
    let mut segments: Vec<(String, u64)> = fs::read_dir(&log)
        .expect("the log directory")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let len = e.metadata().map_or(0, |m| m.len());
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        // Segments are `<20 digits>.log`; their names sort by number.
        .filter(|(name, _)| name.ends_with(".log"))
        .collect();
    segments.sort();
    segments.pop();
    (segments.iter().map(|s| s.1).sum(), segments.len())
}

/// The SQLite adapter's database at `path`, with its settings (`SQLITE_SETTINGS`).
fn sqlite_open(path: &Path) -> Connection {
    strata_benches::sqlite_connect(path).expect("open the SQLite database")
}

/// The SQLite database with its WAL and shared-memory files, if any.
fn sqlite_bytes(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    disk_bytes(path) + disk_bytes(&wal)
}

// ---------------------------------------------------------------------------------------------
// The fixture

/// The fixture, closed: a Strata store directory and a SQLite database with the same versions.
struct Fixture {
    root: TempDir,
    strata: PathBuf,
    sqlite: PathBuf,
    strata_bytes: u64,
    sealed_bytes: u64,
    sealed_segments: usize,
    sqlite_bytes: u64,
}

impl Fixture {
    fn build(sizes: &Sizes) -> Fixture {
        let root = tempfile::Builder::new()
            .prefix("strata-lifecycle-bench-")
            .tempdir()
            .expect("a temporary directory");
        let strata_dir = root.path().join("fixture-strata");
        let sqlite_dir = root.path().join("fixture-sqlite");
        let started = Instant::now();
        let store =
            Store::open(&strata_dir, sizes.options(None, None)).expect("open the fixture store");
        let sqlite = SqliteEngine::open(&sqlite_dir).expect("open the SQLite fixture");
        let mut written = 0u64;
        for (k, batch) in shuffled_batches(sizes).into_iter().enumerate() {
            let docs: Vec<(String, Value)> = batch
                .into_iter()
                .map(|d| {
                    let body = document(SEED, written);
                    written += 1;
                    (id(d), body)
                })
                .collect();
            let time = BASE_TIME + k as u64 * 1000;
            let strata_batch = docs.iter().fold(Batch::new(), |b, (id, body)| {
                b.put(id.clone(), KIND, body.clone())
            });
            store
                .write(strata_batch.at_time(time))
                .expect("load a batch into Strata");
            sqlite
                .put_batch(docs, Some(time))
                .expect("load a batch into SQLite");
        }
        let loaded = started.elapsed();
        store.wait_for_index().expect("wait for the index");
        let indexed = started.elapsed();
        drop(store);
        // Closing the last connection checkpoints the WAL into the database and removes it.
        drop(sqlite);
        let (sealed_bytes, sealed_segments) = sealed_bytes(&strata_dir);
        let fixture = Fixture {
            strata_bytes: disk_bytes(&strata_dir),
            sealed_bytes,
            sealed_segments,
            sqlite_bytes: sqlite_bytes(&sqlite_dir.join(SQLITE_FILE)),
            root,
            strata: strata_dir,
            sqlite: sqlite_dir.join(SQLITE_FILE),
        };
        let value = json!({
            "documents": sizes.docs,
            "versions": written,
            "load_batch": LOAD_BATCH.min((sizes.docs / 20).max(1) as usize),
            "segment_size": sizes.segment_size,
            "load_s": loaded.as_secs_f64(),
            "load_and_index_s": indexed.as_secs_f64(),
            "strata_bytes": fixture.strata_bytes,
            "strata_log_bytes": disk_bytes(&fixture.strata.join("log")),
            "strata_index_bytes": disk_bytes(&fixture.strata.join("index")),
            "strata_index_files": fs::read_dir(fixture.strata.join("index")).map_or(0, |d| d.count()),
            "sealed_bytes": fixture.sealed_bytes,
            "sealed_segments": fixture.sealed_segments,
            "sqlite_bytes": fixture.sqlite_bytes,
        });
        eprintln!("fixture: {value}");
        SUMMARY.record("fixture", value);
        assert_eq!(written, sizes.versions());
        fixture
    }

    /// A fresh directory under the fixture's root.
    fn scratch(&self) -> TempDir {
        tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(self.root.path())
            .expect("a scratch directory")
    }

    /// A fresh, synced copy of the Strata fixture, in `<scratch>/db`.
    fn strata_copy(&self) -> (TempDir, PathBuf) {
        let dir = self.scratch();
        let db = dir.path().join("db");
        copy_dir(&self.strata, &db);
        sync_dir(dir.path());
        (dir, db)
    }

    /// A fresh, synced copy of the SQLite fixture.
    fn sqlite_copy(&self) -> (TempDir, PathBuf) {
        let dir = self.scratch();
        let db = dir.path().join(SQLITE_FILE);
        copy_file(&self.sqlite, &db);
        sync_dir(dir.path());
        (dir, db)
    }
}

/// Every document's versions in a seeded random order, cut into batches of [`LOAD_BATCH`] (or
/// fewer) in which no document appears twice (a repeat waits for the next batch).
fn shuffled_batches(sizes: &Sizes) -> Vec<Vec<u64>> {
    let mut order: Vec<u64> = (0..sizes.docs)
        .flat_map(|d| std::iter::repeat_n(d, sizes.versions_per_doc as usize))
        .collect();
    order.shuffle(&mut strata_benches::rng(SEED));
    let size = LOAD_BATCH.min((sizes.docs / 20).max(1) as usize);
    let mut pending: VecDeque<u64> = order.into();
    let mut batches = Vec::new();
    while !pending.is_empty() {
        let mut batch = Vec::with_capacity(size);
        let mut seen = HashSet::with_capacity(size);
        let mut deferred = VecDeque::new();
        while batch.len() < size {
            let Some(d) = pending.pop_front() else {
                break;
            };
            if seen.insert(d) {
                batch.push(d);
            } else {
                deferred.push_back(d);
            }
        }
        // The repeats go first in the next batch, so each document's versions keep their order
        // relative to the others of that document.
        while let Some(d) = deferred.pop_back() {
            pending.push_front(d);
        }
        batches.push(batch);
    }
    batches
}

/// New versions of random existing documents, in durable batches of [`BATCH`] (built before
/// the caller's timer starts).
struct Writes {
    pool: DocPool,
    rng: strata_benches::Rng,
    docs: u64,
    next: u64,
}

impl Writes {
    fn new(docs: u64, salt: u64) -> Writes {
        Writes {
            pool: DocPool::new(WRITE_SEED, 1000),
            rng: strata_benches::rng(PICK_SEED ^ salt),
            docs,
            next: 0,
        }
    }

    fn batches(&mut self, n: usize) -> Vec<Batch> {
        (0..n)
            .map(|_| {
                let picked = rand::seq::index::sample(&mut self.rng, self.docs as usize, BATCH);
                picked.into_iter().fold(Batch::new(), |b, d| {
                    self.next += 1;
                    b.put(id(d as u64), KIND, self.pool.get(self.next).clone())
                })
            })
            .collect()
    }

    fn ids(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| id(self.rng.random_range(0..self.docs)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Compaction

#[derive(Debug, Clone)]
struct StrataCompaction {
    wall: Duration,
    open: Duration,
    report: CompactionReport,
}

fn strata_compact_once(fx: &Fixture, sizes: &Sizes, rate: Option<u64>) -> StrataCompaction {
    let (_dir, db) = fx.strata_copy();
    let opening = Instant::now();
    let store = Store::open(&db, sizes.options(Some(KEEP), rate)).expect("open the copy");
    store.wait_for_index().expect("wait for the index");
    let open = opening.elapsed();
    let started = Instant::now();
    let report = store.compact().expect("compact");
    let wall = started.elapsed();
    drop(store);
    StrataCompaction { wall, open, report }
}

#[derive(Debug, Clone)]
struct SqliteCompaction {
    wall: Duration,
    delete: Duration,
    deleted: usize,
    bytes_before: u64,
    bytes_after: u64,
}

fn sqlite_compact_once(fx: &Fixture) -> SqliteCompaction {
    let (_dir, db) = fx.sqlite_copy();
    let conn = sqlite_open(&db);
    let bytes_before = sqlite_bytes(&db);
    let started = Instant::now();
    let deleted = conn.execute(SQLITE_DELETE_OLD, []).expect("delete");
    let delete = started.elapsed();
    conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("vacuum");
    let wall = started.elapsed();
    let bytes_after = sqlite_bytes(&db);
    drop(conn);
    SqliteCompaction {
        wall,
        delete,
        deleted,
        bytes_before,
        bytes_after,
    }
}

fn strata_compaction_json(runs: &[StrataCompaction]) -> Value {
    let f = |g: &dyn Fn(&StrataCompaction) -> f64| median(runs.iter().map(g).collect());
    let first = runs.first().map(|r| r.report.clone()).unwrap_or_default();
    json!({
        "iterations": runs.len(),
        "bytes_before": first.bytes_before,
        "bytes_after": first.bytes_after,
        "segments_rewritten": first.segments_rewritten,
        "versions_dropped": first.versions_dropped,
        "same_report_every_iteration": runs.iter().all(|r| {
            r.report.bytes_before == first.bytes_before
                && r.report.versions_dropped == first.versions_dropped
        }),
        "median_ms": f(&|r| ms(r.wall)),
        "min_ms": runs.iter().map(|r| ms(r.wall)).fold(f64::INFINITY, f64::min),
        "max_ms": runs.iter().map(|r| ms(r.wall)).fold(0.0, f64::max),
        "median_engine_ms": f(&|r| r.report.micros as f64 / 1e3),
        // Retention rules and the index's removal of the dropped versions.
        "median_outside_engine_ms": f(&|r| ms(r.wall) - r.report.micros as f64 / 1e3),
        "median_mib_per_s_before": f(&|r| r.report.bytes_before as f64 / MIB / r.wall.as_secs_f64()),
        "median_mib_per_s_written": f(&|r| r.report.bytes_after as f64 / MIB / r.wall.as_secs_f64()),
        "median_open_ms_untimed": f(&|r| ms(r.open)),
    })
}

fn compaction(c: &mut Criterion, sizes: &Sizes, fx: &Fixture) {
    let mut group = c.benchmark_group("compaction");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(fx.sealed_bytes));
    let mut results = Map::new();
    let load = load_average();
    for (name, rate) in [
        ("strata_unlimited", None),
        ("strata_32MiB_s", Some(DEFAULT_RATE)),
    ] {
        let mut runs: Vec<StrataCompaction> = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                timed_runs(
                    iters,
                    &mut runs,
                    || strata_compact_once(fx, sizes, rate),
                    |run| run.wall,
                )
            });
        });
        if !runs.is_empty() {
            let value = strata_compaction_json(&runs);
            eprintln!("compaction {name}: {value}");
            results.insert(name.to_owned(), value);
        }
    }
    group.throughput(Throughput::Bytes(fx.sqlite_bytes));
    let mut runs: Vec<SqliteCompaction> = Vec::new();
    group.bench_function(BenchmarkId::from_parameter("sqlite_delete_vacuum"), |b| {
        b.iter_custom(|iters| {
            timed_runs(iters, &mut runs, || sqlite_compact_once(fx), |run| run.wall)
        });
    });
    group.finish();
    if !runs.is_empty() {
        let f = |g: &dyn Fn(&SqliteCompaction) -> f64| median(runs.iter().map(g).collect());
        let value = json!({
            "iterations": runs.len(),
            "bytes_before": runs[0].bytes_before,
            "bytes_after": runs[0].bytes_after,
            "rows_deleted": runs[0].deleted,
            "median_ms": f(&|r| ms(r.wall)),
            "median_delete_ms": f(&|r| ms(r.delete)),
            "median_vacuum_checkpoint_ms": f(&|r| ms(r.wall - r.delete)),
            "median_mib_per_s_before": f(&|r| r.bytes_before as f64 / MIB / r.wall.as_secs_f64()),
            "median_mib_per_s_reclaimed": f(&|r| {
                r.bytes_before.saturating_sub(r.bytes_after) as f64 / MIB / r.wall.as_secs_f64()
            }),
        });
        eprintln!("compaction sqlite: {value}");
        results.insert("sqlite_delete_vacuum".into(), value);
    }
    if !results.is_empty() {
        results.insert(
            "settings".into(),
            json!({
                "retention": format!("max_versions({KEEP}) on kind {KIND}"),
                "sealed_bytes": fx.sealed_bytes,
                "sealed_segments": fx.sealed_segments,
                "sqlite": "DELETE all but the newest 2 versions per id; VACUUM; wal_checkpoint(TRUNCATE)",
                "timed": "Store::compact (after open + wait_for_index, untimed) / DELETE + VACUUM + checkpoint",
                "load_average_before": load,
                "load_average_after": load_average(),
            }),
        );
        SUMMARY.record("compaction", Value::Object(results));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Impact of a concurrent compaction

#[derive(Debug, Default)]
struct Windows {
    /// Windows after which the index had not caught up within [`INDEX_PATIENCE`].
    index_behind: usize,
    /// Versions per second of each ingest window.
    ingest: Vec<f64>,
    /// Get windows.
    get_windows: usize,
    /// Every get's latency, microseconds.
    gets: Vec<f64>,
}

impl Windows {
    fn caught_up(&mut self, caught_up: bool) {
        if !caught_up {
            self.index_behind += 1;
        }
    }

    fn extend(&mut self, other: &Windows) {
        self.index_behind += other.index_behind;
        self.ingest.extend(&other.ingest);
        self.get_windows += other.get_windows;
        self.gets.extend(&other.gets);
    }

    fn json(&self) -> Value {
        json!({
            "ingest_windows": self.ingest.len(),
            "median_versions_per_s": median(self.ingest.clone()),
            "versions_per_s_of_each_window": self.ingest.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "get_windows": self.get_windows,
            "windows_with_the_index_still_behind": self.index_behind,
            "gets": self.gets.len(),
            "get_p50_us": median(self.gets.clone()),
            "get_p90_us": percentile(self.gets.clone(), 0.9),
            "get_p99_us": percentile(self.gets.clone(), 0.99),
        })
    }
}

/// Longest wait for the index between an ingest window and a get window.
const INDEX_PATIENCE: Duration = Duration::from_millis(300);

/// Waits (untimed) up to [`INDEX_PATIENCE`] for the index to cover every write so far, so that
/// windows start with the indexer idle; returns whether it did. While a compaction removes its
/// dropped versions from the index, the indexer is busy for a second or more, and the windows
/// go on without it.
fn index_caught_up(store: &Store) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let store = store.clone();
    // Detached when it takes too long: it ends when the index catches up or the store closes.
    std::thread::spawn(move || {
        let _ = tx.send(store.wait_for_index());
    });
    match rx.recv_timeout(INDEX_PATIENCE) {
        Ok(result) => {
            result.expect("wait for the index");
            true
        }
        Err(_) => false,
    }
}

/// One ingest window: versions per second to the last ack.
fn ingest_window(store: &Store, writes: &mut Writes, batches: usize) -> f64 {
    let batches = writes.batches(batches);
    let versions = (batches.len() * BATCH) as f64;
    let started = Instant::now();
    for batch in batches {
        store.write(batch).expect("write a batch");
    }
    versions / started.elapsed().as_secs_f64()
}

/// One get window: each get's latency in microseconds.
fn get_window(store: &Store, writes: &mut Writes, gets: usize) -> Vec<f64> {
    let ids = writes.ids(gets);
    ids.iter()
        .map(|id| {
            let started = Instant::now();
            let doc = store.get(id).expect("get");
            let t = started.elapsed();
            assert!(doc.is_some(), "{id} is missing");
            std::hint::black_box(doc);
            t.as_secs_f64() * 1e6
        })
        .collect()
}

/// One round on a fresh copy: windows without compaction, then windows while a compaction
/// runs, then windows without again (on the compacted store). Returns the round's summary, the
/// windows without compaction (before and after) and those during it.
fn impact_round(fx: &Fixture, sizes: &Sizes, round: usize) -> (Value, Windows, Windows) {
    let (_dir, db) = fx.strata_copy();
    let store = Store::open(
        &db,
        sizes.options(Some(sizes.impact_keep), Some(DEFAULT_RATE)),
    )
    .expect("open the copy");
    store.wait_for_index().expect("wait for the index");
    let mut writes = Writes::new(sizes.docs, round as u64 + 1);
    let window = |store: &Store, writes: &mut Writes, into: &mut Windows| {
        into.ingest
            .push(ingest_window(store, writes, sizes.window_batches));
        into.caught_up(index_caught_up(store));
        into.gets
            .extend(get_window(store, writes, sizes.window_gets));
        into.get_windows += 1;
    };
    let settling = Instant::now();
    let mut settle = Windows::default();
    while settling.elapsed() < sizes.settle {
        window(&store, &mut writes, &mut settle);
    }
    let load = load_average();
    let mut before = Windows::default();
    for _ in 0..sizes.baseline_windows {
        window(&store, &mut writes, &mut before);
    }

    let done = Arc::new(AtomicBool::new(false));
    let compactor = {
        let store = store.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let started = Instant::now();
            let report = store.compact().expect("compact");
            let wall = started.elapsed();
            done.store(true, Ordering::Release);
            (report, wall)
        })
    };
    let compaction_started = Instant::now();
    let mut during = Windows::default();
    let (mut discarded_ingest, mut discarded_gets) = (0, 0);
    let mut covered = Duration::ZERO;
    // A window counts only if the compaction was still running when it ended.
    while !done.load(Ordering::Acquire) {
        let rate = ingest_window(&store, &mut writes, sizes.window_batches);
        if done.load(Ordering::Acquire) {
            discarded_ingest += 1;
            break;
        }
        during.ingest.push(rate);
        during.caught_up(index_caught_up(&store));
        if done.load(Ordering::Acquire) {
            break;
        }
        let gets = get_window(&store, &mut writes, sizes.window_gets);
        if done.load(Ordering::Acquire) {
            discarded_gets += 1;
            break;
        }
        during.gets.extend(gets);
        during.get_windows += 1;
        covered = compaction_started.elapsed();
    }
    let (report, compaction_wall) = compactor.join().expect("the compaction thread");
    store.wait_for_index().expect("wait for the index");
    let mut after = Windows::default();
    for _ in 0..sizes.after_windows {
        window(&store, &mut writes, &mut after);
    }
    // The detached waiters end once the index has caught up.
    store.wait_for_index().expect("wait for the index");
    let mut without = Windows::default();
    without.extend(&before);
    without.extend(&after);
    let value = json!({
        "round": round,
        "settle_versions_per_s_of_each_window": settle.ingest.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "before": before.json(),
        "during": during.json(),
        "after": after.json(),
        "without": without.json(),
        "ingest_rate_ratio_during_over_without": median(during.ingest.clone())
            / median(without.ingest.clone()),
        "get_p50_ratio_during_over_without": median(during.gets.clone())
            / median(without.gets.clone()),
        "windows_discarded_as_compaction_finished": {
            "ingest": discarded_ingest,
            "gets": discarded_gets,
        },
        "compaction_ms": ms(compaction_wall),
        "measured_windows_end_ms": ms(covered),
        "compaction": {
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
            "segments_rewritten": report.segments_rewritten,
            "versions_dropped": report.versions_dropped,
            "engine_ms": report.micros as f64 / 1e3,
            "mib_written_per_s": report.bytes_after as f64 / MIB / compaction_wall.as_secs_f64(),
        },
        "load_average_before": load,
        "load_average_after": load_average(),
    });
    eprintln!("compaction_impact round {round}: {value}");
    if during.ingest.is_empty() || during.gets.is_empty() {
        eprintln!(
            "WARNING: compaction_impact round {round}: the compaction ({:.0} ms) finished before \
             a whole window of each kind; raise the store size or STRATA_BENCH_IMPACT_KEEP",
            ms(compaction_wall)
        );
    }
    (value, without, during)
}

fn compaction_impact(sizes: &Sizes, fx: &Fixture) {
    let load = load_average();
    let mut rounds = Vec::new();
    let (mut without, mut during) = (Windows::default(), Windows::default());
    for round in 0..sizes.impact_rounds {
        let (value, w, d) = impact_round(fx, sizes, round);
        rounds.push(value);
        without.extend(&w);
        during.extend(&d);
    }
    let per_round = |field: &str| -> Vec<f64> {
        rounds
            .iter()
            .map(|r| r[field].as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let ingest_ratios = per_round("ingest_rate_ratio_during_over_without");
    let get_ratios = per_round("get_p50_ratio_during_over_without");
    let pooled_ingest = median(during.ingest.clone()) / median(without.ingest.clone());
    let pooled_get = median(during.gets.clone()) / median(without.gets.clone());
    let value = json!({
        "rounds": rounds,
        "pooled": {
            "without": without.json(),
            "during": during.json(),
            "ingest_rate_ratio_during_over_without": pooled_ingest,
            "get_p50_ratio_during_over_without": pooled_get,
        },
        "per_round_ingest_rate_ratio": ingest_ratios,
        "per_round_get_p50_ratio": get_ratios,
        "median_of_round_ingest_rate_ratios": median(ingest_ratios.clone()),
        "median_of_round_get_p50_ratios": median(get_ratios.clone()),
        "settings": {
            "retention": format!("max_versions({}) on kind {KIND}", sizes.impact_keep),
            "io_rate": "MaintenanceOptions::default() (32 MiB/s of compacted output)",
            "ingest_window": format!("{} durable batches of {BATCH} new versions of random existing documents", sizes.window_batches),
            "get_window": format!("{} Store::get of random existing documents, each timed", sizes.window_gets),
            "between_windows": format!("wait_for_index, at most {} ms (untimed)", INDEX_PATIENCE.as_millis()),
            "windows_without_per_round": format!("{} before the compaction, {} after", sizes.baseline_windows, sizes.after_windows),
            "settle_ms": sizes.settle.as_millis() as u64,
            "load_average_before": load,
            "load_average_after": load_average(),
        },
    });
    eprintln!(
        "compaction_impact pooled: ingest rate ratio {pooled_ingest:.3}, get p50 ratio \
         {pooled_get:.3}"
    );
    SUMMARY.record("compaction_impact", value);
}

// ---------------------------------------------------------------------------------------------
// 3. Backup

fn backup_json(runs: &[(Duration, BackupReport)]) -> Value {
    let f = |g: &dyn Fn(&(Duration, BackupReport)) -> f64| median(runs.iter().map(g).collect());
    json!({
        "iterations": runs.len(),
        "median_ms": f(&|r| ms(r.0)),
        "median_bytes": f(&|r| r.1.bytes as f64),
        "median_bytes_copied": f(&|r| r.1.bytes_copied as f64),
        "median_files": f(&|r| r.1.files as f64),
        "median_files_copied": f(&|r| r.1.files_copied as f64),
        "median_mib_per_s_of_backup": f(&|r| r.1.bytes as f64 / MIB / r.0.as_secs_f64()),
        "median_mib_per_s_copied": f(&|r| r.1.bytes_copied as f64 / MIB / r.0.as_secs_f64()),
        "index_included": runs.iter().all(|r| r.1.index_included),
    })
}

/// The restore fixtures the backup part leaves: a full Strata backup and a SQLite `VACUUM INTO`
/// file of the unchanged fixture.
struct Backups {
    strata: PathBuf,
    sqlite: PathBuf,
}

fn backup(c: &mut Criterion, sizes: &Sizes, fx: &Fixture) -> Backups {
    let (_source_dir, source_db) = fx.strata_copy();
    let store = Store::open(&source_db, sizes.options(None, None)).expect("open the source");
    store.wait_for_index().expect("wait for the index");
    // The restore part's backup, of the unchanged fixture (untimed).
    let strata_backup = fx.root.path().join("backup-strata");
    let base = store.backup(&strata_backup).expect("a full backup");
    let (sqlite_source_dir, sqlite_source) = fx.sqlite_copy();
    let conn = sqlite_open(&sqlite_source);
    let sqlite_backup = fx.root.path().join("backup.sqlite");
    conn.execute("VACUUM INTO ?1", params![sqlite_backup.to_string_lossy()])
        .expect("VACUUM INTO");
    File::open(&sqlite_backup)
        .and_then(|f| f.sync_all())
        .expect("sync the SQLite backup");

    let mut group = c.benchmark_group("backup");
    group.sampling_mode(SamplingMode::Flat);
    let mut results = Map::new();
    let load = load_average();

    group.throughput(Throughput::Bytes(base.bytes));
    let mut full: Vec<(Duration, BackupReport)> = Vec::new();
    group.bench_function(BenchmarkId::from_parameter("strata_full"), |b| {
        b.iter_custom(|iters| {
            let once = || {
                let dir = fx.scratch();
                let dest = dir.path().join("backup");
                let started = Instant::now();
                let report = store.backup(&dest).expect("backup");
                (started.elapsed(), report)
            };
            timed_runs(iters, &mut full, once, |run| run.0)
        });
    });
    if !full.is_empty() {
        results.insert("strata_full".into(), backup_json(&full));
    }

    // Incremental: one backup directory, brought up to date after each 1% of new versions.
    let inc_dir = fx.scratch();
    let inc = inc_dir.path().join("backup");
    store.backup(&inc).expect("the first full backup");
    let mut writes = Writes::new(sizes.docs, 0xB0);
    let one_percent = (sizes.versions() / 100).div_ceil(BATCH as u64).max(1) as usize;
    let mut incremental: Vec<(Duration, BackupReport)> = Vec::new();
    // Its throughput: the new versions it backs up.
    group.throughput(Throughput::Elements((one_percent * BATCH) as u64));
    group.bench_function(
        BenchmarkId::from_parameter("strata_incremental_1pct"),
        |b| {
            b.iter_custom(|iters| {
                let once = || {
                    for batch in writes.batches(one_percent) {
                        store.write(batch).expect("write a batch");
                    }
                    store.wait_for_index().expect("wait for the index");
                    let started = Instant::now();
                    let report = store.backup(&inc).expect("incremental backup");
                    (started.elapsed(), report)
                };
                timed_runs(iters, &mut incremental, once, |run| run.0)
            });
        },
    );
    if !incremental.is_empty() {
        let mut value = backup_json(&incremental);
        value["versions_written_before_each"] = json!(one_percent * BATCH);
        results.insert("strata_incremental_1pct".into(), value);
    }
    drop(store);

    group.throughput(Throughput::Bytes(fx.sqlite_bytes));
    let mut sqlite: Vec<(Duration, u64)> = Vec::new();
    group.bench_function(BenchmarkId::from_parameter("sqlite_vacuum_into"), |b| {
        b.iter_custom(|iters| {
            let once = || {
                let dir = fx.scratch();
                let dest = dir.path().join(SQLITE_FILE);
                let started = Instant::now();
                conn.execute("VACUUM INTO ?1", params![dest.to_string_lossy()])
                    .expect("VACUUM INTO");
                File::open(&dest)
                    .and_then(|f| f.sync_all())
                    .expect("sync the copy");
                sync_dir(dir.path());
                (started.elapsed(), disk_bytes(&dest))
            };
            timed_runs(iters, &mut sqlite, once, |run| run.0)
        });
    });
    group.finish();
    drop(conn);
    drop(sqlite_source_dir);
    if !sqlite.is_empty() {
        let value = json!({
            "iterations": sqlite.len(),
            "median_ms": median(sqlite.iter().map(|r| ms(r.0)).collect()),
            "source_bytes": fx.sqlite_bytes,
            "median_bytes": median(sqlite.iter().map(|r| r.1 as f64).collect()),
            "median_mib_per_s_of_source": median(
                sqlite.iter().map(|r| fx.sqlite_bytes as f64 / MIB / r.0.as_secs_f64()).collect()
            ),
        });
        results.insert("sqlite_vacuum_into".into(), value);
    }
    if !results.is_empty() {
        results.insert(
            "settings".into(),
            json!({
                "strata_full": "Store::backup into an empty directory of the store, open, indexed, idle",
                "strata_incremental": "Store::backup into the same directory after 1% more versions (written and indexed untimed)",
                "sqlite": "VACUUM INTO a new file, then fsync of the file and its directory (timed)",
                "load_average_before": load,
                "load_average_after": load_average(),
            }),
        );
        eprintln!("backup: {results:#?}");
        SUMMARY.record("backup", Value::Object(results));
    }
    Backups {
        strata: strata_backup,
        sqlite: sqlite_backup,
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Restore, open, first get, first query

#[derive(Debug, Clone, Copy)]
struct RestoreRun {
    restore: Duration,
    open: Duration,
    /// The part of `open` that read the log (Strata's `OpenStats::open_micros`).
    log_open: Duration,
    get: Duration,
    query: Duration,
}

impl RestoreRun {
    fn total(&self) -> Duration {
        self.restore + self.open + self.get + self.query
    }
}

fn restore_json(runs: &[RestoreRun]) -> Value {
    let f = |g: &dyn Fn(&RestoreRun) -> Duration| median(runs.iter().map(|r| ms(g(r))).collect());
    json!({
        "iterations": runs.len(),
        "median_total_ms": f(&|r| r.total()),
        "median_restore_ms": f(&|r| r.restore),
        "median_open_ms": f(&|r| r.open),
        "median_log_open_ms": f(&|r| r.log_open),
        "median_first_get_ms": f(&|r| r.get),
        "median_first_query_ms": f(&|r| r.query),
    })
}

fn strata_restore_once(fx: &Fixture, sizes: &Sizes, backup: &Path, probe: &str) -> RestoreRun {
    let dir = fx.scratch();
    let dest = dir.path().join("restored");
    let t0 = Instant::now();
    let report =
        Store::restore(backup, &dest, RestoreOptions::default()).expect("restore the backup");
    let t1 = Instant::now();
    let store = Store::open(&dest, sizes.options(None, None)).expect("open the restored store");
    let t2 = Instant::now();
    let doc = store.get(probe).expect("get");
    let t3 = Instant::now();
    let result = store
        .query(&QuerySpec::new(Query::term("category", CATEGORY)).limit(10))
        .expect("query");
    let t4 = Instant::now();
    assert!(doc.is_some(), "{probe} is missing after the restore");
    assert_eq!(result.documents.len(), 10, "the first query");
    assert!(report.index_kept, "the backup's index was not kept");
    assert!(
        store.index_open_report().rebuilt.is_none(),
        "the restored index is rebuilt: {:?}",
        store.index_open_report().rebuilt
    );
    let log_open = Duration::from_micros(store.open_stats().open_micros);
    drop(store);
    RestoreRun {
        restore: t1 - t0,
        open: t2 - t1,
        log_open,
        get: t3 - t2,
        query: t4 - t3,
    }
}

fn sqlite_restore_once(fx: &Fixture, backup: &Path, probe: &str) -> RestoreRun {
    let dir = fx.scratch();
    let dest = dir.path().join(SQLITE_FILE);
    let t0 = Instant::now();
    copy_file(backup, &dest);
    sync_dir(dir.path());
    let t1 = Instant::now();
    let conn = sqlite_open(&dest);
    let t2 = Instant::now();
    let doc: Option<(i64, String)> = conn
        .query_row(SQLITE_GET, params![probe], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .expect("get");
    let doc = doc.map(|(v, body)| (v, serde_json::from_str::<Value>(&body).expect("JSON")));
    let t3 = Instant::now();
    let rows: Vec<(String, Value)> = {
        let mut stmt = conn.prepare(SQLITE_QUERY).expect("prepare the query");
        stmt.query_map(params![CATEGORY], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .expect("query")
        .map(|r| {
            let (id, body) = r.expect("a row");
            (id, serde_json::from_str(&body).expect("JSON"))
        })
        .collect()
    };
    let t4 = Instant::now();
    assert!(doc.is_some(), "{probe} is missing after the restore");
    assert_eq!(rows.len(), 10, "the first query");
    drop(conn);
    RestoreRun {
        restore: t1 - t0,
        open: t2 - t1,
        log_open: Duration::ZERO,
        get: t3 - t2,
        query: t4 - t3,
    }
}

fn restore(c: &mut Criterion, sizes: &Sizes, fx: &Fixture, backups: &Backups) {
    let probe = id(sizes.docs / 2);
    let mut group = c.benchmark_group("restore_open_first_query");
    group.sampling_mode(SamplingMode::Flat);
    let mut results = Map::new();
    let load = load_average();
    let mut strata: Vec<RestoreRun> = Vec::new();
    group.throughput(Throughput::Bytes(disk_bytes(&backups.strata)));
    group.bench_function(BenchmarkId::from_parameter("strata"), |b| {
        b.iter_custom(|iters| {
            timed_runs(
                iters,
                &mut strata,
                || strata_restore_once(fx, sizes, &backups.strata, &probe),
                RestoreRun::total,
            )
        });
    });
    if !strata.is_empty() {
        results.insert("strata".into(), restore_json(&strata));
    }
    let mut sqlite: Vec<RestoreRun> = Vec::new();
    group.throughput(Throughput::Bytes(disk_bytes(&backups.sqlite)));
    group.bench_function(BenchmarkId::from_parameter("sqlite"), |b| {
        b.iter_custom(|iters| {
            timed_runs(
                iters,
                &mut sqlite,
                || sqlite_restore_once(fx, &backups.sqlite, &probe),
                RestoreRun::total,
            )
        });
    });
    group.finish();
    if !sqlite.is_empty() {
        results.insert("sqlite".into(), restore_json(&sqlite));
    }
    if !results.is_empty() {
        results.insert(
            "settings".into(),
            json!({
                "strata_backup_bytes": disk_bytes(&backups.strata),
                "sqlite_backup_bytes": disk_bytes(&backups.sqlite),
                "strata": "Store::restore + Store::open + get + query term category=garden limit 10",
                "sqlite": "copy + fsync, open + pragmas, get, SELECT of current versions with json_extract(body,'$.category')='garden' LIMIT 10 (no index on it: a scan until 10 match)",
                "page_cache": "warm: the backups were written by this process shortly before",
                "load_average_before": load,
                "load_average_after": load_average(),
            }),
        );
        eprintln!("restore: {results:#?}");
        SUMMARY.record("restore", Value::Object(results));
    }
}

// ---------------------------------------------------------------------------------------------
// The table

/// A JSON array of numbers, each to 3 decimals.
fn round3(v: &Value) -> String {
    let items: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("{:.3}", x.as_f64().unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default();
    format!("[{}]", items.join(", "))
}

fn table() {
    let guard = SUMMARY.sections();
    let Some(s) = &*guard else {
        return;
    };
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!("\n| workload | measured (medians) |\n|---|---|");
    if let Some(t) = s.get("compaction") {
        for name in ["strata_unlimited", "strata_32MiB_s"] {
            let r = &t[name];
            println!(
                "| compaction {name}, max_versions 2: {:.0} MiB of sealed log, {} versions dropped \
                 | {:.0} ms = {:.0} MiB/s of log rewritten ({:.1} MiB/s written) |",
                f(&r["bytes_before"]) / MIB,
                r["versions_dropped"],
                f(&r["median_ms"]),
                f(&r["median_mib_per_s_before"]),
                f(&r["median_mib_per_s_written"]),
            );
        }
        let r = &t["sqlite_delete_vacuum"];
        println!(
            "| SQLite DELETE all but 2 + VACUUM + checkpoint: {:.0} → {:.0} MiB | {:.0} ms \
             (DELETE {:.0} ms) = {:.0} MiB/s of database, {:.0} MiB/s reclaimed |",
            f(&r["bytes_before"]) / MIB,
            f(&r["bytes_after"]) / MIB,
            f(&r["median_ms"]),
            f(&r["median_delete_ms"]),
            f(&r["median_mib_per_s_before"]),
            f(&r["median_mib_per_s_reclaimed"]),
        );
    }
    if let Some(t) = s.get("compaction_impact") {
        let p = &t["pooled"];
        println!(
            "| durable ingest (batches of 100), without / during compaction at 32 MiB/s | {:.0} \
             / {:.0} versions/s: rate ratio {:.3} pooled, {:.3} median of rounds {} |",
            f(&p["without"]["median_versions_per_s"]),
            f(&p["during"]["median_versions_per_s"]),
            f(&p["ingest_rate_ratio_during_over_without"]),
            f(&t["median_of_round_ingest_rate_ratios"]),
            round3(&t["per_round_ingest_rate_ratio"]),
        );
        println!(
            "| current get p50, without / during | {:.2} / {:.2} µs: ratio {:.3} pooled, {:.3} \
             median of rounds {}; p99 {:.1} / {:.1} µs |",
            f(&p["without"]["get_p50_us"]),
            f(&p["during"]["get_p50_us"]),
            f(&p["get_p50_ratio_during_over_without"]),
            f(&t["median_of_round_get_p50_ratios"]),
            round3(&t["per_round_get_p50_ratio"]),
            f(&p["without"]["get_p99_us"]),
            f(&p["during"]["get_p99_us"]),
        );
        if let Some(rounds) = t["rounds"].as_array() {
            let c: Vec<String> = rounds
                .iter()
                .map(|r| {
                    format!(
                        "{:.1} s ({} ingest + {} get windows, the last ending at {:.1} s)",
                        f(&r["compaction_ms"]) / 1e3,
                        r["during"]["ingest_windows"],
                        r["during"]["get_windows"],
                        f(&r["measured_windows_end_ms"]) / 1e3,
                    )
                })
                .collect();
            println!(
                "| compaction ({}) under that load, per round | {} |",
                t["settings"]["retention"].as_str().unwrap_or_default(),
                c.join("; ")
            );
        }
    }
    if let Some(t) = s.get("backup") {
        let r = &t["strata_full"];
        println!(
            "| Strata full backup, {:.0} MiB | {:.0} ms = {:.0} MiB/s |",
            f(&r["median_bytes"]) / MIB,
            f(&r["median_ms"]),
            f(&r["median_mib_per_s_of_backup"]),
        );
        let r = &t["strata_incremental_1pct"];
        println!(
            "| Strata incremental backup after 1% more versions ({:.1} MiB copied of {:.0} MiB, \
             {} of {} files) | {:.0} ms = {:.0} MiB/s copied |",
            f(&r["median_bytes_copied"]) / MIB,
            f(&r["median_bytes"]) / MIB,
            r["median_files_copied"],
            r["median_files"],
            f(&r["median_ms"]),
            f(&r["median_mib_per_s_copied"]),
        );
        let r = &t["sqlite_vacuum_into"];
        println!(
            "| SQLite VACUUM INTO + fsync, {:.0} MiB database | {:.0} ms = {:.0} MiB/s |",
            f(&r["source_bytes"]) / MIB,
            f(&r["median_ms"]),
            f(&r["median_mib_per_s_of_source"]),
        );
    }
    if let Some(t) = s.get("restore") {
        for name in ["strata", "sqlite"] {
            let r = &t[name];
            println!(
                "| {name}: restore + open + first get + first query | {:.0} ms = {:.0} + {:.0} + \
                 {:.2} + {:.2} ms |",
                f(&r["median_total_ms"]),
                f(&r["median_restore_ms"]),
                f(&r["median_open_ms"]),
                f(&r["median_first_get_ms"]),
                f(&r["median_first_query_ms"]),
            );
        }
    }
}

fn main() {
    let sizes = Sizes::from_env();
    assert_eq!(
        MaintenanceOptions::default().compaction_io_rate,
        Some(DEFAULT_RATE),
        "the default compaction rate changed"
    );
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    eprintln!(
        "sizes: {sizes:?}\nstrata: Options::default() (Durability::Sync), {} MiB segments; \
         load average {}",
        sizes.segment_size >> 20,
        load_average()
    );
    let started = Instant::now();
    let fx = Fixture::build(&sizes);
    compaction(&mut c, &sizes, &fx);
    compaction_impact(&sizes, &fx);
    let backups = backup(&mut c, &sizes, &fx);
    restore(&mut c, &sizes, &fx, &backups);
    c.final_summary();
    table();
    eprintln!(
        "whole run {:.0?}; load average {}; summary: {}",
        started.elapsed(),
        load_average(),
        SUMMARY.path().display()
    );
    if sizes.quick {
        eprintln!("(quick mode: tiny sizes)");
    }
}
