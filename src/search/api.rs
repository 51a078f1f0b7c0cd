//! How does a store run a query? [`Store::query`] and its interruptible form (the task pool's),
//! the loading of hits, index rebuilds and progress.

use std::sync::Arc;

use serde_json::Value;

use crate::collection::definition::exclude_system;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::search::result::{
    project, Group, IndexProgress, Query, QueryResult, QuerySpec, Snapshot, SortValues,
};
use crate::store::Store;

/// Parses the text query syntax (see the README) into a [`Query`].
///
/// ```
/// let q = strata::parse_query(r#"_kind:package AND description:"web framework" AND NOT priority:optional"#)?;
/// assert!(strata::parse_query("size:[1 TO").is_err());
/// # let _ = q;
/// # Ok::<_, strata::Error>(())
/// ```
pub fn parse_query(text: &str) -> Result<Query> {
    Ok(query::parse(text)?)
}

impl Store {
    /// Runs a query.
    ///
    /// `Current` sees every write acknowledged before the call, whether or not the index has
    /// committed it yet; `AsOf(time)` the versions visible then; `AllVersions` every version.
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Query, QuerySpec, SortKey, Store};
    ///
    /// let store = Store::open_in_memory(Default::default())?;
    /// store.put("/pkg/serde", "package", json!({"section": "rust", "size": 300}))?;
    /// store.put("/pkg/flask", "package", json!({"section": "python", "size": 900}))?;
    /// store.put("/pkg/django", "package", json!({"section": "python", "size": 4000}))?;
    ///
    /// let spec = QuerySpec::new(Query::term("section", "python").and(Query::range("size", ..1000)))
    ///     .count(true);
    /// let result = store.query(&spec)?;
    /// assert_eq!(result.count, Some(1));
    /// assert_eq!(result.documents[0].meta.id, "/pkg/flask");
    ///
    /// // The same in the text syntax, largest first.
    /// let spec = QuerySpec::new(strata::parse_query("_kind:package AND section:python")?)
    ///     .sort(SortKey::desc("size"));
    /// let result = store.query(&spec)?;
    /// let ids: Vec<_> = result.documents.iter().map(|d| d.meta.id.as_str()).collect();
    /// assert_eq!(ids, ["/pkg/django", "/pkg/flask"]);
    /// // What each was sorted by, without parsing bodies.
    /// use strata::Scalar;
    /// assert_eq!(result.sort_values, [[Some(Scalar::Int(4000))], [Some(Scalar::Int(900))]]);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn query(&self, spec: &QuerySpec) -> Result<QueryResult> {
        self.query_interruptible(spec, &Arc::new(query::Interrupt::default()))
    }

    /// [`Store::query_interruptible`], counted in [`Store::stats`].
    pub(crate) fn query_interruptible(
        &self,
        spec: &QuerySpec,
        interrupt: &Arc<query::Interrupt>,
    ) -> Result<QueryResult> {
        let started = std::time::Instant::now();
        let result = self.run_query(spec, interrupt);
        self.inner
            .query_latency
            .record(started.elapsed(), result.is_ok());
        result
    }

    /// [`Store::query`] that stops when `interrupt` fires (tasks' cancel and deadline).
    fn run_query(
        &self,
        spec: &QuerySpec,
        interrupt: &Arc<query::Interrupt>,
    ) -> Result<QueryResult> {
        // The store's own documents (collection definitions) are not the user's.
        let mut user_spec = spec.clone();
        user_spec.query = self.user_query(&spec.query);
        let spec = &user_spec;
        // A compaction that ends between the search and the reading of its hits may have
        // dropped one (an old version of an all-versions query): search again, it no longer
        // finds it.
        let mut attempts = 0;
        loop {
            match self.search_and_load(spec, interrupt) {
                Err(Error::HistoryTrimmed { .. }) if attempts < 3 && spec.page.is_none() => {
                    attempts += 1;
                }
                result => return result,
            }
        }
    }

    fn search_and_load(
        &self,
        spec: &QuerySpec,
        interrupt: &Arc<query::Interrupt>,
    ) -> Result<QueryResult> {
        let out = self
            .inner
            .index
            .search_interruptible(spec, self.now(), interrupt)?;
        // An all-versions query answers the versions the log keeps: one that compaction drops
        // while the query runs is left out rather than failing the query.
        let all_versions = spec.snapshot == Snapshot::AllVersions;
        let load = |hits: Vec<query::Hit>| -> Result<(Vec<Document>, Vec<SortValues>)> {
            let mut documents = Vec::with_capacity(hits.len());
            let mut sort_values = Vec::with_capacity(hits.len());
            for h in hits {
                match self.load_hit(spec, h.seq) {
                    Err(Error::HistoryTrimmed { .. }) if all_versions => {}
                    loaded => {
                        documents.push(loaded?);
                        sort_values.push(h.sort);
                    }
                }
            }
            Ok((documents, sort_values))
        };
        let hits = out.hits.len();
        let (documents, sort_values) = load(out.hits)?;
        // What was left out no longer counts either.
        let left_out = (hits - documents.len()) as u64;
        Ok(QueryResult {
            count: out.count.map(|c| c.saturating_sub(left_out)),
            documents,
            sort_values,
            next_page: out.next_page,
            groups: out
                .groups
                .into_iter()
                .map(|g| {
                    let (documents, sort_values) = load(g.hits)?;
                    Ok(Group {
                        key: g.key,
                        count: g.count,
                        documents,
                        sort_values,
                    })
                })
                .collect::<Result<_>>()?,
            snapshot_seq: out.snapshot_seq,
            trimmed: out.trimmed,
        })
    }

    fn load_hit(&self, spec: &QuerySpec, seq: u64) -> Result<Document> {
        let Some(version) = self.inner.engine.get_seq(seq)? else {
            // Compaction dropped it after the search found it.
            let oldest_complete = self.inner.engine.horizon(None).map_or(0, |(_, time)| time);
            return Err(Error::HistoryTrimmed {
                id: None,
                oldest_complete,
            });
        };
        if spec.ids_only {
            return Ok(Document {
                meta: version.meta.into(),
                body: Value::Null,
            });
        }
        let mut doc = self.document(version)?;
        if let Some(paths) = &spec.select {
            if !doc.meta.deleted {
                doc.body = project(&doc.body, paths);
            }
        }
        Ok(doc)
    }

    /// Discards the index and rebuilds it from the log; returns when it covers every version
    /// written before the call. Queries stay exact meanwhile (they wait for the rebuild or read
    /// the log).
    pub fn rebuild_index(&self) -> Result<()> {
        self.refuse_read_only("rebuilding the index")?;
        Ok(self.inner.index.rebuild()?)
    }

    /// Blocks until the index has committed everything written so far. Queries never need
    /// this (they see the uncommitted tail); it is for tools, benchmarks and tests.
    pub fn wait_for_index(&self) -> Result<()> {
        Ok(self.inner.index.wait_committed(self.last_seq())?)
    }

    /// How far the indexer has come.
    pub fn index_progress(&self) -> IndexProgress {
        self.inner.index.progress()
    }
}

impl Store {
    /// `query` without the store's own documents (collection definitions).
    pub(crate) fn user_query(&self, query: &Query) -> Query {
        exclude_system(query)
    }
}
