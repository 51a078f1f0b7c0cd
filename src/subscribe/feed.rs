//! How do new versions reach subscriptions? The feed thread: it follows the log after
//! writes, flattens each version once, tests it against every subscription's matcher (gated by
//! required terms and the raw-bytes prefilter, [`query::RawPrefilter`]), and pauses a
//! subscription whose buffer is full until its consumer takes an event. Below the store: the
//! store owns the feed, and the feed names no `Store`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;
use query::{Flat, Matcher, RawPrefilter, Required, VersionInfo};
use serde_json::Value;
use storage::{Engine, Selector, Version};

use crate::document::{parse_body, Document};
use crate::error::{Error, Result};
use crate::search::result::project;
use crate::stats::counters::Failures;
use crate::subscribe::event::{Event, EventKind};
use crate::watch::Watch;

/// State shared by a subscription and the feed.
#[derive(Debug, Default)]
pub(crate) struct SubShared {
    /// The feed found the buffer full and waits for the consumer to take an event.
    pub(crate) paused: AtomicBool,
    /// The consumer is gone.
    pub(crate) closed: AtomicBool,
    /// Why the feed stopped, if it failed.
    pub(crate) failure: Mutex<Option<String>>,
    /// The subscription reached its `until_seq`.
    pub(crate) finished: AtomicBool,
}

/// A subscription as the feed sees it.
pub(crate) struct Sub {
    pub(crate) matcher: Matcher,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) ids_only: bool,
    pub(crate) tx: Sender<Event>,
    pub(crate) shared: Arc<SubShared>,
    /// The next seq to look at.
    pub(crate) next: u64,
    /// The last seq to look at.
    pub(crate) until: Option<u64>,
    pub(crate) stopped_matching: bool,
    pub(crate) count: Option<u64>,
    pub(crate) paused: bool,
    /// The time of the seq the subscription started after: documents that had expired by
    /// then were not in its replay or count, so their expiry tombstones are no event.
    pub(crate) start_time: u64,
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
    pub(crate) failed: Arc<Mutex<Option<String>>>,
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
        failures: Arc<Failures>,
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

    pub(crate) fn add(&self, sub: Sub) -> Result<()> {
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
    /// The raw-bytes check of [`Gates::may_skip`], when it can judge: no subscription goes
    /// without a required term or wants every change (counts, stopped-matching), and no
    /// required value needs JSON escaping.
    raw: Option<RawPrefilter>,
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
        let values = gates
            .keyword
            .values()
            .flat_map(|by_value| by_value.keys().cloned())
            .collect();
        let every_change = subs.iter().any(|s| s.stopped_matching || s.count.is_some());
        if gates.always.is_empty() && !every_change {
            gates.raw = RawPrefilter::new(values);
        }
        gates
    }

    /// True if no subscription can have an event for `v`, judged without parsing its body:
    /// none requires its kind, and the prefilter finds none of the required values among its
    /// string literals.
    fn may_skip(&self, v: &Version) -> bool {
        let Some(raw) = &self.raw else {
            return false;
        };
        !v.meta.tombstone
            && !self.kind.contains_key(v.meta.kind.as_str())
            && raw.cannot_match(&v.body)
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
