//! `strata import FILE.jsonl`: JSON Lines into the store, one write per line, committed in
//! batches.
//!
//! Two threads: this one reads and parses lines into batches of at most `--batch` lines (and
//! about one maximum document of input); a committer commits them with [`Store::write`] while
//! the next batch is parsed. Consecutive lines with the same `ts` share one batch, whatever
//! `--batch` says: a batch has one update time, and a later batch cannot reuse it.
//!
//! A batch that fails because of its input is checked line by line with probe writes that
//! cannot commit (see [`Committer::probe`]); the bad lines are reported and the others committed
//! together, still at the batch's `ts`. IO errors and a poisoned store stop the import.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use strata::{Batch, Durability, Error, Expect, Options, Store};

use super::time::parse_time;
use super::{Failure, Format};

/// How far a line may exceed the store's largest document (id, kind, op, ts and doc around it).
const LINE_SLACK: usize = 64 << 10;
/// Bad lines listed in the `--format json` summary (all of them are counted and go to stderr).
const MAX_JSON_ERRORS: usize = 100;
/// Bad lines held by the reader before they go to the committer without a batch.
const MAX_HELD: usize = 1000;
/// The id of the operation that makes a probe write fail (see [`Committer::probe`]).
const PROBE_ID: &str = "/.strata/import-probe";
/// The version a probe expects: no document ever reaches it, so the probe always conflicts.
const PROBE_VERSION: u64 = u64::MAX;
/// Exit code when some lines were bad (the others were imported): "bad usage or input".
const EXIT_BAD_LINES: u8 = 2;

/// `strata import`'s arguments.
#[derive(clap::Args)]
#[command(
    after_help = "Bad lines are reported on stderr as `line N: message` and the other \
    lines imported; the exit code is then 2. Blank lines are skipped."
)]
pub(crate) struct ImportArgs {
    /// A JSON Lines file, or `-` for stdin. Each line is
    /// `{"id": ID, "kind": KIND, "op": "put"|"patch"|"delete", "ts": TIME, "doc": {...}}`
    /// (`op` defaults to put; `kind` is needed by put; `ts` is optional, RFC 3339 or
    /// microseconds; `doc` is the body of a put or the merge patch of a patch).
    file: PathBuf,
    /// Most lines in one batch (consecutive lines with the same `ts` always share a batch).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Lines are bare documents (put); the id is this top-level string field. Needs --kind.
    #[arg(long, value_name = "FIELD", requires = "kind")]
    id_field: Option<String>,
    /// The kind of every document (with --id-field).
    #[arg(long, value_name = "KIND", requires = "id_field")]
    kind: Option<String>,
}

/// How lines look: the default envelope, or bare documents (`--id-field`, `--kind`).
type Bare = Option<(String, String)>;

/// One line's write.
enum Op {
    Put { kind: String, body: Value },
    Patch { patch: Value },
    Delete,
}

/// A parsed line.
struct Parsed {
    ts: Option<u64>,
    id: String,
    op: Op,
}

/// A parsed line of a batch being salvaged.
struct Entry {
    line: u64,
    id: String,
    op: Op,
}

/// A batch on its way to the committer. It keeps the text of its lines: if the batch fails,
/// they are parsed again to find the bad ones (cheaper than cloning every document on the fast
/// path).
#[derive(Default)]
struct Pending {
    ts: Option<u64>,
    batch: Batch,
    /// Line number and range in `text` of every line in `batch`.
    lines: Vec<(u64, usize, usize)>,
    text: Vec<u8>,
    /// Lines found bad by the reader since the previous batch was sent, printed with this
    /// batch's bad lines, in line order.
    bad: Vec<(u64, String)>,
}

/// What both threads update: counters for the progress line, and stderr.
struct Shared {
    written: AtomicU64,
    bad: AtomicU64,
    /// Whether stderr is a terminal that shows the progress line.
    show_progress: bool,
    /// The progress line; held while writing to stderr.
    progress: Mutex<Progress>,
}

pub(crate) fn run(data: &Path, args: ImportArgs, format: Format) -> Result<(), Failure> {
    let (mut input, total) = open_input(&args.file)?;
    // Probes are failed writes, and a failed write still costs an fdatasync under
    // `Durability::Sync`; so the store runs without syncing and `Committer::commit` syncs after
    // every committed batch: as durable as `Sync` for this, the store's only writer.
    let store = Store::open(data, Options::default().with_durability(Durability::None))?;
    let max_document = store.options().limits.max_document_bytes;
    let bare: Bare = args.id_field.zip(args.kind);
    let started = Instant::now();
    let show_progress = io::stderr().is_terminal();
    let shared = Shared {
        written: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        show_progress,
        progress: Mutex::new(Progress::new(show_progress, started, total)),
    };
    let mut reader = Reader {
        bare: &bare,
        batch_lines: args.batch as usize,
        batch_bytes: max_document,
        cap: max_document + LINE_SLACK,
        pending: Pending::default(),
        lines: 0,
        bytes: 0,
        shared: &shared,
    };
    let (read, committed) = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Pending>(1);
        let committer = Committer {
            store,
            bare: &bare,
            shared: &shared,
            held: Vec::new(),
            errors: Vec::new(),
        };
        let handle = scope.spawn(move || committer.run(rx));
        let read = reader.read_all(input.as_mut(), |pending| tx.send(pending).is_ok());
        drop(tx);
        let committed = handle.join().unwrap_or_else(|_| {
            Err(Failure {
                message: "internal error: the import's committer panicked".into(),
                code: 1,
            })
        });
        (read, committed)
    });
    shared.lock_progress().clear();
    let written = shared.written.load(Ordering::Relaxed);
    let bad = shared.bad.load(Ordering::Relaxed);
    let lines = reader.lines;
    // A committer's error comes first: the reader stops early because of it.
    let errors = match committed.and_then(|errors| read.map(|()| errors)) {
        Ok(errors) => errors,
        Err(f) => {
            return Err(Failure {
                message: format!(
                    "{}; import stopped: {written} versions written, {bad} bad lines",
                    f.message
                ),
                code: f.code,
            })
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let rate = written as f64 / seconds.max(1e-6);
    match format {
        Format::Json => {
            let errors: Vec<Value> = errors
                .iter()
                .map(|(line, error)| json!({ "line": line, "error": error }))
                .collect();
            out!(
                "{}",
                json!({
                    "lines": lines,
                    "written": written,
                    "bad": bad,
                    "errors": errors,
                    "seconds": seconds,
                })
            );
        }
        Format::Table => out!(
            "{lines} lines read, {written} versions written, {bad} bad lines, {}, \
             {rate:.0} versions/s",
            super::fmt::seconds(seconds)
        ),
    }
    if bad > 0 {
        return Err(Failure {
            message: format!("{bad} of {lines} lines were bad and not imported; the others were"),
            code: EXIT_BAD_LINES,
        });
    }
    Ok(())
}

/// The input and its size when known (a file; not stdin).
fn open_input(path: &Path) -> Result<(Box<dyn BufRead + Send>, Option<u64>), Failure> {
    if path.as_os_str() == "-" {
        return Ok((
            Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
            None,
        ));
    }
    let file = File::open(path).map_err(|e| Failure {
        message: format!("cannot open {}: {e}", path.display()),
        code: 2,
    })?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, file)), size))
}

/// One line read by [`read_line`].
struct Line {
    /// Bytes consumed, the newline included.
    consumed: usize,
    /// Longer than the cap: the line was skipped and `buf` is empty.
    too_long: bool,
}

/// Reads one line into `buf` (newline included), keeping at most `cap` bytes in memory: a longer
/// line is read to its end and dropped. `None` at the end of the input.
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Option<Line>> {
    buf.clear();
    let mut line = Line {
        consumed: 0,
        too_long: false,
    };
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((line.consumed > 0).then_some(line));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if !line.too_long {
            if buf.len() + chunk.len() > cap {
                line.too_long = true;
                buf.clear();
                buf.shrink_to(1 << 20);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let n = chunk.len();
        reader.consume(n);
        line.consumed += n;
        if done {
            return Ok(Some(line));
        }
    }
}

/// The reading and parsing side.
struct Reader<'a> {
    bare: &'a Bare,
    batch_lines: usize,
    batch_bytes: usize,
    /// Longest line kept.
    cap: usize,
    pending: Pending,
    /// Non-blank lines read.
    lines: u64,
    bytes: u64,
    shared: &'a Shared,
}

impl Reader<'_> {
    /// Reads every line, handing batches to `send`; stops early when `send` returns false (the
    /// committer stopped).
    fn read_all(
        &mut self,
        input: &mut dyn BufRead,
        mut send: impl FnMut(Pending) -> bool,
    ) -> Result<(), Failure> {
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            let line = match read_line(input, &mut buf, self.cap) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    // What was read is good input: commit it before stopping.
                    send(std::mem::take(&mut self.pending));
                    return Err(Failure {
                        message: format!("cannot read line {}: {e}", number + 1),
                        code: 1,
                    });
                }
            };
            number += 1;
            self.bytes += line.consumed as u64;
            let mut full = false;
            if line.too_long {
                self.lines += 1;
                let message = format!("line is over the limit of {} bytes; skipped", self.cap);
                self.pending.bad.push((number, message));
            } else if !buf.iter().all(u8::is_ascii_whitespace) {
                self.lines += 1;
                match parse(self.bare, &buf) {
                    Ok(parsed) => {
                        if self.ends_batch(&buf, &parsed)
                            && !send(std::mem::take(&mut self.pending))
                        {
                            return Ok(());
                        }
                        self.add(number, &buf, parsed);
                        full = self.pending.lines.len() >= self.batch_lines
                            && self.pending.ts.is_none();
                    }
                    Err(message) => self.pending.bad.push((number, message)),
                }
            }
            // Send a full batch now rather than with the next line, so the committer starts on
            // it; and do not hold many bad lines.
            if (full || self.pending.bad.len() >= MAX_HELD)
                && !send(std::mem::take(&mut self.pending))
            {
                return Ok(());
            }
            if self.shared.show_progress {
                self.shared.update_progress(self.bytes, self.lines);
            }
        }
        send(std::mem::take(&mut self.pending));
        Ok(())
    }

    /// Whether the pending batch must be sent before this line joins a batch.
    fn ends_batch(&self, text: &[u8], parsed: &Parsed) -> bool {
        let p = &self.pending;
        !p.lines.is_empty()
            && (p.ts != parsed.ts
                || (parsed.ts.is_none() && p.lines.len() >= self.batch_lines)
                || p.text.len() + text.len() > self.batch_bytes)
    }

    fn add(&mut self, line: u64, text: &[u8], parsed: Parsed) {
        let p = &mut self.pending;
        p.ts = parsed.ts;
        let start = p.text.len();
        p.text.extend_from_slice(text);
        p.lines.push((line, start, p.text.len()));
        let batch = std::mem::take(&mut p.batch);
        p.batch = add_op(batch, parsed.id, parsed.op);
    }
}

/// Parses one non-blank line.
fn parse(bare: &Bare, bytes: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        if e.is_eof() {
            format!("malformed JSON: {message}")
        } else {
            format!("malformed JSON at column {}: {message}", e.column())
        }
    })?;
    let Value::Object(map) = value else {
        return Err(format!(
            "a line must be a JSON object, not {}",
            type_name(&value)
        ));
    };
    match bare {
        Some((field, kind)) => {
            let id = match map.get(field) {
                Some(Value::String(id)) => id.clone(),
                Some(other) => {
                    return Err(format!(
                        "id field {field:?} is {}, not a string",
                        type_name(other)
                    ))
                }
                None => return Err(format!("missing id field {field:?}")),
            };
            Ok(Parsed {
                ts: None,
                id,
                op: Op::Put {
                    kind: kind.clone(),
                    body: Value::Object(map),
                },
            })
        }
        None => parse_record(map),
    }
}

/// The committing side.
struct Committer<'a> {
    store: Store,
    bare: &'a Bare,
    shared: &'a Shared,
    /// Bad lines of the batch being committed, printed in line order when it is done.
    held: Vec<(u64, String)>,
    /// The first bad lines, for `--format json`.
    errors: Vec<(u64, String)>,
}

impl Committer<'_> {
    /// Commits every batch received; returns the first bad lines.
    fn run(mut self, batches: Receiver<Pending>) -> Result<Vec<(u64, String)>, Failure> {
        for mut pending in batches {
            self.held.append(&mut pending.bad);
            let range = pending
                .lines
                .first()
                .zip(pending.lines.last())
                .map(|(first, last)| (first.0, last.0));
            let result = self.flush(pending);
            self.print_held();
            if let Err(f) = result {
                let message = match range {
                    Some((first, last)) => {
                        format!("{} (committing lines {first}-{last})", f.message)
                    }
                    None => f.message,
                };
                return Err(Failure {
                    message,
                    code: f.code,
                });
            }
        }
        Ok(self.errors)
    }

    /// Commits a batch; if it fails on its input, reports its bad lines and commits the others.
    fn flush(&mut self, pending: Pending) -> Result<(), Failure> {
        let Pending {
            ts,
            batch,
            lines,
            text,
            ..
        } = pending;
        if lines.is_empty() {
            return Ok(());
        }
        let batch = match ts {
            Some(ts) => batch.at_time(ts),
            None => batch,
        };
        match self.commit(batch) {
            Ok(()) => return Ok(()),
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(e) if is_batch_wide(&e) => {
                let message = describe(&e);
                for &(line, _, _) in &lines {
                    self.report(line, message.clone());
                }
                return Ok(());
            }
            Err(_) => {}
        }
        let mut entries = Vec::with_capacity(lines.len());
        for &(line, start, end) in &lines {
            // These lines parsed before; parsing is deterministic.
            match parse(self.bare, &text[start..end]) {
                Ok(Parsed { id, op, .. }) => entries.push(Entry { line, id, op }),
                Err(message) => self.report(line, message),
            }
        }
        drop(text);
        self.salvage(entries, ts)
    }

    /// Commits the good entries of a batch that failed on its input and reports the bad ones.
    ///
    /// Each entry is probed in line order. Whether an operation succeeds in a batch depends only
    /// on the batch's time and on the batch's earlier operations on the same id, so an entry's
    /// probe holds the good entries before it with its id, then the entry: the probes stay short
    /// and the good entries still commit together, at the batch's `ts`.
    fn salvage(&mut self, entries: Vec<Entry>, ts: Option<u64>) -> Result<(), Failure> {
        let mut good: Vec<Entry> = Vec::with_capacity(entries.len());
        // Indices in `good` of the entries of each id.
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for entry in entries {
            let earlier = by_id.get(&entry.id).map_or(&[][..], Vec::as_slice);
            let ops = earlier.iter().map(|&i| &good[i]).chain([&entry]);
            match self.probe(ops, ts)? {
                None => {
                    by_id.entry(entry.id.clone()).or_default().push(good.len());
                    good.push(entry);
                }
                Some(error) => self.report(entry.line, describe(&error)),
            }
        }
        self.commit_checked(good, ts)
    }

    /// A write that checks `entries` as one batch but cannot commit: it ends with a delete that
    /// expects a version no document reaches. The store checks a batch's operations in order
    /// and fails on the first bad one, and a failed batch writes nothing, so the probe's own
    /// conflict means every entry passed (`None`); any other input error is the first bad
    /// entry's.
    fn probe<'a>(
        &self,
        entries: impl Iterator<Item = &'a Entry>,
        ts: Option<u64>,
    ) -> Result<Option<Error>, Failure> {
        let mut batch = batch_of(entries).delete_if(PROBE_ID, Expect::Version(PROBE_VERSION));
        if let Some(ts) = ts {
            batch = batch.at_time(ts);
        }
        match self.store.write(batch) {
            Err(Error::Conflict {
                id,
                expected: Some(PROBE_VERSION),
                ..
            }) if id == PROBE_ID => Ok(None),
            Err(e) if is_fatal(&e) => Err(e.into()),
            Err(e) => Ok(Some(e)),
            Ok(_) => Err(Failure {
                message: "internal error: a probe write of the import committed".into(),
                code: 1,
            }),
        }
    }

    /// Commits entries that passed a probe together. Should that still fail on the input (the
    /// probe cannot see everything, e.g. the clock moving past an expiry), the entries are
    /// committed one by one, or all reported when they must share a `ts`.
    fn commit_checked(&mut self, entries: Vec<Entry>, ts: Option<u64>) -> Result<(), Failure> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = batch_of(entries.iter());
        if let Some(ts) = ts {
            batch = batch.at_time(ts);
        }
        let error = match self.commit(batch) {
            Ok(()) => {
                return Ok(());
            }
            Err(e) if is_fatal(&e) => return Err(e.into()),
            Err(e) => e,
        };
        if ts.is_some() || entries.len() == 1 {
            let message = describe(&error);
            for entry in &entries {
                self.report(entry.line, message.clone());
            }
            return Ok(());
        }
        for entry in entries {
            let line = entry.line;
            match self.commit(add_op(Batch::new(), entry.id, entry.op)) {
                Ok(()) => {}
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(e) => self.report(line, describe(&e)),
            }
        }
        Ok(())
    }

    /// Commits a batch and makes it durable.
    fn commit(&mut self, batch: Batch) -> strata::Result<()> {
        let metas = self.store.write(batch)?;
        self.store.flush()?;
        self.shared
            .written
            .fetch_add(metas.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Counts a bad line; [`Committer::print_held`] prints it.
    fn report(&mut self, line: u64, message: String) {
        self.held.push((line, message));
    }

    /// Prints the bad lines held so far, in line order.
    fn print_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        self.held.sort_by_key(|&(line, _)| line);
        self.shared
            .bad
            .fetch_add(self.held.len() as u64, Ordering::Relaxed);
        let mut progress = self.shared.lock_progress();
        progress.clear();
        let mut stderr = io::stderr().lock();
        for (line, message) in self.held.drain(..) {
            let _ = writeln!(stderr, "line {line}: {message}");
            if self.errors.len() < MAX_JSON_ERRORS {
                self.errors.push((line, message));
            }
        }
    }
}

/// A line of the default form: `{"id", "kind", "op", "ts", "doc"}`.
fn parse_record(mut map: Map<String, Value>) -> Result<Parsed, String> {
    if let Some(field) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "kind" | "op" | "ts" | "doc"))
    {
        return Err(format!(
            "unknown field {field:?} (expected id, kind, op, ts, doc)"
        ));
    }
    let id = match map.remove("id") {
        Some(Value::String(id)) => id,
        Some(other) => return Err(format!("\"id\" is {}, not a string", type_name(&other))),
        None => return Err("missing \"id\"".into()),
    };
    let kind = match map.remove("kind") {
        None | Some(Value::Null) => None,
        Some(Value::String(kind)) => Some(kind),
        Some(other) => return Err(format!("\"kind\" is {}, not a string", type_name(&other))),
    };
    let ts = match map.remove("ts") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            format!("\"ts\" {n} is not a whole number of microseconds since the epoch")
        })?),
        Some(Value::String(s)) => Some(parse_time(&s).map_err(|e| format!("\"ts\": {e}"))?),
        Some(other) => {
            return Err(format!(
                "\"ts\" is {}, not RFC 3339 text or microseconds",
                type_name(&other)
            ))
        }
    };
    let doc = map.remove("doc").filter(|d| !d.is_null());
    let op = match map.remove("op") {
        None | Some(Value::Null) => "put".to_owned(),
        Some(Value::String(op)) => op,
        Some(other) => return Err(format!("\"op\" is {}, not a string", type_name(&other))),
    };
    let op = match (op.as_str(), doc) {
        ("put", Some(body)) => Op::Put {
            kind: kind.ok_or("missing \"kind\" (a put needs one)")?,
            body,
        },
        ("patch", Some(patch)) => Op::Patch { patch },
        ("put" | "patch", None) => return Err(format!("missing \"doc\" (a {op} needs one)")),
        ("delete", None) => Op::Delete,
        ("delete", Some(_)) => return Err("a delete takes no \"doc\"".into()),
        _ => return Err(format!("unknown op {op:?} (put, patch or delete)")),
    };
    Ok(Parsed { ts, id, op })
}

fn add_op(batch: Batch, id: String, op: Op) -> Batch {
    match op {
        Op::Put { kind, body } => batch.put(id, kind, body),
        Op::Patch { patch } => batch.patch(id, patch),
        Op::Delete => batch.delete(id),
    }
}

fn batch_of<'a>(entries: impl Iterator<Item = &'a Entry>) -> Batch {
    entries.fold(Batch::new(), |batch, e| {
        let op = match &e.op {
            Op::Put { kind, body } => Op::Put {
                kind: kind.clone(),
                body: body.clone(),
            },
            Op::Patch { patch } => Op::Patch {
                patch: patch.clone(),
            },
            Op::Delete => Op::Delete,
        };
        add_op(batch, e.id.clone(), op)
    })
}

/// Errors that stop the import: the disk, the store, not the input.
fn is_fatal(e: &Error) -> bool {
    !matches!(
        e,
        Error::InvalidId { .. }
            | Error::InvalidKind { .. }
            | Error::InvalidBody { .. }
            | Error::DocumentTooLarge { .. }
            | Error::DocumentTooDeep { .. }
            | Error::FieldNameTooLong { .. }
            | Error::Conflict { .. }
            | Error::NotFound { .. }
            | Error::TimeNotLater { .. }
            | Error::TimeTooFarAhead { .. }
            | Error::Decode { .. }
            | Error::BatchTooLarge(_)
    )
}

/// Input errors of the batch as a whole (its time), not of one of its lines.
fn is_batch_wide(e: &Error) -> bool {
    matches!(
        e,
        Error::TimeNotLater { .. } | Error::TimeTooFarAhead { .. }
    )
}

/// An error as a bad line's message, with times in RFC 3339.
fn describe(e: &Error) -> String {
    match e {
        Error::TimeNotLater { requested, last } => format!(
            "ts {} is not later than the store's last update time {}",
            super::fmt::time(*requested),
            super::fmt::time(*last)
        ),
        Error::TimeTooFarAhead { requested, limit } => format!(
            "ts {} is too far ahead of the clock (latest accepted now: {})",
            super::fmt::time(*requested),
            super::fmt::time(*limit)
        ),
        e => e.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Shared {
    fn lock_progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_progress(&self, bytes: u64, lines: u64) {
        let written = self.written.load(Ordering::Relaxed);
        let bad = self.bad.load(Ordering::Relaxed);
        self.lock_progress().update(bytes, lines, written, bad);
    }
}

/// The progress line on a terminal's stderr, redrawn at most ten times a second.
struct Progress {
    enabled: bool,
    started: Instant,
    next: Instant,
    total: Option<u64>,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool, started: Instant, total: Option<u64>) -> Self {
        Progress {
            enabled,
            started,
            next: started,
            total,
            shown: false,
        }
    }

    fn update(&mut self, bytes: u64, lines: u64, written: u64, bad: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_millis(100);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let read = match self.total {
            Some(total) if total > 0 => format!(
                "{:.1}/{:.1} MiB ({:.0}%)",
                mib(bytes),
                mib(total),
                bytes as f64 * 100.0 / total as f64
            ),
            _ => format!("{:.1} MiB", mib(bytes)),
        };
        let rate = written as f64 / now.duration_since(self.started).as_secs_f64().max(1e-6);
        let mut stderr = io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[Kimport: {read}, {lines} lines, {written} versions, {bad} bad, {rate:.0} versions/s"
        );
        let _ = stderr.flush();
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            let mut stderr = io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.shown = false;
            // Redraw soon after a message, not at once.
            self.next = Instant::now() + Duration::from_millis(100);
        }
    }
}
