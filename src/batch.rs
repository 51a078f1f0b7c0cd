//! Atomic batches of writes.

use serde::Serialize;
use serde_json::Value;

pub use storage::{Expect, Origin};

/// Options of one write: an expected version, an expiry and an update time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Condition on the document's newest version, checked atomically with the batch.
    pub expect: Expect,
    /// When the new version expires, microseconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// This operation's own update time, microseconds since the Unix epoch (see
    /// [`Batch::timed`]).
    pub time: Option<u64>,
}

impl WriteOptions {
    /// Sets the expected version condition.
    pub fn with_expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// Sets the expiry: microseconds since the epoch, a [`std::time::SystemTime`] or a
    /// [`crate::Timestamp`].
    pub fn with_expires_at(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.expires_at = Some(time.into().as_micros());
        self
    }

    /// Sets the operation's own update time (see [`Batch::timed`]): microseconds since the
    /// epoch, a [`std::time::SystemTime`] or a [`crate::Timestamp`].
    pub fn with_at_time(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.time = Some(time.into().as_micros());
        self
    }
    /// Renamed [`WriteOptions::with_expect`] (setters are `with_*`).
    #[deprecated(note = "use `WriteOptions::with_expect`")]
    #[doc(hidden)]
    pub fn expect(self, expect: Expect) -> Self {
        self.with_expect(expect)
    }

    /// Renamed [`WriteOptions::with_expires_at`] (setters are `with_*`).
    #[deprecated(note = "use `WriteOptions::with_expires_at`")]
    #[doc(hidden)]
    pub fn expires_at(self, time: impl Into<crate::Timestamp>) -> Self {
        self.with_expires_at(time)
    }

    /// Renamed [`WriteOptions::with_at_time`] (setters are `with_*`).
    #[deprecated(note = "use `WriteOptions::with_at_time`")]
    #[doc(hidden)]
    pub fn at_time(self, time: impl Into<crate::Timestamp>) -> Self {
        self.with_at_time(time)
    }
}

/// The body of a put, as the caller gave it.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A value, checked and encoded at commit (keys in the value's order).
    Value(Value),
    /// JSON text, checked at commit and stored as given when it is acceptable
    /// ([`crate::validate::raw_body`]).
    Raw(Vec<u8>),
    /// What serde_json said when the caller's value did not serialize; the commit fails with
    /// [`crate::Error::Decode`] naming the document.
    Unserializable(String),
}

#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Put { kind: String, body: Body },
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
/// **Times.** Every version carries an update time. By default the whole batch shares one,
/// from the clock (later than the store's last one) or from [`Batch::at_time`]. To import
/// history, each operation may carry its own ([`Batch::timed`], [`WriteOptions::with_at_time`]):
/// each later than the time of the operation before it (the first: later than the store's last
/// time). An operation without a time of its own shares the previous operation's (the first:
/// the batch's). Reads as of a time between two operations' times see the earlier ones only,
/// as if they had been separate batches; the batch stays atomic against crashes and failed
/// conditions.
///
/// **Errors.** An operation that fails (a conflict, a missing document, a time not later than
/// the one before it, an invalid id or body ...) fails the batch with [`crate::Error::BatchOp`],
/// which names its index and id and holds the reason.
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
///
/// // History with a time per version, in one batch (and one sync).
/// let t = metas[2].update_time_micros;
/// let metas = store.write(
///     Batch::new()
///         .put("/c", "item", json!({"n": 1}))
///         .timed(t + 10)
///         .put("/c", "item", json!({"n": 2}))
///         .timed(t + 20),
/// )?;
/// assert_eq!(metas[1].update_time_micros, t + 20);
/// let then = store.get_at("/c", t + 15)?.unwrap();
/// assert_eq!(then.body["n"], 1);
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) time: Option<u64>,
    pub(crate) origin: Option<Origin>,
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
    /// the clock ([`crate::Error::TimeTooFarAhead`]). Operations with a time of their own
    /// ([`Batch::timed`]) keep theirs.
    pub fn at_time(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.time = Some(time.into().as_micros());
        self
    }

    /// Marks the batch as applied from a log of record (a replica of a cluster partition):
    /// `origin.position` (e.g. the stream sequence number) is stored with the batch, atomically,
    /// and [`crate::Store::last_origin`] tells where to resume after a crash. The batch's time is
    /// `max(origin.min_time, last + 1 µs)` whatever the clock says, so replicas applying the same
    /// batches in the same order hold the same versions. The position must be later than the
    /// store's last origin ([`crate::Error::OriginNotLater`]); with [`Batch::at_time`] too the
    /// batch is [`crate::Error::InvalidOption`]. Conditions are checked as for any batch, and a
    /// batch that fails them stores no origin.
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Batch, Origin, Store};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), Default::default())?;
    /// let origin = Origin { position: 7, min_time: 1_767_225_600_000_000 };
    /// let metas = store.write(Batch::new().put("/a", "doc", json!({"n": 1})).replicated(origin))?;
    /// assert_eq!(metas[0].update_time_micros, 1_767_225_600_000_000);
    /// assert_eq!(store.last_origin(), Some(7));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn replicated(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Gives the operation added last its own update time (microseconds since the epoch, a
    /// [`std::time::SystemTime`] or a [`crate::Timestamp`]), for
    /// imports of history: it must be later than the time of the operation before it (for the
    /// first operation, than the store's last update time), else the batch fails with
    /// [`crate::Error::BatchOp`] holding [`crate::Error::TimeNotLater`]; and at most
    /// [`crate::Options::max_time_ahead`] ahead of the clock. On an empty batch it is
    /// [`Batch::at_time`].
    pub fn timed(mut self, time: impl Into<crate::Timestamp>) -> Self {
        let micros = time.into().as_micros();
        match self.ops.last_mut() {
            Some(op) => op.options.time = Some(micros),
            None => self.time = Some(micros),
        }
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
        self.put_with(id, kind, body, WriteOptions::default().with_expect(expect))
    }

    /// [`Batch::put`] with options.
    pub fn put_with(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        body: Value,
        options: WriteOptions,
    ) -> Self {
        self.push_put(id.into(), kind.into(), Body::Value(body), options)
    }

    /// [`Batch::put`] of any serializable value (a struct, a map…); it must serialize to a JSON
    /// object. Its keys keep the order it serializes them in (a struct's field order). A value
    /// that does not serialize fails the batch with [`crate::Error::Decode`].
    pub fn put_as<T: Serialize + ?Sized>(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        value: &T,
    ) -> Self {
        self.put_as_with(id, kind, value, WriteOptions::default())
    }

    /// [`Batch::put_as`] with options.
    pub fn put_as_with<T: Serialize + ?Sized>(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        value: &T,
        options: WriteOptions,
    ) -> Self {
        let body = match serde_json::to_value(value) {
            Ok(value) => Body::Value(value),
            Err(e) => Body::Unserializable(e.to_string()),
        };
        self.push_put(id.into(), kind.into(), body, options)
    }

    /// [`Batch::put`] of JSON text (`&str`, `String`, `&[u8]`, `Vec<u8>`). It is checked
    /// against the same [`crate::Limits`] as any body and must be one JSON object; it is stored
    /// as given (whitespace and key order kept, surrounding whitespace cut), and re-encoded
    /// only if an object repeats a key (the last value wins, as when it is read).
    pub fn put_raw(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        json: impl Into<Vec<u8>>,
    ) -> Self {
        self.put_raw_with(id, kind, json, WriteOptions::default())
    }

    /// [`Batch::put_raw`] with options.
    pub fn put_raw_with(
        self,
        id: impl Into<String>,
        kind: impl Into<String>,
        json: impl Into<Vec<u8>>,
        options: WriteOptions,
    ) -> Self {
        self.push_put(id.into(), kind.into(), Body::Raw(json.into()), options)
    }

    fn push_put(mut self, id: String, kind: String, body: Body, options: WriteOptions) -> Self {
        self.ops.push(Op {
            id,
            kind: OpKind::Put { kind, body },
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
        self.patch_with(id, patch, WriteOptions::default().with_expect(expect))
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
    pub fn delete_if(self, id: impl Into<String>, expect: Expect) -> Self {
        self.delete_with(id, WriteOptions::default().with_expect(expect))
    }

    /// [`Batch::delete`] with options (an expiry is ignored: a tombstone does not expire).
    pub fn delete_with(mut self, id: impl Into<String>, options: WriteOptions) -> Self {
        self.ops.push(Op {
            id: id.into(),
            kind: OpKind::Delete,
            options,
        });
        self
    }
}
