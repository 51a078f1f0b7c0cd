//! Queries over the versions: the present, any past moment, or all versions.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::document::Document;
use crate::error::{Error, Result};
use crate::store::Store;

pub use query::{
    BoolQuery, Field, GroupBy, IndexOpenReport, IndexProgress, Query, QuerySpec, Range, Scalar,
    Snapshot, SortKey, SystemField, Trimmed,
};

/// What one document was sorted by: its value for each sort key ([`QueryResult::sort_values`]).
type SortValues = Vec<Option<Scalar>>;

/// The answer to [`Store::query`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryResult {
    /// The exact number of matches, when [`QuerySpec::count`] asked for it.
    pub count: Option<u64>,
    /// The page of matching versions with their metadata; bodies are projected when
    /// [`QuerySpec::select`] is set and `null` when [`QuerySpec::ids_only`] is.
    pub documents: Vec<Document>,
    /// What each document was sorted by, one entry per document in the same order: its value
    /// for each of [`QuerySpec::sort`]'s keys, in the keys' order (empty without sort keys;
    /// the tie-breaker `_seq` is `meta.seq`). `None` where the document has no value; a field
    /// with several values gives its smallest; a date is the RFC 3339 text of its second in
    /// UTC (`"2026-01-02T00:00:00Z"`); `_updated` is microseconds and `_score` the relevance.
    pub sort_values: Vec<Vec<Option<Scalar>>>,
    /// Pass it as [`QuerySpec::page`] to get the next page (same snapshot), if there is one.
    pub next_page: Option<String>,
    /// Groups, largest first, when [`QuerySpec::group_by`] asked for them.
    pub groups: Vec<Group>,
    /// The seq of the snapshot the query read.
    pub snapshot_seq: u64,
    /// Set when the snapshot is before the retention horizon and the answer (asked for with
    /// [`QuerySpec::allow_trimmed`]) leaves out documents whose state then is unknown: how
    /// many, and which (up to [`QuerySpec::unknown_ids`]).
    pub trimmed: Option<Trimmed>,
}

/// One group of a grouped query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Group {
    /// The field's value; `null` groups the documents without one.
    pub key: Value,
    /// Matching versions in the group.
    pub count: u64,
    /// The first of them in the query's order.
    pub documents: Vec<Document>,
    /// What each of `documents` was sorted by ([`QueryResult::sort_values`]).
    pub sort_values: Vec<Vec<Option<Scalar>>>,
}

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

/// Keeps only `paths` of `body` (each a dotted path; arrays keep, per element, the selected
/// parts of their objects). Recurses at most as deep as `body` nests: a body read from the log,
/// which serde_json parsed (at most 128 levels).
pub(crate) fn project(body: &Value, paths: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        if let Some(v) = select(body, &segments) {
            merge(&mut out, v);
        }
    }
    out
}

/// The part of `v` under `segments`, rebuilt with its nesting.
fn select(v: &Value, segments: &[&str]) -> Option<Value> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(v.clone());
    };
    match v {
        Value::Object(map) => {
            let inner = select(map.get(*first)?, rest)?;
            let mut m = Map::new();
            m.insert((*first).to_owned(), inner);
            Some(Value::Object(m))
        }
        Value::Array(items) => {
            let picked: Vec<Value> = items.iter().filter_map(|i| select(i, segments)).collect();
            (!picked.is_empty()).then_some(Value::Array(picked))
        }
        _ => None,
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (into, from) => *into = from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_nesting() {
        let body = json!({"a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}], "g": 3});
        let p = project(&body, &["a.b".into(), "d.e".into(), "missing".into()]);
        assert_eq!(p, json!({"a": {"b": 1}, "d": [{"e": 1}]}));
    }
}
