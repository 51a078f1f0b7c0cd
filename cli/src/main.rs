//! The `strata` command: a demo and operator commands on a data directory.

/// `println!` for the CLI's output: a closed pipe (`strata ... | head`) ends the process quietly
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

mod collection;
mod demo;
mod fmt;
mod import;
mod ops;
mod query;
mod tasks;
mod time;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use strata::{Document, Meta, Options, Store};

/// Default data directory when neither `--data` nor `STRATA_DATA` is given.
const DEFAULT_DATA_DIR: &str = "strata-data";

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: an embedded multi-version document store"
)]
struct Cli {
    /// Data directory (default: $STRATA_DATA, else ./strata-data).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write, update and delete documents, then read the present and the past, with timings.
    Demo {
        /// Documents to ingest (at least 100).
        #[arg(long, default_value_t = 20_000)]
        documents: u64,
    },
    /// Replace a document's body (a JSON object).
    Put {
        id: String,
        kind: String,
        body: String,
    },
    /// Apply an RFC 7386 merge patch (a JSON object) to a document.
    Patch { id: String, patch: String },
    /// Delete a document (writes a tombstone; history stays).
    Delete { id: String },
    /// Read a document: current, at a time, or a given version.
    Get {
        id: String,
        /// A past time: RFC 3339, a UTC date (2023-06-10) or minute (2023-06-10T12:00),
        /// microseconds since the epoch, or relative (-30s, -10m, -2h, -7d).
        #[arg(long, conflicts_with = "version", allow_hyphen_values = true)]
        at: Option<String>,
        /// A version number.
        #[arg(long)]
        version: Option<u64>,
    },
    /// Every retained version of a document, oldest first.
    History { id: String },
    /// Current documents whose id starts with a prefix.
    List {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Import JSON Lines (one put, patch or delete per line), committed in batches.
    Import(import::ImportArgs),
    /// Search the current documents, the past (--at) or every version (--all-versions).
    Query(query::QueryArgs),
    /// Discard the search index and rebuild it from the log.
    RebuildIndex,
    /// Drop the versions retention no longer keeps from the log and the index, reclaiming disk.
    Compact(ops::CompactArgs),
    /// Copy a consistent snapshot of the store (log and index) into a directory; a second
    /// backup into the same directory copies only what changed.
    Backup(ops::BackupArgs),
    /// Restore a backup into a new directory, optionally as the store was at a time.
    Restore(ops::RestoreArgs),
    /// Check every log checksum, the version chains and the index against the log; exit
    /// status 7 if anything is wrong. On a store another process has open, checks what it can
    /// read-only (up to the writer's last complete batch) and repairs nothing.
    Verify,
    /// Documents, versions (kept and dropped), sizes on disk, index lag, latencies, compaction
    /// and expiry counters, and what opening the store found.
    Stats,
    /// Running and recent query tasks of the process that has the store open (read from its
    /// report; the store is not opened).
    Tasks(tasks::TasksArgs),
    /// Print the changes of a query as they come (a continuous query), one line per event.
    Watch(watch::WatchArgs),
    /// Collections: named queries with versioned definitions.
    #[command(subcommand)]
    Collection(collection::CollectionCommand),
}

/// A failure the command reports: a message and an exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<strata::Error> for Failure {
    fn from(e: strata::Error) -> Self {
        let code = match e.reason() {
            strata::Error::NotFound { .. } | strata::Error::UnknownCollection { .. } => 3,
            strata::Error::Conflict { .. } => 4,
            strata::Error::Locked { .. } | strata::Error::ReadOnly { .. } => 5,
            strata::Error::Corruption { .. } | strata::Error::BackupDamaged { .. } => 6,
            strata::Error::HistoryTrimmed { .. } => 8,
            strata::Error::RestoreUnfinished { .. } => 9,
            strata::Error::InvalidId { .. }
            | strata::Error::InvalidKind { .. }
            | strata::Error::InvalidBody { .. }
            | strata::Error::DocumentTooLarge { .. }
            | strata::Error::DocumentTooDeep { .. }
            | strata::Error::FieldNameTooLong { .. }
            | strata::Error::TimeNotLater { .. }
            | strata::Error::TimeTooFarAhead { .. }
            | strata::Error::InvalidOption(_)
            | strata::Error::Unsupported { .. }
            | strata::Error::DestinationNotEmpty { .. }
            | strata::Error::InvalidCollectionName { .. } => 2,

            strata::Error::Query(q)
                if !matches!(
                    q,
                    strata::QueryError::Index { .. }
                        | strata::QueryError::IndexerStopped { .. }
                        | strata::QueryError::ReadOnlyIndexBehind { .. }
                ) =>
            {
                2
            }
            _ => 1,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        output_failed(&e);
    }
}

/// Flushes stdout (after each line of `watch`), with `emit`'s handling of a closed pipe.
pub(crate) fn flush() {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().flush() {
        output_failed(&e);
    }
}

fn output_failed(e: &std::io::Error) -> ! {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("strata: cannot write the output: {e}");
    }
    std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe {
        0
    } else {
        1
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = cli
        .data
        .clone()
        .or_else(|| std::env::var_os("STRATA_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let format = cli.format;
    match run(cli, data) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match format {
                Format::Json => eprintln!("{}", json!({"error": f.message, "exit_code": f.code})),
                Format::Table => eprintln!("strata: {}", f.message),
            }
            ExitCode::from(f.code)
        }
    }
}

fn parse_json(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| usage(format!("malformed JSON: {e}")))
}

fn run(cli: Cli, data: PathBuf) -> Result<(), Failure> {
    let format = cli.format;
    if let Command::Demo { documents } = cli.command {
        return demo::run(&data, documents, format == Format::Json).map_err(Failure::from);
    }
    if let Command::Import(args) = cli.command {
        return import::run(&data, args, format);
    }
    if let Command::Tasks(args) = cli.command {
        // The report, not the store: the process that runs the tasks holds the store's lock.
        return tasks::run(&data, args, format);
    }
    if let Command::Restore(args) = &cli.command {
        return ops::restore(args, format);
    }
    if let Command::Verify = &cli.command {
        return ops::verify(&data, format);
    }
    let options = match &cli.command {
        Command::Compact(args) => ops::compact_options(args)?,
        _ => Options::default(),
    };
    let store = match &cli.command {
        // Reads: a store that a running process holds is read without its lock.
        Command::Get { .. }
        | Command::History { .. }
        | Command::List { .. }
        | Command::Query(_)
        | Command::Stats
        | Command::Backup(_) => match Store::open(&data, options.clone()) {
            Err(strata::Error::Locked { holder, .. }) => {
                say_read_only(holder, "reading what it has written so far");
                Store::open_read_only(&data, options)?
            }
            other => other?,
        },
        // Never a writer: watch must not lock writers out. It follows them by refreshing.
        Command::Watch(_) => Store::open_read_only(&data, options)?,
        _ => Store::open(&data, options)?,
    };
    if let Some(reason) = &store.index_open_report().rebuilt {
        eprintln!("strata: warning: the search index was discarded ({reason}); rebuilding it from the log");
    }
    match cli.command {
        Command::Demo { .. }
        | Command::Import(_)
        | Command::Tasks(_)
        | Command::Restore(_)
        | Command::Verify => {
            unreachable!("handled above")
        }
        Command::Compact(_) => ops::compact(&store, format)?,
        Command::Backup(args) => ops::backup(&store, &args, format)?,
        Command::Watch(args) => watch::run(&store, args, format)?,
        Command::Collection(command) => collection::run(&store, command, format)?,
        Command::Query(args) => query::run(&store, args, format)?,
        Command::RebuildIndex => query::rebuild(&store, format)?,
        Command::Stats => print_stats(format, &store.stats()),
        Command::Put { id, kind, body } => {
            print_meta(format, &store.put(&id, &kind, parse_json(&body)?)?)
        }
        Command::Patch { id, patch } => print_meta(format, &store.patch(&id, parse_json(&patch)?)?),
        Command::Delete { id } => print_meta(format, &store.delete(&id)?),
        Command::Get { id, at, version } => {
            let doc = match (at, version) {
                (Some(at), _) => store.get_at(&id, time::parse_time(&at).map_err(usage)?)?,
                (None, Some(v)) => store.get_version(&id, v)?,
                (None, None) => store.get(&id)?,
            };
            match doc {
                Some(doc) => print_documents(format, &[doc], Body::Pretty),
                None => {
                    return Err(Failure {
                        message: format!("document {id} not found"),
                        code: 3,
                    })
                }
            }
        }
        Command::History { id } => print_documents(format, &store.history(&id)?, Body::Line),
        Command::List { prefix } => {
            let docs = store.list(&prefix).collect::<Result<Vec<_>, _>>()?;
            print_documents(format, &docs, Body::Line)
        }
    }
    Ok(())
}

/// The one stderr line of a command that reads a store another process holds.
pub(crate) fn say_read_only(holder: Option<u32>, doing: &str) {
    let who = holder.map_or_else(
        || "another process".to_owned(),
        |pid| format!("process {pid}"),
    );
    eprintln!("strata: the store is open in {who}: {doing} (read-only, no lock taken)");
}

fn meta_json(m: &Meta) -> Value {
    json!({
        "id": m.id,
        "kind": m.kind,
        "version": m.version,
        "seq": m.seq,
        "updated": fmt::time(m.update_time_micros),
        "update_time_micros": m.update_time_micros,
        "deleted": m.deleted,
        "expires_at": m.expires_at,
    })
}

/// What `strata stats` shows: what the files say (documents, versions, disk use, horizon, index
/// lag, segments) and background failures. The per-process counters of `Store::stats` (write
/// and query latencies, compactions run) are left out: in a process that has just opened the
/// store they are always zero.
fn print_stats(format: Format, s: &strata::Stats) {
    let r = &s.recovery;
    match format {
        Format::Json => out!(
            "{}",
            json!({
                "documents": s.documents,
                "documents_ever": s.documents_ever,
                "tombstones": s.tombstones,
                "versions": s.versions,
                "dropped_versions": s.dropped_versions,
                "history_complete_from": s.history_complete_from,
                "segments": s.segments,
                "log_bytes": s.log_bytes,
                "index_bytes": s.index_bytes,
                "index_committed_seq": s.index_committed_seq,
                "index_lag": s.index_lag,
                "background_failures": s.background_failures,
                "open_micros": s.open_micros,
                "recovery": {
                    "segments": r.segments,
                    "records": r.records,
                    "truncated_bytes": r.truncated_bytes,
                    "truncated_records": r.truncated_records,
                },
            })
        ),
        Format::Table => {
            out!(
                "documents          {} current, {} ever ({} deleted)",
                s.documents,
                s.documents_ever,
                s.tombstones
            );
            out!(
                "versions           {}{}",
                s.versions,
                if s.dropped_versions > 0 {
                    format!(" ({} dropped by retention)", s.dropped_versions)
                } else {
                    String::new()
                }
            );
            match s.history_complete_from {
                Some(from) => out!("history            complete from {}", fmt::time(from)),
                None => out!("history            complete (retention dropped nothing)"),
            }
            out!(
                "disk               {} (log {} in {} segments, index {})",
                fmt::bytes(s.log_bytes.saturating_add(s.index_bytes)),
                fmt::bytes(s.log_bytes),
                s.segments,
                fmt::bytes(s.index_bytes)
            );
            out!(
                "index lag          {} versions not in the index's last commit (seq {})",
                s.index_lag,
                s.index_committed_seq
            );
            out!(
                "open               {}: {} versions read in {} segments, {} cut from a torn tail",
                fmt::duration(s.open_micros),
                r.records,
                r.segments,
                fmt::bytes(r.truncated_bytes)
            );
            for failure in &s.background_failures {
                out!("background failure {failure}");
            }
        }
    }
}

fn print_meta(format: Format, m: &Meta) {
    match format {
        Format::Json => out!("{}", json!({ "meta": meta_json(m) })),
        Format::Table => out!(
            "{}  version {}  seq {}  at {}{}",
            m.id,
            m.version,
            m.seq,
            fmt::time(m.update_time_micros),
            if m.deleted { "  (deleted)" } else { "" }
        ),
    }
}

/// How a table shows document bodies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// On the document's row, cut to `fmt::BODY_WIDTH` characters with an ellipsis.
    Line,
    /// Pretty-printed below the document's row (`get`: one document).
    Pretty,
}

fn print_documents(format: Format, docs: &[Document], body: Body) {
    match format {
        Format::Json => {
            let documents: Vec<Value> = docs
                .iter()
                .map(|d| json!({ "meta": meta_json(&d.meta), "body": d.body }))
                .collect();
            out!("{}", json!({ "count": docs.len(), "documents": documents }));
        }
        Format::Table => {
            out!(
                "{:<32} {:>7} {:>8} {:<27} {}",
                "ID",
                "VERSION",
                "SEQ",
                "UPDATED",
                if body == Body::Line { "BODY" } else { "" }
            );
            for d in docs {
                let text = match (d.meta.deleted, body) {
                    (true, _) => "(deleted)".to_owned(),
                    (false, Body::Line) => fmt::body_line(&d.body, fmt::BODY_WIDTH),
                    (false, Body::Pretty) => String::new(),
                };
                out!(
                    "{:<32} {:>7} {:>8} {:<27} {}",
                    d.meta.id,
                    d.meta.version,
                    d.meta.seq,
                    fmt::time(d.meta.update_time_micros),
                    text
                );
                if body == Body::Pretty && !d.meta.deleted {
                    out!("{}", fmt::body_pretty(&d.body, "  "));
                }
            }
        }
    }
}
