//! Query benchmarks (issue 3 §6): Strata against tantivy alone and SQLite with FTS5, one group
//! per workload, each engine a `BenchmarkId` of the group. Settings and results are in
//! `benches/RESULTS.md`.
//!
//! `cargo bench -p strata-benches --bench query`. The corpus is 200 000 package documents with
//! 1 000 000 versions (`STRATA_BENCH_DOCS`, `STRATA_BENCH_VERSIONS` override it), loaded once per
//! run into each engine in a temporary directory, outside the measurements; the ingest workload
//! writes `STRATA_BENCH_INGEST` versions (default 50 000) into fresh stores. With criterion's
//! `--test` or `STRATA_BENCH_QUICK=1` every size is tiny, so the whole run takes seconds.

use std::cell::OnceCell;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use strata_benches::{
    doc_id, package, At, Corpus, Cursor, Filter, Order, QueryEngine, SqliteFtsEngine,
    StrataQueryEngine, TantivyEngine, Version, SQLITE_FTS_SETTINGS, TANTIVY_SETTINGS, TEXT_WORD,
};
use tempfile::TempDir;

/// Seed of the fixture corpus.
const SEED: u64 = 0x5EED_0003;
/// Seed of the ingest workload's corpus.
const INGEST_SEED: u64 = 0x5EED_0004;
/// Versions per committed batch, everywhere.
const BATCH: u64 = 1000;
/// Page size of the paging workload, and the page it compares with the first.
const PAGE: usize = 10;
const FAR_PAGE: usize = 100;

type Opener = fn(&Path) -> strata_benches::Result<Box<dyn QueryEngine>>;

fn open_boxed<E: QueryEngine + 'static>(
    dir: &Path,
) -> strata_benches::Result<Box<dyn QueryEngine>> {
    Ok(Box::new(E::open(dir)?))
}

/// Every engine, in the order of the result tables.
const ENGINES: [(&str, Opener); 3] = [
    ("strata", open_boxed::<StrataQueryEngine>),
    ("tantivy", open_boxed::<TantivyEngine>),
    ("sqlite", open_boxed::<SqliteFtsEngine>),
];

/// Sizes of this run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    corpus: Corpus,
    ingest: Corpus,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = strata_benches::quick_mode();
        let (docs, versions, ingest) = if quick {
            (2_000, 10_000, 5_000)
        } else {
            (200_000, 1_000_000, 50_000)
        };
        let docs = strata_benches::env_u64("STRATA_BENCH_DOCS", docs).max(1);
        let versions = strata_benches::env_u64("STRATA_BENCH_VERSIONS", versions).max(docs);
        let ingest = strata_benches::env_u64("STRATA_BENCH_INGEST", ingest).max(BATCH);
        Sizes {
            corpus: Corpus {
                docs,
                versions,
                batch: BATCH,
                seed: SEED,
            },
            // The same shape as the corpus: one document per five versions.
            ingest: Corpus {
                docs: (ingest * docs / versions).max(1),
                versions: ingest,
                batch: BATCH,
                seed: INGEST_SEED,
            },
        }
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

/// The corpus loaded into every engine, each in its own directory, kept open for the run.
struct Fixture {
    engines: Vec<Box<dyn QueryEngine>>,
    /// The time "as of" queries ask about: the update time of the middle batch.
    midpoint: u64,
    _dir: TempDir,
}

impl Fixture {
    /// Loads the engines one after the other (so each load time is its own), batch by batch
    /// at the corpus' times, then waits for each to settle.
    fn build(corpus: Corpus) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("strata-query-bench-")
            .tempdir()
            .expect("a temporary directory");
        eprintln!(
            "building the fixture: {} documents, {} versions, batches of {}",
            corpus.docs, corpus.versions, corpus.batch
        );
        let mut engines = Vec::new();
        for (name, open) in ENGINES {
            let path = dir.path().join(name);
            let engine = open(&path).expect("open a fixture engine");
            let mut busy = Duration::ZERO;
            let started = Instant::now();
            for k in 0..corpus.batches() {
                let batch = corpus.batch(k);
                let t = Instant::now();
                engine
                    .ingest(batch, Corpus::time(k))
                    .expect("load a fixture batch");
                busy += t.elapsed();
                if k % 100 == 99 {
                    eprint!(
                        "\r  {name}: {}/{} batches ({:.0?})",
                        k + 1,
                        corpus.batches(),
                        started.elapsed()
                    );
                }
            }
            let t = Instant::now();
            engine.settle().expect("settle");
            let settle = t.elapsed();
            busy += settle;
            eprintln!(
                "\r  {name}: loaded {} versions in {:.1?} of engine time ({:.0} versions/s; \
                 settling took {:.1?}), {:.0} MiB on disk",
                corpus.versions,
                busy,
                corpus.versions as f64 / busy.as_secs_f64(),
                settle,
                dir_bytes(&path) as f64 / f64::from(1 << 20)
            );
            engines.push(engine);
        }
        Fixture {
            engines,
            midpoint: Corpus::time(corpus.batches() / 2),
            _dir: dir,
        }
    }
}

/// One query workload.
struct Workload {
    name: &'static str,
    filter: Filter,
    /// `None`: an exact count; otherwise the first 10 ids in this order.
    order: Option<Order>,
}

/// What a workload returns.
#[derive(Debug)]
enum Answer {
    Count(u64),
    Ids(Vec<String>),
}

impl Workload {
    fn run(&self, engine: &dyn QueryEngine, at: At) -> strata_benches::Result<Answer> {
        Ok(match self.order {
            None => Answer::Count(engine.count(&self.filter, at)?),
            Some(order) => Answer::Ids(engine.top(&self.filter, order, 10, at)?),
        })
    }
}

fn python() -> Filter {
    Filter::term("section", "python")
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "term_count",
            filter: python(),
            order: None,
        },
        Workload {
            name: "term_top10_by_size",
            filter: python(),
            order: Some(Order::Desc("installed_size")),
        },
        Workload {
            name: "text_top10",
            filter: Filter::Text {
                field: "description",
                word: TEXT_WORD.to_owned(),
            },
            order: Some(Order::Relevance),
        },
        Workload {
            name: "range_count",
            filter: Filter::Range {
                field: "installed_size",
                lo: 1000,
                hi: 5000,
            },
            order: None,
        },
        Workload {
            name: "bool_count",
            filter: Filter::Bool {
                must: vec![python(), Filter::term("tags", "cli")],
                must_not: vec![Filter::term("priority", "optional")],
            },
            order: None,
        },
    ]
}

/// Whether engine `name` answers workload `w` (current or as of a past time): tantivy alone keeps
/// no history, and SQLite has a full-text index of the current descriptions only.
fn answers(name: &str, w: &Workload, past: bool) -> bool {
    match (name, past) {
        (_, false) | ("strata", true) => true,
        ("sqlite", true) => !matches!(w.order, Some(Order::Relevance)),
        _ => false,
    }
}

/// Runs every workload once on every engine that answers it and checks that they agree: the
/// same counts, ten hits for every top-10. Prints the numbers.
fn check(fixture: &Fixture, workloads: &[Workload]) {
    for w in workloads {
        for at in [At::Current, At::Time(fixture.midpoint)] {
            let mut counts = Vec::new();
            for engine in &fixture.engines {
                if !answers(engine.name(), w, at != At::Current) {
                    assert!(
                        w.run(&**engine, at).is_err(),
                        "{} answers {} {at:?}",
                        engine.name(),
                        w.name
                    );
                    continue;
                }
                let n = match w.run(&**engine, at).expect("query") {
                    Answer::Count(n) => n,
                    Answer::Ids(ids) => {
                        assert_eq!(
                            ids.len(),
                            10,
                            "{} {} {at:?}: {ids:?}",
                            w.name,
                            engine.name()
                        );
                        ids.len() as u64
                    }
                };
                counts.push((engine.name(), n));
            }
            eprintln!("  {} {at:?}: {counts:?}", w.name);
            if let Some(Order::Desc(_)) = w.order {
                // Ties in the sort field may order differently; report, do not fail.
                let tops: Vec<Vec<String>> = fixture
                    .engines
                    .iter()
                    .filter(|e| answers(e.name(), w, at != At::Current))
                    .filter_map(|e| match w.run(&**e, at) {
                        Ok(Answer::Ids(ids)) => Some(ids),
                        _ => None,
                    })
                    .collect();
                eprintln!(
                    "    the same ten ids from every engine: {}",
                    tops.windows(2).all(|p| p[0] == p[1])
                );
            }
            assert!(
                counts.windows(2).all(|p| p[0].1 == p[1].1),
                "the engines disagree on {} {at:?}: {counts:?}",
                w.name
            );
        }
    }
}

/// Durable indexed ingest: the ingest corpus in batches of 1000 into a fresh store per
/// iteration; the time runs from the first write to the last commit being durable and
/// searchable (for Strata, `wait_for_index`: the index committed every version).
fn ingest(c: &mut Criterion, sizes: &Sizes) {
    let corpus = sizes.ingest;
    let mut group = c.benchmark_group("indexed_ingest");
    group.throughput(Throughput::Elements(corpus.versions));
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(20));
    let batches: Vec<Vec<Version>> = (0..corpus.batches()).map(|k| corpus.batch(k)).collect();
    for (name, open) in ENGINES {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = TempDir::new().expect("a temporary directory");
                    let engine = open(dir.path()).expect("open");
                    let data = batches.clone();
                    let started = Instant::now();
                    for (k, batch) in data.into_iter().enumerate() {
                        engine
                            .ingest(batch, Corpus::time(k as u64))
                            .expect("ingest a batch");
                    }
                    engine.settle().expect("settle");
                    total += started.elapsed();
                    drop(engine);
                }
                total
            });
        });
    }
    group.finish();
}

/// The five queries on the loaded corpus, current (`prefix` "current") or as of the midpoint
/// time ("as_of").
fn queries(c: &mut Criterion, fixtures: &Fixtures, past: bool) {
    let workloads = workloads();
    let prefix = if past { "as_of" } else { "current" };
    for w in &workloads {
        let mut group = c.benchmark_group(format!("{prefix}_{}", w.name));
        for (i, (name, _)) in ENGINES.iter().enumerate() {
            if !answers(name, w, past) {
                continue;
            }
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                let fixture = fixtures.get();
                let engine = &*fixture.engines[i];
                let at = if past {
                    At::Time(fixture.midpoint)
                } else {
                    At::Current
                };
                b.iter(|| w.run(engine, at).expect("query"));
            });
        }
        group.finish();
    }
}

/// Cursor paging, 10 per page, through the current `section:python` documents by size: page 1,
/// and page 100 from the cursor the engine handed back with page 99.
fn paging(c: &mut Criterion, fixtures: &Fixtures) {
    let filter = python();
    let field = "installed_size";
    for (group_name, page) in [("page_1", 1), ("page_100", FAR_PAGE)] {
        let mut group = c.benchmark_group(group_name);
        for (i, (name, _)) in ENGINES.iter().enumerate() {
            let mut cursor: Option<Cursor> = None;
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                let engine = &*fixtures.get().engines[i];
                let cursor = cursor.get_or_insert_with(|| {
                    // A quick run's small corpus may have fewer than 100 full pages.
                    let matches = engine.count(&filter, At::Current).expect("count");
                    let page = page.min(matches as usize / PAGE).max(1);
                    let mut cursor = Cursor::Start;
                    for _ in 1..page {
                        cursor = engine.page(&filter, field, PAGE, &cursor).expect("page").1;
                    }
                    assert_ne!(cursor, Cursor::End, "fewer than {page} pages");
                    cursor
                });
                b.iter(|| {
                    let (ids, next) = engine.page(&filter, field, PAGE, cursor).expect("page");
                    assert_eq!(ids.len(), PAGE);
                    (ids, next)
                });
            });
        }
        group.finish();
    }
}

/// The version written by write-then-query number `n`: a new package with a unique name in a
/// section of its own.
fn fresh_package(n: u64) -> Version {
    let mut body = package(SEED, 1 << 40 | n, 0);
    body["name"] = format!("wtq-{n:08}").into();
    body["section"] = "wtq".into();
    Version {
        docno: 1 << 40 | n,
        version: 0,
        id: doc_id(1 << 40 | n),
        body,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Write-then-query: one durable put of a new document, then a query by its unique name that
/// must return it. Measured from the start of the put to the query's answer.
fn write_then_query(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("write_then_query");
    let mut next = 0u64;
    let mut latencies: Vec<(&str, Vec<Duration>)> = Vec::new();
    for (i, (name, _)) in ENGINES.iter().enumerate() {
        let mut mine = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            let engine = &*fixtures.get().engines[i];
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    next += 1;
                    let version = fresh_package(next);
                    let id = version.id.clone();
                    let filter = Filter::term("name", &format!("wtq-{next:08}"));
                    let started = Instant::now();
                    engine.put(version).expect("put");
                    let ids = engine
                        .top(&filter, Order::Desc("installed_size"), 10, At::Current)
                        .expect("query");
                    let took = started.elapsed();
                    assert_eq!(ids, [id], "{name} does not see its write");
                    mine.push(took);
                    total += took;
                }
                total
            });
        });
        latencies.push((name, mine));
    }
    group.finish();
    for (name, mut l) in latencies {
        l.sort();
        if !l.is_empty() {
            eprintln!(
                "write_then_query {name}: {} operations, p50 {:.3?}, p99 {:.3?}, max {:.3?}",
                l.len(),
                percentile(&l, 0.5),
                percentile(&l, 0.99),
                l.last().copied().unwrap_or_default()
            );
        }
    }
}

/// The fixture, built and checked on first use (so a filtered run that needs none builds none).
struct Fixtures {
    corpus: Corpus,
    built: OnceCell<Fixture>,
}

impl Fixtures {
    fn get(&self) -> &Fixture {
        self.built.get_or_init(|| {
            let fixture = Fixture::build(self.corpus);
            eprintln!("checking that the engines agree:");
            check(&fixture, &workloads());
            fixture
        })
    }
}

fn main() {
    let sizes = Sizes::from_env();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    eprintln!(
        "corpus: {:?}; ingest workload: {:?}\nstrata: Options::default() (Durability::Sync)\n\
         tantivy: {TANTIVY_SETTINGS}\nsqlite: {SQLITE_FTS_SETTINGS}",
        sizes.corpus, sizes.ingest
    );
    ingest(&mut c, &sizes);
    let fixtures = Fixtures {
        corpus: sizes.corpus,
        built: OnceCell::new(),
    };
    queries(&mut c, &fixtures, false);
    queries(&mut c, &fixtures, true);
    paging(&mut c, &fixtures);
    write_then_query(&mut c, &fixtures);
    c.final_summary();
}
