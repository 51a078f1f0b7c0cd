//! Lifecycle tests: version retention (by kind and by collection), compaction (what it drops,
//! what it reclaims, reads of the past around the horizon, concurrent readers and writers,
//! reopening and rebuilding the index), document expiry, and the validation of the options.
//!
//! Time is made deterministic with explicit batch times (`Batch::at_time`) where ages and
//! expiries matter, and synchronisation is by events (a subscription's `recv_timeout`) or by
//! the calls that block until the work is done (`wait_for_index`, `compact`, `expire_due`),
//! never by sleeping. Background compaction signals nothing, so `maintenance.rs` polls its
//! counters and files (with `yield_now` and a deadline).
//!
//! Four of these found library bugs when they were written (fixed in the same change):
//! `concurrency::reads_stay_consistent_while_compaction_runs` (an all-versions query failed when
//! compaction dropped a hit between search and load), `past::at_seq_of_a_dropped_version_is_
//! exact_for_another_kind` (expiry judged at time 0), `maintenance::closing_stops_a_slow_
//! background_compaction` (the throttle slept through a stop) and
//! `disk::compaction_does_not_grow_the_index` (removed versions kept their index space until
//! a merge).

mod collections;
mod concurrency;
mod disk;
mod expiry;
mod feed;
mod maintenance;
mod options;
mod past;
mod reopen;
mod retention;
mod trimmed;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use strata::{
    Batch, Document, Durability, Error, MaintenanceOptions, Meta, Options, Query, QuerySpec,
    Retention, Snapshot, Store,
};

/// How long to wait for an event that must come (generous: CI machines are slow).
pub const WAIT: Duration = Duration::from_secs(20);

/// How long to wait before concluding that no further event comes.
pub const QUIET: Duration = Duration::from_millis(100);

pub const SECOND: u64 = 1_000_000;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;

/// Microseconds since the Unix epoch, by the wall clock.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Small segments (they seal after a few writes), no fsync (durability is not the point
/// here), and no background compaction (the tests compact when they mean to).
pub fn options() -> Options {
    Options::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
        .with_maintenance(MaintenanceOptions::default().with_compaction_interval(None))
}

/// Opens a store in `dir`, panicking with the error if that fails.
#[track_caller]
pub fn open(dir: &Path, options: Options) -> Store {
    match Store::open(dir, options) {
        Ok(store) => store,
        Err(e) => panic!("opening {} failed: {e}", dir.display()),
    }
}

/// The `HistoryTrimmed` error `r` must be: its id and `oldest_complete`.
#[track_caller]
pub fn trimmed<T: std::fmt::Debug>(r: strata::Result<T>) -> (Option<String>, u64) {
    match r {
        Err(Error::HistoryTrimmed {
            id,
            oldest_complete,
        }) => (id, oldest_complete),
        other => panic!("expected HistoryTrimmed, got {other:?}"),
    }
}

/// Writes single-version documents of kind `filler` (about 6 KiB in all) so that every segment
/// holding an earlier write is sealed: compaction rewrites sealed segments only.
pub fn seal(store: &Store) {
    let pad = "f".repeat(1000);
    for i in 0..6 {
        store
            .put(&format!("/zz/filler/{i}"), "filler", json!({ "pad": pad }))
            .unwrap();
    }
}

/// `seal`, then waits until the index has committed every version: compaction drops only
/// versions superseded at or before the index's committed seq.
pub fn settle(store: &Store) {
    seal(store);
    store.wait_for_index().unwrap();
}

/// What the tests wrote: every version of every document, oldest first, as the store returned
/// its metadata (tombstones have a `null` body).
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub docs: BTreeMap<String, Vec<Document>>,
}

impl Model {
    /// Records the result of a batch: `bodies[i]` is what op `i` wrote (`null` for a delete).
    #[track_caller]
    pub fn record(&mut self, metas: &[Meta], bodies: &[Value]) {
        assert_eq!(metas.len(), bodies.len());
        for (meta, body) in metas.iter().zip(bodies) {
            assert_eq!(meta.deleted, body.is_null(), "{meta:?}");
            let chain = self.docs.entry(meta.id.clone()).or_default();
            let expected_version = chain.last().map_or(0, |d| d.meta.version + 1);
            assert_eq!(meta.version, expected_version, "{meta:?}");
            chain.push(Document {
                meta: meta.clone(),
                body: body.clone(),
            });
        }
    }

    /// The newest version of `id`, if it exists and is not deleted.
    pub fn current(&self, id: &str) -> Option<&Document> {
        self.docs
            .get(id)
            .and_then(|c| c.last())
            .filter(|d| !d.meta.deleted)
    }

    /// The version of `id` visible at `t` (none before it existed, or if deleted then).
    pub fn as_of(&self, id: &str, t: u64) -> Option<&Document> {
        self.docs
            .get(id)?
            .iter()
            .rev()
            .find(|d| d.meta.update_time_micros <= t)
            .filter(|d| !d.meta.deleted)
    }

    /// Every batch time written, in order.
    pub fn times(&self) -> Vec<u64> {
        let mut times: Vec<u64> = self
            .docs
            .values()
            .flatten()
            .map(|d| d.meta.update_time_micros)
            .collect();
        times.sort_unstable();
        times.dedup();
        times
    }
}

/// How many of a chain's newest versions `rule` keeps, judged at `now`, by the documented
/// semantics: the newest always; at most `max_versions`; the versions superseded less than
/// `max_age` ago (and the newest); but at least `min_versions` whatever the other limits say.
pub fn kept_by(rule: &Retention, chain: &[Document], now: u64) -> usize {
    let n = chain.len();
    let by_limit = rule
        .max_versions
        .map_or(n, |m| n.min(usize::try_from(m).unwrap()));
    let by_age = rule.max_age_secs.map_or(n, |secs| {
        let cutoff = now - secs * SECOND;
        // Version i was superseded when version i + 1 was written.
        let old = chain
            .windows(2)
            .take_while(|w| w[1].meta.update_time_micros < cutoff)
            .count();
        n - old
    });
    let floor = usize::try_from(rule.min_versions.unwrap_or(0))
        .unwrap()
        .clamp(1, n);
    by_limit.min(by_age).max(floor)
}

/// How many versions of `chain` the rules keep: a version is kept if any rule keeps it; no rule
/// keeps everything.
pub fn kept_by_any(rules: &[Retention], chain: &[Document], now: u64) -> usize {
    rules
        .iter()
        .map(|r| kept_by(r, chain, now))
        .max()
        .unwrap_or(chain.len())
}

/// Checks the store against the model after a compaction that kept `kept[id]` newest versions
/// of each document: the history is exactly that suffix (every kept version readable with its
/// body), versions below it and times before it are `HistoryTrimmed`, the rest is exact.
#[track_caller]
pub fn check_kept(store: &Store, model: &Model, kept: &BTreeMap<String, usize>) {
    for (id, chain) in &model.docs {
        let keep = kept[id];
        assert!(keep >= 1 && keep <= chain.len(), "{id}: keep {keep}");
        let first = chain.len() - keep;
        let history = store.history(id).unwrap();
        assert_eq!(
            history,
            chain[first..],
            "{id}: the history is the newest {keep} of {} versions",
            chain.len()
        );
        // The current state is the newest version, whatever was dropped.
        assert_eq!(
            store.get(id).unwrap().as_ref(),
            model.current(id),
            "{id}: current"
        );
        let oldest_kept = chain[first].meta.update_time_micros;
        for (v, doc) in chain.iter().enumerate() {
            let got = store.get_version(id, v as u64);
            if v < first {
                assert_eq!(
                    trimmed(got),
                    (Some(id.clone()), oldest_kept),
                    "{id} v{v} was dropped"
                );
            } else {
                assert_eq!(got.unwrap().as_ref(), Some(doc), "{id} v{v} was kept");
            }
        }
        assert_eq!(
            store.get_version(id, chain.len() as u64).unwrap(),
            None,
            "{id}: no version after the newest"
        );
        // Reads of the past: at each version's time, just before it and just after it.
        for doc in chain {
            let t0 = doc.meta.update_time_micros;
            for t in [t0 - 1, t0, t0 + 1] {
                let got = store.get_at(id, t);
                if first > 0 && t < oldest_kept {
                    assert_eq!(trimmed(got), (Some(id.clone()), oldest_kept), "{id} at {t}");
                } else {
                    assert_eq!(got.unwrap().as_ref(), model.as_of(id, t), "{id} at {t}");
                }
            }
        }
    }
}

/// Every version the query `spec` (over all versions) finds, ordered by seq, after paging
/// through all of it.
#[track_caller]
pub fn all_pages(store: &Store, spec: &QuerySpec) -> strata::Result<Vec<Document>> {
    let mut out = Vec::new();
    let mut spec = spec.clone().limit(1000);
    loop {
        let page = store.query(&spec)?;
        out.extend(page.documents);
        match page.next_page {
            Some(token) => spec = spec.page(token),
            None => break,
        }
    }
    out.sort_by_key(|d| d.meta.seq);
    Ok(out)
}

/// The query over every version of the user's documents, tombstones included.
pub fn every_version() -> QuerySpec {
    QuerySpec::new(Query::All)
        .snapshot(Snapshot::AllVersions)
        .include_deleted(true)
}

/// A body of about `pad` bytes.
pub fn body(id: &str, n: u64, pad: usize) -> Value {
    json!({ "id": id, "n": n, "pad": "p".repeat(pad) })
}

/// The retention rules of the shared workload, by kind.
pub fn workload_rules() -> Vec<(&'static str, Retention)> {
    vec![
        ("metric", Retention::default().with_max_versions(3)),
        (
            "event",
            Retention::default()
                .with_min_versions(2)
                .with_max_age(Duration::from_secs(3600)),
        ),
        (
            "audit",
            Retention::default()
                .with_min_versions(2)
                .with_max_versions(4)
                .with_max_age(Duration::from_secs(3600)),
        ),
        // "note" has no rule: its documents keep every version.
    ]
}

/// [`options`] with the workload's retention rules.
pub fn workload_options() -> Options {
    workload_rules()
        .into_iter()
        .fold(options(), |o, (kind, r)| o.with_retention(kind, r))
}

/// The ids of the workload and the kind each has in round `round` of `rounds`.
fn workload_kind(id: &str, round: usize, rounds: usize) -> &'static str {
    let late = round >= rounds / 2;
    match id.split('/').nth(1).unwrap() {
        "metric" => "metric",
        "event" => "event",
        "audit" => "audit",
        "note" => "note",
        // Documents whose kind changes: the kind of the newest version decides the rule.
        "to-metric" => ["note", "metric"][usize::from(late)],
        "to-note" => ["metric", "note"][usize::from(late)],
        other => panic!("no kind for {other}"),
    }
}

/// Interleaved puts and deletes (and re-creates) of 28 documents of four kinds (and two that
/// change kind), in 50 batches with explicit times: the first 35 batches from ten days ago, a
/// minute apart, the last 15 from half an hour ago, a second apart. Age limits of an hour thus
/// judge every version clearly: superseded long before the cutoff, or well after it.
pub fn workload(store: &Store, seed: u64) -> Model {
    const ROUNDS: usize = 50;
    const OLD: usize = 35;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ids = Vec::new();
    for (prefix, n) in [
        ("metric", 6),
        ("event", 6),
        ("audit", 5),
        ("note", 5),
        ("to-metric", 3),
        ("to-note", 3),
    ] {
        for i in 0..n {
            ids.push(format!("/{prefix}/{i}"));
        }
    }
    let now = now_micros();
    let mut model = Model::default();
    for round in 0..ROUNDS {
        let time = if round < OLD {
            now - 10 * DAY + round as u64 * MINUTE
        } else {
            now - 30 * MINUTE + (round - OLD) as u64 * SECOND
        };
        let mut batch = Batch::new().at_time(time);
        let mut bodies = Vec::new();
        for id in &ids {
            if round > 0 && !rng.random_bool(0.4) {
                continue;
            }
            let exists = model.current(id).is_some();
            if exists && rng.random_bool(0.08) {
                batch = batch.delete(id.clone());
                bodies.push(Value::Null);
            } else {
                let kind = workload_kind(id, round, ROUNDS);
                let b = body(id, round as u64, rng.random_range(60..180));
                batch = batch.put(id.clone(), kind, b.clone());
                bodies.push(b);
            }
        }
        if bodies.is_empty() {
            continue;
        }
        let metas = store.write(batch).unwrap();
        assert!(metas.iter().all(|m| m.update_time_micros == time));
        model.record(&metas, &bodies);
    }
    model
}

/// How many versions of each document of the workload its kind's rule keeps at `now`.
pub fn workload_kept(model: &Model, now: u64) -> BTreeMap<String, usize> {
    let rules: BTreeMap<&str, Retention> = workload_rules().into_iter().collect();
    model
        .docs
        .iter()
        .map(|(id, chain)| {
            let kind = chain.last().unwrap().meta.kind.as_str();
            let rule: Vec<Retention> = rules.get(kind).cloned().into_iter().collect();
            (id.clone(), kept_by_any(&rule, chain, now))
        })
        .collect()
}

/// The filler documents [`seal`] wrote, as kept (one version each, never dropped).
pub fn record_filler(store: &Store, model: &mut Model) {
    for i in 0..6 {
        let id = format!("/zz/filler/{i}");
        let doc = store.get(&id).unwrap().unwrap();
        model.docs.insert(id, vec![doc]);
    }
}

/// Picks `n` values of `items` spread evenly (all of them if there are fewer).
pub fn spread<T: Copy>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n]).collect()
}

/// A random generator for tests that want one.
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}
