//! `strata import FILE.jsonl`: JSON Lines into the store, one write per line, committed in
//! batches.
//!
//! Two threads: this one reads and parses lines into batches of at most `--batch` lines (and
//! about one maximum document of input); a committer commits them with [`Store::write`] while
//! the next batch is parsed. Each line's `ts` is its operation's own time in the batch
//! ([`Batch::timed`]), so history with a time per version still takes one batch and one sync
//! per `--batch` lines. Consecutive lines with the same `ts` share one batch, whatever `--batch`
//! says (a later batch could not reuse that time), and a batch never mixes lines with and
//! without `ts` (those get the clock's time).
//!
//! A batch that fails because of one line names it ([`Error::BatchOp`]): that line is reported
//! and the batch is written again without it, until the rest commits. IO errors and a poisoned
//! store stop the import, and so does the `--max-errors`th bad line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use strata::{json_type_name, Batch, Durability, Error, Options, Store};

use super::time::parse_time;
use super::{Failure, Format};

/// How far a line may exceed the store's largest document (id, kind, op, ts and doc around it).
const LINE_SLACK: usize = 64 << 10;
/// Bad lines listed in the `--format json` summary (all of them are counted and go to stderr).
const MAX_JSON_ERRORS: usize = 100;
/// Bad lines held by the reader before they go to the committer without a batch.
const MAX_HELD: usize = 1000;
/// Bad lines reported one by one on stderr; the others are counted in one summary line.
const MAX_SHOWN: usize = 20;
/// Exit code when some lines were bad (the others were imported): "bad usage or input".
const EXIT_BAD_LINES: u8 = 2;

/// `strata import`'s arguments.
#[derive(clap::Args)]
#[command(
    after_help = "Bad lines are reported on stderr as `line N: message` (the first 20; one \
    summary line counts the others) and the other lines imported; the exit code is then 2. \
    Blank lines are skipped."
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
    /// Stop at the Nth bad line: the lines before it are imported, the rest not, and the exit
    /// code is 2. Without it every good line is imported.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_errors: Option<u64>,
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
    ts: Option<u64>,
    id: String,
    op: Op,
}

/// A batch on its way to the committer. It keeps the text of its lines: if the batch fails,
/// they are parsed again to write it without the bad ones (cheaper than cloning every document
/// on the fast path).
#[derive(Default)]
struct Pending {
    /// The `ts` of the last line added (all or none of a batch's lines have one).
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
    /// Bad lines not shown on stderr (past [`MAX_SHOWN`]).
    unshown: AtomicU64,
    /// Whether stderr is a terminal that shows the progress line.
    show_progress: bool,
    /// The progress line; held while writing to stderr.
    progress: Mutex<Progress>,
}

pub(crate) fn run(data: &Path, args: ImportArgs, format: Format) -> Result<(), Failure> {
    let (mut input, total) = open_input(&args.file)?;
    // A batch written again without its bad line follows a failed write, and a failed write
    // still costs an fdatasync under `Durability::Sync`; so the store runs without syncing and
    // `Committer::commit` syncs after every committed batch: as durable as `Sync` for this, the
    // store's only writer.
    let store = Store::open(data, Options::default().with_durability(Durability::None))?;
    let first_seq = store.index_progress().log_seq;
    let max_document = store.options().limits.max_document_bytes;
    let bare: Bare = args.id_field.zip(args.kind);
    let started = Instant::now();
    let show_progress = io::stderr().is_terminal();
    let shared = Shared {
        written: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        unshown: AtomicU64::new(0),
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
    let committer = Committer {
        store: &store,
        bare: &bare,
        shared: &shared,
        held: Vec::new(),
        errors: Vec::new(),
        max_errors: args.max_errors,
    };
    let outcome = read_and_commit(&mut reader, committer, input.as_mut());
    shared.lock_progress().clear();
    let written = shared.written.load(Ordering::Relaxed);
    let bad = shared.bad.load(Ordering::Relaxed);
    let unshown = shared.unshown.load(Ordering::Relaxed);
    if unshown > 0 {
        eprintln!("... and {unshown} more bad lines (only the first {MAX_SHOWN} are listed)");
    }
    let errors = outcome.map_err(|f| Failure {
        message: format!(
            "{}; import stopped: {written} versions written, {bad} bad lines",
            f.message
        ),
        code: f.code,
    })?;
    let seconds = started.elapsed().as_secs_f64();
    wait_for_index(&store, first_seq, written)?;
    let summary = Summary {
        lines: reader.lines,
        written,
        bad,
        errors,
        seconds,
        queryable: started.elapsed().as_secs_f64(),
    };
    summary.print(format);
    if bad > 0 {
        return Err(Failure {
            message: format!(
                "{bad} of {} lines were bad and not imported; the others were",
                summary.lines
            ),
            code: EXIT_BAD_LINES,
        });
    }
    Ok(())
}

/// Reads `input` on this thread and commits its batches on another, one batch in flight;
/// returns the bad lines the committer reported, or the first failure (the committer's first:
/// the reader stops early because of it).
fn read_and_commit(
    reader: &mut Reader<'_>,
    committer: Committer<'_>,
    input: &mut (dyn BufRead + Send),
) -> Result<Vec<(u64, String)>, Failure> {
    let (read, committed) = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Pending>(1);
        let handle = scope.spawn(move || committer.run(rx));
        let read = reader.read_all(input, |pending| tx.send(pending).is_ok());
        drop(tx);
        let committed = handle.join().unwrap_or_else(|_| {
            Err(Failure {
                message: "internal error: the import's committer panicked".into(),
                code: 1,
            })
        });
        (read, committed)
    });
    committed.and_then(|errors| read.map(|()| errors))
}

/// Imported means queryable at index speed: waits (with a progress bar) for the index to commit
/// what was written since `first_seq`, so the next process does not start by indexing it.
fn wait_for_index(store: &Store, first_seq: u64, written: u64) -> Result<(), Failure> {
    super::ops::with_polled_bar(
        "index",
        "versions",
        || {
            let p = store.index_progress();
            (
                p.committed_seq.saturating_sub(first_seq),
                p.log_seq.saturating_sub(first_seq),
            )
        },
        || store.wait_for_index(),
    )
    .map_err(|e| {
        let f = Failure::from(e);
        Failure {
            message: format!(
                "{written} versions were written and are durable, but indexing them failed \
                 (the next open of the store indexes them again): {}",
                f.message
            ),
            code: f.code,
        }
    })
}

/// What an import did, as printed at its end.
struct Summary {
    lines: u64,
    written: u64,
    bad: u64,
    /// The bad lines: line number and why.
    errors: Vec<(u64, String)>,
    /// Seconds until every line was written.
    seconds: f64,
    /// Seconds until the index had committed them too.
    queryable: f64,
}

impl Summary {
    fn print(&self, format: Format) {
        let Summary {
            lines,
            written,
            bad,
            seconds,
            queryable,
            ..
        } = *self;
        match format {
            Format::Json => {
                let errors: Vec<Value> = self
                    .errors
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
                        "queryable_seconds": queryable,
                    })
                );
            }
            Format::Table => {
                let rate = written as f64 / seconds.max(1e-6);
                out!(
                    "{lines} lines read, {written} versions written, {bad} bad lines, {}, \
                     {rate:.0} versions/s; indexed and queryable after {}",
                    super::fmt::seconds(seconds),
                    super::fmt::seconds(queryable)
                )
            }
        }
    }
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
                        // A full batch whose next line may share the last `ts` waits for it.
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

    /// Whether the pending batch must be sent before this line joins a batch: it is full
    /// (unless this line shares the last line's `ts`), or only one of them has a `ts`.
    fn ends_batch(&self, text: &[u8], parsed: &Parsed) -> bool {
        let p = &self.pending;
        !p.lines.is_empty()
            && (p.ts.is_some() != parsed.ts.is_some()
                || (p.lines.len() >= self.batch_lines
                    && p.ts.is_none_or(|ts| parsed.ts != Some(ts)))
                || p.text.len() + text.len() > self.batch_bytes)
    }

    fn add(&mut self, line: u64, text: &[u8], parsed: Parsed) {
        let p = &mut self.pending;
        let previous = if p.lines.is_empty() { None } else { p.ts };
        p.ts = parsed.ts;
        let start = p.text.len();
        p.text.extend_from_slice(text);
        p.lines.push((line, start, p.text.len()));
        let batch = std::mem::take(&mut p.batch);
        p.batch = add_timed(batch, previous, parsed.ts, parsed.id, parsed.op);
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
            json_type_name(&value)
        ));
    };
    match bare {
        Some((field, kind)) => {
            let id = match map.get(field) {
                Some(Value::String(id)) => id.clone(),
                Some(other) => {
                    return Err(format!(
                        "id field {field:?} is {}, not a string",
                        json_type_name(other)
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
    store: &'a Store,
    bare: &'a Bare,
    shared: &'a Shared,
    /// Bad lines of the batch being committed, printed in line order when it is done.
    held: Vec<(u64, String)>,
    /// The first bad lines, for `--format json`.
    errors: Vec<(u64, String)>,
    /// `--max-errors`.
    max_errors: Option<u64>,
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
            let stop = self.stop_line();
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
            if let (Some(line), Some(max)) = (stop, self.max_errors) {
                return Err(Failure {
                    message: format!(
                        "stopped at line {line}, the bad line number {max} (--max-errors {max}); \
                         the lines after it were not imported"
                    ),
                    code: EXIT_BAD_LINES,
                });
            }
        }
        Ok(self.errors)
    }

    /// The line of the `--max-errors`th bad line, once the bad lines counted and held reach it.
    fn stop_line(&mut self) -> Option<u64> {
        let max = self.max_errors?;
        let counted = self.shared.bad.load(Ordering::Relaxed);
        let room = usize::try_from(max.checked_sub(counted)?.checked_sub(1)?).ok()?;
        self.held.sort_by_key(|&(line, _)| line);
        self.held.get(room).map(|&(line, _)| line)
    }

    /// Commits a batch; if it fails on a line, reports that line and commits the others.
    fn flush(&mut self, pending: Pending) -> Result<(), Failure> {
        let Pending {
            batch, lines, text, ..
        } = pending;
        if lines.is_empty() {
            return Ok(());
        }
        // Lines the reader found bad may fall before the `--max-errors` limit: cut first.
        if self.stop_line().is_none() {
            match self.commit(batch) {
                Ok(()) => return Ok(()),
                Err(e) if is_fatal(e.reason()) => return Err(e.into()),
                Err(_) => {}
            }
        }
        let mut entries = Vec::with_capacity(lines.len());
        for &(line, start, end) in &lines {
            // These lines parsed before; parsing is deterministic.
            match parse(self.bare, &text[start..end]) {
                Ok(Parsed { id, op, ts }) => entries.push(Entry { line, ts, id, op }),
                Err(message) => self.report(line, message),
            }
        }
        drop(text);
        self.salvage(entries)
    }

    /// Commits the good entries of a batch that failed on its input and reports the bad ones:
    /// the store names the operation that failed ([`Error::BatchOp`]); that line is reported
    /// and the batch written again without it. Only lines before the `--max-errors`th bad line
    /// are written.
    fn salvage(&mut self, mut entries: Vec<Entry>) -> Result<(), Failure> {
        loop {
            if let Some(stop) = self.stop_line() {
                entries.retain(|e| e.line < stop);
            }
            if entries.is_empty() {
                return Ok(());
            }
            let error = match self.commit(batch_of(entries.iter())) {
                Ok(()) => return Ok(()),
                Err(e) if is_fatal(e.reason()) => return Err(e.into()),
                Err(e) => e,
            };
            match error.batch_op() {
                Some((index, _)) if index < entries.len() => {
                    let bad = entries.remove(index);
                    // The time it had to pass: the previous line's `ts`, or the store's last.
                    let previous = index
                        .checked_sub(1)
                        .and_then(|i| entries.get(i))
                        .and_then(|e| e.ts);
                    self.report(bad.line, describe(error.reason(), previous));
                }
                // An error of the batch as a whole (its size): every line of it.
                _ => {
                    let message = describe(error.reason(), None);
                    for entry in &entries {
                        self.report(entry.line, message.clone());
                    }
                    return Ok(());
                }
            }
        }
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

    /// Prints the bad lines held so far, in line order, up to [`MAX_SHOWN`] in all and up to
    /// the `--max-errors`th.
    fn print_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        self.held.sort_by_key(|&(line, _)| line);
        if let Some(max) = self.max_errors {
            let counted = self.shared.bad.load(Ordering::Relaxed);
            let room = usize::try_from(max.saturating_sub(counted)).unwrap_or(usize::MAX);
            self.held.truncate(room);
        }
        let shown = self.shared.bad.load(Ordering::Relaxed) as usize;
        self.shared
            .bad
            .fetch_add(self.held.len() as u64, Ordering::Relaxed);
        let mut progress = self.shared.lock_progress();
        progress.clear();
        let mut stderr = io::stderr().lock();
        for (k, (line, message)) in self.held.drain(..).enumerate() {
            if shown + k < MAX_SHOWN {
                let _ = writeln!(stderr, "line {line}: {message}");
            } else {
                self.shared.unshown.fetch_add(1, Ordering::Relaxed);
            }
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
        Some(other) => {
            return Err(format!(
                "\"id\" is {}, not a string",
                json_type_name(&other)
            ))
        }
        None => return Err("missing \"id\"".into()),
    };
    let kind = match map.remove("kind") {
        None | Some(Value::Null) => None,
        Some(Value::String(kind)) => Some(kind),
        Some(other) => {
            return Err(format!(
                "\"kind\" is {}, not a string",
                json_type_name(&other)
            ))
        }
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
                json_type_name(&other)
            ))
        }
    };
    let doc = map.remove("doc").filter(|d| !d.is_null());
    let op = match map.remove("op") {
        None | Some(Value::Null) => "put".to_owned(),
        Some(Value::String(op)) => op,
        Some(other) => {
            return Err(format!(
                "\"op\" is {}, not a string",
                json_type_name(&other)
            ))
        }
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

/// Adds a line's operation at its `ts`: a `ts` equal to the previous line's in the batch
/// (`previous`) shares that operation's time, any other is the operation's own.
fn add_timed(batch: Batch, previous: Option<u64>, ts: Option<u64>, id: String, op: Op) -> Batch {
    let batch = add_op(batch, id, op);
    match ts {
        Some(ts) if previous != Some(ts) => batch.timed(ts),
        _ => batch,
    }
}

fn batch_of<'a>(entries: impl Iterator<Item = &'a Entry>) -> Batch {
    let mut previous = None;
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
        let batch = add_timed(batch, previous, e.ts, e.id.clone(), op);
        previous = e.ts;
        batch
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

/// An error as a bad line's message, with times in RFC 3339. `previous` is the `ts` of the
/// line before it in its batch, if any: a time not later than that one is not later than the
/// previous line's rather than the store's.
fn describe(e: &Error, previous: Option<u64>) -> String {
    match e {
        Error::TimeNotLater { requested, last } if previous == Some(*last) => format!(
            "ts {} is not later than the previous line's ts {}",
            super::fmt::time(*requested),
            super::fmt::time(*last)
        ),
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
