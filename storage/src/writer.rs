//! How does a write become durable? The single writer: group commit of concurrent batches into
//! one append and one sync (FORMAT.md §5).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::error::{CorruptionKind, Error, Result};
use crate::index::{SeqEntry, OPEN_END};
use crate::log::frame::{self, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::log::record::{Record, MAX_ID_LEN, MAX_KIND_LEN, RECORD_HEADER_LEN};
use crate::log::segment::{self, ActiveSegment, SEGMENT_HEADER_LEN};
use crate::options::{Durability, EngineOptions};
use crate::shared::{SegmentReader, Shared};
use crate::time::{deadline_after, micros_of};
use crate::types::{Action, Expect, Origin, VersionMeta, WriteOp};

/// What a waiting committer is told: its batch's outcome, or that it leads the next group.
pub(crate) enum Signal {
    Done(Result<Vec<VersionMeta>>),
    Lead,
}

/// Where a committer waits for its [`Signal`].
pub(crate) type CommitReply = Sender<Signal>;

/// A batch waiting for the next group commit.
pub(crate) struct Request {
    ops: Vec<WriteOp>,
    time: Option<u64>,
    origin: Option<Origin>,
    reply: CommitReply,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Request>,
    /// Whether some committer is leading (writing a group or about to).
    leader: bool,
}

/// Group commit without a writer thread (the leader/follower scheme of LevelDB and RocksDB):
/// the first committer to find no leader becomes it, takes every queued batch, writes and syncs
/// them as one group, then hands leadership to the first batch queued meanwhile, if any. A lone
/// writer thus commits on its own thread, with no hand-off; concurrent writers share a sync.
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
}

/// Resets the queue if a leader unwinds, so the store fails instead of hanging.
struct LeaderGuard<'a> {
    committer: &'a Committer,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let writer = self.committer.writer.lock();
            writer.shared.poisoned.store(true, Ordering::Release);
            drop(writer);
            let mut queue = self.committer.queue.lock();
            queue.leader = false;
            for request in queue.pending.drain(..) {
                let _ = request.reply.send(Signal::Done(Err(Error::Poisoned)));
            }
        }
    }
}

impl Committer {
    pub(crate) fn new(writer: Writer) -> Self {
        Committer {
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(writer),
        }
    }

    /// Commits one batch as part of the next group; returns once it is as durable as promised.
    /// A batch with an `origin` takes its time from it (`time` is then `None`).
    pub(crate) fn commit(
        &self,
        ops: Vec<WriteOp>,
        time: Option<u64>,
        origin: Option<Origin>,
    ) -> Result<Vec<VersionMeta>> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        let lead = {
            let mut queue = self.queue.lock();
            queue.pending.push(Request {
                ops,
                time,
                origin,
                reply,
            });
            !std::mem::replace(&mut queue.leader, true)
        };
        if !lead {
            match rx.recv() {
                Ok(Signal::Done(result)) => return result,
                Ok(Signal::Lead) => {}
                Err(_) => return Err(Error::Closed),
            }
        }
        let mut guard = LeaderGuard {
            committer: self,
            armed: true,
        };
        // Our own batch is queued, so the first group holds it.
        let group = std::mem::take(&mut self.queue.lock().pending);
        self.writer.lock().commit_group(group);
        let result = match rx.try_recv() {
            Ok(Signal::Done(result)) => result,
            _ => Err(Error::Closed),
        };
        {
            let mut queue = self.queue.lock();
            match queue.pending.first() {
                // Leadership passes on; `leader` stays set.
                Some(next) => {
                    let _ = next.reply.send(Signal::Lead);
                }
                None => queue.leader = false,
            }
        }
        guard.armed = false;
        result
    }

    /// Syncs every acknowledged write now.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut writer = self.writer.lock();
        if writer.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        writer.sync_now()
    }

    /// The active segment's number and length, and the newest seq, between two groups.
    pub(crate) fn position(&self) -> (u32, u64, u64) {
        let writer = self.writer.lock();
        (writer.active.number, writer.active.len, writer.last_seq)
    }

    /// Syncs if a buffered sync is due (called by the flusher thread).
    pub(crate) fn sync_if_due(&self) {
        let mut writer = self.writer.lock();
        if writer.sync_due.is_some_and(|due| due <= Instant::now())
            && !writer.shared.poisoned.load(Ordering::Acquire)
        {
            let _ = writer.sync_now();
        }
    }

    /// Refuses every later write (a background thread that syncs has failed).
    pub(crate) fn poison(&self) {
        self.writer
            .lock()
            .shared
            .poisoned
            .store(true, Ordering::Release);
    }

    /// Syncs whatever was written since the last sync (the store is closing).
    pub(crate) fn close(&self) {
        let mut writer = self.writer.lock();
        if writer.unsynced && !writer.shared.poisoned.load(Ordering::Acquire) {
            let _ = writer.sync_now();
        }
    }
}

/// A document's newest state as the writer sees it, including this group's unpublished writes.
#[derive(Clone)]
struct DocState {
    version: u64,
    tombstone: bool,
    expires_at: Option<u64>,
    content: Content,
}

/// Where a document's newest kind, expiry and body are, read only when an operation needs them
/// (a put does not).
#[derive(Clone)]
enum Content {
    /// In the log, at this seq.
    Published(u64),
    /// Written earlier in this group.
    Pending(Newest),
}

/// The kind, expiry and body of a document's newest version.
#[derive(Clone)]
struct Newest {
    kind: Arc<str>,
    expires_at: Option<u64>,
    body: Arc<Vec<u8>>,
}

/// One version about to be written.
struct NewRecord {
    id: String,
    kind: Arc<str>,
    version: u64,
    seq: u64,
    time: u64,
    tombstone: bool,
    expires_at: Option<u64>,
    body: Arc<Vec<u8>>,
}

impl NewRecord {
    fn meta(&self) -> VersionMeta {
        VersionMeta {
            id: self.id.clone(),
            kind: self.kind.to_string(),
            version: self.version,
            seq: self.seq,
            time: self.time,
            tombstone: self.tombstone,
            expires_at: self.expires_at,
        }
    }
}

/// A version written by a group, to publish to the version index once the group is durable.
struct NewEntry {
    id: String,
    version: u64,
    seq: u64,
    entry: SeqEntry,
    expires_at: Option<u64>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: ActiveSegment,
    last_seq: u64,
    last_time: u64,
    /// The origin of the newest batch that carried one, including this group's.
    last_origin: Option<u64>,
    /// When unsynced bytes must be synced at the latest (buffered durability).
    sync_due: Option<Instant>,
    /// Whether bytes were written since the last sync (synced on close whatever the durability).
    unsynced: bool,
    /// The first seq written since the last sync: the `group` of every record written until the
    /// next sync.
    torn_group: Option<u64>,
    /// The encode buffer, kept between groups.
    buf: Vec<u8>,
    /// The kind of the last record prepared, shared by the next records of the same kind.
    last_kind: Option<Arc<str>>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn not_found(index: usize, id: String) -> Error {
    Error::Op {
        index,
        id: id.clone(),
        source: Box::new(Error::NotFound { id }),
    }
}

fn io_error_copy(e: &Error) -> Error {
    match e {
        Error::Io { op, path, source } => Error::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        _ => Error::Poisoned,
    }
}

/// The times of one batch's operations (FORMAT.md §5): each batch gets a time later than the
/// store's last one; an operation without a time of its own shares the previous operation's,
/// one with its own must be later.
struct BatchTimes {
    /// The store's newest time before the batch.
    last: u64,
    /// The batch's explicit time, if it asked for one.
    batch: Option<u64>,
    /// The latest time accepted: `max_time_ahead` past the clock.
    limit: u64,
    /// The time of the operation before the current one.
    previous: Option<u64>,
}

impl BatchTimes {
    /// Checks the batch's explicit `time`, if any, against the store's `last` time and the
    /// clock. A replicated batch (with an `origin`) gets `max(origin's time, last + 1 µs)`
    /// and no time of it is checked against the clock: every replica must decide the same.
    fn new(
        last: u64,
        time: Option<u64>,
        origin: Option<Origin>,
        options: &EngineOptions,
    ) -> Result<Self> {
        if let Some(origin) = origin {
            let next = last.checked_add(1).ok_or(Error::TimeNotLater {
                requested: origin.min_time,
                last,
            })?;
            return Ok(BatchTimes {
                last,
                batch: Some(origin.min_time.max(next)),
                limit: u64::MAX,
                previous: None,
            });
        }
        // A time far ahead of the clock is almost always a unit mistake (nanoseconds for
        // microseconds); accepting it would stamp every later write in the far future.
        let limit = now_micros().saturating_add(micros_of(options.max_time_ahead));
        match time {
            Some(t) if t <= last => return Err(Error::TimeNotLater { requested: t, last }),
            Some(t) if t > limit => {
                return Err(Error::TimeTooFarAhead {
                    requested: t,
                    limit,
                })
            }
            _ => {}
        }
        Ok(BatchTimes {
            last,
            batch: time,
            limit,
            previous: None,
        })
    }

    /// The time of operation `i` on `id`, which asked for `own`.
    fn next(&mut self, i: usize, id: &str, own: Option<u64>) -> Result<u64> {
        let time = match (own, self.previous) {
            (Some(t), previous) => {
                let last = previous.unwrap_or(self.last);
                if t <= last {
                    return Err(Error::op(i, id, Error::TimeNotLater { requested: t, last }));
                }
                if t > self.limit {
                    return Err(Error::op(
                        i,
                        id,
                        Error::TimeTooFarAhead {
                            requested: t,
                            limit: self.limit,
                        },
                    ));
                }
                t
            }
            (None, Some(p)) => p,
            (None, None) => match self.batch {
                Some(t) => t,
                // Every batch gets its own moment, so `AsOf(t)` of a batch's time sees exactly
                // that batch. After a batch at `u64::MAX` (explicit, or read from the log)
                // there is no later one.
                None => match self.last.checked_add(1) {
                    Some(next) => now_micros().max(next),
                    None => {
                        return Err(Error::TimeNotLater {
                            requested: now_micros(),
                            last: self.last,
                        })
                    }
                },
            },
        };
        self.previous = Some(time);
        Ok(time)
    }
}

/// Checks operation `i`'s expectation on `id` against the document's newest state `current`,
/// at the operation's `time`, and returns that state if the document is live (neither deleted
/// nor expired: expired is absent, for writes as for reads, so a document whose newest version
/// expired by this time can be created again and cannot be patched).
fn check_expect<'a>(
    i: usize,
    id: &str,
    action: &Action,
    expect: Expect,
    current: Option<&'a DocState>,
    time: u64,
) -> Result<Option<&'a DocState>> {
    let live = current.filter(|c| !c.tombstone && c.expires_at.is_none_or(|e| e > time));
    let matches = match (action, expect) {
        // An expiry tombstone names the expired version, which reads no longer see.
        (Action::Expire, Expect::Version(v)) => current.is_some_and(|c| {
            c.version == v && !c.tombstone && c.expires_at.is_some_and(|e| e <= time)
        }),
        (Action::Expire, _) => false,
        (_, Expect::Any) => true,
        (_, Expect::Version(v)) => live.is_some_and(|c| c.version == v),
        (_, Expect::Absent) => live.is_none(),
    };
    if !matches {
        let conflict = Error::Conflict {
            id: id.to_owned(),
            expected: match expect {
                Expect::Version(v) => Some(v),
                _ => None,
            },
            actual: live.map(|c| c.version),
        };
        return Err(Error::op(i, id, conflict));
    }
    Ok(live)
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, active: ActiveSegment) -> Self {
        let (last_seq, last_time, last_origin) = {
            let state = shared.state.read();
            let index = &state.index;
            (index.last_seq(), index.last_time(), index.last_origin())
        };
        Writer {
            shared,
            active,
            last_seq,
            last_time,
            last_origin,
            sync_due: None,
            unsynced: false,
            torn_group: None,
            buf: Vec::new(),
            last_kind: None,
        }
    }

    fn fail(&self, error: Error) -> Error {
        self.shared.poisoned.store(true, Ordering::Release);
        error
    }

    fn sync_now(&mut self) -> Result<()> {
        self.sync_due = None;
        self.unsynced = false;
        self.torn_group = None;
        let path = segment::path(&self.shared.dir, u64::from(self.active.number));
        self.active
            .file
            .sync()
            .map_err(|e| self.fail(Error::io("fsync", path, e)))
    }

    fn commit_group(&mut self, commits: Vec<Request>) {
        if commits.is_empty() {
            return;
        }
        if self.shared.poisoned.load(Ordering::Acquire) {
            for request in commits {
                let _ = request.reply.send(Signal::Done(Err(Error::Poisoned)));
            }
            return;
        }
        let mut overlay: HashMap<String, DocState> = HashMap::new();
        // The encode buffer is reused across groups: a fresh megabyte per group would be mapped
        // and unmapped by the allocator every time.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut entries: Vec<NewEntry> = Vec::new();
        let mut replies: Vec<(CommitReply, Result<Vec<VersionMeta>>)> = Vec::new();
        // Every record written since the last sync carries the same `group` (FORMAT.md §4): a
        // crash may tear any of those bytes, in any order, under every durability mode.
        let mut group_first_seq = *self.torn_group.get_or_insert(self.last_seq + 1);
        let mut failure: Option<Error> = None;
        let mut group_origin = None;
        for Request {
            ops,
            time,
            origin,
            reply,
        } in commits
        {
            if failure.is_some() {
                replies.push((reply, Err(Error::Poisoned)));
                continue;
            }
            let records = match self.prepare(ops, time, origin, &mut overlay) {
                Ok(records) => records,
                Err(e) => {
                    replies.push((reply, Err(e)));
                    continue;
                }
            };
            let origin = origin.map(|o| o.position);
            let room = self.make_room(&records, origin.is_some(), &mut buf, &mut group_first_seq);
            if let Err(e) = room {
                // This batch's writer gets the IO error itself, like the writers of the
                // batches before it in the group; only later batches just see `Poisoned`.
                replies.push((reply, Err(io_error_copy(&e))));
                failure = Some(e);
                continue;
            }
            self.encode(&records, group_first_seq, origin, &mut buf, &mut entries);
            group_origin = origin.or(group_origin);
            replies.push((reply, Ok(records.iter().map(NewRecord::meta).collect())));
            // Bound the memory of a large group: write what is encoded; the sync comes at the end.
            if buf.len() >= self.shared.options.max_group_bytes {
                match self.write_buf(&buf) {
                    Ok(()) => buf.clear(),
                    Err(e) => failure = Some(e),
                }
            }
        }
        if failure.is_none() {
            if let Err(e) = self.make_durable(&buf) {
                failure = Some(e);
            }
        }
        match failure {
            None => self.publish(entries, group_origin),
            Some(e) => {
                // Nothing of this group is published or acknowledged; the store is poisoned and
                // recovery decides on reopen what of the written bytes counts (FORMAT.md §6).
                for (_, result) in &mut replies {
                    if result.is_ok() {
                        *result = Err(io_error_copy(&e));
                    }
                }
            }
        }
        // Keep the buffer for the next group, unless one huge batch inflated it.
        if buf.capacity() <= 2 * self.shared.options.max_group_bytes {
            self.buf = buf;
        }
        for (reply, result) in replies {
            let _ = reply.send(Signal::Done(result));
        }
    }

    /// Makes room for the batch of `records` after the `buf` not yet written: when it does not
    /// fit in the active segment, writes `buf` and seals the segment (a batch never spans
    /// segments). A batch with an origin needs a segment whose header allows origins
    /// (FORMAT.md §2): an empty active segment is created again with one, a used one sealed.
    /// The roll syncs, so the records after it start a new `group`.
    fn make_room(
        &mut self,
        records: &[NewRecord],
        origin: bool,
        buf: &mut Vec<u8>,
        group_first_seq: &mut u64,
    ) -> Result<()> {
        let size: usize = records
            .iter()
            .map(|r| {
                FRAME_HEADER_LEN + RECORD_HEADER_LEN + r.id.len() + r.kind.len() + r.body.len()
            })
            .sum::<usize>()
            + if origin { 8 } else { 0 };
        let used = self.active.len + buf.len() as u64;
        let empty = used == SEGMENT_HEADER_LEN as u64;
        let full = !empty && used + size as u64 > self.shared.options.segment_size;
        let upgrade = origin && !self.active.origins;
        if full || upgrade {
            let next_first_seq = records.first().map_or(self.last_seq + 1, |r| r.seq);
            if empty {
                self.recreate_with_origins(next_first_seq)?;
            } else {
                self.write_buf(buf)
                    .and_then(|()| self.roll(next_first_seq, self.active.origins || origin))?;
            }
            buf.clear();
            *group_first_seq = *self
                .torn_group
                .get_or_insert(records.first().map_or(*group_first_seq, |r| r.seq));
        }
        buf.reserve(size);
        Ok(())
    }

    /// Encodes the batch of `records` into `buf`, after the bytes it holds, and notes the index
    /// entry of each.
    fn encode(
        &self,
        records: &[NewRecord],
        group_first_seq: u64,
        origin: Option<u64>,
        buf: &mut Vec<u8>,
        entries: &mut Vec<NewEntry>,
    ) {
        let mut offset = self.active.len + buf.len() as u64;
        let last = records.len() - 1;
        for (i, r) in records.iter().enumerate() {
            let record = Record {
                seq: r.seq,
                group: group_first_seq,
                version: r.version,
                time: r.time,
                expires_at: r.expires_at,
                tombstone: r.tombstone,
                batch_end: i == last,
                id: &r.id,
                kind: &r.kind,
                body: &r.body,
                origin: origin.filter(|_| i == last),
            };
            let payload_len = record.encoded_len();
            frame::encode_with(buf, payload_len, |out| record.encode(out));
            let len = (FRAME_HEADER_LEN + payload_len) as u32;
            entries.push(NewEntry {
                id: r.id.clone(),
                version: r.version,
                seq: r.seq,
                entry: SeqEntry {
                    time: r.time,
                    end: OPEN_END,
                    segment: self.active.number,
                    // A segment is at most MAX_SEGMENT_SIZE (2 GiB) plus one batch, and
                    // `prepare` refuses batches that would pass u32 offsets.
                    offset: offset as u32,
                    len,
                    tombstone: r.tombstone,
                    expires: r.expires_at.is_some(),
                },
                expires_at: r.expires_at,
            });
            offset += u64::from(len);
        }
    }

    /// Writes the rest of the group and makes it as durable as the durability mode promises.
    fn make_durable(&mut self, buf: &[u8]) -> Result<()> {
        self.write_buf(buf)?;
        match self.shared.options.durability {
            Durability::Sync => self.sync_now(),
            Durability::Buffered(interval) => {
                // An interval no `Instant` can hold leaves no timed sync (see
                // `Durability::Buffered`).
                if self.sync_due.is_none() {
                    self.sync_due = deadline_after(interval);
                }
                Ok(())
            }
            Durability::None => Ok(()),
        }
    }

    /// Publishes a written group's versions to the version index: readers see them from now on.
    fn publish(&self, entries: Vec<NewEntry>, origin: Option<u64>) {
        let mut state = self.shared.state.write();
        if let Some(origin) = origin {
            state.index.note_origin(origin);
        }
        for new in entries {
            state.index.push(&new.id, new.version, new.seq, new.entry);
            if let Some(at) = new.expires_at {
                state.index.note_expiry(at, new.seq);
            }
        }
    }

    fn write_buf(&mut self, buf: &[u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let path = segment::path(&self.shared.dir, u64::from(self.active.number));
        self.active
            .file
            .write_all_at(buf, self.active.len)
            .map_err(|e| self.fail(Error::io("write", path, e)))?;
        self.unsynced = true;
        self.active.len += buf.len() as u64;
        Ok(())
    }

    /// Creates the empty active segment again, with a header that allows origins (FORMAT.md §5:
    /// a crash half way leaves a header that does not decode, an interrupted creation).
    fn recreate_with_origins(&mut self, first_seq: u64) -> Result<()> {
        self.sync_now()?;
        let number = self.active.number;
        let active = self.create_segment(number, first_seq, true)?;
        self.shared
            .state
            .write()
            .segments
            .insert(number, SegmentReader::File(Arc::clone(&active.file)));
        self.active = active;
        Ok(())
    }

    /// Creates segment `number` (FORMAT.md §5); a failure poisons the engine.
    fn create_segment(&self, number: u32, first_seq: u64, origins: bool) -> Result<ActiveSegment> {
        let shared = &self.shared;
        segment::create(
            shared.backend.as_ref(),
            &shared.dir,
            number,
            first_seq,
            origins,
        )
        .map_err(|e| self.fail(e))
    }

    /// Seals the active segment (synced, then mapped) and starts the next one, whose header
    /// allows origins if `origins`.
    fn roll(&mut self, next_first_seq: u64, origins: bool) -> Result<()> {
        self.sync_now()?;
        let shared = Arc::clone(&self.shared);
        let sealed = self.active.number;
        // Only a log written elsewhere can have used up the segment numbers.
        let next_number = sealed.checked_add(1).ok_or_else(|| {
            self.fail(Error::TooLarge(format!(
                "segment {sealed} is full and is the last segment number"
            )))
        })?;
        let next = self.create_segment(next_number, next_first_seq, origins)?;
        let path = segment::path(&shared.dir, u64::from(sealed));
        let map = self
            .active
            .file
            .map()
            .map_err(|e| self.fail(Error::io("map segment", path, e)))?;
        {
            let mut state = shared.state.write();
            state.segments.insert(sealed, SegmentReader::Mapped(map));
            state
                .segments
                .insert(next.number, SegmentReader::File(Arc::clone(&next.file)));
        }
        self.active = next;
        Ok(())
    }

    /// Checks a batch against the newest state and turns it into records with their seqs,
    /// versions and time. On error nothing of the batch is kept.
    fn prepare(
        &mut self,
        ops: Vec<WriteOp>,
        time: Option<u64>,
        origin: Option<Origin>,
        overlay: &mut HashMap<String, DocState>,
    ) -> Result<Vec<NewRecord>> {
        if let (Some(origin), Some(last)) = (origin, self.last_origin) {
            if origin.position <= last {
                return Err(Error::OriginNotLater {
                    requested: origin.position,
                    last,
                });
            }
        }
        let mut times = BatchTimes::new(self.last_time, time, origin, &self.shared.options)?;
        let mut local: HashMap<String, DocState> = HashMap::with_capacity(ops.len());
        let mut records = Vec::with_capacity(ops.len());
        let mut bytes = 0usize;
        for (i, op) in ops.into_iter().enumerate() {
            let WriteOp {
                id,
                expect,
                action,
                expires_at,
                time,
            } = op;
            if id.is_empty() || id.len() > MAX_ID_LEN {
                let error = Error::TooLarge(format!(
                    "id of {} bytes is outside 1..={MAX_ID_LEN}",
                    id.len()
                ));
                return Err(Error::op(i, &id, error));
            }
            let time = times.next(i, &id, time)?;
            let current = match local.get(&id).or_else(|| overlay.get(&id)) {
                Some(state) => Some(state.clone()),
                None => self.load(&id)?,
            };
            let live = check_expect(i, &id, &action, expect, current.as_ref(), time)?;
            let version = match &current {
                None => 0,
                // Only a log written elsewhere can hold a version this high.
                Some(c) => c.version.checked_add(1).ok_or_else(|| {
                    let error = Error::TooLarge(format!(
                        "document {id} has no version after {}",
                        c.version
                    ));
                    Error::op(i, &id, error)
                })?,
            };
            let (tombstone, newest) =
                self.apply(i, &id, action, expires_at, current.as_ref(), live)?;
            let payload = RECORD_HEADER_LEN + id.len() + newest.kind.len() + newest.body.len();
            bytes += FRAME_HEADER_LEN + payload;
            if payload > MAX_PAYLOAD_LEN
                || bytes as u64 + self.shared.options.segment_size > u64::from(u32::MAX)
            {
                return Err(Error::TooLarge(format!(
                    "batch of {bytes} bytes (at operation {i}) is too large for one segment"
                )));
            }
            records.push(NewRecord {
                id: id.clone(),
                kind: Arc::clone(&newest.kind),
                version,
                seq: self.last_seq + 1 + records.len() as u64,
                time,
                tombstone,
                expires_at: newest.expires_at,
                body: Arc::clone(&newest.body),
            });
            let state = DocState {
                version,
                tombstone,
                expires_at: newest.expires_at,
                content: Content::Pending(newest),
            };
            local.insert(id, state);
        }
        self.last_seq += records.len() as u64;
        if let Some(last) = times.previous {
            self.last_time = last;
        }
        if let Some(origin) = origin {
            self.last_origin = Some(origin.position);
        }
        if overlay.is_empty() {
            *overlay = local;
        } else {
            overlay.extend(local);
        }
        Ok(records)
    }

    /// What operation `i` on `id` writes: whether it is a tombstone, and the kind, expiry and
    /// body of the new version. `current` is the document's newest state, `live` the same
    /// unless it is deleted or expired.
    fn apply(
        &mut self,
        i: usize,
        id: &str,
        action: Action,
        expires_at: Option<u64>,
        current: Option<&DocState>,
        live: Option<&DocState>,
    ) -> Result<(bool, Newest)> {
        match action {
            Action::Put { kind, body } => {
                if kind.len() > MAX_KIND_LEN {
                    let error = Error::TooLarge(format!(
                        "kind of {} bytes is over {MAX_KIND_LEN}",
                        kind.len()
                    ));
                    return Err(Error::op(i, id, error));
                }
                let kind = self.intern_kind(kind);
                let body = Arc::new(body);
                Ok((
                    false,
                    Newest {
                        kind,
                        expires_at,
                        body,
                    },
                ))
            }
            Action::Update(update) => {
                let Some(live) = live else {
                    return Err(not_found(i, id.to_owned()));
                };
                let newest = self.resolve(&live.content)?;
                // A panicking callback rejects its batch; it must not take the store down.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| update(&newest.body)))
                        .unwrap_or_else(|_| Err("the update callback panicked".into()));
                let body = outcome.map_err(|source| {
                    let rejected = Error::Rejected {
                        id: id.to_owned(),
                        source,
                    };
                    Error::op(i, id, rejected)
                })?;
                Ok((
                    false,
                    Newest {
                        kind: newest.kind,
                        expires_at: expires_at.or(newest.expires_at),
                        body: Arc::new(body),
                    },
                ))
            }
            Action::Delete => self.tombstone(i, id, live),
            // `check_expect` found the expired version to be the newest.
            Action::Expire => self.tombstone(i, id, current),
        }
    }

    /// A tombstone of `target`'s document, keeping its kind.
    fn tombstone(&self, i: usize, id: &str, target: Option<&DocState>) -> Result<(bool, Newest)> {
        let Some(target) = target else {
            return Err(not_found(i, id.to_owned()));
        };
        let newest = self.resolve(&target.content)?;
        Ok((
            true,
            Newest {
                kind: newest.kind,
                expires_at: None,
                body: Arc::new(Vec::new()),
            },
        ))
    }

    /// `kind` as an `Arc`, shared with the previous record's when they are equal (batches
    /// usually hold one kind).
    fn intern_kind(&mut self, kind: String) -> Arc<str> {
        match &self.last_kind {
            Some(last) if **last == *kind => Arc::clone(last),
            _ => {
                let kind: Arc<str> = Arc::from(kind);
                self.last_kind = Some(Arc::clone(&kind));
                kind
            }
        }
    }

    /// The newest published state of `id`, from the index (and, for a version with an expiry,
    /// its record).
    fn load(&self, id: &str) -> Result<Option<DocState>> {
        let (version, seq, entry) = {
            let state = self.shared.state.read();
            let Some(chain) = state.index.chain(id) else {
                return Ok(None);
            };
            let seq = chain.newest_seq();
            let Some(entry) = state.index.entry(seq).copied() else {
                return Ok(None);
            };
            (chain.newest_version(), seq, entry)
        };
        let expires_at = if entry.expires {
            self.shared.read_meta(seq)?.and_then(|m| m.expires_at)
        } else {
            None
        };
        Ok(Some(DocState {
            version,
            tombstone: entry.tombstone,
            expires_at,
            content: Content::Published(seq),
        }))
    }

    /// The kind, expiry and body of a document's newest version.
    fn resolve(&self, content: &Content) -> Result<Newest> {
        match content {
            Content::Pending(newest) => Ok(newest.clone()),
            Content::Published(seq) => {
                let v = self.shared.read_seq(*seq)?.ok_or_else(|| {
                    Error::corruption(
                        &self.shared.dir,
                        0,
                        CorruptionKind::BadRecord("the version index names a missing seq"),
                    )
                })?;
                Ok(Newest {
                    kind: Arc::from(v.meta.kind),
                    expires_at: v.meta.expires_at,
                    body: Arc::new(v.body),
                })
            }
        }
    }
}
