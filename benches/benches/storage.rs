//! Storage benchmarks: Strata against SQLite, one group per workload, each engine a
//! `BenchmarkId` of the group. Settings, fixtures and results are in `benches/RESULTS.md`.
//!
//! Run with `cargo bench -p strata-benches --bench storage`. The fixtures (a 100k-document store
//! and a 1M-version store per engine) are built once per run in temporary directories, outside
//! the measurements, and only when a selected benchmark needs them.

use std::cell::OnceCell;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::Rng as _;
use serde_json::Value;
use strata_benches::{
    id, load, rng, BenchEngine, DocPool, Plan, SqliteEngine, StrataEngine, SQLITE_SETTINGS,
};
use tempfile::TempDir;

/// Seed of every generated body.
const SEED: u64 = 0x5EED_0001;
/// Seed of the ids and times the read benchmarks pick.
const PICK_SEED: u64 = 0x5EED_0002;
/// Random keys picked ahead of a read benchmark and cycled through.
const PICKS: usize = 16_384;

type Opener = fn(&Path) -> strata_benches::Result<Box<dyn BenchEngine>>;

fn open_boxed<E: BenchEngine + 'static>(
    dir: &Path,
) -> strata_benches::Result<Box<dyn BenchEngine>> {
    Ok(Box::new(E::open(dir)?))
}

/// Every engine, in the order of the result tables.
const ENGINES: [(&str, Opener); 2] = [
    ("strata", open_boxed::<StrataEngine>),
    ("sqlite", open_boxed::<SqliteEngine>),
];

/// The point-read store: 100k documents of one version each, plus one document of 100 versions.
const POINT: Plan = Plan {
    docs: 100_000,
    versions_per_doc: 1,
    batch: 1000,
    seed: SEED,
    history_versions: 100,
    small_bodies: false,
};

/// The multi-version store: 100k documents of 10 versions each, 1M versions (about 1 GB).
const VERSIONED: Plan = Plan {
    docs: 100_000,
    versions_per_doc: 10,
    batch: 1000,
    seed: SEED,
    history_versions: 0,
    small_bodies: false,
};

/// One plan loaded into every engine, each in its own directory. The engines are closed once
/// loaded, so a benchmark opens its own handle (Strata's directory lock admits one).
struct Fixture {
    _dir: TempDir,
    dirs: Vec<PathBuf>,
    plan: Plan,
}

impl Fixture {
    fn build(name: &str, plan: Plan) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("strata-bench-")
            .tempdir()
            .expect("a temporary directory");
        let dirs: Vec<PathBuf> = ENGINES
            .iter()
            .map(|(engine, _)| dir.path().join(engine))
            .collect();
        let engines: Vec<Box<dyn BenchEngine>> = ENGINES
            .iter()
            .zip(&dirs)
            .map(|((_, open), dir)| open(dir).expect("open a fixture store"))
            .collect();
        let refs: Vec<&dyn BenchEngine> = engines.iter().map(|e| &**e).collect();
        eprintln!(
            "building fixture {name}: {} versions in {} engines",
            plan.versions(),
            refs.len()
        );
        load(&refs, &plan).expect("load the fixture");
        drop(refs);
        drop(engines);
        for ((engine, _), dir) in ENGINES.iter().zip(&dirs) {
            eprintln!(
                "  {engine}: {:.0} MiB on disk",
                dir_bytes(dir) as f64 / f64::from(1 << 20)
            );
        }
        Fixture {
            _dir: dir,
            dirs,
            plan,
        }
    }

    fn open(&self, engine: usize) -> Box<dyn BenchEngine> {
        (ENGINES[engine].1)(&self.dirs[engine]).expect("open the fixture store")
    }
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Fixtures are built on first use, so a filtered run builds only what it needs, and removed
/// when this is dropped at the end of `main`.
#[derive(Default)]
struct Fixtures {
    point: OnceCell<Fixture>,
    versioned: OnceCell<Fixture>,
}

impl Fixtures {
    fn point(&self) -> &Fixture {
        self.point.get_or_init(|| Fixture::build("point", POINT))
    }

    fn versioned(&self) -> &Fixture {
        self.versioned
            .get_or_init(|| Fixture::build("versioned", VERSIONED))
    }
}

/// Random existing ids of `plan`.
fn random_ids(plan: &Plan) -> Vec<String> {
    let mut rng = rng(PICK_SEED);
    (0..PICKS)
        .map(|_| id(rng.random_range(0..plan.docs)))
        .collect()
}

/// Durable single-document commits from `threads` threads, each commit acknowledged only when
/// durable; every commit creates a new document with a pre-generated 1 KB body.
fn single_commits(c: &mut Criterion, threads: u64) {
    let name = if threads == 1 {
        "commit_1_thread".to_owned()
    } else {
        format!("commit_{threads}_threads")
    };
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let pool = DocPool::new(SEED, 256);
    for (engine_name, open) in ENGINES {
        let dir = TempDir::new().expect("a temporary directory");
        let mut engine = None;
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::from_parameter(engine_name), |b| {
            let engine: &dyn BenchEngine =
                &**engine.get_or_insert_with(|| open(dir.path()).expect("open"));
            b.iter_custom(|iters| {
                let commit = || {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    engine.put(&id(n), pool.get(n).clone()).expect("commit");
                };
                let started = Instant::now();
                if threads == 1 {
                    (0..iters).for_each(|_| commit());
                } else {
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let share = iters / threads + u64::from(t < iters % threads);
                            s.spawn(move || (0..share).for_each(|_| commit()));
                        }
                    });
                }
                started.elapsed()
            });
        });
    }
    if threads == 1 {
        // Not an engine: the device's floor under a durable commit from one thread, one 1 KB
        // append and one `fdatasync`.
        append_fdatasync(&mut group, 1100);
    }
    group.finish();
}

/// A reference row, not an engine: appending `bytes` to a file and `fdatasync`, what any
/// durable commit of that many bytes costs at least on this machine.
fn append_fdatasync(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    let dir = TempDir::new().expect("a temporary directory");
    let file = std::fs::File::create(dir.path().join("fsync")).expect("a file");
    let frame = vec![b'x'; bytes];
    group.bench_function(BenchmarkId::from_parameter("append_fdatasync_only"), |b| {
        b.iter(|| {
            (&file).write_all(&frame).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });
}

/// Durable batches of 1000 new documents, each batch one atomic commit.
fn batched_ingest(c: &mut Criterion) {
    const BATCH: u64 = 1000;
    let mut group = c.benchmark_group("ingest_batch_1000");
    group.throughput(Throughput::Elements(BATCH));
    let pool = DocPool::new(SEED, 1024);
    for (engine_name, open) in ENGINES {
        let dir = TempDir::new().expect("a temporary directory");
        let mut engine = None;
        let mut next = 0u64;
        group.bench_function(BenchmarkId::from_parameter(engine_name), |b| {
            let engine: &dyn BenchEngine =
                &**engine.get_or_insert_with(|| open(dir.path()).expect("open"));
            b.iter_batched(
                || {
                    let docs: Vec<(String, Value)> = (next..next + BATCH)
                        .map(|n| (id(n), pool.get(n).clone()))
                        .collect();
                    next += BATCH;
                    docs
                },
                |docs| engine.put_batch(docs, None).expect("commit a batch"),
                BatchSize::PerIteration,
            );
        });
    }
    // Not an engine: the device's floor under one durable batch, appending the bytes of 1000
    // framed 1 KB documents (1.1 MB) and one `fdatasync`.
    append_fdatasync(&mut group, 1100 * BATCH as usize);
    group.finish();
}

/// One read workload: `read` on keys cycled from `keys(plan)`, against each engine opened on
/// the fixture `select` picks. Results are returned from the measured closure, so dropping them
/// (freeing the parsed JSON) is measured too, as a caller would pay it.
fn read_group<K, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fixtures: &Fixtures,
    select: fn(&Fixtures) -> &Fixture,
    keys: fn(&Plan) -> Vec<K>,
    read: fn(&dyn BenchEngine, &K) -> R,
) {
    for (i, (engine_name, _)) in ENGINES.iter().enumerate() {
        let mut state: Option<(Box<dyn BenchEngine>, Vec<K>)> = None;
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(engine_name), |b| {
            let (engine, keys) = state.get_or_insert_with(|| {
                let fixture = select(fixtures);
                (fixture.open(i), keys(&fixture.plan))
            });
            b.iter(|| {
                let key = &keys[next % keys.len()];
                next += 1;
                read(&**engine, key)
            });
        });
    }
}

/// The newest version of a random existing document of a 100k-document store.
fn get_current(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("get_current");
    read_group(
        &mut group,
        fixtures,
        Fixtures::point,
        random_ids,
        |engine, id| engine.get(id).expect("read").expect("present"),
    );
    // Not an engine: parsing a stored body into a `serde_json::Value`, which both engines do on
    // every read. It is the floor under any read that returns parsed JSON.
    let bodies: Vec<String> = (0..1024)
        .map(|n| strata_benches::document(SEED, n).to_string())
        .collect();
    let mut next = 0usize;
    group.bench_function(BenchmarkId::from_parameter("json_parse_only"), |b| {
        b.iter(|| {
            next += 1;
            serde_json::from_str::<Value>(&bodies[next % bodies.len()]).expect("JSON")
        });
    });
    group.finish();
}

/// The newest version of a random existing document, its body returned as stored JSON bytes.
fn get_current_raw(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("get_current_raw");
    read_group(
        &mut group,
        fixtures,
        Fixtures::point,
        random_ids,
        |engine, id| engine.get_raw(id).expect("read").expect("present"),
    );
    group.finish();
}

/// The version of a random document current at a random time between its first version and
/// the newest commit, in a store of 100k documents with 10 versions each.
fn get_as_of(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("get_as_of_time");
    let keys = |plan: &Plan| -> Vec<(String, u64)> {
        let mut rng = rng(PICK_SEED);
        (0..PICKS)
            .map(|_| {
                let n = rng.random_range(0..plan.docs);
                (
                    id(n),
                    rng.random_range(Plan::time(n / plan.batch)..=plan.last_time()),
                )
            })
            .collect()
    };
    read_group(
        &mut group,
        fixtures,
        Fixtures::versioned,
        keys,
        |engine, (id, time)| {
            engine
                .get_at(id, *time)
                .expect("read")
                .expect("present then")
        },
    );
    group.finish();
}

/// Every version of a document with 100 versions, oldest first.
fn history(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("history_100_versions");
    let keys = |_: &Plan| vec![Plan::HISTORY_ID.to_owned()];
    read_group(&mut group, fixtures, Fixtures::point, keys, |engine, id| {
        let versions = engine.history(id).expect("read");
        assert_eq!(versions.len(), 100);
        versions
    });
    group.finish();
}

/// Opening the 1M-version store and answering the first read of a random document (warm page
/// cache). Strata: `Store::open` (recovery reads the whole log and rebuilds the version index)
/// and one `get`. SQLite: open the file, apply the settings, check the schema (`CREATE ... IF
/// NOT EXISTS`, which loads it), read the newest update time and one `get`. Closing is not
/// measured.
fn open_store(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("open_1m_versions");
    group.sampling_mode(SamplingMode::Flat);
    for (i, (engine_name, open)) in ENGINES.into_iter().enumerate() {
        let mut ids = None;
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(engine_name), |b| {
            let fixture = fixtures.versioned();
            let ids = ids.get_or_insert_with(|| random_ids(&fixture.plan));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let engine = open(&fixture.dirs[i]).expect("open");
                    let doc = engine
                        .get(&ids[next % ids.len()])
                        .expect("read")
                        .expect("present");
                    total += started.elapsed();
                    black_box(doc);
                    drop(engine);
                    next += 1;
                }
                total
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    eprintln!("sqlite settings: {SQLITE_SETTINGS}; strata: Options::default() (Durability::Sync)");
    let fixtures = Fixtures::default();
    single_commits(&mut c, 1);
    single_commits(&mut c, 8);
    batched_ingest(&mut c);
    get_current(&mut c, &fixtures);
    get_current_raw(&mut c, &fixtures);
    get_as_of(&mut c, &fixtures);
    history(&mut c, &fixtures);
    open_store(&mut c, &fixtures);
    c.final_summary();
}
