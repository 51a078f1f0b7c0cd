//! What a store holds and how it has been doing: counts, sizes on disk, index lag, write and
//! query counts with latency percentiles, and what opening it found (docs/DESIGN.md §7).
//!
//! `counters.rs` is what the running store records into (below it), `api.rs` the
//! [`Store::stats`](crate::Store::stats) report (above it).

mod api;
pub(crate) mod counters;

pub use api::Stats;
pub use counters::OpStats;
