//! Crash, corruption and fault tests of the store (STYLE.md "Tests" 3 and 4).
//!
//! - `sync_points`: power loss at every sync of a scripted workload on the simulated backend,
//!   in every crash mode (drop, torn prefix, garbage, keep all).
//! - `torn`: the last batch of a real log cut at every byte offset.
//! - `corruption`: flipped bytes in sealed and active segments, future format versions.
//! - `faults`: EIO and ENOSPC on the Nth write or fsync, poisoning and reopening.
//! - `kill`: a child process writing with sync durability, killed with SIGKILL, again and
//!   again on the same directory (`STRESS=1` for 200 kills).
//! - `restore`: restores crashed at every sync point of the simulated backend, failing on every
//!   write and sync, and the real `strata restore` SIGKILLed at random moments (`STRESS=1` for
//!   60 kills): each leaves the complete store, a directory open refuses, or nothing.

#[path = "../support/child.rs"]
mod child;
mod compaction;
mod corruption;
mod faults;
#[path = "../support/files.rs"]
mod files;
mod kill;
#[path = "../support/patch.rs"]
mod patch;
mod restore;
mod support;
mod sync_points;
mod torn;
