//! Running a query: the index part through a collector that applies visibility from the
//! engine's columns, the not-yet-committed tail through the matcher, one exact merge.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::{Engine, SeqColumns};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::ast::{Field, Query, Scalar, SystemField};
use crate::error::{Error, Result};
use crate::keys::{min_value, values_of, ColumnReader, SortValue};
use crate::matcher::Matcher;
use crate::plan;
use crate::reader::{Published, Shared, TailDoc};
use crate::schema::VersionInfo;
use crate::spec::{QuerySpec, Snapshot, SortTarget};
use crate::token;
use crate::translate::translate;

/// One matching version.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Hit {
    /// Its seq (read it with the engine).
    pub seq: u64,
    /// Full-text relevance, when the query sorts by `_score`.
    pub score: Option<f32>,
    /// Its value for each sort key of the query, in the keys' order: what it was sorted by.
    /// `None` where it has no value; a field with several values gives its smallest; a date is
    /// the RFC 3339 text of its second in UTC; `_updated` is microseconds; `_score` a float.
    pub sort: Vec<Option<Scalar>>,
}

/// One group of a grouped query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupOutput {
    /// The field's value (`null` for documents without one).
    pub key: Value,
    /// Matching versions in the group.
    pub count: u64,
    /// The first versions of the group in the query's order.
    pub hits: Vec<Hit>,
}

/// The answer to a query, as seqs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryOutput {
    /// The snapshot seq the query read (pages of it read the same one).
    pub snapshot_seq: u64,
    /// The exact number of matches, if asked.
    pub count: Option<u64>,
    /// The page of matches.
    pub hits: Vec<Hit>,
    /// The token of the next page, if there are more matches.
    pub next_page: Option<String>,
    /// Groups, largest first, if asked.
    pub groups: Vec<GroupOutput>,
    /// Set when the snapshot is before the retention horizon and the answer (asked for with
    /// [`QuerySpec::allow_trimmed`]) leaves out documents whose state then is unknown.
    pub trimmed: Option<Trimmed>,
}

/// What an answer of a snapshot before the retention horizon leaves out: the documents whose
/// state at the snapshot is unknown because compaction dropped the versions that would tell it.
/// A document's state at the snapshot is known when nothing of its history was dropped, when the
/// newest of its versions at or before the snapshot is kept, or when no version at or before the
/// snapshot was dropped at all (it did not exist yet). Unknown documents are counted whatever
/// their kind (a dropped version's kind is not kept); a query naming ids (`_id:` terms, an id
/// prefix) counts only those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trimmed {
    /// How many documents are unknown.
    pub unknown: u64,
    /// The first of their ids in id order, as many as [`QuerySpec::unknown_ids`] asked for.
    pub unknown_ids: Vec<String>,
    /// The time (microseconds since the epoch) from which the history the query needs is
    /// complete.
    pub oldest_complete: u64,
}

/// Stops a running query: cancelled from another thread, or past a deadline. The search checks
/// it every few hundred matching versions and then fails with [`Error::Cancelled`] or
/// [`Error::DeadlineExceeded`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use strata_query::Interrupt;
///
/// let i = Interrupt::new(Some(Instant::now() + Duration::from_secs(5)));
/// assert!(i.check().is_ok());
/// i.cancel();
/// assert!(matches!(i.check(), Err(strata_query::Error::Cancelled)));
/// ```
#[derive(Debug, Default)]
pub struct Interrupt {
    cancelled: AtomicBool,
    deadline: Option<Instant>,
}

impl Interrupt {
    /// An interrupt that fires at `deadline`, if any, or when cancelled.
    pub fn new(deadline: Option<Instant>) -> Interrupt {
        Interrupt {
            cancelled: AtomicBool::new(false),
            deadline,
        }
    }

    /// Asks the query to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, AtomicOrdering::Relaxed);
    }

    /// Whether [`Interrupt::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(AtomicOrdering::Relaxed)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `Err` once cancelled or past the deadline.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::DeadlineExceeded);
        }
        Ok(())
    }
}

/// Which versions count, at snapshot seq `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Visibility {
    at: u64,
    all_versions: bool,
    include_deleted: bool,
    /// Versions whose expiry is at or before this time count as deleted.
    expiry_at: Option<u64>,
}

impl Visibility {
    fn check(&self, seq: u64, cols: Option<SeqColumns>, engine: &Engine) -> Result<bool> {
        let Some(cols) = cols else {
            return Ok(false);
        };
        if seq > self.at || (!self.all_versions && cols.end <= self.at) {
            return Ok(false);
        }
        let mut deleted = cols.tombstone;
        if !deleted && cols.expires {
            if let Some(x) = self.expiry_at {
                let expiry = engine.get_seq(seq)?.and_then(|v| v.meta.expires_at);
                deleted = expiry.is_some_and(|e| e <= x);
            }
        }
        Ok(!deleted || self.include_deleted)
    }
}

/// A page token: the pinned snapshot and where the last page ended; the query, sort and
/// snapshot it belongs to are its check's key ([`crate::token`]), not part of it.
#[derive(Debug)]
struct PageToken {
    vis: Visibility,
    key: Vec<SortValue>,
    seq: u64,
}

/// A fingerprint of what a page token is good for: query, sort, snapshot, deleted or not.
fn fingerprint(spec: &QuerySpec) -> u64 {
    let text = serde_json::to_string(&(
        &spec.query,
        &spec.sort,
        &spec.snapshot,
        spec.include_deleted,
    ))
    .unwrap_or_default();
    // FNV-1a: stable across processes and versions.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn encode_token(token: &PageToken, fingerprint: u64) -> String {
    let mut w = token::Writer::new();
    let vis = &token.vis;
    w.u64(vis.at)
        .u8(u8::from(vis.all_versions) | (u8::from(vis.include_deleted) << 1))
        .u64(vis.expiry_at.map_or(0, |x| x.saturating_add(1)))
        .u64(token.seq)
        .u64(token.key.len() as u64);
    for v in &token.key {
        match v {
            SortValue::Bool(b) => w.u8(0).u8(u8::from(*b)),
            SortValue::I(i) => w.u8(1).i64(*i),
            SortValue::U(u) => w.u8(2).u64(*u),
            SortValue::F(f) => w.u8(3).f64(*f),
            SortValue::Date(d) => w.u8(4).i64(*d),
            SortValue::Str(s) => w.u8(5).str(s),
            SortValue::Missing => w.u8(6),
        };
    }
    token::seal(token::QUERY, &fingerprint.to_le_bytes(), &w.finish())
}

fn decode_token(text: &str, fingerprint: u64) -> Result<PageToken> {
    let payload = token::open(text, token::QUERY, &fingerprint.to_le_bytes())?;
    let mut r = token::Reader::new(&payload);
    let at = r.u64()?;
    let flags = r.u8()?;
    let expiry_at = r.u64()?.checked_sub(1);
    let seq = r.u64()?;
    let len = r.u64()?;
    let mut key = Vec::new();
    for _ in 0..len {
        key.push(match r.u8()? {
            0 => SortValue::Bool(r.u8()? != 0),
            1 => SortValue::I(r.i64()?),
            2 => SortValue::U(r.u64()?),
            3 => SortValue::F(r.f64()?),
            4 => SortValue::Date(r.i64()?),
            5 => SortValue::Str(r.str()?),
            6 => SortValue::Missing,
            _ => {
                return Err(Error::InvalidPageToken {
                    reason: "malformed payload".to_owned(),
                })
            }
        });
    }
    r.end()?;
    Ok(PageToken {
        vis: Visibility {
            at,
            all_versions: flags & 1 != 0,
            include_deleted: flags & 2 != 0,
            expiry_at,
        },
        key,
        seq,
    })
}

/// A candidate result: its sort key, then seq as the tie-breaker.
#[derive(Debug, Clone)]
struct Entry {
    key: Vec<SortValue>,
    seq: u64,
    score: Option<f32>,
}

/// What a query collects: count, best entries, groups.
struct Plan {
    vis: Visibility,
    sort: Vec<(SortTarget, bool)>,
    /// Entries kept: offset + limit + 1 (one more tells whether a next page exists).
    keep: usize,
    after: Option<(Vec<SortValue>, u64)>,
    group: Option<(Field, usize)>,
    needs_score: bool,
    engine: Arc<Engine>,
    interrupt: Arc<Interrupt>,
}

impl Plan {
    fn cmp(&self, a: &Entry, b: &Entry) -> Ordering {
        self.cmp_parts(&a.key, a.seq, &b.key, b.seq)
    }

    fn cmp_parts(&self, ak: &[SortValue], aseq: u64, bk: &[SortValue], bseq: u64) -> Ordering {
        for ((x, y), (_, desc)) in ak.iter().zip(bk).zip(&self.sort) {
            match x.cmp_dir(y, *desc) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        aseq.cmp(&bseq)
    }

    fn after_cursor(&self, e: &Entry) -> bool {
        match &self.after {
            None => true,
            Some((key, seq)) => self.cmp_parts(&e.key, e.seq, key, *seq) == Ordering::Greater,
        }
    }
}

#[derive(Default)]
struct Group {
    key: Option<SortValue>,
    count: u64,
    top: Vec<Entry>,
}

#[derive(Default)]
struct Acc {
    count: u64,
    top: Vec<Entry>,
    groups: HashMap<String, Group>,
    error: Option<String>,
    /// Set once the interrupt fired; the rest of the segment is skipped.
    interrupted: Option<Error>,
}

/// Inserts into a sorted bounded list.
fn insert_bounded(list: &mut Vec<Entry>, e: Entry, keep: usize, plan: &Plan) {
    if keep == 0 {
        return;
    }
    if list.len() >= keep {
        if let Some(last) = list.last() {
            if plan.cmp(&e, last) != Ordering::Less {
                return;
            }
        }
    }
    let at = list.partition_point(|x| plan.cmp(x, &e) == Ordering::Less);
    list.insert(at, e);
    list.truncate(keep);
}

impl Acc {
    fn offer(&mut self, plan: &Plan, entry: Entry, groups: Option<Vec<SortValue>>) {
        self.count += 1;
        if let (Some(values), Some((_, top))) = (groups, &plan.group) {
            for v in values {
                let g = self.groups.entry(v.group_id()).or_default();
                g.count += 1;
                if g.key.is_none() {
                    g.key = Some(v);
                }
                insert_bounded(&mut g.top, entry.clone(), *top, plan);
            }
        }
        if plan.after_cursor(&entry) {
            insert_bounded(&mut self.top, entry, plan.keep, plan);
        }
    }

    fn merge(&mut self, plan: &Plan, other: Acc) {
        self.count += other.count;
        if self.error.is_none() {
            self.error = other.error;
        }
        if self.interrupted.is_none() {
            self.interrupted = other.interrupted;
        }
        for e in other.top {
            insert_bounded(&mut self.top, e, plan.keep, plan);
        }
        for (id, g) in other.groups {
            let mine = self.groups.entry(id).or_default();
            mine.count += g.count;
            if mine.key.is_none() {
                mine.key = g.key;
            }
            for e in g.top {
                if let Some((_, top)) = &plan.group {
                    insert_bounded(&mut mine.top, e, *top, plan);
                }
            }
        }
    }
}

/// Distinct group values (or `Missing`).
fn group_values(values: Vec<SortValue>) -> Vec<SortValue> {
    let mut out: Vec<SortValue> = Vec::with_capacity(values.len().max(1));
    for v in values {
        if !out.iter().any(|o| o.group_id() == v.group_id()) {
            out.push(v);
        }
    }
    if out.is_empty() {
        out.push(SortValue::Missing);
    }
    out
}

struct VersionCollector {
    plan: Arc<Plan>,
}

/// Documents buffered before one visibility lookup in the engine.
const VISIBILITY_BATCH: usize = 512;

struct VersionSegmentCollector {
    plan: Arc<Plan>,
    seqs: Column<u64>,
    sort: Vec<Option<ColumnReader>>,
    group: Option<ColumnReader>,
    buffer: Vec<(DocId, u64, Score)>,
    cols: Vec<Option<SeqColumns>>,
    seq_buf: Vec<u64>,
    values: Vec<SortValue>,
    acc: Acc,
}

impl Collector for VersionCollector {
    type Fruit = Acc;
    type Child = VersionSegmentCollector;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<VersionSegmentCollector> {
        let seqs = segment.fast_fields().u64(SystemField::Seq.name())?;
        let sort = self
            .plan
            .sort
            .iter()
            .map(|(t, _)| match t {
                SortTarget::Score => Ok(None),
                SortTarget::Field(f) => ColumnReader::open(segment, f)
                    .map(Some)
                    .map_err(|e| tantivy::TantivyError::InternalError(e.to_string())),
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        let group = match &self.plan.group {
            Some((f, _)) => Some(
                ColumnReader::open(segment, f)
                    .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?,
            ),
            None => None,
        };
        Ok(VersionSegmentCollector {
            plan: Arc::clone(&self.plan),
            seqs,
            sort,
            group,
            buffer: Vec::with_capacity(VISIBILITY_BATCH),
            cols: Vec::with_capacity(VISIBILITY_BATCH),
            seq_buf: Vec::with_capacity(VISIBILITY_BATCH),
            values: Vec::new(),
            acc: Acc::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.plan.needs_score
    }

    fn merge_fruits(&self, fruits: Vec<Acc>) -> tantivy::Result<Acc> {
        let mut acc = Acc::default();
        for f in fruits {
            acc.merge(&self.plan, f);
        }
        Ok(acc)
    }
}

impl VersionSegmentCollector {
    fn push(&mut self, doc: DocId, score: Score) {
        if self.acc.interrupted.is_some() {
            return;
        }
        let Some(seq) = self.seqs.first(doc) else {
            return;
        };
        if seq > self.plan.vis.at {
            return;
        }
        self.buffer.push((doc, seq, score));
        if self.buffer.len() >= VISIBILITY_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let plan = Arc::clone(&self.plan);
        if let Err(e) = plan.interrupt.check() {
            self.acc.interrupted = Some(e);
            self.buffer.clear();
            return;
        }
        self.seq_buf.clear();
        self.seq_buf.extend(self.buffer.iter().map(|(_, s, _)| *s));
        plan.engine.seq_columns(&self.seq_buf, &mut self.cols);
        let buffer = std::mem::take(&mut self.buffer);
        for (i, &(doc, seq, score)) in buffer.iter().enumerate() {
            match plan
                .vis
                .check(seq, self.cols.get(i).copied().flatten(), &plan.engine)
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    self.acc.error.get_or_insert(e.to_string());
                    continue;
                }
            }
            if plan.keep == 0 && plan.group.is_none() {
                self.acc.count += 1;
                continue;
            }
            let mut key = Vec::with_capacity(plan.sort.len());
            for (reader, (target, _)) in self.sort.iter().zip(&plan.sort) {
                key.push(match (reader, target) {
                    (Some(r), _) => {
                        r.values(doc, &mut self.values);
                        min_value(std::mem::take(&mut self.values))
                    }
                    (None, _) => SortValue::F(f64::from(score)),
                });
            }
            let groups = self.group.as_ref().map(|r| {
                r.values(doc, &mut self.values);
                group_values(std::mem::take(&mut self.values))
            });
            let entry = Entry {
                key,
                seq,
                score: plan.needs_score.then_some(score),
            };
            self.acc.offer(&plan, entry, groups);
        }
        self.buffer = buffer;
        self.buffer.clear();
    }
}

impl SegmentCollector for VersionSegmentCollector {
    type Fruit = Acc;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.push(doc, score);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for &doc in docs {
            self.push(doc, 0.0);
        }
    }

    fn harvest(mut self) -> Acc {
        self.flush();
        self.acc
    }
}

/// Resolves the snapshot of a first page.
/// The kind every match must have, if the query says (`_kind:k`, alone or among the `must`
/// clauses).
fn required_kind(query: &Query) -> Option<&str> {
    match query {
        Query::Kind(kind) => Some(kind),
        Query::Term {
            field: Field::System(SystemField::Kind),
            value: Scalar::Str(kind),
            case_insensitive: false,
        } => Some(kind),
        Query::Bool(b) => b.must.iter().find_map(required_kind),
        _ => None,
    }
}

/// The documents every match must be among, if the query names them (`_id` terms, id
/// prefixes, alone, among the `must` clauses, or in every `should` clause).
fn required_ids(query: &Query) -> Option<storage::IdScope> {
    let id = Field::System(SystemField::Id);
    match query {
        Query::Term {
            field,
            value: Scalar::Str(value),
            case_insensitive: false,
        } if *field == id => Some(storage::IdScope::new(vec![value.clone()], Vec::new())),
        Query::Terms { field, values } if *field == id => {
            let ids = values
                .iter()
                .map(|v| match v {
                    Scalar::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()?;
            Some(storage::IdScope::new(ids, Vec::new()))
        }
        Query::Prefix { field, prefix } if *field == id => {
            Some(storage::IdScope::new(Vec::new(), vec![prefix.clone()]))
        }
        Query::IdPrefix(prefix) => Some(storage::IdScope::new(Vec::new(), vec![prefix.clone()])),
        Query::Bool(b) if !b.must.is_empty() => b.must.iter().find_map(required_ids),
        Query::Bool(b) if !b.should.is_empty() => {
            let mut all = storage::IdScope::default();
            for clause in &b.should {
                let scope = required_ids(clause)?;
                all.ids.extend(scope.ids);
                all.prefixes.extend(scope.prefixes);
            }
            Some(all)
        }
        _ => None,
    }
}

fn visibility(spec: &QuerySpec, engine: &Engine, now: u64) -> Visibility {
    let last = engine.last_seq();
    let (at, all_versions, expiry_at) = match spec.snapshot {
        Snapshot::Current => (last, false, Some(now)),
        Snapshot::AsOf(t) => (engine.seq_at_time(t).min(last), false, Some(t)),
        Snapshot::AtSeq(s) => {
            let at = s.min(last);
            let time = engine.seq_time(at).unwrap_or(0);
            (at, false, Some(time))
        }
        Snapshot::AllVersions => (last, true, None),
    };
    Visibility {
        at,
        all_versions,
        include_deleted: spec.include_deleted,
        expiry_at,
    }
}

pub(crate) fn search(
    shared: &Shared,
    spec: &QuerySpec,
    now: u64,
    interrupt: &Arc<Interrupt>,
) -> Result<QueryOutput> {
    spec.validate()?;
    interrupt.check()?;
    let node = plan::compile(&spec.query)?;
    let sort: Vec<(SortTarget, bool)> = spec
        .sort
        .iter()
        .map(|k| k.target().map(|t| (t, k.descending)))
        .collect::<Result<_>>()?;
    let needs_score = sort.iter().any(|(t, _)| *t == SortTarget::Score);
    let fp = fingerprint(spec);
    let (vis, after) = match &spec.page {
        Some(token) => {
            let t = decode_token(token, fp)?;
            if t.key.len() != sort.len() {
                return Err(Error::InvalidPageToken {
                    reason: "issued for another sort".to_owned(),
                });
            }
            (t.vis, Some((t.key, t.seq)))
        }
        None => (visibility(spec, &shared.engine, now), None),
    };
    // A snapshot before the horizon of the kind asked for (of the store, when the query names
    // no kind) could miss versions retention dropped: say so instead (docs/DESIGN.md §2), unless no
    // document the query can match is unknown then. With `allow_trimmed` the known part is
    // answered; what it leaves out is computed after the search.
    if !spec.allow_trimmed {
        check_horizon(shared, spec, &vis)?;
    }
    let group = match &spec.group_by {
        Some(g) => Some((Field::parse(&g.field)?, g.top)),
        None => None,
    };
    let plan = Arc::new(Plan {
        vis,
        sort,
        keep: if spec.limit == 0 {
            0
        } else {
            spec.offset + spec.limit + 1
        },
        after,
        group,
        needs_score,
        engine: Arc::clone(&shared.engine),
        interrupt: Arc::clone(interrupt),
    });

    // Scores exist only in the index; a big tail is cheaper to commit than to scan.
    let mut published: Arc<Published> = shared.current()?;
    if needs_score && published.committed < vis.at {
        published = shared.wait_committed(vis.at)?;
    } else if !shared.read_only
        && vis.at.saturating_sub(published.committed) > shared.options.max_tail
    {
        // (A read-only open matches any tail: no commit will come from this process.)
        // Wait only until the tail is small enough to match.
        published = shared.wait_committed(vis.at - shared.options.max_tail)?;
    }

    let tq = translate(&node, &shared.fields)?;
    let collector = VersionCollector {
        plan: Arc::clone(&plan),
    };
    let mut acc = published.searcher.search(&*tq, &collector)?;
    if let Some(e) = acc.interrupted.take() {
        return Err(e);
    }
    if published.committed < vis.at {
        let matcher = Matcher::from_node(node);
        scan_tail(shared, &published, &plan, &matcher, &mut acc)?;
    }
    if let Some(e) = acc.error {
        return Err(Error::Index { message: e });
    }
    // A compaction that ran meanwhile may have dropped a version the snapshot shows (it raises
    // the horizon before it repoints the version index): then the answer may be partial.
    let trimmed = check_horizon(shared, spec, &plan.vis)?;
    let mut out = finish(spec, &plan, acc, fp);
    out.trimmed = trimmed;
    Ok(out)
}

/// Whether the answer at `vis` may leave out documents whose state then is unknown: [`Error`]
/// `HistoryTrimmed` when the snapshot is before the horizon of the kind the query names (of the
/// store, when it names none) and some document the query can match (those it names by id, or
/// all) is unknown then; with [`QuerySpec::allow_trimmed`], what the answer leaves out.
fn check_horizon(shared: &Shared, spec: &QuerySpec, vis: &Visibility) -> Result<Option<Trimmed>> {
    if vis.all_versions {
        return Ok(None);
    }
    let Some((seq, time)) = shared.engine.horizon(required_kind(&spec.query)) else {
        return Ok(None);
    };
    if vis.at >= seq {
        return Ok(None);
    }
    let list = if spec.allow_trimmed {
        spec.unknown_ids
    } else {
        0
    };
    let scope = required_ids(&spec.query);
    let unknown = shared.engine.unknown_at(vis.at, scope.as_ref(), list);
    if unknown.count == 0 {
        return Ok(None);
    }
    if !spec.allow_trimmed {
        return Err(Error::Storage(storage::Error::HistoryTrimmed {
            id: None,
            oldest_complete: time,
        }));
    }
    Ok(Some(Trimmed {
        unknown: unknown.count,
        unknown_ids: unknown.ids,
        oldest_complete: time,
    }))
}

/// Matches the versions after the last commit, up to the snapshot.
fn scan_tail(
    shared: &Shared,
    published: &Published,
    plan: &Plan,
    matcher: &Matcher,
    acc: &mut Acc,
) -> Result<()> {
    let at = plan.vis.at;
    let mut docs: Vec<&TailDoc> = Vec::new();
    for chunk in &published.tail {
        docs.extend(chunk.iter().filter(|d| d.info.seq <= at));
    }
    // Versions the indexer has not reached yet come from the log.
    let mut read: Vec<TailDoc> = Vec::new();
    let mut next = published.indexed().max(published.committed) + 1;
    while next <= at {
        // `at` is at most the log's last seq: a missing version was dropped by compaction.
        let Some(v) = shared.engine.get_seq(next)? else {
            next += 1;
            continue;
        };
        let body = if v.meta.tombstone {
            Value::Null
        } else {
            serde_json::from_slice(&v.body).map_err(|e| Error::Index {
                message: format!("the body of seq {next} is not JSON: {e}"),
            })?
        };
        read.push(TailDoc::new(VersionInfo::from_meta(&v.meta), body));
        next += 1;
    }
    docs.extend(read.iter());
    let seqs: Vec<u64> = docs.iter().map(|d| d.info.seq).collect();
    let mut cols = Vec::with_capacity(seqs.len());
    plan.engine.seq_columns(&seqs, &mut cols);
    for (i, (doc, col)) in docs.iter().zip(cols).enumerate() {
        if i % VISIBILITY_BATCH == 0 {
            plan.interrupt.check()?;
        }
        if !plan.vis.check(doc.info.seq, col, &plan.engine)? {
            continue;
        }
        if !matcher.matches_flat(&doc.info, doc.flat()) {
            continue;
        }
        let key = plan
            .sort
            .iter()
            .map(|(t, _)| match t {
                SortTarget::Field(f) => min_value(values_of(f, &doc.info, &doc.body)),
                SortTarget::Score => SortValue::Missing,
            })
            .collect();
        let groups = plan
            .group
            .as_ref()
            .map(|(f, _)| group_values(values_of(f, &doc.info, &doc.body)));
        acc.offer(
            plan,
            Entry {
                key,
                seq: doc.info.seq,
                score: None,
            },
            groups,
        );
    }
    Ok(())
}

fn hit(e: &Entry) -> Hit {
    Hit {
        seq: e.seq,
        score: e.score,
        sort: e.key.iter().map(SortValue::to_scalar).collect(),
    }
}

fn finish(spec: &QuerySpec, plan: &Plan, acc: Acc, fp: u64) -> QueryOutput {
    let page: Vec<&Entry> = acc.top.iter().skip(spec.offset).take(spec.limit).collect();
    let more = acc.top.len() > spec.offset + spec.limit;
    let next_page = match (more, page.last()) {
        (true, Some(last)) => Some(encode_token(
            &PageToken {
                vis: plan.vis,
                key: last.key.clone(),
                seq: last.seq,
            },
            fp,
        )),
        _ => None,
    };
    let mut groups: Vec<(SortValue, Group)> = acc
        .groups
        .into_values()
        .map(|g| (g.key.clone().unwrap_or(SortValue::Missing), g))
        .collect();
    groups.sort_by(|(ka, a), (kb, b)| b.count.cmp(&a.count).then_with(|| ka.cmp_dir(kb, false)));
    let limit = spec.group_by.as_ref().map_or(0, |g| g.limit);
    QueryOutput {
        snapshot_seq: plan.vis.at,
        count: spec.count.then_some(acc.count),
        hits: page.into_iter().map(hit).collect(),
        next_page,
        groups: groups
            .into_iter()
            .take(limit)
            .map(|(k, g)| GroupOutput {
                key: k.to_json(),
                count: g.count,
                hits: g.top.iter().map(hit).collect(),
            })
            .collect(),
        trimmed: None,
    }
}
