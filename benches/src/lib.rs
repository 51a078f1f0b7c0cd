//! Strata's benchmarks: one [`BenchEngine`] trait with an adapter per engine, the generated data
//! they all load, and the fixtures shared by the criterion benches and the memory probe.
//!
//! Every adapter gets the same documents (fixed seeds, about 1 KB of JSON each), the same update
//! times and the same durability: a commit returns only once it would survive a power cut.

mod data;
mod engine;
mod fixture;
mod rss;
mod sqlite_engine;
mod strata_engine;

pub use data::{document, id, rng, DocPool, Rng, BASE_TIME};
pub use engine::{BenchEngine, Doc, Result};
pub use fixture::{load, Plan};
pub use rss::{memory_status, MemoryStatus};
pub use sqlite_engine::SqliteEngine;
pub use sqlite_engine::SQLITE_SETTINGS;
pub use strata_engine::StrataEngine;
