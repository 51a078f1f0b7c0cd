//! Loading a store of a planned shape into one or more engines, with identical data and times.

use std::time::Instant;

use serde_json::{json, Value};

use crate::data::{document, id, BASE_TIME};
use crate::engine::{BenchEngine, Result};

/// The shape of a generated store.
///
/// Round `r` writes version `r` of every document `0..docs`, in batches of `batch` documents;
/// batch `k` (counted over all rounds) commits at `BASE_TIME + k` milliseconds. Document
/// [`Plan::HISTORY_ID`] gets one more version in each of the first `history_versions` batches.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Documents.
    pub docs: u64,
    /// Versions written of each document.
    pub versions_per_doc: u64,
    /// Documents per committed batch.
    pub batch: u64,
    /// Seed of the bodies.
    pub seed: u64,
    /// Versions of [`Plan::HISTORY_ID`].
    pub history_versions: u64,
    /// `{"n": <number>}` bodies instead of 1 KB documents (for memory probes, where only the
    /// index matters and the load should be quick).
    pub small_bodies: bool,
}

impl Plan {
    /// The document that gets `history_versions` versions.
    pub const HISTORY_ID: &'static str = "/history/00000000";

    /// Versions in the store once loaded.
    pub fn versions(&self) -> u64 {
        self.docs * self.versions_per_doc + self.history_versions
    }

    /// Batches committed.
    pub fn batches(&self) -> u64 {
        self.versions_per_doc * self.docs.div_ceil(self.batch)
    }

    /// Update time of batch `k`.
    pub fn time(k: u64) -> u64 {
        BASE_TIME + k * 1000
    }

    /// Update time of the last batch.
    pub fn last_time(&self) -> u64 {
        Self::time(self.batches().saturating_sub(1))
    }

    fn body(&self, n: u64) -> Value {
        if self.small_bodies {
            json!({ "n": n })
        } else {
            document(self.seed, n)
        }
    }
}

/// Loads `plan` into every engine of `engines` (each gets the same batches), printing progress
/// to stderr. Each batch is one durable commit.
pub fn load(engines: &[&dyn BenchEngine], plan: &Plan) -> Result<()> {
    let started = Instant::now();
    let mut k = 0u64;
    let mut next_report = 100;
    for round in 0..plan.versions_per_doc {
        let mut first = 0;
        while first < plan.docs {
            let last = (first + plan.batch).min(plan.docs);
            let mut docs: Vec<(String, Value)> = (first..last)
                .map(|n| (id(n), plan.body(round * plan.docs + n)))
                .collect();
            if k < plan.history_versions {
                docs.push((Plan::HISTORY_ID.to_owned(), plan.body(u64::MAX - k)));
            }
            let time = Some(Plan::time(k));
            if let Some((last_engine, others)) = engines.split_last() {
                for engine in others {
                    engine.put_batch(docs.clone(), time)?;
                }
                last_engine.put_batch(docs, time)?;
            }
            k += 1;
            first = last;
            if k >= next_report {
                next_report += 100;
                eprint!(
                    "\r  loaded {k}/{} batches ({:.0?})",
                    plan.batches(),
                    started.elapsed()
                );
            }
        }
    }
    if k < plan.history_versions {
        return Err(format!(
            "history_versions {} is over the {k} batches",
            plan.history_versions
        )
        .into());
    }
    eprintln!(
        "\r  loaded {} versions in {:.1?}",
        plan.versions(),
        started.elapsed()
    );
    Ok(())
}
