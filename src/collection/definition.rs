//! What is a collection, as stored? The system kind and id prefixes, [`CollectionOptions`],
//! the definition document and its checks, and the members each collection's retention keeps
//! (read straight from the engine and the index, for the maintenance thread). Below the
//! store: it names no `Store`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::document::Document;
use crate::error::{Error, Result};
use crate::options::Retention;
use crate::search::result::{Query, QuerySpec, Snapshot};

/// The kind of the documents that hold collection definitions.
pub const COLLECTION_KIND: &str = "_strata.collection";

/// Ids under this prefix, and kinds under [`SYSTEM_KIND_PREFIX`], belong to the store: user
/// writes to them are rejected and user queries do not see them.
pub const SYSTEM_ID_PREFIX: &str = "/_strata/";

/// See [`SYSTEM_ID_PREFIX`].
pub const SYSTEM_KIND_PREFIX: &str = "_strata.";

pub(crate) const COLLECTION_ID_PREFIX: &str = "/_strata/collections/";

/// Longest collection name, in bytes.
pub const MAX_COLLECTION_NAME: usize = 128;

/// `query` minus the store's own documents.
pub(crate) fn exclude_system(query: &Query) -> Query {
    query.clone().and_not(Query::kind(COLLECTION_KIND))
}

/// Options of a collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CollectionOptions {
    /// Version retention for its members; `None` keeps everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

impl CollectionOptions {
    /// Sets the retention.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Renamed [`CollectionOptions::with_retention`] (setters are `with_*`).
    #[deprecated(note = "use `CollectionOptions::with_retention`")]
    #[doc(hidden)]
    pub fn retention(self, retention: Retention) -> Self {
        self.with_retention(retention)
    }
}

/// A collection definition as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Definition {
    pub(crate) name: String,
    pub(crate) spec: QuerySpec,
    #[serde(default)]
    pub(crate) options: CollectionOptions,
}

/// Checks a collection name: 1..=128 bytes of ASCII letters, digits, `_`, `-` and `.`,
/// starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidCollectionName {
        name: name.chars().take(64).collect(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME {
        return Err(bad("must be 1 to 128 bytes"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("must start with a letter or digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(bad("may hold only ASCII letters, digits, '_', '-' and '.'"));
    }
    Ok(())
}

pub(crate) fn definition_id(name: &str) -> String {
    format!("{COLLECTION_ID_PREFIX}{name}")
}

pub(crate) fn parse_definition(doc: &Document) -> Result<Definition> {
    serde_json::from_value(doc.body.clone()).map_err(|source| Error::Decode {
        id: doc.meta.id.clone(),
        source,
    })
}

/// The documents each collection with a retention holds now, with that retention's rule, read
/// straight from the engine and the index (the maintenance thread holds no store handle).
pub(crate) fn retention_members(
    engine: &storage::Engine,
    index: &query::Index,
    now: u64,
) -> Result<HashMap<String, Vec<storage::RetentionRule>>> {
    let mut members: HashMap<String, Vec<storage::RetentionRule>> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let ids = engine.ids_with_prefix(COLLECTION_ID_PREFIX, after.as_deref(), 256);
        for id in &ids {
            let Some(version) = engine.get(id, storage::Selector::Newest)? else {
                continue;
            };
            if version.meta.tombstone {
                continue;
            }
            let definition: Definition =
                serde_json::from_slice(&version.body).map_err(|source| Error::Decode {
                    id: id.clone(),
                    source,
                })?;
            let Some(retention) = definition.options.retention else {
                continue;
            };
            let rule = retention.rule();
            let mut spec = QuerySpec::new(exclude_system(&definition.spec.query))
                .ids_only(true)
                .limit(MEMBERS_PAGE);
            loop {
                let out = index.search(&spec, now)?;
                for hit in &out.hits {
                    if let Some(v) = engine.get_seq(hit.seq)? {
                        members.entry(v.meta.id).or_default().push(rule);
                    }
                }
                match out.next_page {
                    Some(token) => spec.page = Some(token),
                    None => break,
                }
            }
        }
        if ids.len() < 256 {
            return Ok(members);
        }
        after = ids.last().cloned();
    }
}

/// Members of a collection read per query by [`retention_members`].
const MEMBERS_PAGE: usize = 10_000;

pub(crate) fn check_spec(spec: &QuerySpec) -> Result<()> {
    spec.validate()?;
    if spec.snapshot != Snapshot::Current
        || spec.include_deleted
        || spec.page.is_some()
        || spec.offset != 0
        || spec.group_by.is_some()
    {
        return Err(query::Error::InvalidSpec {
            reason: "a collection is a query over the current state: no snapshot, \
                     include-deleted, page, offset or group"
                .into(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("rust-crates_v1.2").is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", "é", &"x".repeat(129)] {
            assert!(
                matches!(check_name(bad), Err(Error::InvalidCollectionName { .. })),
                "{bad:?}"
            );
        }
    }
}
