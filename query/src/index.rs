//! What does the rest of the system call to index and query versions? [`Index`], the handle
//! on top of the index's rooms: it opens the index (`open.rs`, or `read_only.rs` for a
//! read-only open), starts the indexer thread (`indexer.rs`) on the state the reader module
//! shares ([`crate::reader`]), runs searches ([`crate::search`]) and answers for the index's
//! files (`files.rs`). Every version of every document is in one tantivy index, committed in
//! groups with the last indexed seq as the commit payload.
//!
//! Imports point down only: this module uses the others; `indexer.rs`, `open.rs`,
//! `read_only.rs`, `files.rs` and `watched.rs` never import it, and search and
//! the reader never import anything of the writer side.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use storage::Engine;

use crate::error::{Error, Result};
use crate::reader::{ring, Parts, Published, Shared, State};
use crate::schema::Fields;
use crate::search::{self, Interrupt, QueryOutput};
use crate::spec::QuerySpec;

mod files;
mod indexer;
mod open;
mod read_only;
mod watched;

pub use crate::options::{IndexLocation, IndexOptions};
pub use files::{committed_seq_on_disk, CommittedFiles, META_FILE};
pub use open::IndexOpenReport;
#[cfg(any(test, feature = "test-support"))]
pub use watched::fail_index_writes;
use watched::LastFailure;

/// Progress of the indexer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexProgress {
    /// Versions up to this seq are in the last commit.
    pub committed_seq: u64,
    /// Versions up to this seq are indexed (committed or not).
    pub indexed_seq: u64,
    /// The log's newest seq.
    pub log_seq: u64,
}

/// The index of every version of a store's documents, kept up to date by a background thread.
pub struct Index {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("progress", &self.progress())
            .finish()
    }
}

impl Index {
    /// Opens (or creates) the index of `engine`'s log and starts the indexer thread, which
    /// catches up with the log in the background.
    pub fn open(
        engine: Arc<Engine>,
        location: IndexLocation,
        options: IndexOptions,
    ) -> Result<(Index, IndexOpenReport)> {
        options.validate()?;
        let (schema, fields) = Fields::schema();
        let budget = open::writer_budget(&options);
        let failure = LastFailure::default();
        let opened = open::open_writable(&location, &schema, engine.last_seq(), budget, &failure)?;
        let report = opened.report;
        // Versions compaction dropped since the index last committed (a crash came between
        // the compaction and the removal) are removed before anything else.
        let log_generation = engine.compaction_generation();
        let (deletes, generation_wanted) = if report.compaction_generation < log_generation {
            (engine.dropped_seqs(report.committed_seq), log_generation)
        } else {
            (Vec::new(), report.compaction_generation)
        };
        let (shared, rings) = Shared::new(Parts {
            engine,
            tantivy: opened.index,
            reader: opened.reader,
            dir: match &location {
                IndexLocation::Dir(dir) => Some(dir.clone()),
                IndexLocation::Memory => None,
            },
            fields,
            options,
            read_only: false,
            committed: report.committed_seq,
            generation: report.compaction_generation,
            deletes,
            generation_wanted,
        });
        let thread = indexer::spawn(
            Arc::clone(&shared),
            opened.writer,
            rings,
            report.compaction_generation,
            budget,
            failure,
        )?;
        Ok((
            Index {
                shared,
                thread: Some(thread),
            },
            report,
        ))
    }

    /// Opens the index of a store that another process writes ([`Engine::open_read_only`]):
    /// the last commit in `dir`, read without an `IndexWriter`, a lock or any write, and no
    /// indexer thread. Versions after that commit are matched from the log (however many:
    /// `max_tail` does not apply, since no commit will come), and a sort by score needs the
    /// commit to cover the snapshot ([`Error::ReadOnlyIndexBehind`]). An index that is
    /// missing or does not open is not rebuilt: every version is then read from the log, and
    /// the report says why ([`IndexOpenReport::unused`]). [`Index::refresh`] reads newer
    /// commits and log batches.
    pub fn open_read_only(
        engine: Arc<Engine>,
        dir: PathBuf,
        options: IndexOptions,
    ) -> Result<(Index, IndexOpenReport)> {
        options.validate()?;
        let (schema, fields) = Fields::schema();
        let (tantivy_index, reader, dir, report) = read_only::open_or_empty(&engine, dir, &schema)?;
        // No indexer: nothing waits on the doorbell.
        let (shared, _) = Shared::new(Parts {
            engine,
            tantivy: tantivy_index,
            reader,
            dir,
            fields,
            options,
            read_only: true,
            committed: report.committed_seq,
            generation: report.compaction_generation,
            deletes: Vec::new(),
            generation_wanted: report.compaction_generation,
        });
        Ok((
            Index {
                shared,
                thread: None,
            },
            report,
        ))
    }

    /// On a read-only open, reads the index's newest commit and then the log's newest batches
    /// (in that order, so that the commit never covers more than the log read); returns whether
    /// anything changed. A no-op for the writer's own index.
    pub fn refresh(&self) -> Result<bool> {
        let shared = &self.shared;
        if !shared.read_only {
            return Ok(false);
        }
        // A commit that cannot be read now (changing too fast, or damaged) leaves the previous
        // one in use: the log answers for everything after it.
        let reloaded = shared
            .dir
            .as_ref()
            .and_then(|dir| read_only::reload(dir, &shared.reader).ok())
            .map(|(seq, _)| (shared.reader.searcher(), seq));
        let changed = shared.engine.refresh()?;
        let Some((searcher, seq)) = reloaded else {
            return Ok(changed);
        };
        if seq > shared.engine.last_seq() {
            return Ok(changed);
        }
        let moved = seq != shared.state.lock().published.committed;
        shared.publish(|_| Published {
            searcher,
            committed: seq,
            tail: Vec::new(),
            indexed: seq,
        });
        Ok(changed || moved)
    }

    /// Whether this index was opened with [`Index::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only
    }

    fn refuse_read_only(&self, op: &str) -> Result<()> {
        if self.shared.read_only {
            return Err(Error::Index {
                message: format!(
                    "{op} needs the process that writes the store (this open is read-only)"
                ),
            });
        }
        Ok(())
    }

    /// Tells the indexer the log grew. Cheap; call it after every commit.
    pub fn notify(&self) {
        ring(&self.shared.doorbell);
    }

    /// Blocks while the log is more than `max_lag` versions ahead of the last index commit
    /// (back-pressure for writers). Returns at once if the indexer has stopped.
    pub fn wait_for_room(&self) {
        let shared = &self.shared;
        if shared.read_only {
            return;
        }
        let max_lag = shared.options.max_lag;
        let lagging = |st: &State| {
            st.error.is_none()
                && !st.stop
                && shared
                    .engine
                    .last_seq()
                    .saturating_sub(st.published.committed)
                    > max_lag
        };
        let mut st = shared.state.lock();
        if !lagging(&st) {
            return;
        }
        st.commit_wanted = st.commit_wanted.max(shared.engine.last_seq() - max_lag / 2);
        ring(&shared.doorbell);
        while lagging(&st) {
            shared.published.wait(&mut st);
        }
    }

    /// Runs a query. `now` is the time `Current` judges expiry at.
    pub fn search(&self, spec: &QuerySpec, now: u64) -> Result<QueryOutput> {
        search::search(&self.shared, spec, now, &Arc::new(Interrupt::default()))
    }

    /// [`Index::search`] that stops with an error when `interrupt` fires.
    pub fn search_interruptible(
        &self,
        spec: &QuerySpec,
        now: u64,
        interrupt: &Arc<Interrupt>,
    ) -> Result<QueryOutput> {
        search::search(&self.shared, spec, now, interrupt)
    }

    /// Blocks until the index has committed every version up to `seq`.
    pub fn wait_committed(&self, seq: u64) -> Result<()> {
        self.shared.wait_committed(seq).map(drop)
    }

    /// Discards the index and rebuilds it from the log; returns once it covers every version
    /// written before the call.
    pub fn rebuild(&self) -> Result<()> {
        self.refuse_read_only("rebuilding the index")?;
        let target = self.shared.engine.last_seq();
        let failures = {
            let mut st = self.shared.state.lock();
            // A failed indexer is what a rebuild is for: it retries at once.
            st.check_open()?;
            st.rebuild_wanted = true;
            st.commit_wanted = st.commit_wanted.max(target);
            st.rebuild_failures
        };
        ring(&self.shared.doorbell);
        let mut st = self.shared.state.lock();
        // Wait for the rebuild to start (it resets the commit), then for it to catch up.
        while st.rebuild_wanted {
            st.check_open()?;
            if st.rebuild_failures > failures {
                // The rebuild this call asked for failed: report it (a new call retries).
                return st.check();
            }
            self.shared.published.wait(&mut st);
        }
        drop(st);
        self.wait_committed(target)
    }

    /// Removes versions compaction dropped (their seqs) from the index and returns once a
    /// commit reaching `generation` ([`storage::Engine::compaction_generation`]) is done and
    /// their disk space is given back (segments at least 30% deleted rewritten, files no
    /// segment uses deleted); an error if that failed (the removal itself stands).
    pub fn remove_dropped(&self, seqs: Vec<u64>, generation: u64) -> Result<()> {
        self.refuse_read_only("removing dropped versions from the index")?;
        {
            let mut st = self.shared.state.lock();
            st.check()?;
            st.deletes.extend(seqs);
            st.generation_wanted = st.generation_wanted.max(generation);
        }
        ring(&self.shared.doorbell);
        let mut st = self.shared.state.lock();
        while st.reclaimed < generation {
            st.check()?;
            self.shared.published.wait(&mut st);
        }
        match &st.reclaim_error {
            Some(e) => Err(Error::Index {
                message: format!(
                    "the dropped versions are removed from the index, but reclaiming their \
                     disk space failed: {e}"
                ),
            }),
            None => Ok(()),
        }
    }

    /// The seqs of every version in the last commit, in order (for verification), and the
    /// seq the commit covers.
    pub fn committed_seqs(&self) -> Result<(u64, Vec<u64>)> {
        let published = self.shared.current()?;
        let mut seqs = Vec::new();
        for segment in published.searcher.segment_readers() {
            let column = segment
                .fast_fields()
                .u64(crate::schema::SEQ_FIELD)
                .map_err(|e| Error::Index {
                    message: format!("the _seq column does not open: {e}"),
                })?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                seqs.extend(column.values_for_doc(doc));
            }
        }
        seqs.sort_unstable();
        Ok((published.committed, seqs))
    }

    /// The files of the index's last commit, for a backup (`None` for an index in memory).
    /// Copy them, then check [`Index::commit_unchanged`]: a merge may have replaced (and
    /// deleted) some meanwhile, and the copy must then start again.
    pub fn committed_files(&self) -> Result<Option<CommittedFiles>> {
        match &self.shared.dir {
            Some(dir) => files::committed_files(dir, &self.shared.tantivy).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the index's last commit is still the one `files` describes.
    pub fn commit_unchanged(&self, files: &CommittedFiles) -> bool {
        files::commit_unchanged(files)
    }

    /// How far the indexer has come.
    pub fn progress(&self) -> IndexProgress {
        let st = self.shared.state.lock();
        IndexProgress {
            committed_seq: st.published.committed,
            indexed_seq: st.published.indexed(),
            log_seq: self.shared.engine.last_seq(),
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        ring(&self.shared.doorbell);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A panic in the indexer thread (a date overflow did this once) ended the thread and left
    // `wait_committed` waiting for ever: it is a failure the caller sees, and the indexer
    // recovers once the cause is gone.
    #[test]
    fn a_panicking_indexer_fails_waiters_and_recovers() {
        let tmp = tempfile::tempdir().unwrap();
        let (engine, _) =
            Engine::open(&tmp.path().join("log"), storage::EngineOptions::default()).unwrap();
        let engine = Arc::new(engine);
        let (index, _) = Index::open(
            Arc::clone(&engine),
            IndexLocation::Dir(tmp.path().join("index")),
            IndexOptions::default(),
        )
        .unwrap();
        index
            .shared
            .panic_at
            .store(2, std::sync::atomic::Ordering::Relaxed);
        let put = |id: &str| storage::WriteOp {
            id: id.to_owned(),
            expect: storage::Expect::Any,
            action: storage::Action::Put {
                kind: "doc".to_owned(),
                body: br#"{"n": 1}"#.to_vec(),
            },
            expires_at: None,
            time: None,
        };
        for id in ["/a", "/b", "/c"] {
            engine.commit(vec![put(id)], None).unwrap();
        }
        index.notify();
        match index.wait_committed(3) {
            Err(Error::IndexerStopped { message }) => {
                assert!(message.contains("injected panic at seq 2"), "{message}");
            }
            other => panic!("waiting on a panicked indexer: {other:?}"),
        }
        index
            .shared
            .panic_at
            .store(0, std::sync::atomic::Ordering::Relaxed);
        index.rebuild().unwrap();
        index.wait_committed(3).unwrap();
        assert_eq!(index.committed_seqs().unwrap().1, vec![1, 2, 3]);
    }
}
