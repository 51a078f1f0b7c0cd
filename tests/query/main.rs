//! Integration tests of queries, written from the outside as a user of `Store::query` would
//! (docs/DESIGN.md §2 and §5).
//!
//! - `semantics`: Xenon's behaviours (versions, as-of, ranges, text, groups), the text syntax,
//!   sorting, projection, typed errors and expiry, each run against three index states: every
//!   version still in the uncommitted tail, everything committed, and a mix of both.
//! - `dates`: body dates of every year RFC 3339 can write, alike in the tail, the index and a
//!   reopened index; an index of the old date encoding is rebuilt.
//! - `paging`: cursor paging on a pinned snapshot while documents change between pages.
//! - `concurrency`: `Current` queries while other threads update the documents they match.
//! - `index`: the index lifecycle: reuse on reopen, damage and rebuild, back-pressure.
//! - `faults`: index writes failing on a full disk; the indexer recovers in the same process.
//! - `words`: `field:word` on strings longer than the keyword limit, in the tail, the index, a
//!   reopened index and an index written before the rule.
//! - `crash`: a child process writing with sync durability is killed with SIGKILL; the reopened
//!   store's queries agree with its reads.

#[path = "../support/child.rs"]
mod child;
#[path = "../support/civil.rs"]
mod civil;
mod concurrency;
mod crash;
mod dates;
mod faults;
#[path = "../support/files.rs"]
mod files;
mod index;
mod paging;
mod semantics;
mod sort_values;
mod words;

use std::collections::BTreeSet;
use std::time::Duration;

use strata::{
    Durability, IndexOptions, MaintenanceOptions, Options, QueryResult, QuerySpec, Store,
};
use tempfile::TempDir;

/// Which state of the index a semantic check runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The index never commits on its own (commit interval of an hour, a million versions per
    /// commit): every query evaluates the in-memory tail.
    Tail,
    /// Every query first waits for the index to commit everything written.
    Committed,
    /// Like `Tail`, but [`Db::step`] commits: versions written before a step are in the index,
    /// those after it in the tail.
    Mixed,
}

pub const MODES: [Mode; 3] = [Mode::Tail, Mode::Committed, Mode::Mixed];

/// Index options under which nothing is committed unless someone waits for it.
pub fn tail_index_options() -> IndexOptions {
    let mut o = IndexOptions::default();
    o.commit_interval = Duration::from_secs(3600);
    o.commit_versions = 1_000_000;
    o.max_lag = 2_000_000;
    o.writer_threads = 1;
    o
}

/// A store in a temporary directory, and the index state its queries should exercise.
pub struct Db {
    pub store: Store,
    pub mode: Mode,
    _dir: TempDir,
}

impl Db {
    pub fn open(mode: Mode) -> Db {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Expiry tombstones written in the background would make the versions these tests
        // compare depend on timing; tests/lifecycle covers them.
        let options = Options::default()
            .with_durability(Durability::None)
            .with_index_options(tail_index_options())
            .with_maintenance(MaintenanceOptions::default().with_expire(false));
        let store = Store::open(dir.path(), options).expect("open the store");
        Db {
            store,
            mode,
            _dir: dir,
        }
    }

    /// Marks the end of a write phase: in `Committed` and `Mixed` modes the index commits
    /// everything written so far.
    pub fn step(&self) {
        if self.mode != Mode::Tail {
            self.store.wait_for_index().expect("wait for the index");
        }
    }

    /// Runs a query that must succeed.
    pub fn query(&self, spec: &QuerySpec) -> QueryResult {
        match self.try_query(spec) {
            Ok(r) => r,
            Err(e) => panic!("[{:?}] query {spec:?} failed: {e}", self.mode),
        }
    }

    pub fn try_query(&self, spec: &QuerySpec) -> strata::Result<QueryResult> {
        if self.mode == Mode::Committed {
            self.store.wait_for_index().expect("wait for the index");
        }
        let result = self.store.query(spec);
        let scores = spec.sort.iter().any(|k| k.field == "_score");
        if self.mode == Mode::Tail && !scores {
            // The tail path really was taken (score sorts alone force a commit).
            assert_eq!(
                self.store.index_progress().committed_seq,
                0,
                "the index committed in tail mode"
            );
        }
        result
    }

    /// The ids of the documents a query returns, in order.
    pub fn ids(&self, spec: &QuerySpec) -> Vec<String> {
        ids(&self.query(spec))
    }

    /// (id, version) of the documents a query returns, in order.
    pub fn versions(&self, spec: &QuerySpec) -> Vec<(String, u64)> {
        versions(&self.query(spec))
    }
}

/// Runs `check` on a fresh store in each mode; a failure names the mode.
pub fn in_all_modes(check: impl Fn(&Db)) {
    for mode in MODES {
        let db = Db::open(mode);
        eprintln!("--- mode {mode:?}");
        check(&db);
    }
}

pub fn ids(r: &QueryResult) -> Vec<String> {
    r.documents.iter().map(|d| d.meta.id.clone()).collect()
}

pub fn versions(r: &QueryResult) -> Vec<(String, u64)> {
    r.documents
        .iter()
        .map(|d| (d.meta.id.clone(), d.meta.version))
        .collect()
}

pub fn id_set(r: &QueryResult) -> BTreeSet<String> {
    r.documents.iter().map(|d| d.meta.id.clone()).collect()
}

/// `strs(["a", "b"])` as owned strings, for comparisons with [`ids`].
pub fn strs<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Microseconds since the epoch as an RFC 3339 UTC date with six fraction digits.
pub fn rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let (y, m, d) = civil::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(
        rfc3339(1_767_225_600_000_000 + 3_723_000_042),
        "2026-01-01T01:02:03.000042Z"
    );
    assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
}
