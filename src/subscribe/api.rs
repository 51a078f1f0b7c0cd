//! How does a user follow a query? [`Store::subscribe`] (checks, the starting snapshot, the
//! live count, the replay) and the [`Subscription`] handle that receives the events.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use parking_lot::Mutex;
use query::Matcher;

use crate::document::Document;
use crate::error::{Error, Result};
use crate::search::result::{QuerySpec, Snapshot};
use crate::store::{Inner, Store};
use crate::subscribe::event::{Event, EventKind};
use crate::subscribe::feed::{Sub, SubShared};
use crate::subscribe::options::SubscribeOptions;
use crate::watch::Watch;

/// Documents that matched when the subscription began, fetched a page at a time.
#[derive(Debug)]
struct Replay {
    /// Weak: an unread replay must not keep a dropped store open.
    store: std::sync::Weak<Inner>,
    spec: QuerySpec,
    buffer: VecDeque<Document>,
    started: bool,
}

/// Documents fetched per replay page.
const REPLAY_PAGE: usize = 1000;

impl Replay {
    fn next(&mut self) -> Result<Option<Document>> {
        if self.buffer.is_empty() && (!self.started || self.spec.page.is_some()) {
            self.started = true;
            let store = Store {
                inner: self.store.upgrade().ok_or(Error::Closed)?,
            };
            let r = store.query(&self.spec)?;
            self.buffer.extend(r.documents);
            self.spec.page = r.next_page;
        }
        Ok(self.buffer.pop_front())
    }
}

/// A continuous query: events in seq order (after the replay, if asked). Dropping it ends it.
/// Iterating yields events until the store closes.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use strata::{EventKind, Query, QuerySpec, Store, SubscribeOptions};
///
/// let store = Store::open_in_memory(Default::default())?;
/// store.put("/jobs/1", "job", json!({"state": "queued"}))?;
/// let spec = QuerySpec::new(Query::term("state", "queued"));
/// let mut sub = store.subscribe(&spec, SubscribeOptions::default().with_replay(true).with_live_count(true))?;
///
/// store.put("/jobs/2", "job", json!({"state": "queued"}))?;
/// store.delete("/jobs/1")?;
///
/// let kinds: Vec<(EventKind, String, Option<u64>)> = (0..3)
///     .map(|_| sub.recv().map(|e| (e.kind, e.document.meta.id, e.count)))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(kinds, [
///     (EventKind::Existing, "/jobs/1".to_string(), Some(1)),
///     (EventKind::Added, "/jobs/2".to_string(), Some(2)),
///     (EventKind::Deleted, "/jobs/1".to_string(), Some(1)),
/// ]);
/// assert!(sub.recv_timeout(Duration::from_millis(10))?.is_none());
/// # Ok::<_, strata::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<Event>,
    shared: Arc<SubShared>,
    /// Why the feed thread stopped, if it failed (a panic fails no subscription by itself).
    feed_failed: Arc<Mutex<Option<String>>>,
    watch: Arc<Watch>,
    replay: Option<Replay>,
    start_seq: u64,
    until_seq: Option<u64>,
    count: Option<u64>,
}

impl Subscription {
    /// Live events are the versions after this seq; replayed ones were current at it.
    pub fn start_seq(&self) -> u64 {
        self.start_seq
    }

    /// The number of matches after the last event received, with
    /// [`SubscribeOptions::with_live_count`].
    pub fn live_count(&self) -> Option<u64> {
        self.count
    }

    fn replayed(&mut self) -> Result<Option<Event>> {
        let Some(replay) = &mut self.replay else {
            return Ok(None);
        };
        match replay.next()? {
            Some(document) => Ok(Some(Event {
                kind: EventKind::Existing,
                document,
                count: self.count,
            })),
            None => {
                self.replay = None;
                Ok(None)
            }
        }
    }

    fn received(&mut self, event: Event) -> Event {
        if self.shared.paused.swap(false, Ordering::AcqRel) {
            self.watch.poke();
        }
        if event.count.is_some() {
            self.count = event.count;
        }
        event
    }

    fn ended(&self) -> Error {
        if self.shared.finished.load(Ordering::Acquire) {
            return Error::SubscriptionEnded {
                seq: self.until_seq.unwrap_or(0),
            };
        }
        let failure = self.shared.failure.lock().clone();
        match failure.or_else(|| self.feed_failed.lock().clone()) {
            Some(reason) => Error::SubscriptionFailed { reason },
            None => Error::Closed,
        }
    }

    /// The next event; blocks until there is one. [`Error::Closed`] once the store is gone,
    /// [`Error::SubscriptionEnded`] after the last event up to [`SubscribeOptions::with_until_seq`].
    pub fn recv(&mut self) -> Result<Event> {
        if let Some(e) = self.replayed()? {
            return Ok(e);
        }
        match self.rx.recv() {
            Ok(e) => Ok(self.received(e)),
            Err(_) => Err(self.ended()),
        }
    }

    /// The next event, waiting at most `timeout`. A timeout too long for an
    /// [`std::time::Instant`] (such as `Duration::MAX`) waits like [`Subscription::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>> {
        if let Some(e) = self.replayed()? {
            return Ok(Some(e));
        }
        // A timeout too long for an `Instant` waits as long as `recv` does.
        let received = match storage::deadline_after(timeout) {
            Some(until) => self.rx.recv_deadline(until),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(e) => Ok(Some(self.received(e))),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.ended()),
        }
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Result<Option<Event>> {
        if let Some(e) = self.replayed()? {
            return Ok(Some(e));
        }
        match self.rx.try_recv() {
            Ok(e) => Ok(Some(self.received(e))),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.ended()),
        }
    }
}

impl Iterator for Subscription {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        match self.recv() {
            Err(Error::Closed | Error::SubscriptionEnded { .. }) => None,
            other => Some(other),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.watch.poke();
    }
}

impl Store {
    /// Follows a query: an [`Event`] for every new version that matches (or, for a document
    /// that matched, its deletion or, if asked, its leaving the result), in seq order.
    ///
    /// The spec must read the current state (no snapshot, page, offset, group or
    /// include-deleted); its sort orders the replay (which delivers every match, a page at a
    /// time, whatever the spec's limit), its `select` projects every event. The subscription holds no lock and costs writers nothing: a feed thread tests
    /// new versions after they are acknowledged.
    pub fn subscribe(&self, spec: &QuerySpec, options: SubscribeOptions) -> Result<Subscription> {
        let invalid = |reason: &str| {
            Error::Query(query::Error::InvalidSpec {
                reason: format!("a subscription {reason}"),
            })
        };
        spec.validate()?;
        if spec.snapshot != Snapshot::Current || spec.include_deleted {
            return Err(invalid(
                "follows the current state: no snapshot or include-deleted",
            ));
        }
        if spec.page.is_some() || spec.offset != 0 || spec.group_by.is_some() {
            return Err(invalid("takes no page, offset or group"));
        }
        if options.buffer == 0 {
            return Err(invalid("needs a buffer of at least one event"));
        }
        let query = self.user_query(&spec.query);
        let matcher = Matcher::new(&query)?;
        // The snapshot the subscription starts from: its count and replay read it, the feed
        // delivers every version after it.
        let last = self.last_seq();
        let start = match options.from_seq {
            Some(s) if s > last => {
                return Err(invalid(&format!(
                    "cannot start after seq {s}: the log ends at seq {last}"
                )))
            }
            Some(s) => s,
            None => last,
        };
        // Resuming before the horizon would pass over versions retention dropped.
        if let Some((seq, time)) = self.inner.engine.horizon(None) {
            if start < seq && options.from_seq.is_some() {
                return Err(Error::HistoryTrimmed {
                    id: None,
                    oldest_complete: time,
                });
            }
        }
        let start_time = self.inner.engine.seq_time(start).unwrap_or(0);
        let count = if options.live_count {
            let r = self.query(
                &QuerySpec::new(spec.query.clone())
                    .snapshot(Snapshot::AtSeq(start))
                    .count(true)
                    .limit(0),
            )?;
            Some(r.count.unwrap_or(0))
        } else {
            None
        };
        let replay = options.replay.then(|| {
            let mut replay_spec = spec.clone().snapshot(Snapshot::AtSeq(start));
            replay_spec.limit = REPLAY_PAGE;
            replay_spec.count = false;
            Replay {
                store: Arc::downgrade(&self.inner),
                spec: replay_spec,
                buffer: VecDeque::new(),
                started: false,
            }
        });
        let (tx, rx) = crossbeam_channel::bounded(options.buffer);
        let shared = Arc::new(SubShared::default());
        self.inner.feed.add(Sub {
            matcher,
            select: spec.select.clone(),
            ids_only: spec.ids_only,
            tx,
            shared: Arc::clone(&shared),
            next: start + 1,
            until: options.until_seq,
            stopped_matching: options.stopped_matching,
            count,
            paused: false,
            start_time,
        })?;
        Ok(Subscription {
            rx,
            shared,
            feed_failed: Arc::clone(&self.inner.feed.failed),
            watch: Arc::clone(&self.inner.watch),
            replay,
            start_seq: start,
            until_seq: options.until_seq,
            count,
        })
    }
}
