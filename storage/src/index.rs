//! The version index: every document's chain of versions, and the visibility columns keyed by
//! seq (docs/DESIGN.md §4).
//!
//! Invariants: seqs are dense from `base_seq`; times never decrease in seq order; a chain lists
//! its document's versions oldest first with consecutive version numbers from `first_version`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::types::{IdScope, Unknown};

/// `end` of a version that nothing has superseded yet.
pub const OPEN_END: u64 = u64::MAX;

/// The `segment` of a seq whose version compaction dropped (segment numbers start at 1).
const DROPPED: u32 = 0;

/// Where a version's frame lives, and the columns of its seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqEntry {
    /// Update time, microseconds since the Unix epoch.
    pub time: u64,
    /// The seq of the next version of the same document, or [`OPEN_END`].
    pub end: u64,
    pub segment: u32,
    /// Offset of the frame inside its segment file.
    pub offset: u32,
    /// Total frame length.
    pub len: u32,
    pub tombstone: bool,
    /// Whether the version carries an expiry (its time is in the record).
    pub expires: bool,
}

/// The seqs of a document's versions, oldest first; most documents have one version, which is
/// kept inline instead of in a heap allocation.
#[derive(Debug, Clone)]
pub(crate) enum Seqs {
    One([u64; 1]),
    Many(Vec<u64>),
}

impl Seqs {
    pub(crate) fn as_slice(&self) -> &[u64] {
        match self {
            Seqs::One(one) => one,
            Seqs::Many(many) => many,
        }
    }

    fn push(&mut self, seq: u64) {
        match self {
            Seqs::One([first]) => *self = Seqs::Many(vec![*first, seq]),
            Seqs::Many(many) => many.push(seq),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Seqs::One(_) => 0,
            Seqs::Many(many) => many.capacity() * 8,
        }
    }
}

/// A document's versions, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub first_version: u64,
    pub seqs: Seqs,
}

impl Chain {
    pub(crate) fn newest_seq(&self) -> u64 {
        // A chain is created with one seq and never emptied.
        self.seqs.as_slice().last().copied().unwrap_or(0)
    }

    pub(crate) fn newest_version(&self) -> u64 {
        // Subtract first: a chain may start at any version, `u64::MAX` included.
        self.first_version + (self.seqs.as_slice().len() as u64 - 1)
    }
}

#[derive(Debug)]
pub(crate) struct VersionIndex {
    docs: HashMap<Arc<str>, Chain>,
    order: BTreeSet<Arc<str>>,
    /// Columns by seq: `columns[seq - base_seq]`.
    columns: Vec<SeqEntry>,
    base_seq: u64,
    live: u64,
    /// Seqs whose version compaction dropped.
    dropped: u64,
    /// The smallest of them ([`OPEN_END`] while there is none).
    first_dropped: u64,
    /// `(expires_at, seq)` of versions with an expiry that were newest when noted; entries go
    /// stale as documents change and are checked when taken.
    expiries: BTreeSet<(u64, u64)>,
    /// The origin of the newest batch that carried one (FORMAT.md §4).
    last_origin: Option<u64>,
}

impl VersionIndex {
    pub(crate) fn new(base_seq: u64) -> Self {
        VersionIndex {
            docs: HashMap::new(),
            order: BTreeSet::new(),
            columns: Vec::new(),
            base_seq,
            live: 0,
            dropped: 0,
            first_dropped: OPEN_END,
            expiries: BTreeSet::new(),
            last_origin: None,
        }
    }

    /// The origin of the newest batch that carried one.
    pub(crate) fn last_origin(&self) -> Option<u64> {
        self.last_origin
    }

    /// Notes the origin of a batch just added.
    pub(crate) fn note_origin(&mut self, origin: u64) {
        self.last_origin = Some(origin);
    }

    /// The newest seq in the index (`base_seq - 1` when empty).
    pub(crate) fn last_seq(&self) -> u64 {
        self.base_seq + self.columns.len() as u64 - 1
    }

    pub(crate) fn last_time(&self) -> u64 {
        self.columns.last().map_or(0, |e| e.time)
    }

    pub(crate) fn chain(&self, id: &str) -> Option<&Chain> {
        self.docs.get(id)
    }

    /// Every document's chain, in no order.
    pub(crate) fn chains(&self) -> impl Iterator<Item = (&str, &Chain)> {
        self.docs.iter().map(|(id, chain)| (&**id, chain))
    }

    /// The columns of a version the log holds (`None` past the end and for dropped versions).
    pub(crate) fn entry(&self, seq: u64) -> Option<&SeqEntry> {
        let i = seq.checked_sub(self.base_seq)?;
        self.columns
            .get(usize::try_from(i).ok()?)
            .filter(|e| e.segment != DROPPED)
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut SeqEntry> {
        let i = seq.checked_sub(self.base_seq)?;
        self.columns
            .get_mut(usize::try_from(i).ok()?)
            .filter(|e| e.segment != DROPPED)
    }

    /// Notes that the version with `seq` expires at `at`.
    pub(crate) fn note_expiry(&mut self, at: u64, seq: u64) {
        self.expiries.insert((at, seq));
    }

    /// The earliest noted expiry (possibly stale).
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|&(at, _)| at)
    }

    /// Takes up to `limit` versions that expired at or before `now` and are still their
    /// document's newest, live version (stale entries are discarded on the way).
    pub(crate) fn take_expired(&mut self, now: u64, limit: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(&(at, seq)) = self.expiries.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if self
                .entry(seq)
                .is_some_and(|e| e.end == OPEN_END && !e.tombstone)
            {
                out.push((at, seq));
            }
        }
        out
    }

    /// The time of `seq`, also for a version compaction dropped (then a lower bound after a
    /// reopen: the time of the seq before it).
    pub(crate) fn time_of(&self, seq: u64) -> Option<u64> {
        let i = seq.checked_sub(self.base_seq)?;
        self.columns.get(usize::try_from(i).ok()?).map(|e| e.time)
    }

    /// Versions compaction dropped.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The dropped seqs up to `up_to`, in order.
    pub(crate) fn dropped_seqs(&self, up_to: u64) -> Vec<u64> {
        let base = self.base_seq;
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, e)| e.segment == DROPPED)
            .map(|(i, _)| base + i as u64)
            .take_while(|&seq| seq <= up_to)
            .collect()
    }

    /// Records that the log holds no version with the next seq (compaction dropped it). Its
    /// time is a lower bound (the previous seq's), which keeps times ordered for
    /// [`VersionIndex::seq_at_time`].
    pub(crate) fn push_dropped(&mut self, seq: u64) {
        debug_assert_eq!(seq, self.last_seq() + 1);
        let time = self.last_time();
        self.columns.push(SeqEntry {
            time,
            end: OPEN_END,
            segment: DROPPED,
            offset: 0,
            len: 0,
            tombstone: false,
            expires: false,
        });
        self.dropped += 1;
        self.first_dropped = self.first_dropped.min(seq);
    }

    /// Forgets `seqs`, the oldest versions of `id`'s chain, which compaction dropped; their
    /// columns keep their times. Changes nothing and returns false unless `seqs` is a prefix of
    /// the chain that leaves its newest version.
    pub(crate) fn drop_oldest(&mut self, id: &str, seqs: &[u64]) -> bool {
        let Some(chain) = self.docs.get_mut(id) else {
            return false;
        };
        let n = seqs.len();
        match &mut chain.seqs {
            Seqs::Many(many) if n < many.len() && many[..n] == *seqs => {
                many.drain(..n);
            }
            _ => return false,
        }
        chain.first_version += n as u64;
        for &seq in seqs {
            if let Some(e) = self.entry_mut(seq) {
                e.segment = DROPPED;
                e.offset = 0;
                e.len = 0;
                self.dropped += 1;
                self.first_dropped = self.first_dropped.min(seq);
            }
        }
        true
    }

    /// Points the version with `seq` at its frame in a rewritten segment.
    pub(crate) fn relocate(&mut self, seq: u64, segment: u32, offset: u32, len: u32) {
        if let Some(e) = self.entry_mut(seq) {
            e.segment = segment;
            e.offset = offset;
            e.len = len;
        }
    }

    /// The `(seq, time)` of the oldest version the log still holds of a document whose older
    /// versions compaction dropped; `None` when its whole history is there.
    pub(crate) fn trimmed_at(&self, id: &str) -> Option<(u64, u64)> {
        let chain = self.docs.get(id)?;
        if chain.first_version == 0 {
            return None;
        }
        let first = *chain.seqs.as_slice().first()?;
        Some((first, self.entry(first)?.time))
    }

    /// Whether `id`'s state at snapshot seq `at` is known from the versions the log keeps: its
    /// history is complete (nothing of it was dropped, or it never existed), or the newest of
    /// its versions at or before `at` is kept (its oldest kept seq is at or before `at`), or no
    /// version at or before `at` was dropped at all (then it did not exist yet). Retention drops
    /// only a prefix of a chain, so these are the only ways to know.
    pub(crate) fn known_at(&self, id: &str, at: u64) -> bool {
        let Some(chain) = self.docs.get(id) else {
            return true;
        };
        chain.first_version == 0
            || at < self.first_dropped
            || chain.seqs.as_slice().first().is_some_and(|&s| s <= at)
    }

    /// The documents (of `scope`, or all) whose state at snapshot seq `at` is not known (see
    /// [`VersionIndex::known_at`]): their number, and the first `list` of their ids in id order.
    pub(crate) fn unknown_at(&self, at: u64, scope: Option<&IdScope>, list: usize) -> Unknown {
        let mut out = Unknown::default();
        if at < self.first_dropped {
            return out;
        }
        let mut note = |id: &Arc<str>| {
            if !self.known_at(id, at) {
                out.count += 1;
                if out.ids.len() < list {
                    out.ids.push(id.to_string());
                }
            }
        };
        match scope {
            None => self.order.iter().for_each(&mut note),
            Some(scope) => {
                // Ids in order, each once, whether named or under a prefix (or several).
                let mut ids: BTreeSet<&Arc<str>> = BTreeSet::new();
                for id in &scope.ids {
                    if let Some(key) = self.order.get(id.as_str()) {
                        ids.insert(key);
                    }
                }
                for prefix in &scope.prefixes {
                    ids.extend(
                        self.order
                            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                            .take_while(|id| id.starts_with(prefix.as_str()))
                            .filter(|id| !self.known_at(id, at)),
                    );
                }
                ids.into_iter().for_each(&mut note);
            }
        }
        out
    }

    /// Number of documents whose newest version is not a tombstone.
    pub(crate) fn live_documents(&self) -> u64 {
        self.live
    }

    pub(crate) fn documents(&self) -> u64 {
        self.docs.len() as u64
    }

    /// Appends the next version. The caller guarantees `seq == last_seq() + 1`, a time not
    /// before `last_time()`, and `version` one past the newest version of `id` (if any).
    pub(crate) fn push(&mut self, id: &str, version: u64, seq: u64, entry: SeqEntry) {
        debug_assert_eq!(seq, self.last_seq() + 1);
        let tombstone = entry.tombstone;
        self.columns.push(entry);
        match self.docs.get_mut(id) {
            Some(chain) => {
                let prev = chain.newest_seq();
                debug_assert_eq!(version, chain.newest_version() + 1);
                chain.seqs.push(seq);
                let prev_entry = usize::try_from(prev - self.base_seq)
                    .ok()
                    .and_then(|i| self.columns.get_mut(i));
                let prev_live = match prev_entry {
                    Some(e) => {
                        e.end = seq;
                        !e.tombstone
                    }
                    None => false,
                };
                match (prev_live, tombstone) {
                    (true, true) => self.live -= 1,
                    (false, false) => self.live += 1,
                    _ => {}
                }
            }
            None => {
                let key: Arc<str> = Arc::from(id);
                self.order.insert(Arc::clone(&key));
                self.docs.insert(
                    key,
                    Chain {
                        first_version: version,
                        seqs: Seqs::One([seq]),
                    },
                );
                if !tombstone {
                    self.live += 1;
                }
            }
        }
    }

    /// The last seq whose time is `<= time` (0 if none): the snapshot seq of `AsOf(time)`.
    pub(crate) fn seq_at_time(&self, time: u64) -> u64 {
        let n = self.columns.partition_point(|e| e.time <= time);
        if n == 0 {
            self.base_seq - 1
        } else {
            self.base_seq + n as u64 - 1
        }
    }

    /// Whether the version with `seq` is visible at snapshot seq `at` (docs/DESIGN.md §4).
    pub(crate) fn visible_at(&self, seq: u64, at: u64) -> bool {
        seq <= at && self.entry(seq).is_some_and(|e| e.end > at && !e.tombstone)
    }

    /// The seq of `id`'s version current at snapshot seq `at`.
    pub(crate) fn seq_current_at(&self, id: &str, at: u64) -> Option<u64> {
        let chain = self.docs.get(id)?;
        let seqs = chain.seqs.as_slice();
        let n = seqs.partition_point(|&s| s <= at);
        n.checked_sub(1).and_then(|i| seqs.get(i).copied())
    }

    /// The seq of `id`'s version current at `time`.
    pub(crate) fn seq_current_at_time(&self, id: &str, time: u64) -> Option<u64> {
        let chain = self.docs.get(id)?;
        let seqs = chain.seqs.as_slice();
        let n = seqs.partition_point(|&s| self.entry(s).is_some_and(|e| e.time <= time));
        n.checked_sub(1).and_then(|i| seqs.get(i).copied())
    }

    /// Up to `limit` ids starting with `prefix`, after `after` (exclusive), in id order.
    pub(crate) fn ids_with_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<Arc<str>> {
        let start: Bound<&str> = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        self.order
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|id| id.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Approximate bytes of memory held, for stats and the memory benchmark.
    pub(crate) fn approximate_heap_bytes(&self) -> usize {
        let key_bytes: usize = self.docs.keys().map(|k| k.len() + 16).sum();
        let chains: usize = self.docs.values().map(|c| c.seqs.heap_bytes()).sum();
        self.docs.capacity() * (std::mem::size_of::<(Arc<str>, Chain)>() + 1)
            + self.order.len() * 24
            + key_bytes
            + chains
            + self.columns.capacity() * std::mem::size_of::<SeqEntry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: u64, tombstone: bool) -> SeqEntry {
        SeqEntry {
            time,
            end: OPEN_END,
            segment: 1,
            offset: 0,
            len: 0,
            tombstone,
            expires: false,
        }
    }

    #[test]
    fn chain_fits_in_a_cache_line_half() {
        assert_eq!(std::mem::size_of::<Seqs>(), 24);
        assert_eq!(std::mem::size_of::<Chain>(), 32);
    }

    #[test]
    fn visibility_follows_the_end_column() {
        let mut ix = VersionIndex::new(1);
        ix.push("/a", 0, 1, entry(10, false));
        ix.push("/b", 0, 2, entry(20, false));
        ix.push("/a", 1, 3, entry(30, false));
        ix.push("/a", 2, 4, entry(40, true));
        assert!(ix.visible_at(1, 2) && !ix.visible_at(1, 3));
        assert!(ix.visible_at(3, 3) && !ix.visible_at(4, 4));
        assert_eq!(ix.seq_at_time(5), 0);
        assert_eq!(ix.seq_at_time(30), 3);
        assert_eq!(ix.seq_at_time(35), 3);
        assert_eq!(ix.seq_current_at("/a", 2), Some(1));
        assert_eq!(ix.seq_current_at_time("/a", 39), Some(3));
        assert_eq!(ix.seq_current_at_time("/a", 9), None);
        assert_eq!(ix.live_documents(), 1);
        assert_eq!(ix.ids_with_prefix("/", None, 10).len(), 2);
        assert_eq!(&*ix.ids_with_prefix("/", Some("/a"), 10)[0], "/b");
    }

    #[test]
    fn a_document_is_known_when_its_kept_versions_cover_the_snapshot() {
        let mut ix = VersionIndex::new(1);
        ix.push("/long", 0, 1, entry(10, false));
        ix.push("/long", 1, 2, entry(20, false));
        ix.push("/short", 0, 3, entry(30, false));
        ix.push("/long", 2, 4, entry(40, false));
        ix.push("/long", 3, 5, entry(50, false));
        ix.push("/late", 0, 6, entry(60, false));
        assert_eq!(ix.unknown_at(3, None, 10), Unknown::default());
        // Retention keeps the last two versions of /long: seqs 1 and 2 go.
        assert!(ix.drop_oldest("/long", &[1, 2]));
        for at in 0..=6 {
            let unknown = ix.unknown_at(at, None, 10);
            // Before seq 1 nothing had been dropped yet: every state is known (absent).
            let want: &[&str] = if (1..4).contains(&at) {
                &["/long"]
            } else {
                &[]
            };
            assert_eq!(unknown.ids, want, "at {at}");
            assert_eq!(unknown.count, want.len() as u64);
            assert!(ix.known_at("/short", at) && ix.known_at("/late", at));
            assert!(ix.known_at("/never", at));
        }
        assert_eq!(ix.unknown_at(2, None, 0).ids, Vec::<String>::new());
        assert_eq!(ix.unknown_at(2, None, 0).count, 1);
        let short = IdScope::new(vec!["/short".into(), "/never".into()], Vec::new());
        assert_eq!(ix.unknown_at(2, Some(&short), 10).count, 0);
        let both = IdScope::new(vec!["/long".into()], vec!["/l".into(), "/".into()]);
        assert_eq!(ix.unknown_at(2, Some(&both), 10).ids, ["/long"]);
    }
}
