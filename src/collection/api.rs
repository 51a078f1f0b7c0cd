//! What can a user do with collections? Define, drop, read and follow them: the store's
//! collection methods and the [`Collection`] handle.

use serde_json::Value;

use crate::batch::Batch;
use crate::collection::definition::{
    check_name, check_spec, definition_id, parse_definition, CollectionOptions, Definition,
    COLLECTION_ID_PREFIX, COLLECTION_KIND,
};
use crate::document::{Document, Meta};
use crate::error::{Error, Result};
use crate::search::result::{QueryResult, QuerySpec, Snapshot};
use crate::store::Store;
use crate::subscribe::api::Subscription;
use crate::subscribe::options::SubscribeOptions;

/// One version of a collection's definition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CollectionVersion {
    /// The definition document's version, seq and time.
    pub meta: Meta,
    /// The query then; `None` where the collection was dropped.
    pub spec: Option<QuerySpec>,
    /// The options then.
    pub options: CollectionOptions,
}

/// A collection: its current definition (or the one valid at a time, see
/// [`Collection::as_of`]) and the query operations on it.
///
/// ```
/// use serde_json::json;
/// use strata::{CollectionOptions, Query, QuerySpec, Store};
///
/// let store = Store::open_in_memory(Default::default())?;
/// store.put("/pkg/serde", "package", json!({"lang": "rust"}))?;
/// store.put("/pkg/flask", "package", json!({"lang": "python"}))?;
/// store.define_collection("rust", &QuerySpec::new(Query::term("lang", "rust")), CollectionOptions::default())?;
///
/// let rust = store.collection("rust")?;
/// assert_eq!(rust.count()?, 1);
/// store.put("/pkg/tokio", "package", json!({"lang": "rust"}))?;
/// let ids: Vec<String> = rust.list(None)?.documents.into_iter().map(|d| d.meta.id).collect();
/// assert_eq!(ids, ["/pkg/serde", "/pkg/tokio"]);
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Collection {
    store: Store,
    name: String,
    spec: QuerySpec,
    options: CollectionOptions,
    definition: Meta,
    at: Option<u64>,
}

impl Store {
    /// Defines (or redefines) the collection `name` as `spec`. The definition is a versioned
    /// document, so earlier definitions stay readable ([`Collection::history`],
    /// [`Collection::as_of`]). The spec reads the current state; its sort, limit and `select`
    /// are the defaults of [`Collection::list`].
    pub fn define_collection(
        &self,
        name: &str,
        spec: &QuerySpec,
        options: CollectionOptions,
    ) -> Result<Meta> {
        check_name(name)?;
        check_spec(spec)?;
        if let Some(r) = &options.retention {
            r.validate()?;
        }
        let body = serde_json::to_value(Definition {
            name: name.to_owned(),
            spec: spec.clone(),
            options,
        })
        .map_err(|source| Error::Decode {
            id: definition_id(name),
            source,
        })?;
        let mut metas =
            self.write_system(Batch::new().put(definition_id(name), COLLECTION_KIND, body))?;
        metas.pop().ok_or(Error::Closed)
    }

    /// Drops the collection `name` (a tombstone of its definition; the members stay).
    pub fn drop_collection(&self, name: &str) -> Result<Meta> {
        check_name(name)?;
        let mut metas = self
            .write_system(Batch::new().delete(definition_id(name)))
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::UnknownCollection {
                    name: name.to_owned(),
                },
                e => e,
            })?;
        metas.pop().ok_or(Error::Closed)
    }

    /// The collection `name` as currently defined; [`Error::UnknownCollection`] if there is none.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        check_name(name)?;
        let doc = self
            .get(&definition_id(name))?
            .ok_or_else(|| Error::UnknownCollection {
                name: name.to_owned(),
            })?;
        self.collection_from(&doc, None)
    }

    /// Every collection defined now, by name.
    pub fn collections(&self) -> Result<Vec<Collection>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let ids =
                self.inner
                    .engine
                    .ids_with_prefix(COLLECTION_ID_PREFIX, after.as_deref(), 256);
            for id in &ids {
                if let Some(doc) = self.get(id)? {
                    out.push(self.collection_from(&doc, None)?);
                }
            }
            if ids.len() < 256 {
                return Ok(out);
            }
            after = ids.last().cloned();
        }
    }

    /// The collection `name` as it was at `time` (microseconds since the epoch, a
    /// [`std::time::SystemTime`] or a [`crate::Timestamp`]): its definition then, reading its
    /// members then (also for a collection dropped since). [`Error::UnknownCollection`] if it
    /// was not defined then.
    pub fn collection_as_of(
        &self,
        name: &str,
        time: impl Into<crate::Timestamp>,
    ) -> Result<Collection> {
        let time_micros = time.into().as_micros();
        check_name(name)?;
        let doc = self
            .get_at(&definition_id(name), time_micros)?
            .ok_or_else(|| Error::UnknownCollection {
                name: name.to_owned(),
            })?;
        self.collection_from(&doc, Some(time_micros))
    }

    /// Every version of the definition of `name`, oldest first, drops included (also for a
    /// collection dropped since). [`Error::UnknownCollection`] if it never existed.
    pub fn collection_history(&self, name: &str) -> Result<Vec<CollectionVersion>> {
        check_name(name)?;
        let versions = self.history(&definition_id(name))?;
        if versions.is_empty() {
            return Err(Error::UnknownCollection {
                name: name.to_owned(),
            });
        }
        versions
            .into_iter()
            .map(|doc| {
                if doc.meta.deleted || doc.body == Value::Null {
                    return Ok(CollectionVersion {
                        meta: doc.meta,
                        spec: None,
                        options: CollectionOptions::default(),
                    });
                }
                let def = parse_definition(&doc)?;
                Ok(CollectionVersion {
                    meta: doc.meta,
                    spec: Some(def.spec),
                    options: def.options,
                })
            })
            .collect()
    }

    fn collection_from(&self, doc: &Document, at: Option<u64>) -> Result<Collection> {
        let def = parse_definition(doc)?;
        Ok(Collection {
            store: self.clone(),
            name: def.name,
            spec: def.spec,
            options: def.options,
            definition: doc.meta.clone(),
            at,
        })
    }
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its query.
    pub fn spec(&self) -> &QuerySpec {
        &self.spec
    }

    /// Its options.
    pub fn options(&self) -> &CollectionOptions {
        &self.options
    }

    /// The version of the definition this value holds.
    pub fn definition(&self) -> &Meta {
        &self.definition
    }

    /// The time this view reads (microseconds since the epoch), if it is a view of the past
    /// ([`Collection::as_of`]).
    pub fn at(&self) -> Option<u64> {
        self.at
    }

    fn read_spec(&self) -> QuerySpec {
        let spec = self.spec.clone();
        match self.at {
            Some(t) => spec.snapshot(Snapshot::AsOf(t)),
            None => spec,
        }
    }

    /// A page of members, in the spec's order (its limit is the page size); pass the result's
    /// `next_page` to get the next one, from the same snapshot.
    pub fn list(&self, page: Option<&str>) -> Result<QueryResult> {
        let mut spec = self.read_spec();
        spec.page = page.map(str::to_owned);
        self.store.query(&spec)
    }

    /// The number of members.
    pub fn count(&self) -> Result<u64> {
        let spec = self.read_spec().count(true).limit(0);
        Ok(self.store.query(&spec)?.count.unwrap_or(0))
    }

    /// Follows the members' changes (see [`Store::subscribe`]), under the definition this value
    /// holds: a later redefinition does not change the subscription. A view of the past cannot
    /// be followed.
    pub fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription> {
        if self.at.is_some() {
            return Err(query::Error::InvalidSpec {
                reason: "a view of the past cannot be followed".into(),
            }
            .into());
        }
        let mut spec = self.spec.clone();
        spec.count = false;
        self.store.subscribe(&spec, options)
    }

    /// The collection as it was at `time` (see [`Store::collection_as_of`]).
    pub fn as_of(&self, time: impl Into<crate::Timestamp>) -> Result<Collection> {
        self.store.collection_as_of(&self.name, time)
    }

    /// Every version of the definition, oldest first (see [`Store::collection_history`]).
    pub fn history(&self) -> Result<Vec<CollectionVersion>> {
        self.store.collection_history(&self.name)
    }
}
