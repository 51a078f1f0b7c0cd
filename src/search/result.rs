//! What does a query answer? [`QueryResult`] and its [`Group`]s, the query model's types as
//! the facade shows them, and the projection of a body to the selected paths (queries and
//! subscription events both project). Below the store: it names no `Store`.

use serde_json::{Map, Value};

use crate::document::Document;

pub use query::{
    BoolQuery, Field, GroupBy, IndexOpenReport, IndexProgress, Query, QuerySpec, Range, Scalar,
    Snapshot, SortKey, SystemField, Trimmed,
};

/// What one document was sorted by: its value for each sort key ([`QueryResult::sort_values`]).
pub(crate) type SortValues = Vec<Option<Scalar>>;

/// The answer to [`crate::Store::query`].
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
