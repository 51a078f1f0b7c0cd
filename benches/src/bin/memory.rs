//! Resident memory of Strata's version index per version.
//!
//! For each store shape it loads a store (small `{"n": ..}` bodies: the index does not hold
//! bodies, and small ones keep the load quick), then runs itself again in a fresh process that
//! reads `/proc/self/status`, opens the store with `Store::open` and reads it again. The index is
//! on the heap, so the figure is the growth of `RssAnon`; `VmRSS` also counts the pages of mapped
//! segments that recovery touched, which the kernel can drop at will.
//!
//! `cargo run --release -p strata-benches --bin memory [-- DOCS VERSIONS_PER_DOC [BATCH]]`
//!
//! Stores are loaded in batches of `BATCH` documents (default 1000, as in the criterion
//! fixtures); the open time printed depends on it.

use std::path::Path;
use std::process::Command;

use strata::{Options, Store};
use strata_benches::{id, load, memory_status, BenchEngine, Plan, StrataEngine};

/// The store shapes measured by default: 1M versions as 1M documents of one version, and as
/// 100k documents of ten.
const SHAPES: [(u64, u64); 2] = [(1_000_000, 1), (100_000, 10)];

/// Documents per committed batch, as in the criterion fixtures.
const BATCH: u64 = 1000;

/// Name of the log directory inside a Strata data directory (private to the facade).
const LOG_DIR: &str = "log";

fn main() -> strata_benches::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir, docs, per_doc] = &args[..] {
        if flag == "--measure" {
            return measure(Path::new(dir), docs.parse()?, per_doc.parse()?);
        }
    }
    let (shapes, batch) = match &args[..] {
        [] => (SHAPES.to_vec(), BATCH),
        [docs, per_doc] => (vec![(docs.parse()?, per_doc.parse()?)], BATCH),
        [docs, per_doc, batch] => (vec![(docs.parse()?, per_doc.parse()?)], batch.parse()?),
        _ => return Err("usage: memory [DOCS VERSIONS_PER_DOC [BATCH]]".into()),
    };
    println!("| documents | versions per document | versions | RssAnon growth per version | VmRSS growth per version | engine's index estimate per version | id bytes per document | id bytes per version | open time (batches of {batch}) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (docs, per_doc) in shapes {
        let dir = tempfile::Builder::new()
            .prefix("strata-memory-")
            .tempdir()?;
        let plan = Plan {
            docs,
            versions_per_doc: per_doc,
            batch,
            seed: 1,
            history_versions: 0,
            small_bodies: true,
        };
        eprintln!("loading {docs} documents x {per_doc} versions in batches of {batch}");
        {
            let engine = StrataEngine::open(dir.path())?;
            load(&[&engine as &dyn BenchEngine], &plan)?;
        }
        let status = Command::new(std::env::current_exe()?)
            .args([
                "--measure",
                &dir.path().display().to_string(),
                &docs.to_string(),
                &per_doc.to_string(),
            ])
            .status()?;
        if !status.success() {
            return Err(format!("the measuring process failed: {status}").into());
        }
    }
    Ok(())
}

/// Runs in a fresh process: the growth of resident memory over `Store::open`.
fn measure(dir: &Path, docs: u64, per_doc: u64) -> strata_benches::Result<()> {
    let before = memory_status().ok_or("no /proc/self/status")?;
    let store = Store::open(dir, Options::default())?;
    let after = memory_status().ok_or("no /proc/self/status")?;
    let versions = store.last_seq();
    let open_ms = store.open_stats().open_micros as f64 / 1000.0;
    if versions != docs * per_doc {
        return Err(format!(
            "the store holds {versions} versions, not {}",
            docs * per_doc
        )
        .into());
    }
    drop(store);
    // The facade has no stats yet; the engine's own estimate comes from the storage crate.
    let (engine, _) = storage::Engine::open(&dir.join(LOG_DIR), storage::EngineOptions::default())?;
    let counts = engine.counts();
    let id_bytes: u64 = (0..docs).map(|n| id(n).len() as u64).sum();
    let per_version = |bytes: u64| bytes as f64 / versions as f64;
    println!(
        "| {docs} | {per_doc} | {versions} | {:.1} B | {:.1} B | {:.1} B | {:.1} B | {:.1} B | {open_ms:.0} ms |",
        per_version(after.anon.saturating_sub(before.anon)),
        per_version(after.rss.saturating_sub(before.rss)),
        per_version(counts.index_heap_bytes),
        id_bytes as f64 / docs as f64,
        per_version(id_bytes),
    );
    Ok(())
}
