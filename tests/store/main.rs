//! Integration tests of the facade: a model test against an in-memory map, concurrent writers
//! and readers, and the behaviour of each API call (see docs/DESIGN.md §2).

mod api;
mod batch_times;
mod bodies;
#[path = "../support/civil.rs"]
mod civil;
mod concurrency;
mod durations;
mod model;
#[path = "../support/patch.rs"]
mod patch;
mod query_model;
mod read_only;
mod replica;

use std::path::Path;

use strata::{Durability, Options, Store};

/// Options that make segments roll often and skip fsync where durability is not the point.
fn fast_options() -> Options {
    Options::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

/// Opens a store in `dir`, panicking with the error if that fails.
fn open(dir: &Path, options: Options) -> Store {
    match Store::open(dir, options) {
        Ok(store) => store,
        Err(e) => panic!("opening {} failed: {e}", dir.display()),
    }
}

/// Whether the `STRESS` environment variable asks for long runs.
fn stress() -> bool {
    std::env::var("STRESS").is_ok_and(|v| v == "1")
}
