//! Benchmarks of query tasks and continuous queries (`src/tasks.rs`, `src/subscribe.rs`), on the
//! package corpus of the query benchmark. Settings and results are in `benches/RESULTS.md`
//! ("Tasks and continuous queries").
//!
//! `cargo bench -p strata-benches --bench tasks`. Four groups:
//!
//! - `task_overhead`: a selective term query (about ten matches, limit 10) on a store of
//!   `STRATA_BENCH_DOCS` documents (default 20 000), run by `Store::query`, by
//!   `Tasks::run` and by `Tasks::submit` + `Task::wait`. Besides criterion's estimates, a
//!   paired pass (the three calls in turn, `STRATA_BENCH_PAIRS` rounds) gives per-call
//!   percentiles and the median of the per-round differences.
//! - `ingest_subscriptions`: durable ingest (`Options::default()`, `Durability::Sync`) of
//!   `STRATA_BENCH_INGEST` versions (default 20 000; one document per five versions, as in the
//!   query benchmark's ingest) in batches of 100 into a fresh store, with no subscription and
//!   with 100 subscriptions that match nothing. The last of the 100 matches only a marker
//!   document written after the ingest, so criterion's time ends once the feed has looked at
//!   every version (without subscriptions: at the marker's ack). Each iteration then waits for
//!   the index; that time is recorded too. A paired pass first runs `STRATA_BENCH_INGEST_PAIRS`
//!   (default 8) iterations without and with the subscriptions back to back, for ratios that
//!   both sides of a pair measured under the same load.
//! - `subscription_events`: the same durable ingest with 1 subscription (20 000 versions) and
//!   with 100 (`STRATA_BENCH_EVENTS_MANY` versions, default a tenth of the ingest) that match
//!   every document, each drained by its own consumer thread; events per second until every
//!   consumer has received every event (`STRATA_BENCH_SUB_BUFFER` changes the subscriptions'
//!   buffer from the store's default).
//! - `subscription_latency`: an in-memory store (`Store::open_in_memory`: no sync), one write
//!   at a time, from `put` returning to a consumer thread holding the event; p50 and p99 over
//!   `STRATA_BENCH_WRITES` writes (default 2000), alone and with 100 idle subscriptions.
//!
//! The bench's own measurements (per-call and per-iteration times, percentiles, event counts)
//! are printed and written to `target/criterion/tasks-summary.json`, and a Markdown table of
//! them is printed at the end. With criterion's `--test` or `STRATA_BENCH_QUICK=1` every size is
//! tiny, so the whole run takes seconds.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde_json::{json, Map, Value};
use strata::{
    Batch, Options, Query, QuerySpec, Store, SubscribeOptions, Subscription, TaskOptions,
};
use strata_benches::{load_average, package, timed_runs, Corpus, Summary, Version};
use tempfile::TempDir;

/// Seed of the query-overhead fixture (the query benchmark's corpus seed).
const SEED: u64 = 0x5EED_0003;
/// Seed of the ingested versions (the query benchmark's ingest seed).
const INGEST_SEED: u64 = 0x5EED_0004;
/// Versions per committed batch of the ingest workloads.
const BATCH: u64 = 100;
/// Versions per committed batch when loading the query-overhead fixture.
const LOAD_BATCH: u64 = 1000;
/// The kind every package is written with.
const KIND: &str = "package";
/// Subscriptions of the "many" cases.
const MANY: usize = 100;
/// Longest wait for an event before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Sizes of this run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    quick: bool,
    fixture: Corpus,
    ingest: Corpus,
    /// Versions per iteration of `subscription_events` with 100 subscriptions.
    events_many: u64,
    pairs: usize,
    ingest_pairs: usize,
    writes: usize,
    /// Subscription buffer of `subscription_events` (the store's default unless
    /// `STRATA_BENCH_SUB_BUFFER` says).
    buffer: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = strata_benches::quick_mode();
        let (docs, ingest, pairs, ingest_pairs, writes) = if quick {
            (2_000, 2_000, 200, 1, 200)
        } else {
            (20_000, 20_000, 2_000, 8, 2_000)
        };
        let docs = strata_benches::env_u64("STRATA_BENCH_DOCS", docs).max(1);
        let versions = strata_benches::env_u64("STRATA_BENCH_VERSIONS", docs).max(docs);
        let ingest = strata_benches::env_u64("STRATA_BENCH_INGEST", ingest).max(BATCH);
        let events_many =
            strata_benches::env_u64("STRATA_BENCH_EVENTS_MANY", (ingest / 10).max(BATCH));
        Sizes {
            quick,
            fixture: Corpus {
                docs,
                versions,
                batch: LOAD_BATCH,
                seed: SEED,
            },
            ingest: Corpus {
                docs: (ingest / 5).max(1),
                versions: ingest,
                batch: BATCH,
                seed: INGEST_SEED,
            },
            events_many,
            pairs: strata_benches::env_u64("STRATA_BENCH_PAIRS", pairs as u64).max(1) as usize,
            ingest_pairs: strata_benches::env_u64("STRATA_BENCH_INGEST_PAIRS", ingest_pairs).max(1)
                as usize,
            writes: strata_benches::env_u64("STRATA_BENCH_WRITES", writes as u64).max(1) as usize,
            buffer: strata_benches::env_u64(
                "STRATA_BENCH_SUB_BUFFER",
                SubscribeOptions::default().buffer as u64,
            )
            .max(1) as usize,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bench's own measurements

/// What the bench measured itself, by section.
static SUMMARY: Summary = Summary::new("tasks-summary.json");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// p50, p90, p99, max and mean of `samples` in microseconds.
fn stats(samples: &[Duration]) -> Value {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mean = if sorted.is_empty() {
        Duration::ZERO
    } else {
        sorted.iter().sum::<Duration>() / sorted.len() as u32
    };
    json!({
        "n": sorted.len(),
        "p50_us": micros(percentile(&sorted, 0.5)),
        "p90_us": micros(percentile(&sorted, 0.9)),
        "p99_us": micros(percentile(&sorted, 0.99)),
        "max_us": micros(sorted.last().copied().unwrap_or_default()),
        "mean_us": micros(mean),
    })
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// 1. Task overhead

/// The fixture of `task_overhead`: the corpus in a durable store, indexed.
struct Fixture {
    store: Store,
    spec: QuerySpec,
    _dir: TempDir,
}

impl Fixture {
    fn build(corpus: Corpus) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("strata-tasks-bench-")
            .tempdir()
            .expect("a temporary directory");
        let store = Store::open(dir.path(), Options::default()).expect("open the fixture store");
        let started = Instant::now();
        for k in 0..corpus.batches() {
            let batch = corpus
                .batch(k)
                .into_iter()
                .fold(Batch::new(), |b, v| b.put(v.id, KIND, v.body));
            store
                .write(batch.at_time(Corpus::time(k)))
                .expect("load a batch");
        }
        store.wait_for_index().expect("wait for the index");
        // A selective term: the maintainer of document 0 (2000 maintainers, so about one
        // document in 2000 has it).
        let maintainer = package(corpus.seed, 0, 0)["maintainer"]
            .as_str()
            .expect("a maintainer")
            .to_owned();
        let spec = QuerySpec::new(Query::term("maintainer", maintainer.as_str())).limit(10);
        let matches = store
            .query(&spec.clone().count(true).limit(0))
            .expect("count")
            .count
            .unwrap_or(0);
        eprintln!(
            "task_overhead fixture: {} documents, {} versions loaded and indexed in {:.1?}; \
             query `maintainer:{maintainer}` limit 10 matches {matches}",
            corpus.docs,
            corpus.versions,
            started.elapsed()
        );
        assert!(matches > 0, "the overhead query matches nothing");
        Fixture {
            store,
            spec,
            _dir: dir,
        }
    }
}

fn ids(result: &strata::QueryResult) -> Vec<&str> {
    result
        .documents
        .iter()
        .map(|d| d.meta.id.as_str())
        .collect()
}

/// The three calls measured by `task_overhead`.
#[derive(Debug, Clone, Copy)]
enum Call {
    Direct,
    Run,
    SubmitWait,
}

impl Call {
    const ALL: [Call; 3] = [Call::Direct, Call::Run, Call::SubmitWait];

    fn name(self) -> &'static str {
        match self {
            Call::Direct => "direct_query",
            Call::Run => "tasks_run",
            Call::SubmitWait => "submit_wait",
        }
    }

    fn call(self, store: &Store, spec: &QuerySpec) -> strata::QueryResult {
        match self {
            Call::Direct => store.query(spec).expect("query"),
            Call::Run => store
                .tasks()
                .run(spec, TaskOptions::default())
                .expect("run"),
            Call::SubmitWait => store
                .tasks()
                .submit(spec, TaskOptions::default())
                .expect("submit")
                .wait()
                .expect("wait"),
        }
    }
}

/// The paired pass: each round times the three calls, in an order that rotates with the round.
fn paired(fixture: &Fixture, rounds: usize) {
    let (store, spec) = (&fixture.store, &fixture.spec);
    let expected: Vec<String> = ids(&store.query(spec).expect("query"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    for call in Call::ALL {
        assert_eq!(
            ids(&call.call(store, spec)),
            expected,
            "{} answers differently",
            call.name()
        );
    }
    let load = load_average();
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let i = (round + k) % 3;
            let started = Instant::now();
            let result = Call::ALL[i].call(store, spec);
            times[i].push(started.elapsed());
            std::hint::black_box(result);
        }
    }
    let diff = |i: usize| {
        median_f64(
            times[i]
                .iter()
                .zip(&times[0])
                .map(|(t, d)| micros(*t) - micros(*d))
                .collect(),
        )
    };
    let value = json!({
        "rounds": rounds,
        "query": spec.query.to_json(),
        "limit": spec.limit,
        "load_average_before": load,
        "load_average_after": load_average(),
        "direct_query": stats(&times[0]),
        "tasks_run": stats(&times[1]),
        "submit_wait": stats(&times[2]),
        "tasks_run_minus_direct_median_us": diff(1),
        "submit_wait_minus_direct_median_us": diff(2),
    });
    eprintln!("task_overhead paired pass: {value:#}");
    SUMMARY.record("task_overhead", value);
}

fn task_overhead(c: &mut Criterion, sizes: &Sizes) {
    let mut fixture: Option<Fixture> = None;
    let mut paired_done = false;
    let mut group = c.benchmark_group("task_overhead");
    for call in Call::ALL {
        group.bench_function(BenchmarkId::from_parameter(call.name()), |b| {
            let fixture = fixture.get_or_insert_with(|| Fixture::build(sizes.fixture));
            if !paired_done {
                paired_done = true;
                paired(fixture, sizes.pairs);
            }
            b.iter(|| call.call(&fixture.store, &fixture.spec));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. Ingest with subscriptions

/// The ingest workload's versions, generated once.
struct Ingest {
    versions: Vec<Version>,
}

impl Ingest {
    fn new(corpus: Corpus, versions: u64) -> Ingest {
        Ingest {
            versions: (0..versions.min(corpus.versions))
                .map(|i| corpus.version(i))
                .collect(),
        }
    }

    /// Batches of [`BATCH`], at the store's clock.
    fn batches(&self) -> Vec<Batch> {
        self.versions
            .chunks(BATCH as usize)
            .map(|chunk| {
                chunk.iter().fold(Batch::new(), |b, v| {
                    b.put(v.id.clone(), KIND, v.body.clone())
                })
            })
            .collect()
    }
}

fn fresh_store() -> (TempDir, Store) {
    let dir = tempfile::Builder::new()
        .prefix("strata-tasks-ingest-")
        .tempdir()
        .expect("a temporary directory");
    let store = Store::open(dir.path(), Options::default()).expect("open");
    (dir, store)
}

/// Idle subscription `i`: a term or range that no package has, on a field every package has
/// (so the matcher finds the field and compares), varied per subscription.
fn idle_query(i: usize) -> Query {
    match i % 5 {
        0 => Query::term("name", format!("absent-{i:03}").as_str()),
        1 => Query::term("section", format!("no-section-{i:03}").as_str()),
        2 => Query::term(
            "maintainer",
            format!("nobody-{i:03}@example.invalid").as_str(),
        ),
        3 => Query::term("tags", format!("no-tag-{i:03}").as_str()),
        _ => Query::range(
            "installed_size",
            (1_000_000 + i as u64)..(1_000_001 + i as u64),
        ),
    }
}

/// The name of the marker document of an ingest iteration.
const MARKER: &str = "zz-marker";

fn marker_body() -> Value {
    let mut body = package(INGEST_SEED, 1 << 40, 0);
    body["name"] = MARKER.into();
    body
}

/// One iteration's timings, from the first write.
#[derive(Debug, Clone, Copy)]
struct IngestTimes {
    /// The last batch (and the marker) acknowledged.
    acked: Duration,
    /// The marker's event received (equal to `acked` without subscriptions).
    fed: Duration,
    /// The index committed every version, too.
    all: Duration,
}

fn ingest_once(ingest: &Ingest, subs: usize) -> IngestTimes {
    let (dir, store) = fresh_store();
    let mut subscriptions: Vec<Subscription> = (0..subs.saturating_sub(1))
        .map(|i| {
            store
                .subscribe(&QuerySpec::new(idle_query(i)), SubscribeOptions::default())
                .expect("subscribe")
        })
        .collect();
    let mut marker = (subs > 0).then(|| {
        store
            .subscribe(
                &QuerySpec::new(Query::term("name", MARKER)),
                SubscribeOptions::default(),
            )
            .expect("subscribe")
    });
    let batches = ingest.batches();
    let body = marker_body();
    let started = Instant::now();
    for batch in batches {
        store.write(batch).expect("write a batch");
    }
    let meta = store.put("/markers/end", KIND, body).expect("the marker");
    let acked = started.elapsed();
    if let Some(marker) = &mut marker {
        let event = marker
            .recv_timeout(PATIENCE)
            .expect("the feed")
            .expect("the marker's event in time");
        assert_eq!(event.seq(), meta.seq, "an event for another version");
    }
    let fed = started.elapsed();
    store.wait_for_index().expect("wait for the index");
    let all = started.elapsed();
    for s in &mut subscriptions {
        assert!(
            s.try_recv().expect("the feed").is_none(),
            "an idle subscription matched"
        );
    }
    drop(subscriptions);
    drop(marker);
    drop(store);
    drop(dir);
    IngestTimes { acked, fed, all }
}

fn ingest_times_json(times: &[IngestTimes], versions: u64) -> Value {
    let rate = |f: fn(&IngestTimes) -> Duration| {
        median_f64(
            times
                .iter()
                .map(|t| versions as f64 / f(t).as_secs_f64())
                .collect(),
        )
    };
    let ms = |f: fn(&IngestTimes) -> Duration| {
        median_f64(times.iter().map(|t| f(t).as_secs_f64() * 1e3).collect())
    };
    json!({
        "iterations": times.len(),
        "median_ms_to_last_ack": ms(|t| t.acked),
        "median_ms_to_feed_done": ms(|t| t.fed),
        "median_ms_to_index_done": ms(|t| t.all),
        "median_versions_per_s_acked": rate(|t| t.acked),
        "median_versions_per_s_fed": rate(|t| t.fed),
        "median_versions_per_s_all": rate(|t| t.all),
    })
}

/// Pairs of iterations (without, then with the 100 subscriptions) run back to back, so that both
/// see the same load; the ratios of each pair are the figure to trust on a busy machine.
fn ingest_pairs(ingest: &Ingest, pairs: usize, versions: u64) -> Value {
    let load = load_average();
    let mut ratios: [Vec<f64>; 3] = Default::default();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        let a = ingest_once(ingest, 0);
        let b = ingest_once(ingest, MANY);
        ratios[0].push(b.acked.as_secs_f64() / a.acked.as_secs_f64());
        ratios[1].push(b.fed.as_secs_f64() / a.fed.as_secs_f64());
        ratios[2].push(b.all.as_secs_f64() / a.all.as_secs_f64());
        without.push(a);
        with.push(b);
    }
    let [acked, fed, all] = ratios.map(median_f64);
    json!({
        "pairs": pairs,
        "load_average_before": load,
        "load_average_after": load_average(),
        "0": ingest_times_json(&without, versions),
        "100": ingest_times_json(&with, versions),
        "median_time_ratio_100_over_0_to_last_ack": acked,
        "median_time_ratio_100_over_0_to_feed_done": fed,
        "median_time_ratio_100_over_0_to_index_done": all,
    })
}

fn ingest_subscriptions(c: &mut Criterion, sizes: &Sizes) {
    let corpus = sizes.ingest;
    let ingest = Ingest::new(corpus, corpus.versions);
    let versions = corpus.versions + 1;
    let mut group = c.benchmark_group("ingest_subscriptions");
    group.throughput(Throughput::Elements(versions));
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(if sizes.quick { 1 } else { 20 }));
    let mut results = Map::new();
    let load = load_average();
    for subs in [0, MANY] {
        let mut times = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(subs), |b| {
            if !results.contains_key("paired") {
                let value = ingest_pairs(&ingest, sizes.ingest_pairs, versions);
                eprintln!("ingest_subscriptions paired pass: {value:#}");
                results.insert("paired".into(), value);
            }
            b.iter_custom(|iters| {
                timed_runs(iters, &mut times, || ingest_once(&ingest, subs), |t| t.fed)
            });
        });
        if !times.is_empty() {
            let value = ingest_times_json(&times, versions);
            eprintln!("ingest_subscriptions {subs}: {value}");
            results.insert(subs.to_string(), value);
        }
    }
    group.finish();
    if !results.is_empty() {
        results.insert(
            "settings".into(),
            json!({
                "versions": versions,
                "documents": corpus.docs,
                "batch": BATCH,
                "durability": "Options::default() (Durability::Sync)",
                "criterion_measures": "first write to last ack and (with subscriptions) the marker's event",
                "load_average_before": load,
                "load_average_after": load_average(),
            }),
        );
        SUMMARY.record("ingest_subscriptions", Value::Object(results));
    }
}

/// A consumer thread: takes `expected` events and returns how many it got and when it got the
/// last one.
fn consume(mut sub: Subscription, expected: u64) -> JoinHandle<(u64, Instant)> {
    std::thread::spawn(move || {
        let mut received = 0;
        while received < expected {
            match sub.recv_timeout(PATIENCE) {
                Ok(Some(_)) => received += 1,
                Ok(None) => panic!("no event for {PATIENCE:?} after {received} of {expected}"),
                Err(e) => panic!("subscription: {e}"),
            }
        }
        let last = Instant::now();
        // Nothing more may come.
        assert!(
            sub.recv_timeout(Duration::from_millis(1))
                .expect("the feed")
                .is_none(),
            "more events than versions"
        );
        (received, last)
    })
}

/// One iteration of `subscription_events`: the times from the first write to the last ack and
/// to the last event received, and the events received.
fn events_once(ingest: &Ingest, subs: usize, buffer: usize) -> (Duration, Duration, u64) {
    let (dir, store) = fresh_store();
    let expected = ingest.versions.len() as u64;
    let consumers: Vec<_> = (0..subs)
        .map(|_| {
            let sub = store
                .subscribe(
                    &QuerySpec::new(Query::kind(KIND)),
                    SubscribeOptions::default().buffer(buffer),
                )
                .expect("subscribe");
            consume(sub, expected)
        })
        .collect();
    let batches = ingest.batches();
    let started = Instant::now();
    for batch in batches {
        store.write(batch).expect("write a batch");
    }
    let acked = started.elapsed();
    let mut events = 0;
    let mut last = started;
    for c in consumers {
        let (n, at) = c.join().expect("a consumer");
        events += n;
        last = last.max(at);
    }
    let delivered = last - started;
    store.wait_for_index().expect("wait for the index");
    drop(store);
    drop(dir);
    (acked, delivered, events)
}

fn subscription_events(c: &mut Criterion, sizes: &Sizes) {
    let corpus = sizes.ingest;
    let mut group = c.benchmark_group("subscription_events");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(if sizes.quick { 1 } else { 20 }));
    let mut results = Map::new();
    let load = load_average();
    for subs in [1, MANY] {
        let versions = if subs == 1 {
            corpus.versions
        } else {
            sizes.events_many
        };
        let ingest = Ingest::new(corpus, versions);
        let versions = ingest.versions.len() as u64;
        group.throughput(Throughput::Elements(versions * subs as u64));
        let mut runs: Vec<(Duration, Duration, u64)> = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(subs), |b| {
            b.iter_custom(|iters| {
                let once = || {
                    let run = events_once(&ingest, subs, sizes.buffer);
                    assert_eq!(run.2, versions * subs as u64, "events lost");
                    run
                };
                timed_runs(iters, &mut runs, once, |run| run.1)
            });
        });
        if !runs.is_empty() {
            let value = json!({
                "iterations": runs.len(),
                "versions_per_iteration": versions,
                "events_per_iteration": versions * subs as u64,
                "events_received_in_all": runs.iter().map(|r| r.2).sum::<u64>(),
                "median_events_per_s": median_f64(
                    runs.iter().map(|r| r.2 as f64 / r.1.as_secs_f64()).collect()
                ),
                "median_versions_per_s_acked": median_f64(
                    runs.iter().map(|r| versions as f64 / r.0.as_secs_f64()).collect()
                ),
                "median_ms_to_last_ack": median_f64(
                    runs.iter().map(|r| r.0.as_secs_f64() * 1e3).collect()
                ),
                "median_ms_to_last_event": median_f64(
                    runs.iter().map(|r| r.1.as_secs_f64() * 1e3).collect()
                ),
            });
            eprintln!("subscription_events {subs}: {value}");
            results.insert(subs.to_string(), value);
        }
    }
    group.finish();
    if !results.is_empty() {
        results.insert(
            "settings".into(),
            json!({
                "batch": BATCH,
                "durability": "Options::default() (Durability::Sync)",
                "query": "kind = package (every version)",
                "consumers": "one thread per subscription, Subscription::recv_timeout",
                "buffer": sizes.buffer,
                "load_average_before": load,
                "load_average_after": load_average(),
            }),
        );
        SUMMARY.record("subscription_events", Value::Object(results));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Latency from an acknowledged write to its event

/// An in-memory store with a probe subscription (and `idle` idle ones) whose events a consumer
/// thread timestamps.
struct Probe {
    store: Option<Store>,
    _idle: Vec<Subscription>,
    received: mpsc::Receiver<(u64, Instant)>,
    consumer: Option<JoinHandle<()>>,
    next: u64,
}

impl Probe {
    fn new(idle: usize) -> Probe {
        let store = Store::open_in_memory(Options::default()).expect("open in memory");
        let idle = (0..idle)
            .map(|i| {
                store
                    .subscribe(&QuerySpec::new(idle_query(i)), SubscribeOptions::default())
                    .expect("subscribe")
            })
            .collect();
        let mut sub = store
            .subscribe(
                &QuerySpec::new(Query::kind("probe")),
                SubscribeOptions::default(),
            )
            .expect("subscribe");
        let (tx, received) = mpsc::channel();
        let consumer = std::thread::spawn(move || {
            // Ends when the store closes.
            while let Ok(event) = sub.recv() {
                let at = Instant::now();
                if tx.send((event.seq(), at)).is_err() {
                    return;
                }
            }
        });
        Probe {
            store: Some(store),
            _idle: idle,
            received,
            consumer: Some(consumer),
            next: 0,
        }
    }

    /// One write; its time from `put` returning to the consumer holding the event (zero if the
    /// event was there first), and the time `put` took.
    fn once(&mut self) -> (Duration, Duration) {
        self.next += 1;
        let mut body = package(INGEST_SEED, 1 << 41 | self.next, 0);
        body["name"] = format!("probe-{:08}", self.next).into();
        let id = format!("/probes/{:08}", self.next);
        let started = Instant::now();
        let store = self.store.as_ref().expect("an open store");
        let meta = store.put(&id, "probe", body).expect("put");
        let acked = Instant::now();
        let (seq, at) = self
            .received
            .recv_timeout(PATIENCE)
            .expect("the probe's event in time");
        assert_eq!(seq, meta.seq, "an event for another version");
        (at.saturating_duration_since(acked), acked - started)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Closing the store ends the consumer's subscription.
        drop(self.store.take());
        if let Some(c) = self.consumer.take() {
            let _ = c.join();
        }
    }
}

fn subscription_latency(c: &mut Criterion, sizes: &Sizes) {
    let mut group = c.benchmark_group("subscription_latency");
    let mut results = Map::new();
    for (name, idle) in [("1_sub", 0), ("1_sub_100_idle", MANY)] {
        let mut probe: Option<Probe> = None;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            let probe = probe.get_or_insert_with(|| {
                let mut probe = Probe::new(idle);
                // Warm up, then the plain pass of exactly `writes` writes.
                for _ in 0..sizes.writes.min(100) {
                    probe.once();
                }
                let load = load_average();
                let (mut latency, mut put) = (Vec::new(), Vec::new());
                for _ in 0..sizes.writes {
                    let (l, p) = probe.once();
                    latency.push(l);
                    put.push(p);
                }
                let zero = latency.iter().filter(|l| l.is_zero()).count();
                let value = json!({
                    "writes": sizes.writes,
                    "idle_subscriptions": idle,
                    "store": "Store::open_in_memory (Durability::None)",
                    "ack_to_event": stats(&latency),
                    "event_before_ack": zero,
                    "put": stats(&put),
                    "load_average_before": load,
                    "load_average_after": load_average(),
                });
                eprintln!("subscription_latency {name}: {value:#}");
                results.insert(name.to_owned(), value);
                probe
            });
            b.iter_custom(|iters| (0..iters).map(|_| probe.once().0).sum());
        });
    }
    group.finish();
    if !results.is_empty() {
        for (k, v) in results {
            SUMMARY.record(&format!("subscription_latency_{k}"), v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table

fn table() {
    let guard = SUMMARY.sections();
    let Some(s) = &*guard else {
        return;
    };
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!("\n| workload | measured |\n|---|---|");
    if let Some(t) = s.get("task_overhead") {
        for call in Call::ALL {
            let c = &t[call.name()];
            println!(
                "| {} (`maintainer` term, limit 10), {} rounds | p50 {:.1} µs, p99 {:.1} µs |",
                call.name(),
                t["rounds"],
                f(&c["p50_us"]),
                f(&c["p99_us"])
            );
        }
        println!(
            "| task overhead: tasks_run − direct / submit_wait − direct (median per round) | \
             {:.1} µs / {:.1} µs |",
            f(&t["tasks_run_minus_direct_median_us"]),
            f(&t["submit_wait_minus_direct_median_us"])
        );
    }
    if let Some(t) = s.get("ingest_subscriptions") {
        for subs in ["0", "100"] {
            let r = &t[subs];
            println!(
                "| durable ingest, {subs} idle subscriptions: to last ack / feed done / index \
                 done | {:.0} / {:.0} / {:.0} versions/s |",
                f(&r["median_versions_per_s_acked"]),
                f(&r["median_versions_per_s_fed"]),
                f(&r["median_versions_per_s_all"])
            );
        }
        let p = &t["paired"];
        println!(
            "| durable ingest, 100 idle ÷ 0 subscriptions, time ratio over {} back-to-back pairs: \
             to last ack / feed done / index done | {:.3} / {:.3} / {:.3} |",
            p["pairs"],
            f(&p["median_time_ratio_100_over_0_to_last_ack"]),
            f(&p["median_time_ratio_100_over_0_to_feed_done"]),
            f(&p["median_time_ratio_100_over_0_to_index_done"])
        );
    }
    if let Some(t) = s.get("subscription_events") {
        for subs in ["1", "100"] {
            let r = &t[subs];
            println!(
                "| events delivered, {subs} subscriptions matching every version | {:.0} \
                 events/s ({} events received) |",
                f(&r["median_events_per_s"]),
                r["events_received_in_all"]
            );
        }
    }
    for name in ["1_sub", "1_sub_100_idle"] {
        if let Some(t) = s.get(&format!("subscription_latency_{name}")) {
            println!(
                "| ack → event latency, {name}, {} writes | p50 {:.1} µs, p99 {:.1} µs |",
                t["writes"],
                f(&t["ack_to_event"]["p50_us"]),
                f(&t["ack_to_event"]["p99_us"])
            );
        }
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
        "sizes: {sizes:?}\nstrata: Options::default() (Durability::Sync) unless in memory; \
         load average {}",
        load_average()
    );
    task_overhead(&mut c, &sizes);
    ingest_subscriptions(&mut c, &sizes);
    subscription_events(&mut c, &sizes);
    subscription_latency(&mut c, &sizes);
    c.final_summary();
    table();
    eprintln!("summary: {}", SUMMARY.path().display());
}
