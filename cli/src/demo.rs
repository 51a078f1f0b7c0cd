//! `strata demo`: the main job of a fresh checkout, on the default data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{
    Batch, CollectionOptions, Expect, GroupBy, Meta, Options, Query, QueryResult, QuerySpec,
    Result, Retention, Snapshot, SortKey, Store, SubscribeOptions, TaskOptions,
};

use super::fmt;

const SECTIONS: [&str; 6] = ["python", "rust", "web", "database", "games", "science"];

fn package(i: u64, run: u64) -> Value {
    json!({
        "name": format!("pkg-{i}"),
        "section": SECTIONS[(i % SECTIONS.len() as u64) as usize],
        "version": format!("{}.{}.{}", run, i % 10, i % 7),
        "installed_size": 1000 + (i * 7919) % 50_000,
        "maintainer": { "name": format!("maintainer {}", i % 97), "email": format!("m{}@example.org", i % 97) },
        "description": format!("package number {i}: a small library for {} work, rebuilt in run {run}", SECTIONS[(i % 6) as usize]),
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// A duration as `fmt::duration` writes it, with a tenth of a microsecond below a millisecond
/// (point reads take about a microsecond).
fn us(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else {
        fmt::duration(micros as u64)
    }
}

/// A tiny deterministic generator, enough to pick ids.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// The document the demo patches (`run` ingests at least 100 documents, so it exists).
const PATCHED: &str = "/packages/pkg-000042";
/// The document the demo deletes.
const DELETED: &str = "/packages/pkg-000007";

/// The demo's store and settings, shared by its steps.
struct Demo {
    store: Store,
    documents: u64,
    /// This run's number (1 on a new store), kept in `/demo/state`.
    run: u64,
    json_output: bool,
}

/// What the ingest measured.
struct Ingest {
    took: Duration,
    /// The update time of the last batch.
    at: u64,
}

/// What the reads measured.
struct Reads {
    get_median: Duration,
    get_at_median: Duration,
    listed: usize,
}

pub(crate) fn run(data: &Path, documents: u64, json_output: bool) -> Result<()> {
    // The demo updates `pkg-000042`: it needs that many documents.
    let documents = documents.max(100);
    let started = Instant::now();
    let store = Store::open(data, Options::default())?;
    let open_time = started.elapsed();
    // Where the demo writes, in full: the default is relative to the current directory.
    let data = &std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let demo = Demo::start(store, documents, json_output)?;
    demo.say_opened(data, open_time);
    let ingest = demo.ingest()?;
    demo.single_writes()?;
    let (before, before_update) = demo.edits()?;
    demo.present_and_past(before.as_ref())?;
    let reads = demo.read_latencies(ingest.at)?;
    let (python_now, query_time) = demo.searches(before.as_ref())?;
    demo.groups_and_fresh_writes()?;
    let target = demo.collection()?;
    demo.query_task(&target)?;
    demo.say(format!(
        "the store now holds {} versions; versions before this run's update: {before_update}. Run the demo again to add more history.",
        demo.store.last_seq()
    ));
    demo.say(format!(
        "the demo store is in {} (remove the directory to start over; try `cargo run -- --data {} stats`)",
        data.display(),
        data.display()
    ));
    if json_output {
        out!(
            "{}",
            json!({
                "data": data.display().to_string(),
                "run": demo.run,
                "open_micros": open_time.as_micros() as u64,
                "ingested": documents,
                "ingest_versions_per_second": documents as f64 / ingest.took.as_secs_f64(),
                "get_median_micros": reads.get_median.as_secs_f64() * 1e6,
                "get_at_median_micros": reads.get_at_median.as_secs_f64() * 1e6,
                "listed": reads.listed,
                "python_matches_now": python_now.count,
                "query_micros": query_time.as_secs_f64() * 1e6,
                "versions": demo.store.last_seq(),
            })
        );
    }
    Ok(())
}

impl Demo {
    /// Counts this run in `/demo/state`.
    fn start(store: Store, documents: u64, json_output: bool) -> Result<Demo> {
        let run = store
            .get("/demo/state")?
            .and_then(|d| d.body["runs"].as_u64())
            .unwrap_or(0)
            + 1;
        store.put("/demo/state", "demo", json!({ "runs": run }))?;
        Ok(Demo {
            store,
            documents,
            run,
            json_output,
        })
    }

    /// Prints a line of the table output (nothing with `--format json`).
    fn say(&self, line: String) {
        if !self.json_output {
            out!("{line}");
        }
    }

    fn say_opened(&self, data: &Path, open_time: Duration) {
        let stats = self.store.open_stats();
        self.say(format!(
            "opened {} in {} ({} versions in {} segments recovered, {} cut from a torn tail); demo run {}",
            data.display(),
            us(open_time),
            stats.records,
            stats.segments,
            fmt::bytes(stats.truncated_bytes),
            self.run
        ));
    }

    /// Step 1: batched, durable ingest.
    fn ingest(&self) -> Result<Ingest> {
        let (store, documents) = (&self.store, self.documents);
        let t = Instant::now();
        let mut i = 0;
        let mut ingested_at = 0;
        while i < documents {
            let mut batch = Batch::new();
            for j in i..(i + 1000).min(documents) {
                batch = batch.put(
                    format!("/packages/pkg-{j:06}"),
                    "package",
                    package(j, self.run),
                );
            }
            ingested_at = store
                .write(batch)?
                .last()
                .map_or(ingested_at, |m| m.update_time_micros);
            i += 1000;
        }
        let ingest = t.elapsed();
        self.say(format!(
            "ingested {documents} package documents in batches of 1000 (fsync per batch): {}, {:.0} versions/s",
            us(ingest),
            documents as f64 / ingest.as_secs_f64()
        ));
        Ok(Ingest {
            took: ingest,
            at: ingested_at,
        })
    }

    /// Step 2: single durable writes.
    fn single_writes(&self) -> Result<()> {
        let mut lat = Vec::new();
        for k in 0..50 {
            let t = Instant::now();
            self.store.put(
                &format!("/events/{}-{k}", self.run),
                "event",
                json!({ "n": k, "run": self.run }),
            )?;
            lat.push(t.elapsed());
        }
        self.say(format!(
            "50 single-document durable puts: median {}",
            us(median(lat))
        ));
        Ok(())
    }

    /// Step 3: updates, a conditional write, a delete. Returns the patched document's meta before
    /// the patch and the store's last seq then.
    fn edits(&self) -> Result<(Option<Meta>, u64)> {
        let (store, id) = (&self.store, PATCHED);
        let before = store.get(id)?.map(|d| d.meta);
        let before_update = store.last_seq();
        let v_update = store.patch(
            id,
            json!({ "installed_size": 4242, "tags": ["demo", "patched"] }),
        )?;
        let conflict = store.patch_if(
            id,
            json!({ "installed_size": 1 }),
            Expect::Version(v_update.version - 1),
        );
        let deleted = store.delete(DELETED)?;
        self.say(format!(
            "patched {id} to version {}; a patch expecting version {} was refused: {}",
            v_update.version,
            v_update.version - 1,
            conflict
                .err()
                .map_or_else(|| "no error?".to_owned(), |e| e.to_string())
        ));
        self.say(format!(
            "deleted {DELETED} (tombstone version {})",
            deleted.version
        ));
        Ok((before, before_update))
    }

    /// Step 4: reads of the present and the past.
    fn present_and_past(&self, before: Option<&Meta>) -> Result<()> {
        let (store, id) = (&self.store, PATCHED);
        let now = store.get(id)?;
        let then = match before {
            Some(m) => store.get_at(id, m.update_time_micros)?,
            None => None,
        };
        self.say(format!(
            "current  {id}: version {} installed_size {}",
            now.as_ref().map_or(0, |d| d.meta.version),
            now.as_ref()
                .map_or(Value::Null, |d| d.body["installed_size"].clone())
        ));
        if let Some(then) = &then {
            self.say(format!(
                "as of {}: version {} installed_size {}",
                fmt::time(then.meta.update_time_micros),
                then.meta.version,
                then.body["installed_size"]
            ));
        }
        self.say(format!(
            "{DELETED} now: {}; versions in its history: {}",
            if store.get(DELETED)?.is_some() {
                "present"
            } else {
                "absent (deleted)"
            },
            store.history(DELETED)?.len()
        ));
        self.say(format!("history of {id}:"));
        let history = store.history(id)?;
        for d in history.iter().rev().take(5).rev() {
            self.say(format!(
                "  version {:>3}  seq {:>8}  {}  installed_size {}",
                d.meta.version,
                d.meta.seq,
                fmt::time(d.meta.update_time_micros),
                d.body.get("installed_size").cloned().unwrap_or(Value::Null)
            ));
        }
        Ok(())
    }

    /// Step 5: read latencies: random current gets, gets as of `past` (the end of the ingest),
    /// a listing.
    fn read_latencies(&self, past: u64) -> Result<Reads> {
        let store = &self.store;
        let mut rng = Lcg(42);
        let ids: Vec<String> = (0..10_000)
            .map(|_| format!("/packages/pkg-{:06}", rng.next(self.documents)))
            .collect();
        let mut lat = Vec::with_capacity(ids.len());
        for id in &ids {
            let t = Instant::now();
            std::hint::black_box(store.get(id)?);
            lat.push(t.elapsed());
        }
        let get_median = median(lat);
        // As of the end of the ingest: every id existed then, with the body of this run.
        let mut lat = Vec::with_capacity(ids.len());
        for id in &ids {
            let t = Instant::now();
            std::hint::black_box(store.get_at(id, past)?);
            lat.push(t.elapsed());
        }
        let get_at_median = median(lat);
        self.say(format!(
            "10000 random current gets: median {}; gets as of the end of the ingest: median {}",
            us(get_median),
            us(get_at_median)
        ));
        let t = Instant::now();
        let listed = store.list("/packages/").count();
        self.say(format!(
            "listed {listed} current /packages/ documents in {}",
            us(t.elapsed())
        ));
        Ok(Reads {
            get_median,
            get_at_median,
            listed,
        })
    }

    /// Runs a query and times it.
    fn timed(&self, spec: &QuerySpec) -> Result<(QueryResult, Duration)> {
        let t = Instant::now();
        let r = self.store.query(spec)?;
        Ok((r, t.elapsed()))
    }

    /// Step 6: searches over the present and the past. Returns the first query's result and time.
    fn searches(&self, before: Option<&Meta>) -> Result<(QueryResult, Duration)> {
        let id = PATCHED;
        let python = strata::parse_query(
            "_kind:package AND section:python AND installed_size:[1000 TO 20000}",
        )?;
        let (now_r, now_t) = self.timed(
            &QuerySpec::new(python.clone())
                .count(true)
                .limit(3)
                .sort(SortKey::desc("installed_size")),
        )?;
        self.say(format!(
            "query `_kind:package AND section:python AND installed_size:[1000 TO 20000}}`: {} matches now ({}), largest: {}",
            now_r.count.unwrap_or(0),
            us(now_t),
            now_r.documents.iter().map(|d| format!("{} ({})", d.meta.id, d.body["installed_size"])).collect::<Vec<_>>().join(", ")
        ));
        if let Some(m) = before {
            let (then_r, then_t) = self.timed(
                &QuerySpec::new(python)
                    .count(true)
                    .limit(0)
                    .snapshot(Snapshot::AsOf(m.update_time_micros)),
            )?;
            self.say(format!(
                "the same query as of {}: {} matches ({})",
                fmt::time(m.update_time_micros),
                then_r.count.unwrap_or(0),
                us(then_t)
            ));
        }
        let (text_r, text_t) = self.timed(
            &QuerySpec::new(strata::parse_query("\"small library\" AND rust")?)
                .count(true)
                .limit(0),
        )?;
        self.say(format!(
            "full text `\"small library\" AND rust`: {} matches ({})",
            text_r.count.unwrap_or(0),
            us(text_t)
        ));
        let (all_r, all_t) = self.timed(
            &QuerySpec::new(Query::term("_id", id))
                .snapshot(Snapshot::AllVersions)
                .count(true)
                .limit(0),
        )?;
        self.say(format!(
            "all versions of {id}: {} ({})",
            all_r.count.unwrap_or(0),
            us(all_t)
        ));
        Ok((now_r, now_t))
    }

    /// Step 6, continued: a grouped count, and read-your-writes.
    fn groups_and_fresh_writes(&self) -> Result<()> {
        let (groups, groups_t) = self.timed(
            &QuerySpec::new(Query::kind("package"))
                .limit(0)
                .group_by(GroupBy::new("section")),
        )?;
        self.say(format!(
            "packages per section ({}): {}",
            us(groups_t),
            groups
                .groups
                .iter()
                .map(|g| format!("{} {}", g.key, g.count))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // Read-your-writes: a query right after a write sees it, committed to the index or not.
        let t = Instant::now();
        self.store.put(
            "/packages/fresh",
            "package",
            json!({"section": "fresh", "installed_size": 1}),
        )?;
        let fresh = self.store.query(
            &QuerySpec::new(Query::term("section", "fresh"))
                .count(true)
                .limit(0),
        )?;
        self.say(format!(
            "put then query `section:fresh`: {} match, write + query {}",
            fresh.count.unwrap_or(0),
            us(t.elapsed())
        ));
        Ok(())
    }

    /// Step 7: collections and continuous queries: a put into a collection and its event. Returns
    /// the id put.
    fn collection(&self) -> Result<String> {
        let (store, run) = (&self.store, self.run);
        let big = "section:python AND installed_size:>=10000";
        store.define_collection(
            "big-python",
            &QuerySpec::new(strata::parse_query(big)?)
                .sort(SortKey::desc("installed_size"))
                .limit(5),
            CollectionOptions::default().retention(Retention::default().max_versions(10)),
        )?;
        let collection = store.collection("big-python")?;
        let members = collection.count()?;
        let mut sub = collection.subscribe(SubscribeOptions::default().live_count(true))?;
        let target = format!("/packages/pkg-{:06}", run % self.documents);
        let t = Instant::now();
        store.put(
            &target,
            "package",
            json!({"name": "joined", "section": "python", "installed_size": 10_000 + run}),
        )?;
        let event = sub.recv_timeout(Duration::from_secs(10))?;
        let event_latency = t.elapsed();
        self.say(format!(
            "collection big-python (`{big}`, definition version {}): {members} members; \
             a put of {target} into it sent {} (live count {}) {} after the write began",
            collection.definition().version,
            event.as_ref().map_or_else(
                || "no event?".to_owned(),
                |e| format!("{:?} seq {}", e.kind, e.seq())
            ),
            event.as_ref().and_then(|e| e.count).unwrap_or(0),
            us(event_latency)
        ));
        Ok(target)
    }

    /// Step 7, continued: a query task, and its second page (from the same snapshot) after
    /// `target` is deleted.
    fn query_task(&self, target: &str) -> Result<()> {
        let tasks = self.store.tasks();
        let spec = QuerySpec::new(Query::kind("package"))
            .limit(100)
            .count(true);
        let t = Instant::now();
        let first = tasks.run(
            &spec,
            TaskOptions::default().deadline(Duration::from_secs(30)),
        )?;
        let first_t = t.elapsed();
        self.store.delete(target)?;
        let t = Instant::now();
        let second = match &first.next_page {
            Some(token) => tasks.page(token)?.documents.len(),
            None => 0,
        };
        self.say(format!(
            "a query task: the first 100 of {} packages in {}; page 2 ({second} documents) from the \
             same snapshot, after a delete, in {}",
            first.count.unwrap_or(0),
            us(first_t),
            us(t.elapsed())
        ));
        Ok(())
    }
}
