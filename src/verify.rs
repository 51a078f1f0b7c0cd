//! Verification of a data directory: the log (every checksum, the order of seqs and times,
//! the version chains) and the index against the log (docs/DESIGN.md §7).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::options::Options;
use crate::store::Store;
use crate::util::{INDEX_DIR, LOG_DIR};
use storage::backend::Backend;

/// A problem found by [`Store::verify`]: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// The file (a log segment; for an index problem, the segment of the version concerned,
    /// if the log holds it).
    pub file: Option<PathBuf>,
    /// Byte offset in it.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Log segment files checked.
    pub segments: u64,
    /// Log frames that checked out.
    pub records: u64,
    /// Log bytes read.
    pub bytes: u64,
    /// Versions compaction dropped (gaps the log is allowed to have).
    pub dropped: u64,
    /// Whether the index was checked against the log (only when the log is sound).
    pub index_checked: bool,
    /// The seq the index's last commit covers.
    pub index_committed_seq: u64,
    /// Versions in the index's last commit.
    pub index_versions: u64,
    /// Problems: damage, or an index that disagrees with the log. Empty: all is well.
    pub problems: Vec<Problem>,
    /// Findings that are not damage (an unfinished batch a crash left, which the next open
    /// cuts; leftovers of an interrupted compaction, which it removes).
    pub notes: Vec<Problem>,
    /// Wall time, microseconds.
    pub micros: u64,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The options verify opens a store with: background work would only move the index while it
/// is compared.
fn quiet(options: Options) -> Options {
    options.with_maintenance(
        crate::MaintenanceOptions::default()
            .with_compaction_interval(None)
            .with_expire(false),
    )
}

fn from_storage(p: storage::Problem) -> Problem {
    Problem {
        file: Some(p.file),
        offset: Some(p.offset),
        message: p.message,
    }
}

impl Store {
    /// Checks the store in `path`, which must not be open: every frame checksum of the log,
    /// the order of seqs and times, the version chains, and (when the log is sound) that the
    /// index holds exactly the versions of the log up to its last commit. Problems are
    /// reported (with file and offset), not repaired; the report is an error only when the
    /// check itself cannot run (the store is open elsewhere, an IO error). A store open in
    /// another process is [`crate::Error::Locked`]: [`Store::verify_live`] checks it read-only. To check the index,
    /// a sound store is opened, which (like any open) cuts an unfinished batch a crash left.
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{Options, Store};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = Store::open(dir.path(), Options::default())?;
    /// store.put("/a", "doc", json!({"n": 1}))?;
    /// drop(store);
    /// let report = Store::verify(dir.path(), Options::default(), &mut |_, _| {})?;
    /// assert!(report.is_ok(), "{:?}", report.problems);
    /// assert_eq!(report.records, 1);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn verify(
        path: impl AsRef<Path>,
        options: Options,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let path = path.as_ref();
        let options = quiet(options);
        Self::verify_inner(&storage::backend::OsBackend, path, progress, || {
            Store::open(path, options)
        })
    }

    /// [`Store::verify`] of the store in `path` on any backend, e.g. a crash image of the
    /// simulated one (the index, in memory there, is rebuilt by the open and checked).
    pub fn verify_with_backend(
        backend: Arc<dyn Backend>,
        path: &Path,
        options: Options,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let options = quiet(options);
        Self::verify_inner(&*Arc::clone(&backend), path, progress, || {
            Store::open_with_backend(backend, path, options)
        })
    }

    /// What [`Store::verify`] can check of a store that another process has open (it answers
    /// [`crate::Error::Locked`] there), through [`Store::open_read_only`]: every frame of the
    /// sealed segments and of the active one up to its last complete batch, the order of seqs
    /// and times, the version chains, and the index's last commit against the log. Nothing is
    /// repaired or written; the bytes after the last complete batch (a batch being written, or
    /// a torn tail) are not judged, and damage stops the check at the first problem. A note
    /// says so; verify the stopped store for the whole check.
    pub fn verify_live(
        path: impl AsRef<Path>,
        options: Options,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        let path = path.as_ref();
        let mut report = VerifyReport::default();
        report.notes.push(Problem {
            file: None,
            offset: None,
            message: "the store is open in another process: checked read-only, up to the \
                      writer's last complete batch, and nothing was repaired (verify the \
                      stopped store for the whole check)"
                .to_owned(),
        });
        match Store::open_read_only(path, quiet(options)) {
            Err(crate::Error::Corruption { file, offset, kind }) => report.problems.push(Problem {
                file: Some(file),
                offset: Some(offset),
                message: kind.to_string(),
            }),
            Err(e) => return Err(e),
            Ok(store) => {
                let stats = store.open_stats();
                report.segments = stats.segments;
                report.records = stats.records;
                let engine = &store.inner.engine;
                report.dropped = engine.counts().dropped_versions;
                report.bytes = engine.snapshot()?.files.iter().map(|f| f.len).sum();
                progress(report.bytes, report.bytes);
                match &store.index_open_report().unused {
                    Some(reason) => report.notes.push(Problem {
                        file: Some(path.join(INDEX_DIR)),
                        offset: None,
                        message: format!(
                            "the index was not checked: {reason} (the writer rebuilds it)"
                        ),
                    }),
                    None => store.check_index(&mut report)?,
                }
            }
        }
        report.micros = started.elapsed().as_micros() as u64;
        Ok(report)
    }

    /// `open` opens the store with the options given, once the log is found sound.
    fn verify_inner(
        backend: &dyn Backend,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
        open: impl FnOnce() -> Result<Store>,
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        crate::backup::refuse_unfinished_restore(backend, path)?;
        let log = storage::verify_log_with(backend, &path.join(LOG_DIR), progress).map_err(
            |e| match e {
                storage::Error::Locked { holder, .. } => crate::Error::Locked {
                    path: path.to_path_buf(),
                    holder,
                },
                e => e.into(),
            },
        )?;
        let mut report = VerifyReport {
            segments: log.segments,
            records: log.records,
            bytes: log.bytes,
            dropped: log.dropped,
            problems: log.problems.into_iter().map(from_storage).collect(),
            notes: log.notes.into_iter().map(from_storage).collect(),
            ..VerifyReport::default()
        };
        // An index whose last commit covers more than the log holds means versions were lost
        // from the log. After a crash that tore the log's tail, those are the writes the crash
        // lost (not yet synced): a note, open rebuilds the index. Otherwise log files or
        // whole records are gone: a problem, judged before open would discard the index (the
        // only trace of what was lost), so the store is then not opened.
        if let Some(indexed) = query::committed_seq_on_disk(&path.join(INDEX_DIR)) {
            if indexed > log.last_seq {
                let lost = format!(
                    "the index's last commit covers seq {indexed} but the log ends at seq {}",
                    log.last_seq
                );
                let (list, message) = if log.tail_cut {
                    (
                        &mut report.notes,
                        format!(
                            "{lost}: the crash that tore the log's tail lost the writes after \
                             it that were not yet synced; open rebuilds the index from the log"
                        ),
                    )
                } else {
                    (
                        &mut report.problems,
                        format!(
                            "{lost}: versions after it are missing from the log (log files or \
                             records lost); opening the store would discard the index and \
                             rebuild it from the log"
                        ),
                    )
                };
                list.push(Problem {
                    file: Some(path.join(INDEX_DIR).join(query::META_FILE)),
                    offset: None,
                    message,
                });
            }
        }
        if report.problems.is_empty() {
            let store = open()?;
            // What the open repaired, as any open would: notes, like the log's own.
            let stats = store.open_stats();
            if stats.truncated_bytes > 0 {
                report.notes.push(Problem {
                    file: None,
                    offset: None,
                    message: format!(
                        "opening the store to check its index cut {} bytes ({} records of an \
                         unfinished batch) after the last whole batch, as any open would",
                        stats.truncated_bytes, stats.truncated_records
                    ),
                });
            }
            if let Some(reason) = &store.index_open_report().rebuilt {
                report.notes.push(Problem {
                    file: None,
                    offset: None,
                    message: format!(
                        "the index was unusable and was discarded, to be rebuilt from the log \
                         (the log is the data; the index is derived from it): {reason}"
                    ),
                });
            }
            // Check the index once it covers the whole log: an earlier process may have
            // stopped before indexing its last batch, and open indexes it in the background.
            match store.wait_for_index() {
                Ok(()) => store.check_index(&mut report)?,
                Err(error) => report.problems.push(Problem {
                    file: None,
                    offset: None,
                    message: format!("the index cannot catch up with the log: {error}"),
                }),
            }
        }
        report.micros = started.elapsed().as_micros() as u64;
        Ok(report)
    }

    /// Compares the index's last commit with the log, up to the seq that commit covers.
    fn check_index(&self, report: &mut VerifyReport) -> Result<()> {
        let engine = &self.inner.engine;
        let (committed, seqs) = self.inner.index.committed_seqs()?;
        // A crash between a compaction and the index's removal of the versions it dropped
        // leaves them in the index's commit, which records an older compaction generation;
        // open removes them (FORMAT.md §9). They are a note; a dropped version in an index
        // whose commit claims the log's generation is a problem.
        let opened = self.index_open_report();
        let log_generation = engine.compaction_generation();
        let pending_removal: std::collections::BTreeSet<u64> =
            if opened.compaction_generation < log_generation {
                engine
                    .dropped_seqs(opened.committed_seq)
                    .into_iter()
                    .collect()
            } else {
                Default::default()
            };
        if !pending_removal.is_empty() {
            report.notes.push(Problem {
                file: None,
                offset: None,
                message: format!(
                    "the index's last commit is of compaction generation {}, the log's is \
                     {log_generation}: the {} versions compaction dropped since (seqs {}..={}) \
                     are removed from the index on open",
                    opened.compaction_generation,
                    pending_removal.len(),
                    pending_removal.first().copied().unwrap_or_default(),
                    pending_removal.last().copied().unwrap_or_default(),
                ),
            });
        }
        report.index_checked = true;
        report.index_committed_seq = committed;
        report.index_versions = seqs.len() as u64;
        let mut problem = |seq: u64, message: String| {
            let (file, offset) = engine.location(seq).unzip();
            report.problems.push(Problem {
                file,
                offset,
                message,
            });
        };
        let mut indexed = seqs.iter().copied().peekable();
        for seq in 1..=committed {
            let mut times = 0;
            while indexed.next_if_eq(&seq).is_some() {
                times += 1;
            }
            let in_log = engine.location(seq).is_some();
            match (in_log, times) {
                (true, 1) | (false, 0) => {}
                (false, 1) if pending_removal.contains(&seq) => {}
                (true, 0) => problem(seq, format!("seq {seq} is in the log but not in the index")),
                (false, _) => problem(
                    seq,
                    format!("seq {seq} is in the index but the log does not hold it"),
                ),
                (true, n) => problem(seq, format!("seq {seq} is in the index {n} times")),
            }
        }
        for seq in indexed {
            problem(
                seq,
                format!("seq {seq} is in the index but after its commit's seq {committed}"),
            );
        }
        Ok(())
    }
}
