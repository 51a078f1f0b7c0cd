//! Strata's benchmarks: for storage, one [`BenchEngine`] trait with an adapter per engine (Strata,
//! SQLite), the generated data they all load, and the fixtures shared by the criterion benches and
//! the memory probe; for queries, one [`QueryEngine`] trait with an adapter per engine (Strata,
//! tantivy alone, SQLite with FTS5) and the package [`Corpus`] they all load.
//!
//! Every adapter gets the same documents (fixed seeds, about 1 KB of JSON each), the same update
//! times and the same durability: a commit returns only once it would survive a power cut.

mod corpus;
mod data;
mod engine;
mod fixture;
mod query_engine;
mod query_sqlite;
mod query_strata;
mod query_tantivy;
mod rss;
mod runner;
mod sqlite;
mod sqlite_engine;
mod strata_engine;

pub use corpus::{
    doc_id, package, Corpus, Version, MAINTAINERS, PRIORITIES, SECTIONS, TAGS, TEXT_WORD,
};
pub use data::{document, id, rng, DocPool, Rng, BASE_TIME};
pub use engine::{BenchEngine, Doc, Result};
pub use fixture::{load, Plan};
pub use query_engine::{At, Cursor, Filter, Order, QueryEngine};
pub use query_sqlite::{SqliteFtsEngine, SQLITE_FTS_SETTINGS};
pub use query_strata::StrataQueryEngine;
pub use query_tantivy::{TantivyEngine, TANTIVY_SETTINGS};
pub use rss::{memory_status, MemoryStatus};
pub use runner::{criterion_dir, load_average, timed_runs, Summary};
pub use sqlite::connect as sqlite_connect;
pub use sqlite_engine::{SqliteEngine, SQLITE_FILE, SQLITE_SETTINGS};
pub use strata_engine::StrataEngine;

/// The number in environment variable `name`, or `default` when it is unset.
///
/// # Panics
/// If the variable is set to something that is not a number (a bench setting typo).
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Whether a bench runs in its quick mode (`STRATA_BENCH_QUICK=1` or criterion's `--test`),
/// where every size is tiny.
pub fn quick_mode() -> bool {
    std::env::var("STRATA_BENCH_QUICK").is_ok_and(|v| v == "1")
        || std::env::args().any(|a| a == "--test")
}
