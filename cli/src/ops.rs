//! The operator's commands: `compact`, `backup`, `restore`, `verify`, and the progress bar
//! they (and `rebuild-index`) draw on a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use strata::{MaintenanceOptions, Options, RestoreOptions, Retention, Store};

use super::{fmt, time, usage, Failure, Format};

/// A progress bar on stderr, drawn only on a terminal, at most ten times a second.
pub(crate) struct Bar {
    label: &'static str,
    enabled: bool,
    started: Instant,
    next: Instant,
    shown: bool,
}

impl Bar {
    pub(crate) fn new(label: &'static str) -> Bar {
        let now = Instant::now();
        Bar {
            label,
            enabled: std::io::stderr().is_terminal(),
            started: now,
            next: now,
            shown: false,
        }
    }

    /// Draws `done` of `total` (bytes, or versions when `unit` is empty).
    pub(crate) fn update(&mut self, done: u64, total: u64, unit: &str) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now < self.next && done < total {
            return;
        }
        self.next = now + Duration::from_millis(100);
        let fraction = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        let width = 30;
        let filled = (fraction * width as f64).round() as usize;
        let rate = done as f64 / now.duration_since(self.started).as_secs_f64().max(1e-6);
        let amount = if unit == "MiB" {
            let mib = |b: f64| b / (1024.0 * 1024.0);
            format!(
                "{:.1}/{:.1} MiB, {:.1} MiB/s",
                mib(done as f64),
                mib(total as f64),
                mib(rate)
            )
        } else {
            format!("{done}/{total} {unit}, {rate:.0}/s")
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[K{}: [{}{}] {:>3.0}% {amount}",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled),
            fraction * 100.0
        );
        let _ = stderr.flush();
        self.shown = true;
    }
}

/// Runs `work` while a bar shows what `poll` says (done, total) every 100 ms: a display of
/// work that reports no progress itself, not a synchronisation.
pub(crate) fn with_polled_bar<R>(
    label: &'static str,
    unit: &'static str,
    poll: impl Fn() -> (u64, u64) + Sync,
    work: impl FnOnce() -> R,
) -> R {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut bar = Bar::new(label);
            while !done.load(Ordering::Acquire) {
                let (now, total) = poll();
                if total > 0 {
                    bar.update(now, total, unit);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = work();
        done.store(true, Ordering::Release);
        result
    })
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}

/// Arguments of `strata compact`.
#[derive(Args)]
pub(crate) struct CompactArgs {
    /// Retention of a kind, `KIND=RULES` with RULES among `max=N` (keep at most N versions),
    /// `min=N` (keep at least N) and `age=SECS` (keep versions superseded less than SECS ago),
    /// comma-separated, e.g. `reading=max=10,age=86400` (repeatable). Collections' own
    /// retention always applies.
    #[arg(long, value_name = "KIND=RULES")]
    retention: Vec<String>,
    /// Most MiB written per second, or `unlimited`.
    #[arg(long, default_value = "32", value_name = "MIB|unlimited")]
    io_rate: String,
}

fn parse_retention(text: &str) -> Result<(String, Retention), Failure> {
    let bad = |why: &str| usage(format!("--retention {text:?}: {why}"));
    let (kind, rules) = text
        .split_once('=')
        .ok_or_else(|| bad("expected KIND=RULES"))?;
    let mut retention = Retention::default();
    for rule in rules.split(',') {
        let (name, value) = rule
            .split_once('=')
            .ok_or_else(|| bad("each rule is NAME=NUMBER"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| bad("a rule's value is a whole number"))?;
        retention = match name {
            "max" => retention.with_max_versions(n),
            "min" => retention.with_min_versions(n),
            "age" => retention.with_max_age(Duration::from_secs(n)),
            _ => return Err(bad("rules are max, min and age")),
        };
    }
    Ok((kind.to_owned(), retention))
}

/// The options `compact` opens the store with: the kinds' retention and the IO rate, and no
/// background compaction (this command is the run).
pub(crate) fn compact_options(args: &CompactArgs) -> Result<Options, Failure> {
    let rate = match args.io_rate.as_str() {
        "unlimited" => None,
        mib => Some(
            mib.parse::<u64>()
                .ok()
                .filter(|&m| m > 0)
                .ok_or_else(|| usage(format!("--io-rate {mib:?}: a number of MiB above 0")))?
                << 20,
        ),
    };
    let mut options = Options::default().with_maintenance(
        MaintenanceOptions::default()
            .with_compaction_interval(None)
            .with_compaction_io_rate(rate),
    );
    for text in &args.retention {
        let (kind, retention) = parse_retention(text)?;
        options = options.with_retention(kind, retention);
    }
    Ok(options)
}

pub(crate) fn compact(store: &Store, format: Format) -> Result<(), Failure> {
    // Only what the index committed can be dropped: let it catch up first.
    store.wait_for_index()?;
    let before = store.stats().log_bytes;
    let report = with_polled_bar(
        "compact",
        "MiB",
        || store.compaction_progress(),
        || store.compact(),
    )?;
    let after = store.stats().log_bytes;
    match format {
        Format::Json => out!(
            "{}",
            json!({
                "segments_rewritten": report.segments_rewritten,
                "versions_dropped": report.versions_dropped,
                "log_bytes_before": before,
                "log_bytes_after": after,
                "seconds": report.micros as f64 / 1e6,
                "history_complete_from": store.stats().history_complete_from,
            })
        ),
        Format::Table => {
            out!(
                "compacted: {} versions dropped from {} segments, log {} -> {}, {}",
                report.versions_dropped,
                report.segments_rewritten,
                fmt::bytes(before),
                fmt::bytes(after),
                fmt::duration(report.micros)
            );
            if let Some(from) = store.stats().history_complete_from {
                out!("history is complete from {}", fmt::time(from));
            }
        }
    }
    Ok(())
}

/// Arguments of `strata backup`.
#[derive(Args)]
pub(crate) struct BackupArgs {
    /// Backup directory: new or empty, or an earlier backup of this store (then only what
    /// changed is copied).
    dest: PathBuf,
}

pub(crate) fn backup(store: &Store, args: &BackupArgs, format: Format) -> Result<(), Failure> {
    let mut bar = Bar::new("backup");
    let report = store.backup_with_progress(&args.dest, &mut |done, total| {
        bar.update(done, total, "MiB")
    })?;
    drop(bar);
    let seconds = report.micros as f64 / 1e6;
    match format {
        Format::Json => out!(
            "{}",
            json!({
                "dest": args.dest,
                "last_seq": report.last_seq,
                "last_time": fmt::time(report.last_time_micros),
                "last_time_micros": report.last_time_micros,
                "index_included": report.index_included,
                "files": report.files,
                "files_copied": report.files_copied,
                "bytes": report.bytes,
                "bytes_copied": report.bytes_copied,
                "seconds": seconds,
            })
        ),
        Format::Table => {
            out!(
                "backup of seq {} ({}) in {}: {} files, {}; copied {} files, {} in {}{}",
                report.last_seq,
                fmt::time(report.last_time_micros),
                args.dest.display(),
                report.files,
                fmt::bytes(report.bytes),
                report.files_copied,
                fmt::bytes(report.bytes_copied),
                fmt::duration(report.micros),
                if report.index_included {
                    ""
                } else {
                    " (no index: a restore rebuilds it)"
                }
            );
        }
    }
    Ok(())
}

/// Arguments of `strata restore`.
#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The backup directory.
    src: PathBuf,
    /// Where to restore: a new or empty directory, or one holding an unfinished restore (which
    /// starts over); `--data` is not used.
    dest: PathBuf,
    /// Restore the store as it was at this time: RFC 3339, a UTC date (2023-06-10) or minute
    /// (2023-06-10T12:00), microseconds since the epoch, or relative (-30s, -10m, -2h, -7d).
    #[arg(long, allow_hyphen_values = true)]
    at: Option<String>,
}

pub(crate) fn restore(args: &RestoreArgs, format: Format) -> Result<(), Failure> {
    let mut options = RestoreOptions::default();
    if let Some(at) = &args.at {
        options = options.at(time::parse_time(at).map_err(usage)?);
    }
    let mut bar = Bar::new("restore");
    let report =
        Store::restore_with_progress(&args.src, &args.dest, options, &mut |done, total| {
            bar.update(done, total, "MiB")
        })?;
    drop(bar);
    let seconds = report.micros as f64 / 1e6;
    match format {
        Format::Json => out!(
            "{}",
            json!({
                "dest": args.dest,
                "last_seq": report.last_seq,
                "index_kept": report.index_kept,
                "files": report.files,
                "bytes": report.bytes,
                "seconds": seconds,
            })
        ),
        Format::Table => out!(
            "restored into {}: up to seq {}, {} files, {} in {}{}",
            args.dest.display(),
            report.last_seq,
            report.files,
            fmt::bytes(report.bytes),
            fmt::duration(report.micros),
            if report.index_kept {
                ""
            } else {
                " (the index is rebuilt when the store opens)"
            }
        ),
    }
    Ok(())
}

/// Exit status of `verify` when it found problems.
pub(crate) const PROBLEMS_FOUND: u8 = 7;

pub(crate) fn verify(data: &Path, format: Format) -> Result<(), Failure> {
    let mut bar = Bar::new("verify");
    let report = match Store::verify(data, Options::default(), &mut |done, total| {
        bar.update(done, total, "MiB")
    }) {
        Err(strata::Error::Locked { holder, .. }) => {
            super::say_read_only(holder, "checking what it can without repairing anything");
            Store::verify_live(data, Options::default(), &mut |done, total| {
                bar.update(done, total, "MiB")
            })?
        }
        other => other?,
    };
    drop(bar);
    let place = |p: &strata::Problem| match (&p.file, p.offset) {
        (Some(file), Some(offset)) => format!("{} at offset {offset}", file.display()),
        (Some(file), None) => file.display().to_string(),
        _ => "index".to_owned(),
    };
    match format {
        Format::Json => {
            let list = |ps: &[strata::Problem]| -> Vec<serde_json::Value> {
                ps.iter()
                    .map(|p| json!({"file": p.file, "offset": p.offset, "message": p.message}))
                    .collect()
            };
            out!(
                "{}",
                json!({
                    "ok": report.is_ok(),
                    "segments": report.segments,
                    "records": report.records,
                    "bytes": report.bytes,
                    "dropped": report.dropped,
                    "index_checked": report.index_checked,
                    "index_committed_seq": report.index_committed_seq,
                    "index_versions": report.index_versions,
                    "problems": list(&report.problems),
                    "notes": list(&report.notes),
                    "seconds": report.micros as f64 / 1e6,
                })
            )
        }
        Format::Table => {
            for p in &report.problems {
                out!("problem: {}: {}", place(p), p.message);
            }
            for p in &report.notes {
                out!("note: {}: {}", place(p), p.message);
            }
            out!(
                "{}: {} segments, {} records, {}{}{}",
                if report.is_ok() { "ok" } else { "DAMAGED" },
                report.segments,
                report.records,
                fmt::bytes(report.bytes),
                if report.dropped > 0 {
                    format!(", {} versions dropped by retention", report.dropped)
                } else {
                    String::new()
                },
                if report.index_checked {
                    format!(
                        "; index checked up to seq {} ({} versions)",
                        report.index_committed_seq, report.index_versions
                    )
                } else {
                    "; index not checked".to_owned()
                }
            );
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Failure {
            message: format!("{} problems found", report.problems.len()),
            code: PROBLEMS_FOUND,
        })
    }
}
