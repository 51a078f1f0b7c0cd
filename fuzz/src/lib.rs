//! Fuzz targets for Strata. The target bodies live in [`targets`], a file that the workspace's
//! corpus replay test (`tests/fuzz_replay.rs`) includes too, so every committed seed also runs
//! under `cargo test`.

pub mod targets;
