//! What is a store, and how do writes and point reads go? [`Store`] and what it holds
//! (`Inner`: the engine, the index, the task pool, the feed, maintenance, counters), writes,
//! point reads of the present and the past, history and listing. Below it stand the engine
//! pieces it owns, which never name `Store`; above it the rooms that add `impl Store` blocks
//! (opening in `open.rs`, queries, tasks, subscriptions, collections, lifecycle, stats,
//! verify, backup), which this file never imports.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use storage::{Action, Engine, Expect, Selector, Version, WriteOp};

use crate::batch::{Batch, Body, Op, OpKind, WriteOptions};
use crate::collection::definition::{SYSTEM_ID_PREFIX, SYSTEM_KIND_PREFIX};
use crate::document::{raw_document, to_document, Document, Meta, RawDocument};
use crate::error::{Error, Result};
use crate::lifecycle::maintenance::{Lifecycle, Maintenance};
use crate::options::Options;
use crate::stats::counters::{Failures, Latencies};
use crate::subscribe::feed::Feed;
use crate::tasks::pool::Pool;
use crate::util::{now_micros, refuse_read_only};
use crate::validate;
use crate::watch::Watch;

/// What opening a store found: how much it read and whether it had to repair a torn tail.
pub use storage::OpenStats;

#[derive(Debug)]
pub(crate) struct Inner {
    // Field order is drop order: the maintenance thread, the task pool, the continuous-query
    // feed and the index (and their threads, which read the engine) go first.
    pub(crate) maintenance: Maintenance,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) tasks: Pool,
    pub(crate) feed: Feed,
    pub(crate) index: Arc<query::Index>,
    pub(crate) watch: Arc<Watch>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) options: Options,
    pub(crate) open_stats: OpenStats,
    pub(crate) index_report: query::IndexOpenReport,
    pub(crate) path: Option<PathBuf>,
    /// The store lives in a directory of the real file system (not in memory, not simulated).
    pub(crate) on_disk: bool,
    pub(crate) open_micros: u64,
    pub(crate) write_latency: Latencies,
    pub(crate) query_latency: Latencies,
    pub(crate) failures: Arc<Failures>,
}

/// An open store of versioned JSON documents. Cheap to clone; every clone is the same store,
/// and it can be shared across threads.
///
/// ```
/// use serde_json::json;
/// use strata::{Options, Store};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let store = Store::open(dir.path(), Options::default())?;
/// let v0 = store.put("/users/ada", "user", json!({"name": "Ada", "langs": ["en"]}))?;
/// store.patch("/users/ada", json!({"langs": ["en", "fr"]}))?;
/// let doc = store.get("/users/ada")?.expect("present");
/// assert_eq!(doc.meta.version, 1);
/// assert_eq!(doc.body["langs"][1], "fr");
/// let then = store.get_at("/users/ada", v0.update_time_micros)?.expect("present then");
/// assert_eq!(then.meta.version, 0);
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// A version is visible at `time` unless it is a tombstone or has expired by then.
fn visible_at(v: &Version, time: u64) -> bool {
    !v.meta.tombstone && v.meta.expires_at.is_none_or(|e| e > time)
}

impl Store {
    /// On a store opened with [`Store::open_read_only`], reads what the writing process added
    /// since the open or the last refresh (the index's newest commit, then the log's newest
    /// complete batches) and returns whether anything changed; subscriptions then get the new
    /// events. Returns `Ok(false)` at once on a store opened for writing, which sees its own
    /// writes as they are made.
    pub fn refresh(&self) -> Result<bool> {
        let changed = self.inner.index.refresh()?;
        if changed {
            self.inner.watch.committed(self.inner.engine.last_seq());
        }
        Ok(changed)
    }

    /// Whether the store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.engine.is_read_only()
    }

    /// [`Error::ReadOnly`] for `op` on a read-only store.
    pub(crate) fn refuse_read_only(&self, op: &'static str) -> Result<()> {
        refuse_read_only(&self.inner.engine, op)
    }

    /// The time current reads judge expiry at: the clock, or the store's last update time if that
    /// is later (explicit batch times may run ahead of the clock), as the writer does.
    pub(crate) fn now(&self) -> u64 {
        now_micros().max(self.inner.engine.last_time())
    }

    /// [`Store::now`], read only when `version` has an expiry to judge (the hot path has none).
    fn now_for(&self, version: Option<&Version>) -> u64 {
        if version.is_some_and(|v| v.meta.expires_at.is_some()) {
            self.now()
        } else {
            0
        }
    }

    /// What opening the index found: the seq it had committed, and whether it was discarded
    /// (and why) to be rebuilt from the log.
    pub fn index_open_report(&self) -> &query::IndexOpenReport {
        &self.inner.index_report
    }

    /// The data directory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What opening found and repaired.
    pub fn open_stats(&self) -> &OpenStats {
        &self.inner.open_stats
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The newest seq: the number of versions ever committed.
    pub fn last_seq(&self) -> u64 {
        self.inner.engine.last_seq()
    }

    /// The origin of the newest batch written with one ([`Batch::replicated`]): the position
    /// in its log of record that a replica resumes after. `None` if no batch carried one.
    pub fn last_origin(&self) -> Option<u64> {
        self.inner.engine.last_origin()
    }

    /// Makes every acknowledged write durable now (for buffered durability).
    pub fn flush(&self) -> Result<()> {
        Ok(self.inner.engine.flush()?)
    }

    /// Replaces the body of `id` with `body` (a JSON object), creating the document if needed.
    pub fn put(&self, id: &str, kind: &str, body: Value) -> Result<Meta> {
        self.write_one(Batch::new().put(id, kind, body))
    }

    /// [`Store::put`] if the newest version matches `expect`; otherwise [`Error::Conflict`].
    pub fn put_if(&self, id: &str, kind: &str, body: Value, expect: Expect) -> Result<Meta> {
        self.write_one(Batch::new().put_if(id, kind, body, expect))
    }

    /// [`Store::put`] with options (expected version, expiry).
    pub fn put_with(
        &self,
        id: &str,
        kind: &str,
        body: Value,
        options: WriteOptions,
    ) -> Result<Meta> {
        self.write_one(Batch::new().put_with(id, kind, body, options))
    }

    /// [`Store::put`] of any serializable value (a struct, a map…): it must serialize to a
    /// JSON object, whose keys keep the order it serializes them in (a struct's field order).
    /// A value that does not serialize is [`Error::Decode`].
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct User { name: String, age: u32 }
    ///
    /// let store = strata::Store::open_in_memory(Default::default())?;
    /// store.put_as("/users/cy", "user", &User { name: "Cy".into(), age: 7 })?;
    /// let raw = store.get_raw("/users/cy")?.expect("present");
    /// assert_eq!(raw.body, br#"{"name":"Cy","age":7}"#);
    /// let cy: User = store.get_as("/users/cy")?.expect("present");
    /// assert_eq!(cy.age, 7);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(&self, id: &str, kind: &str, value: &T) -> Result<Meta> {
        self.write_one(Batch::new().put_as(id, kind, value))
    }

    /// [`Store::put`] of JSON text (`&str`, `String`, `&[u8]`, `Vec<u8>`), without building a
    /// `Value`: it is checked against the same [`crate::Limits`] as any body (one JSON object,
    /// size, depth, field names; typed errors, nothing written) and stored as given, so
    /// [`Store::get_raw`] returns the same bytes (surrounding whitespace cut). Only a body
    /// whose objects repeat a key is re-encoded (the last value wins, as when it is read).
    ///
    /// ```
    /// let store = strata::Store::open_in_memory(Default::default())?;
    /// store.put_raw("/pkg/serde", "package", r#"{"name": "serde", "deps": ["serde_derive"]}"#)?;
    /// let raw = store.get_raw("/pkg/serde")?.expect("present");
    /// assert_eq!(raw.body, br#"{"name": "serde", "deps": ["serde_derive"]}"#);
    /// assert!(matches!(
    ///     store.put_raw("/pkg/bad", "package", "[1, 2]"),
    ///     Err(strata::Error::InvalidBody { .. })
    /// ));
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn put_raw(&self, id: &str, kind: &str, json: impl Into<Vec<u8>>) -> Result<Meta> {
        self.write_one(Batch::new().put_raw(id, kind, json))
    }

    /// Applies an RFC 7386 merge patch (a JSON object) to the newest body of `id`.
    pub fn patch(&self, id: &str, patch: Value) -> Result<Meta> {
        self.write_one(Batch::new().patch(id, patch))
    }

    /// [`Store::patch`] if the newest version matches `expect`.
    pub fn patch_if(&self, id: &str, patch: Value, expect: Expect) -> Result<Meta> {
        self.write_one(Batch::new().patch_if(id, patch, expect))
    }

    /// Writes a tombstone for `id`: it disappears from current reads, its history stays.
    pub fn delete(&self, id: &str) -> Result<Meta> {
        self.write_one(Batch::new().delete(id))
    }

    /// [`Store::delete`] if the newest version matches `expect`.
    pub fn delete_if(&self, id: &str, expect: Expect) -> Result<Meta> {
        self.write_one(Batch::new().delete_if(id, expect))
    }

    /// A single operation's error is its reason, not [`Error::BatchOp`].
    fn write_one(&self, batch: Batch) -> Result<Meta> {
        let mut metas = self.write(batch).map_err(Error::into_reason)?;
        metas.pop().ok_or(Error::Closed)
    }

    /// Commits a batch atomically and returns the new versions in batch order.
    ///
    /// An operation that fails fails the batch with [`Error::BatchOp`], naming the operation
    /// (index and id) and holding the reason ([`Error::reason`]); nothing is written. Errors of
    /// the batch as a whole (its [`Batch::at_time`], its size, IO) are returned as they are.
    ///
    /// Ids under [`crate::SYSTEM_ID_PREFIX`] and kinds under [`crate::SYSTEM_KIND_PREFIX`]
    /// belong to the store (collection definitions) and are rejected.
    pub fn write(&self, batch: Batch) -> Result<Vec<Meta>> {
        let started = std::time::Instant::now();
        let result = self.write_checked(batch, false);
        self.inner
            .write_latency
            .record(started.elapsed(), result.is_ok());
        result
    }

    /// Writes the store's own documents.
    pub(crate) fn write_system(&self, batch: Batch) -> Result<Vec<Meta>> {
        self.write_checked(batch, true).map_err(Error::into_reason)
    }

    fn write_checked(&self, mut batch: Batch, system: bool) -> Result<Vec<Meta>> {
        self.refuse_read_only("writing")?;
        if batch.origin.is_some() && batch.time.is_some() {
            return Err(Error::InvalidOption(
                "a replicated batch takes its time from its origin: it cannot have at_time too"
                    .into(),
            ));
        }
        let limits = &self.inner.options.limits;
        // Every value deeper than the limit is refused before anything recurses through it
        // (merge patch, encoding, clone, drop), and taken apart without recursion: a caller's
        // value may nest deeper than the stack allows.
        let len = batch.ops.len();
        let mut too_deep = None;
        for (index, op) in batch.ops.iter_mut().enumerate() {
            if let OpKind::Put {
                body: Body::Value(value),
                ..
            }
            | OpKind::Patch { patch: value } = &mut op.kind
            {
                if validate::deeper_than(value, limits.max_depth) {
                    validate::dismantle(std::mem::take(value));
                    too_deep.get_or_insert_with(|| (index, op.id.clone()));
                }
            }
        }
        if let Some((index, id)) = too_deep {
            let error = Error::DocumentTooDeep {
                id: id.clone(),
                limit: limits.max_depth,
            };
            return Err(error.in_batch(index, len, &id));
        }
        let mut ops = Vec::with_capacity(len);
        let mut expiring = false;
        for (index, op) in batch.ops.into_iter().enumerate() {
            let id = op.id.clone();
            let op = self
                .storage_op(op, system, &mut expiring)
                .map_err(|e| e.in_batch(index, len, &id))?;
            ops.push(op);
        }
        self.inner.index.wait_for_room();
        let result = match batch.origin {
            None => self.inner.engine.commit(ops, batch.time),
            Some(origin) => self.inner.engine.commit_replicated(ops, origin),
        };
        if let Ok(metas) = &result {
            self.inner.index.notify();
            if let Some(last) = metas.last() {
                self.inner.watch.committed(last.seq);
            }
            if expiring {
                // The maintenance thread sleeps until the next expiry it knows of.
                self.inner.maintenance.wake();
            }
        }
        let metas = result.map_err(|e| Error::from_commit(e, len))?;
        Ok(metas.into_iter().map(Meta::from).collect())
    }

    /// Validates one operation of a batch and turns it into the storage engine's form.
    fn storage_op(&self, op: Op, system: bool, expiring: &mut bool) -> Result<WriteOp> {
        let limits = &self.inner.options.limits;
        validate::id(&op.id, limits)?;
        if !system && op.id.starts_with(SYSTEM_ID_PREFIX) {
            return Err(Error::InvalidId {
                id: op.id.chars().take(64).collect(),
                reason: format!("ids under {SYSTEM_ID_PREFIX} belong to the store"),
            });
        }
        if let (false, OpKind::Put { kind, .. }) = (system, &op.kind) {
            if kind.starts_with(SYSTEM_KIND_PREFIX) {
                return Err(Error::InvalidKind {
                    kind: kind.chars().take(64).collect(),
                    reason: format!("kinds under {SYSTEM_KIND_PREFIX} belong to the store"),
                });
            }
        }
        let WriteOptions {
            expect,
            expires_at,
            time,
        } = op.options;
        *expiring |= expires_at.is_some();
        let action = match op.kind {
            OpKind::Put { kind, body } => {
                validate::kind(&kind, limits)?;
                let body = match body {
                    Body::Value(body) => validate::body(&op.id, &body, limits)?,
                    Body::Raw(bytes) => validate::raw_body(&op.id, bytes, limits)?,
                    Body::Unserializable(message) => {
                        return Err(Error::Decode {
                            id: op.id,
                            source: serde::ser::Error::custom(message),
                        })
                    }
                };
                Action::Put { kind, body }
            }
            OpKind::Patch { patch } => {
                if !patch.is_object() {
                    return Err(Error::InvalidBody {
                        id: op.id,
                        reason: "a merge patch must be a JSON object".into(),
                    });
                }
                let id = op.id.clone();
                let limits = limits.clone();
                Action::Update(Box::new(move |current: &[u8]| {
                    let mut body: Value =
                        serde_json::from_slice(current).map_err(|source| Error::Decode {
                            id: id.clone(),
                            source,
                        })?;
                    validate::merge_patch(&mut body, &patch);
                    Ok(validate::body(&id, &body, &limits)?)
                }))
            }
            OpKind::Delete => Action::Delete,
        };
        Ok(WriteOp {
            id: op.id,
            expect,
            action,
            expires_at,
            time,
        })
    }

    pub(crate) fn document(&self, version: Version) -> Result<Document> {
        to_document(version)
    }
}

impl Store {
    /// A version is visible at `time` unless it is a tombstone or expired by then.
    fn visible(&self, version: Option<Version>, time: u64) -> Result<Option<Document>> {
        match version {
            Some(v) if visible_at(&v, time) => self.document(v).map(Some),
            _ => Ok(None),
        }
    }

    /// The current version of `id`; `None` if it does not exist, is deleted or has expired.
    pub fn get(&self, id: &str) -> Result<Option<Document>> {
        let v = self.inner.engine.get(id, Selector::Newest)?;
        let now = self.now_for(v.as_ref());
        self.visible(v, now)
    }

    /// The current body of `id` as a `T`, decoded straight from the stored bytes.
    pub fn get_as<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        self.get_raw(id)?.map(|d| d.body_as()).transpose()
    }

    /// The current version of `id` with its body as stored JSON bytes (no parsing); `None` if it
    /// does not exist, is deleted or has expired.
    pub fn get_raw(&self, id: &str) -> Result<Option<RawDocument>> {
        match self.inner.engine.get(id, Selector::Newest)? {
            Some(v) if visible_at(&v, self.now_for(Some(&v))) => Ok(Some(raw_document(v))),
            _ => Ok(None),
        }
    }

    /// [`Store::get_at`] with the body as stored JSON bytes (no parsing).
    ///
    /// ```
    /// # use serde_json::json;
    /// let store = strata::Store::open_in_memory(Default::default())?;
    /// let v0 = store.put_raw("/d", "doc", r#"{"b":1,"a":2}"#)?;
    /// store.put("/d", "doc", json!({"b": 3}))?;
    /// let then = store.get_raw_at("/d", v0.update_time_micros)?.expect("present then");
    /// assert_eq!(then.body, br#"{"b":1,"a":2}"#);
    /// let first = store.get_raw_version("/d", 0)?.expect("version 0");
    /// assert_eq!(first.body, then.body);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn get_raw_at(
        &self,
        id: &str,
        time: impl Into<crate::Timestamp>,
    ) -> Result<Option<RawDocument>> {
        let time_micros = time.into().as_micros();
        match self.inner.engine.get(id, Selector::AtTime(time_micros))? {
            Some(v) if visible_at(&v, time_micros) => Ok(Some(raw_document(v))),
            _ => Ok(None),
        }
    }

    /// [`Store::get_version`] with the body as stored JSON bytes (no parsing; empty for a
    /// tombstone).
    pub fn get_raw_version(&self, id: &str, version: u64) -> Result<Option<RawDocument>> {
        Ok(self
            .inner
            .engine
            .get(id, Selector::Version(version))?
            .map(raw_document))
    }

    /// Version `version` of `id`, tombstones included (their body is `null`).
    pub fn get_version(&self, id: &str, version: u64) -> Result<Option<Document>> {
        match self.inner.engine.get(id, Selector::Version(version))? {
            Some(v) => self.document(v).map(Some),
            None => Ok(None),
        }
    }

    /// The version of `id` visible at `time` (docs/DESIGN.md §2): microseconds since the epoch, a
    /// [`std::time::SystemTime`] or a [`crate::Timestamp`]. `None` if it did not exist, was
    /// deleted or had expired then.
    pub fn get_at(&self, id: &str, time: impl Into<crate::Timestamp>) -> Result<Option<Document>> {
        let time_micros = time.into().as_micros();
        let v = self.inner.engine.get(id, Selector::AtTime(time_micros))?;
        self.visible(v, time_micros)
    }

    /// Every retained version of `id`, oldest first, tombstones included.
    pub fn history(&self, id: &str) -> Result<Vec<Document>> {
        self.inner
            .engine
            .history(id)?
            .into_iter()
            .map(|v| self.document(v))
            .collect()
    }

    /// The current documents whose id starts with `prefix`, in id order, read from one snapshot
    /// taken when this call is made (writes made while iterating are not seen).
    ///
    /// ```
    /// # use serde_json::json;
    /// # let store = strata::Store::open_in_memory(Default::default())?;
    /// store.put("/users/b", "user", json!({}))?;
    /// store.put("/users/a", "user", json!({}))?;
    /// store.put("/teams/x", "team", json!({}))?;
    /// let ids: Vec<String> = store
    ///     .list("/users/")
    ///     .map(|d| d.map(|d| d.meta.id))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(ids, ["/users/a", "/users/b"]);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn list(&self, prefix: &str) -> List {
        List {
            store: self.clone(),
            prefix: prefix.to_owned(),
            after: None,
            pending: VecDeque::new(),
            at_seq: self.inner.engine.last_seq(),
            time: self.now(),
            exhausted: false,
        }
    }
}

/// The iterator of [`Store::list`].
#[derive(Debug)]
#[must_use]
pub struct List {
    store: Store,
    prefix: String,
    after: Option<String>,
    pending: VecDeque<String>,
    at_seq: u64,
    time: u64,
    exhausted: bool,
}

const LIST_CHUNK: usize = 256;

impl Iterator for List {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Result<Document>> {
        loop {
            if self.pending.is_empty() {
                if self.exhausted {
                    return None;
                }
                let ids = self.store.inner.engine.ids_with_prefix(
                    &self.prefix,
                    self.after.as_deref(),
                    LIST_CHUNK,
                );
                self.exhausted = ids.len() < LIST_CHUNK;
                self.after = ids.last().cloned();
                self.pending.extend(ids);
                if self.pending.is_empty() {
                    return None;
                }
            }
            let id = self.pending.pop_front()?;
            if id.starts_with(SYSTEM_ID_PREFIX) {
                continue;
            }
            let found = self
                .store
                .inner
                .engine
                .get(&id, Selector::AtSeq(self.at_seq))
                .map_err(Error::from)
                .and_then(|v| self.store.visible(v, self.time));
            match found {
                Ok(Some(doc)) => return Some(Ok(doc)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_sync_and_cheap_to_share() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Store>();
    }
}
