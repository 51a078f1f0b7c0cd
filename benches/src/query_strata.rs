//! Strata as a query engine: `Store::write` in batches, `Store::query` with a `QuerySpec`.

use std::path::Path;

use strata::{Batch, Durability, Options, Query, QuerySpec, Snapshot, SortKey, Store};

use crate::corpus::Version;
use crate::engine::Result;
use crate::query_engine::{At, Cursor, Filter, Order, QueryEngine};

/// The kind every package is written with.
const KIND: &str = "package";

/// Strata through [`Store`], opened with [`Options::default`]: [`Durability::Sync`], the index
/// in the store's directory with the default [`strata::IndexOptions`] (commits every 500 ms or
/// 50 000 versions, 128 MiB of indexing memory, one indexing thread per core).
#[derive(Debug)]
pub struct StrataQueryEngine {
    store: Store,
}

impl StrataQueryEngine {
    /// The store under test.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn query(filter: &Filter) -> Query {
    match filter {
        Filter::Term { field, value } => Query::term(field, value.as_str()),
        Filter::Range { field, lo, hi } => Query::range(field, *lo..*hi),
        Filter::Text { field, word } => Query::matches(field, word.as_str()),
        Filter::Bool { must, must_not } => {
            let mut clauses = must.iter().map(query);
            let first = clauses.next().unwrap_or(Query::All);
            let q = clauses.fold(first, Query::and);
            must_not.iter().map(query).fold(q, Query::and_not)
        }
    }
}

fn snapshot(at: At) -> Snapshot {
    match at {
        At::Current => Snapshot::Current,
        At::Time(t) => Snapshot::AsOf(t),
    }
}

fn ids(result: strata::QueryResult) -> Vec<String> {
    result.documents.into_iter().map(|d| d.meta.id).collect()
}

impl QueryEngine for StrataQueryEngine {
    fn name(&self) -> &'static str {
        "strata"
    }

    fn open(dir: &Path) -> Result<Self> {
        let options = Options::default();
        debug_assert_eq!(options.durability, Durability::Sync);
        Ok(StrataQueryEngine {
            store: Store::open(dir, options)?,
        })
    }

    fn ingest(&self, batch: Vec<Version>, time: u64) -> Result<()> {
        let batch = batch
            .into_iter()
            .fold(Batch::new(), |b, v| b.put(v.id, KIND, v.body));
        self.store.write(batch.at_time(time))?;
        Ok(())
    }

    fn settle(&self) -> Result<()> {
        Ok(self.store.wait_for_index()?)
    }

    fn put(&self, version: Version) -> Result<()> {
        self.store.put(&version.id, KIND, version.body)?;
        Ok(())
    }

    fn supports_as_of(&self) -> bool {
        true
    }

    fn count(&self, filter: &Filter, at: At) -> Result<u64> {
        let spec = QuerySpec::new(query(filter))
            .snapshot(snapshot(at))
            .count(true)
            .limit(0);
        self.store
            .query(&spec)?
            .count
            .ok_or_else(|| "no count in the result".into())
    }

    fn top(&self, filter: &Filter, order: Order, limit: usize, at: At) -> Result<Vec<String>> {
        let key = match order {
            Order::Relevance => SortKey::desc("_score"),
            Order::Desc(field) => SortKey::desc(field),
        };
        let spec = QuerySpec::new(query(filter))
            .snapshot(snapshot(at))
            .sort(key)
            .limit(limit)
            .ids_only(true);
        Ok(ids(self.store.query(&spec)?))
    }

    fn page(
        &self,
        filter: &Filter,
        field: &'static str,
        limit: usize,
        cursor: &Cursor,
    ) -> Result<(Vec<String>, Cursor)> {
        let mut spec = QuerySpec::new(query(filter))
            .sort(SortKey::desc(field))
            .limit(limit)
            .ids_only(true);
        match cursor {
            Cursor::Start => {}
            Cursor::Token(token) => spec = spec.page(token.clone()),
            other => return Err(format!("strata pages with tokens, not {other:?}").into()),
        }
        let result = self.store.query(&spec)?;
        let next = result.next_page.clone().map_or(Cursor::End, Cursor::Token);
        Ok((ids(result), next))
    }
}
