//! Continuous queries (docs/DESIGN.md §6): a feed thread follows the log and tests every new version
//! against each subscription's matcher (the same matcher the index agrees with).
//!
//! Slow consumers: each subscription has a bounded buffer. When it is full the feed *pauses
//! that subscription* (the log is its backlog) and goes on with the others; once the consumer
//! takes an event the subscription catches up from the log. Writers never wait for a
//! subscriber, no event is dropped, and a dropped subscription is forgotten.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;
use query::{Flat, Matcher, Required, VersionInfo, MAX_KEYWORD_BYTES};
use serde_json::Value;
use storage::{Engine, Selector, Version};

use crate::document::Document;
use crate::error::{Error, Result};
use crate::search::{project, Query, QuerySpec, Snapshot};
use crate::store::{parse_body, Store};
use crate::watch::Watch;

/// Options of [`Store::subscribe`].
///
/// ```
/// use strata::SubscribeOptions;
/// let options = SubscribeOptions::default().replay(true).live_count(true);
/// assert!(options.stopped_matching, "on by default");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// First deliver the documents that match now ([`EventKind::Existing`]), in the spec's
    /// sort order. Default false.
    pub replay: bool,
    /// Also deliver [`EventKind::StoppedMatching`] when an update makes a document leave the
    /// result (a subscriber to "active users" hears when one becomes inactive). Default true;
    /// `.stopped_matching(false)` hears only of documents that match (and of their deletion).
    pub stopped_matching: bool,
    /// Keep a count of the current matches in every event. Default false.
    pub live_count: bool,
    /// Deliver every version after this seq (a changes feed: resume where an earlier
    /// subscription stopped, also after a restart). Default: versions written from now on.
    pub from_seq: Option<u64>,
    /// End the subscription once every version up to this seq was looked at (a bounded
    /// changes feed: `recv` then answers [`Error::SubscriptionEnded`] and iteration stops).
    /// Default: no end.
    pub until_seq: Option<u64>,
    /// Events buffered for the consumer before the subscription pauses (it then catches up
    /// from the log). Default 1024.
    pub buffer: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            replay: false,
            stopped_matching: true,
            live_count: false,
            from_seq: None,
            until_seq: None,
            buffer: 1024,
        }
    }
}

impl SubscribeOptions {
    /// Replays the current matches first.
    pub fn replay(mut self, yes: bool) -> Self {
        self.replay = yes;
        self
    }

    /// Delivers stopped-matching events (the default); `false` turns them off.
    pub fn stopped_matching(mut self, yes: bool) -> Self {
        self.stopped_matching = yes;
        self
    }

    /// Keeps a live count.
    pub fn live_count(mut self, yes: bool) -> Self {
        self.live_count = yes;
        self
    }

    /// Starts after `seq`.
    pub fn from_seq(mut self, seq: u64) -> Self {
        self.from_seq = Some(seq);
        self
    }

    /// Ends after `seq`.
    pub fn until_seq(mut self, seq: u64) -> Self {
        self.until_seq = Some(seq);
        self
    }

    /// Sets the buffer size (at least 1).
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events;
        self
    }
}

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
    /// The number of matches after this event, with [`SubscribeOptions::live_count`].
    pub count: Option<u64>,
}

impl Event {
    /// The seq of the event's version: resume after it with [`SubscribeOptions::from_seq`].
    pub fn seq(&self) -> u64 {
        self.document.meta.seq
    }
}

/// State shared by a subscription and the feed.
#[derive(Debug, Default)]
struct SubShared {
    /// The feed found the buffer full and waits for the consumer to take an event.
    paused: AtomicBool,
    /// The consumer is gone.
    closed: AtomicBool,
    /// Why the feed stopped, if it failed.
    failure: Mutex<Option<String>>,
    /// The subscription reached its `until_seq`.
    finished: AtomicBool,
}

/// A subscription as the feed sees it.
struct Sub {
    matcher: Matcher,
    select: Option<Vec<String>>,
    ids_only: bool,
    tx: Sender<Event>,
    shared: Arc<SubShared>,
    /// The next seq to look at.
    next: u64,
    /// The last seq to look at.
    until: Option<u64>,
    stopped_matching: bool,
    count: Option<u64>,
    paused: bool,
    /// The time of the seq the subscription started after: documents that had expired by
    /// then were not in its replay or count, so their expiry tombstones are no event.
    start_time: u64,
}

/// The feed thread; owned by the store.
#[derive(Debug)]
pub(crate) struct Feed {
    register: Option<Sender<Sub>>,
    watch: Arc<Watch>,
    /// The lowest seq a subscription will still look at (`u64::MAX` when none): compaction
    /// keeps the versions from there on.
    low_water: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    /// Why the feed thread stopped, if it failed: later subscriptions answer with it.
    failed: Arc<Mutex<Option<String>>>,
}

impl Sub {
    /// Whether the feed should look at `seq` for this subscription now.
    fn wants(&self, seq: u64) -> bool {
        !self.paused && self.next == seq && self.until.is_none_or(|u| seq <= u)
    }
}

impl std::fmt::Debug for Sub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sub").field("next", &self.next).finish()
    }
}

/// Versions looked at before the feed checks for new subscriptions and resumed ones.
const CHUNK: u64 = 1024;

impl Feed {
    pub(crate) fn new(
        engine: Arc<Engine>,
        watch: Arc<Watch>,
        failures: Arc<crate::stats::Failures>,
    ) -> Result<Feed> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let w = Arc::clone(&watch);
        let low_water = Arc::new(AtomicU64::new(u64::MAX));
        let lw = Arc::clone(&low_water);
        let failed = Arc::new(Mutex::new(None));
        let why = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("strata-feed".into())
            .spawn(move || {
                let mut outcome = Ok(());
                let panicked = failures.watch("feed", || outcome = feed(&engine, &w, &rx, &lw));
                // Why the feed stopped, kept for its subscriptions, later ones and stats (in
                // that order: once stats show it, `subscribe` answers with it).
                match outcome {
                    Err(e) => {
                        let reason = e.to_string();
                        *why.lock() = Some(reason.clone());
                        failures.record("feed", &reason);
                    }
                    Ok(()) => *why.lock() = panicked,
                }
            })
            .map_err(|source| Error::Io {
                op: "start the continuous-query thread",
                path: Default::default(),
                source,
            })?;
        Ok(Feed {
            register: Some(tx),
            watch,
            low_water,
            thread: Some(thread),
            failed,
        })
    }

    /// The lowest seq a subscription will still look at (`u64::MAX` when there is none).
    pub(crate) fn low_water_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.low_water)
    }

    fn add(&self, sub: Sub) -> Result<()> {
        let failed = || match self.failed.lock().clone() {
            Some(reason) => Error::SubscriptionFailed { reason },
            None => Error::Closed,
        };
        if self.failed.lock().is_some() {
            return Err(failed());
        }
        self.low_water.fetch_min(sub.next, Ordering::AcqRel);
        self.register
            .as_ref()
            .ok_or(Error::Closed)?
            .send(sub)
            .map_err(|_| failed())?;
        self.watch.poke();
        Ok(())
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        drop(self.register.take());
        self.watch.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The feed thread's loop; an error ends it (after failing every subscription with it).
fn feed(
    engine: &Engine,
    watch: &Watch,
    register: &Receiver<Sub>,
    low_water: &AtomicU64,
) -> Result<()> {
    let mut subs: Vec<Sub> = Vec::new();
    // The subscriptions by required term, rebuilt only when the set of subscriptions changes
    // (it indexes them by position).
    let mut gates: Option<Gates> = None;
    loop {
        let seen = watch.seen();
        loop {
            match register.try_recv() {
                Ok(s) => {
                    subs.push(s);
                    gates = None;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        let registered = subs.len();
        subs.retain(|s| {
            let done = s.until.is_some_and(|u| s.next > u);
            if done {
                // Dropping the sender ends the consumer's stream after the buffered events.
                s.shared.finished.store(true, Ordering::Release);
            }
            !done && !s.shared.closed.load(Ordering::Relaxed)
        });
        if subs.len() != registered {
            gates = None;
        }
        for s in &mut subs {
            if s.paused && !s.shared.paused.load(Ordering::Acquire) {
                s.paused = false;
            }
        }
        // Registrations not yet received lowered it themselves (`Feed::add`).
        if register.is_empty() {
            let lowest = subs.iter().map(|s| s.next).min().unwrap_or(u64::MAX);
            low_water.store(lowest, Ordering::Release);
        }
        let head = engine.last_seq();
        let cursors = subs
            .iter()
            .filter(|s| !s.paused && s.next <= head)
            .map(|s| s.next);
        if let (Some(lowest), Some(highest)) = (cursors.clone().min(), cursors.max()) {
            // One chunk for the subscriptions furthest behind (resumed from an old seq, or
            // back from a pause), and the newest versions for those nearest the head, so
            // that a catching-up subscription does not hold the live ones back.
            let mut ranges = vec![(lowest, head.min(lowest + CHUNK - 1))];
            if highest > ranges[0].1 {
                ranges.push((highest, head.min(highest + CHUNK - 1)));
            }
            for (from, to) in ranges {
                let gates = gates.get_or_insert_with(|| Gates::new(&subs));
                if let Err(e) = deliver(engine, gates, &mut subs, from, to) {
                    for s in &subs {
                        *s.shared.failure.lock() = Some(e.to_string());
                    }
                    return Err(e);
                }
            }
            continue;
        }
        if watch.wait(seen, None).is_none() {
            return Ok(());
        }
    }
}

/// A version as the matchers read it.
struct Seen {
    info: VersionInfo,
    body: Value,
    flat: Flat,
    tombstone: bool,
}

impl Seen {
    fn new(v: &Version) -> Result<Seen> {
        let body = parse_body(v)?;
        Ok(Seen {
            info: VersionInfo::from_meta(&v.meta),
            flat: Flat::new(&body),
            body,
            tombstone: v.meta.tombstone,
        })
    }

    fn matches(&self, m: &Matcher) -> bool {
        !self.tombstone && m.matches_flat(&self.info, &self.flat)
    }
}

/// Subscriptions by the term their query requires ([`Matcher::required`]): a version is
/// tested only against those whose term it holds, and those that require none.
#[derive(Default)]
struct Gates {
    keyword: HashMap<String, HashMap<String, Vec<usize>>>,
    kind: HashMap<String, Vec<usize>>,
    always: Vec<usize>,
    /// Every keyword value some subscription requires, whatever its path.
    values: HashSet<String>,
    /// Whether [`Gates::may_skip`] can judge a version from its raw bytes: no subscription
    /// goes without a required term or wants every change (counts, stopped-matching), and no
    /// required value needs JSON escaping.
    raw_check: bool,
}

impl Gates {
    fn new(subs: &[Sub]) -> Gates {
        let mut gates = Gates::default();
        for (i, sub) in subs.iter().enumerate() {
            match sub.matcher.required() {
                Some(Required::Keyword { path, value }) => gates
                    .keyword
                    .entry(path.to_owned())
                    .or_default()
                    .entry(value.to_owned())
                    .or_default()
                    .push(i),
                Some(Required::Kind(kind)) => {
                    gates.kind.entry(kind.to_owned()).or_default().push(i)
                }
                None => gates.always.push(i),
            }
        }
        gates.values = gates
            .keyword
            .values()
            .flat_map(|by_value| by_value.keys().cloned())
            .collect();
        gates.raw_check = gates.always.is_empty()
            && subs
                .iter()
                .all(|s| !s.stopped_matching && s.count.is_none())
            && gates
                .values
                .iter()
                .all(|v| !v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
        gates
    }

    /// True if no subscription can have an event for `v`, judged without parsing its body:
    /// none requires its kind, and none of its string literals is a required value. (A
    /// literal without a backslash is the string's exact value, so a keyword string equal to
    /// a required value shows up as a literal; a literal with escapes makes it undecided, and
    /// so does one over the keyword limit, whose words a required value may be (a one-word
    /// term matches a word of such a string: [`Flat::keyword_strings`]).)
    fn may_skip(&self, v: &Version) -> bool {
        if !self.raw_check || v.meta.tombstone || self.kind.contains_key(v.meta.kind.as_str()) {
            return false;
        }
        let body = &v.body[..];
        let mut i = 0;
        while let Some(open) = body[i..].iter().position(|&b| b == b'"') {
            let start = i + open + 1;
            let Some(len) = body[start..].iter().position(|&b| b == b'"' || b == b'\\') else {
                return false;
            };
            let end = start + len;
            if body[end] == b'\\' {
                return false;
            }
            if len > MAX_KEYWORD_BYTES && !self.values.is_empty() {
                return false;
            }
            match std::str::from_utf8(&body[start..end]) {
                Ok(literal) if !self.values.contains(literal) => {}
                _ => return false,
            }
            i = end + 1;
        }
        true
    }

    /// Marks in `out` the subscriptions that `seen` may match.
    fn candidates(&self, seen: &Seen, out: &mut Vec<bool>, len: usize) {
        out.clear();
        out.resize(len, false);
        if seen.tombstone {
            return;
        }
        let mut mark = |ids: &[usize]| ids.iter().for_each(|&i| out[i] = true);
        mark(&self.always);
        if let Some(ids) = self.kind.get(seen.info.kind.as_str()) {
            mark(ids);
        }
        if !self.keyword.is_empty() {
            for (path, value) in seen.flat.keyword_strings() {
                if let Some(ids) = self.keyword.get(path).and_then(|by| by.get(value)) {
                    mark(ids);
                }
            }
        }
    }
}

fn deliver(engine: &Engine, gates: &Gates, subs: &mut [Sub], from: u64, to: u64) -> Result<()> {
    let mut candidates = Vec::with_capacity(subs.len());
    for seq in from..=to {
        if !subs.iter().any(|s| s.wants(seq)) {
            continue;
        }
        // A version the log no longer holds (none today; compaction may drop some) has no
        // event to give, nor has one that no subscription can match.
        let v = match engine.get_seq(seq)? {
            Some(v) if !gates.may_skip(&v) => v,
            _ => {
                for sub in subs.iter_mut().filter(|s| s.wants(seq)) {
                    sub.next = seq + 1;
                }
                continue;
            }
        };
        let new = Seen::new(&v)?;
        gates.candidates(&new, &mut candidates, subs.len());
        let mut prev: Option<Option<Seen>> = None;
        for (sub, candidate) in subs.iter_mut().zip(&candidates) {
            if !sub.wants(seq) {
                continue;
            }
            let now_matches = *candidate && new.matches(&sub.matcher);
            // Whether the previous version matched decides nothing for a subscription that
            // neither matches now, nor sees deletions here, nor counts, nor reports leaving.
            let needs_prev =
                now_matches || new.tombstone || sub.stopped_matching || sub.count.is_some();
            if !needs_prev {
                sub.next = seq + 1;
                continue;
            }
            let prev = match &mut prev {
                Some(p) => p,
                slot => {
                    let p = match v.meta.version {
                        0 => None,
                        // A previous version retention dropped (the subscription resumed from
                        // before the horizon) is taken as absent.
                        n => match engine.get(&v.meta.id, Selector::Version(n - 1)) {
                            Err(storage::Error::HistoryTrimmed { .. }) => None,
                            found => found?.map(|p| Seen::new(&p)).transpose()?,
                        },
                    };
                    slot.insert(p)
                }
            };
            // An expired previous version had left the result already. Its expiry tombstone
            // (a delete of an expired document is refused, so a tombstone after one is the
            // expiry's) is when it leaves, as `Deleted`, unless it had expired before the
            // subscription started and so was never in it.
            let was = prev.as_ref().is_some_and(|p| {
                let present_until = if new.tombstone {
                    sub.start_time
                } else {
                    v.meta.time
                };
                p.info.expires_at.is_none_or(|e| e > present_until) && p.matches(&sub.matcher)
            });
            let (kind, delta) = match (was, now_matches) {
                (true, true) => (Some(EventKind::Updated), 0),
                (false, true) => (Some(EventKind::Added), 1),
                (true, false) if new.tombstone => (Some(EventKind::Deleted), -1),
                (true, false) => (
                    sub.stopped_matching.then_some(EventKind::StoppedMatching),
                    -1,
                ),
                (false, false) => (None, 0),
            };
            let count = sub.count.map(|c| c.saturating_add_signed(delta));
            let Some(kind) = kind else {
                sub.count = count;
                sub.next = seq + 1;
                continue;
            };
            let body = match (&sub.select, sub.ids_only || new.tombstone) {
                (_, true) => Value::Null,
                (Some(paths), false) => project(&new.body, paths),
                (None, false) => new.body.clone(),
            };
            let document = Document {
                meta: v.meta.clone().into(),
                body,
            };
            let event = Event {
                kind,
                document,
                count,
            };
            if send(sub, event) {
                sub.count = count;
                sub.next = seq + 1;
            }
        }
    }
    Ok(())
}

/// Sends without blocking; on a full buffer the subscription pauses (false).
fn send(sub: &mut Sub, event: Event) -> bool {
    match sub.tx.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Disconnected(_)) => {
            sub.shared.closed.store(true, Ordering::Relaxed);
            sub.paused = true;
            false
        }
        Err(TrySendError::Full(event)) => {
            // Say "paused" before the last try, so that a consumer emptying the buffer
            // meanwhile sees it and wakes the feed.
            sub.shared.paused.store(true, Ordering::Release);
            match sub.tx.try_send(event) {
                Ok(()) => {
                    sub.shared.paused.store(false, Ordering::Release);
                    true
                }
                Err(_) => {
                    sub.paused = true;
                    false
                }
            }
        }
    }
}

/// Documents that matched when the subscription began, fetched a page at a time.
#[derive(Debug)]
struct Replay {
    /// Weak: an unread replay must not keep a dropped store open.
    store: std::sync::Weak<crate::store::Inner>,
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
/// let mut sub = store.subscribe(&spec, SubscribeOptions::default().replay(true).live_count(true))?;
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
    /// [`SubscribeOptions::live_count`].
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
    /// [`Error::SubscriptionEnded`] after the last event up to [`SubscribeOptions::until_seq`].
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

    /// `query` without the store's own documents (collection definitions).
    pub(crate) fn user_query(&self, query: &Query) -> Query {
        crate::collection::exclude_system(query)
    }
}
