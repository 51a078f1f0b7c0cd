//! Continuous queries (docs/DESIGN.md §6): a feed thread follows the log and tests every new version
//! against each subscription's matcher (the same matcher the index agrees with).
//!
//! Slow consumers: each subscription has a bounded buffer. When it is full the feed *pauses
//! that subscription* (the log is its backlog) and goes on with the others; once the consumer
//! takes an event the subscription catches up from the log. Writers never wait for a
//! subscriber, no event is dropped, and a dropped subscription is forgotten.
//!
//! `options.rs` and `event.rs` are what a subscriber gives and gets, `feed.rs` the thread below
//! the store, `api.rs` [`Store::subscribe`](crate::Store::subscribe) and the handle above it.

pub(crate) mod api;
pub(crate) mod event;
pub(crate) mod feed;
pub(crate) mod options;

pub use api::Subscription;
pub use event::{Event, EventKind};
pub use options::SubscribeOptions;
