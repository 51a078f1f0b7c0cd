//! Atomic batches of writes.

use serde_json::Value;

pub use storage::Expect;

/// Options of one write: an expected version and an expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Condition on the document's newest version, checked atomically with the batch.
    pub expect: Expect,
    /// When the new version expires, microseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

impl WriteOptions {
    /// Sets the expected version condition.
    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// Sets the expiry: microseconds since the epoch, a [`std::time::SystemTime`] or a
    /// [`crate::Timestamp`].
    pub fn expires_at(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.expires_at = Some(time.into().as_micros());
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Put { kind: String, body: Value },
    Patch { patch: Value },
    Delete,
}

#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub id: String,
    pub kind: OpKind,
    pub options: WriteOptions,
}

/// An atomic batch: after a crash either all of its versions exist or none, and a failed
/// condition writes nothing.
///
/// ```
/// use serde_json::json;
/// use strata::{Batch, Expect, Store, Options};
/// let store = Store::open_in_memory(Options::default())?;
/// store.put("/a", "item", json!({"n": 1}))?;
/// let metas = store.write(
///     Batch::new()
///         .put("/b", "item", json!({"n": 2}))
///         .patch_if("/a", json!({"n": 3}), Expect::Version(0))
///         .delete("/b"),
/// )?;
/// assert_eq!(metas.len(), 3);
/// assert!(metas[2].deleted);
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) time: Option<u64>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Commits the batch with this update time (microseconds since the epoch, a
    /// [`std::time::SystemTime`] or a [`crate::Timestamp`]), for imports and replicas. It must be later than the store's last update time
    /// ([`crate::Error::TimeNotLater`]) and at most [`crate::Options::max_time_ahead`] ahead of
    /// the clock ([`crate::Error::TimeTooFarAhead`]).
    pub fn at_time(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.time = Some(time.into().as_micros());
        self
    }

    /// Replaces the body of `id` (creating it if needed).
    pub fn put(self, id: impl Into<String>, kind: impl Into<String>, body: Value) -> Self {
        self.put_with(id, kind, body, WriteOptions::default())
    }

    /// [`Batch::put`] if the newest version matches `expect`.
    pub fn put_if(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        body: Value,
        expect: Expect,
    ) -> Self {
        self.put_with(id, kind, body, WriteOptions::default().expect(expect))
    }

    /// [`Batch::put`] with options.
    pub fn put_with(
        mut self,
        id: impl Into<String>,
        kind: impl Into<String>,
        body: Value,
        options: WriteOptions,
    ) -> Self {
        self.ops.push(Op {
            id: id.into(),
            kind: OpKind::Put {
                kind: kind.into(),
                body,
            },
            options,
        });
        self
    }

    /// Applies an RFC 7386 merge patch (a JSON object) to the newest body of `id`.
    pub fn patch(self, id: impl Into<String>, patch: Value) -> Self {
        self.patch_with(id, patch, WriteOptions::default())
    }

    /// [`Batch::patch`] if the newest version matches `expect`.
    pub fn patch_if(self, id: impl Into<String>, patch: Value, expect: Expect) -> Self {
        self.patch_with(id, patch, WriteOptions::default().expect(expect))
    }

    /// [`Batch::patch`] with options.
    pub fn patch_with(
        mut self,
        id: impl Into<String>,
        patch: Value,
        options: WriteOptions,
    ) -> Self {
        self.ops.push(Op {
            id: id.into(),
            kind: OpKind::Patch { patch },
            options,
        });
        self
    }

    /// Writes a tombstone for `id`.
    pub fn delete(self, id: impl Into<String>) -> Self {
        self.delete_if(id, Expect::Any)
    }

    /// [`Batch::delete`] if the newest version matches `expect`.
    pub fn delete_if(mut self, id: impl Into<String>, expect: Expect) -> Self {
        self.ops.push(Op {
            id: id.into(),
            kind: OpKind::Delete,
            options: WriteOptions::default().expect(expect),
        });
        self
    }
}
