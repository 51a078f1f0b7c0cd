//! `strata demo`: the main job of a fresh checkout, on the default data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{
    Batch, CollectionOptions, Expect, GroupBy, Options, Query, QuerySpec, Result, Retention,
    Snapshot, SortKey, Store, SubscribeOptions, TaskOptions,
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

pub(crate) fn run(data: &Path, documents: u64, json_output: bool) -> Result<()> {
    let say = |line: String| {
        if !json_output {
            out!("{line}");
        }
    };
    // The demo updates `pkg-000042`: it needs that many documents.
    let documents = documents.max(100);
    let started = Instant::now();
    let store = Store::open(data, Options::default())?;
    let open_time = started.elapsed();
    // Where the demo writes, in full: the default is relative to the current directory.
    let data = &std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let stats = store.open_stats().clone();
    let run = store
        .get("/demo/state")?
        .and_then(|d| d.body["runs"].as_u64())
        .unwrap_or(0)
        + 1;
    store.put("/demo/state", "demo", json!({ "runs": run }))?;
    say(format!(
        "opened {} in {} ({} versions in {} segments recovered, {} cut from a torn tail); demo run {run}",
        data.display(),
        us(open_time),
        stats.records,
        stats.segments,
        fmt::bytes(stats.truncated_bytes)
    ));

    // 1. Batched, durable ingest.
    let t = Instant::now();
    let mut i = 0;
    let mut ingested_at = 0;
    while i < documents {
        let mut batch = Batch::new();
        for j in i..(i + 1000).min(documents) {
            batch = batch.put(format!("/packages/pkg-{j:06}"), "package", package(j, run));
        }
        ingested_at = store
            .write(batch)?
            .last()
            .map_or(ingested_at, |m| m.update_time_micros);
        i += 1000;
    }
    let ingest = t.elapsed();
    say(format!(
        "ingested {documents} package documents in batches of 1000 (fsync per batch): {}, {:.0} versions/s",
        us(ingest),
        documents as f64 / ingest.as_secs_f64()
    ));

    // 2. Single durable writes.
    let mut lat = Vec::new();
    for k in 0..50 {
        let t = Instant::now();
        store.put(
            &format!("/events/{run}-{k}"),
            "event",
            json!({ "n": k, "run": run }),
        )?;
        lat.push(t.elapsed());
    }
    say(format!(
        "50 single-document durable puts: median {}",
        us(median(lat))
    ));

    // 3. Updates, a conditional write, a delete.
    let id = "/packages/pkg-000042";
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
    let deleted = store.delete("/packages/pkg-000007")?;
    say(format!(
        "patched {id} to version {}; a patch expecting version {} was refused: {}",
        v_update.version,
        v_update.version - 1,
        conflict
            .err()
            .map_or_else(|| "no error?".to_owned(), |e| e.to_string())
    ));
    say(format!(
        "deleted /packages/pkg-000007 (tombstone version {})",
        deleted.version
    ));

    // 4. Reads of the present and the past.
    let now = store.get(id)?;
    let then = match &before {
        Some(m) => store.get_at(id, m.update_time_micros)?,
        None => None,
    };
    say(format!(
        "current  {id}: version {} installed_size {}",
        now.as_ref().map_or(0, |d| d.meta.version),
        now.as_ref()
            .map_or(Value::Null, |d| d.body["installed_size"].clone())
    ));
    if let Some(then) = &then {
        say(format!(
            "as of {}: version {} installed_size {}",
            fmt::time(then.meta.update_time_micros),
            then.meta.version,
            then.body["installed_size"]
        ));
    }
    say(format!(
        "/packages/pkg-000007 now: {}; versions in its history: {}",
        if store.get("/packages/pkg-000007")?.is_some() {
            "present"
        } else {
            "absent (deleted)"
        },
        store.history("/packages/pkg-000007")?.len()
    ));
    say(format!("history of {id}:"));
    let history = store.history(id)?;
    for d in history.iter().rev().take(5).rev() {
        say(format!(
            "  version {:>3}  seq {:>8}  {}  installed_size {}",
            d.meta.version,
            d.meta.seq,
            fmt::time(d.meta.update_time_micros),
            d.body.get("installed_size").cloned().unwrap_or(Value::Null)
        ));
    }

    // 5. Read latencies.
    let mut rng = Lcg(42);
    let ids: Vec<String> = (0..10_000)
        .map(|_| format!("/packages/pkg-{:06}", rng.next(documents)))
        .collect();
    let mut lat = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = Instant::now();
        std::hint::black_box(store.get(id)?);
        lat.push(t.elapsed());
    }
    let get_median = median(lat);
    // As of the end of the ingest: every id existed then, with the body of this run.
    let past = ingested_at;
    let mut lat = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = Instant::now();
        std::hint::black_box(store.get_at(id, past)?);
        lat.push(t.elapsed());
    }
    let get_at_median = median(lat);
    say(format!(
        "10000 random current gets: median {}; gets as of the end of the ingest: median {}",
        us(get_median),
        us(get_at_median)
    ));
    let t = Instant::now();
    let listed = store.list("/packages/").count();
    say(format!(
        "listed {listed} current /packages/ documents in {}",
        us(t.elapsed())
    ));
    // 6. Searches over the present and the past.
    let timed = |spec: &QuerySpec| -> Result<(strata::QueryResult, Duration)> {
        let t = Instant::now();
        let r = store.query(spec)?;
        Ok((r, t.elapsed()))
    };
    let python =
        strata::parse_query("_kind:package AND section:python AND installed_size:[1000 TO 20000}")?;
    let (now_r, now_t) = timed(
        &QuerySpec::new(python.clone())
            .count(true)
            .limit(3)
            .sort(SortKey::desc("installed_size")),
    )?;
    say(format!(
        "query `_kind:package AND section:python AND installed_size:[1000 TO 20000}}`: {} matches now ({}), largest: {}",
        now_r.count.unwrap_or(0),
        us(now_t),
        now_r.documents.iter().map(|d| format!("{} ({})", d.meta.id, d.body["installed_size"])).collect::<Vec<_>>().join(", ")
    ));
    if let Some(m) = &before {
        let (then_r, then_t) = timed(
            &QuerySpec::new(python)
                .count(true)
                .limit(0)
                .snapshot(Snapshot::AsOf(m.update_time_micros)),
        )?;
        say(format!(
            "the same query as of {}: {} matches ({})",
            fmt::time(m.update_time_micros),
            then_r.count.unwrap_or(0),
            us(then_t)
        ));
    }
    let (text_r, text_t) = timed(
        &QuerySpec::new(strata::parse_query("\"small library\" AND rust")?)
            .count(true)
            .limit(0),
    )?;
    say(format!(
        "full text `\"small library\" AND rust`: {} matches ({})",
        text_r.count.unwrap_or(0),
        us(text_t)
    ));
    let (all_r, all_t) = timed(
        &QuerySpec::new(Query::term("_id", id))
            .snapshot(Snapshot::AllVersions)
            .count(true)
            .limit(0),
    )?;
    say(format!(
        "all versions of {id}: {} ({})",
        all_r.count.unwrap_or(0),
        us(all_t)
    ));
    let (groups, groups_t) = timed(
        &QuerySpec::new(Query::kind("package"))
            .limit(0)
            .group_by(GroupBy::new("section")),
    )?;
    say(format!(
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
    store.put(
        "/packages/fresh",
        "package",
        json!({"section": "fresh", "installed_size": 1}),
    )?;
    let fresh = store.query(
        &QuerySpec::new(Query::term("section", "fresh"))
            .count(true)
            .limit(0),
    )?;
    say(format!(
        "put then query `section:fresh`: {} match, write + query {}",
        fresh.count.unwrap_or(0),
        us(t.elapsed())
    ));

    // 7. Collections, continuous queries and tasks.
    let big = "section:python AND installed_size:>=10000";
    store.define_collection(
        "big-python",
        &QuerySpec::new(strata::parse_query(big)?)
            .sort(SortKey::desc("installed_size"))
            .limit(5),
        CollectionOptions::default().with_retention(Retention::default().with_max_versions(10)),
    )?;
    let collection = store.collection("big-python")?;
    let members = collection.count()?;
    let mut sub = collection.subscribe(SubscribeOptions::default().with_live_count(true))?;
    let target = format!("/packages/pkg-{:06}", run % documents);
    let t = Instant::now();
    store.put(
        &target,
        "package",
        json!({"name": "joined", "section": "python", "installed_size": 10_000 + run}),
    )?;
    let event = sub.recv_timeout(Duration::from_secs(10))?;
    let event_latency = t.elapsed();
    say(format!(
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
    let tasks = store.tasks();
    let spec = QuerySpec::new(Query::kind("package"))
        .limit(100)
        .count(true);
    let t = Instant::now();
    let first = tasks.run(
        &spec,
        TaskOptions::default().with_deadline(Duration::from_secs(30)),
    )?;
    let first_t = t.elapsed();
    store.delete(&target)?;
    let t = Instant::now();
    let second = match &first.next_page {
        Some(token) => tasks.page(token)?.documents.len(),
        None => 0,
    };
    say(format!(
        "a query task: the first 100 of {} packages in {}; page 2 ({second} documents) from the \
         same snapshot, after a delete, in {}",
        first.count.unwrap_or(0),
        us(first_t),
        us(t.elapsed())
    ));

    say(format!(
        "the store now holds {} versions; versions before this run's update: {before_update}. Run the demo again to add more history.",
        store.last_seq()
    ));
    say(format!(
        "the demo store is in {} (remove the directory to start over; try `cargo run -- --data {} stats`)",
        data.display(),
        data.display()
    ));
    if json_output {
        out!(
            "{}",
            json!({
                "data": data.display().to_string(),
                "run": run,
                "open_micros": open_time.as_micros() as u64,
                "ingested": documents,
                "ingest_versions_per_second": documents as f64 / ingest.as_secs_f64(),
                "get_median_micros": get_median.as_secs_f64() * 1e6,
                "get_at_median_micros": get_at_median.as_secs_f64() * 1e6,
                "listed": listed,
                "python_matches_now": now_r.count,
                "query_micros": now_t.as_secs_f64() * 1e6,
                "versions": store.last_seq(),
            })
        );
    }
    Ok(())
}
