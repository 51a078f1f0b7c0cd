//! What does a subscriber receive? [`Event`] and its [`EventKind`].

use crate::document::Document;

/// What happened to a matching document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// It matched when the subscription began (replay).
    Existing,
    /// A new version matches; the previous one did not (or there was none).
    Added,
    /// A new version matches, and so did the previous one.
    Updated,
    /// It was deleted while it matched; the document is the tombstone.
    Deleted,
    /// A new version no longer matches, though the previous one did.
    StoppedMatching,
}

/// One change of a continuous query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The version (projected if the spec selects fields; `null` body for a tombstone or with
    /// `ids_only`).
    pub document: Document,
    /// The number of matches after this event, with [`crate::SubscribeOptions::with_live_count`].
    pub count: Option<u64>,
}

impl Event {
    /// The seq of the event's version: resume after it with [`crate::SubscribeOptions::with_from_seq`].
    pub fn seq(&self) -> u64 {
        self.document.meta.seq
    }
}
