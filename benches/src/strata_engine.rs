//! The Strata adapter: the public facade, default options.

use std::path::Path;

use serde_json::Value;
use strata::{Batch, Document, Durability, Options, Store};

use crate::engine::{BenchEngine, Doc, Result};

/// The kind every benchmark document is written with.
const KIND: &str = "item";

/// Strata through [`Store`], opened with [`Options::default`]: [`Durability::Sync`] (a commit is
/// acknowledged after `fdatasync` of the log returned; concurrent commits share one sync through
/// group commit), 64 MiB segments.
#[derive(Debug)]
pub struct StrataEngine {
    store: Store,
}

impl StrataEngine {
    /// The store under test, for probes the trait does not cover.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn doc(d: Document) -> Doc {
    Doc {
        version: d.meta.version,
        seq: d.meta.seq,
        time: d.meta.update_time_micros,
        body: d.body,
    }
}

impl BenchEngine for StrataEngine {
    fn name(&self) -> &'static str {
        "strata"
    }

    fn open(dir: &Path) -> Result<Self> {
        let options = Options::default();
        debug_assert_eq!(options.durability, Durability::Sync);
        Ok(StrataEngine {
            store: Store::open(dir, options)?,
        })
    }

    fn put(&self, id: &str, body: Value) -> Result<()> {
        self.store.put(id, KIND, body)?;
        Ok(())
    }

    fn put_batch(&self, docs: Vec<(String, Value)>, time: Option<u64>) -> Result<()> {
        let mut batch = docs
            .into_iter()
            .fold(Batch::new(), |batch, (id, body)| batch.put(id, KIND, body));
        if let Some(time) = time {
            batch = batch.at_time(time);
        }
        self.store.write(batch)?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Doc>> {
        Ok(self.store.get(id)?.map(doc))
    }

    fn get_raw(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.store.get_raw(id)?.map(|d| (d.meta.version, d.body)))
    }

    fn get_at(&self, id: &str, time: u64) -> Result<Option<Doc>> {
        Ok(self.store.get_at(id, time)?.map(doc))
    }

    fn history(&self, id: &str) -> Result<Vec<Doc>> {
        Ok(self.store.history(id)?.into_iter().map(doc).collect())
    }
}
