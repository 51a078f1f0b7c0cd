//! How does the log become index commits? The indexer thread: it follows the log, adds each
//! version to tantivy's writer and publishes it in the tail for queries, commits in groups
//! with the last indexed seq as the payload, removes what compaction dropped and gives its
//! space back, rebuilds on request, and after a failure retries with a new writer.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;
use tantivy::IndexWriter;

use super::files::{Payload, PAYLOAD_FORMAT};
use super::watched::LastFailure;
use crate::error::{Error, Result};
use crate::reader::{Published, Shared, TailDoc};
use crate::schema::{index_document, VersionInfo};

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Versions read and added per step; also the size of a tail chunk.
const STEP: u64 = 1024;

struct Indexer {
    shared: Arc<Shared>,
    /// None only while [`Indexer::settle_merges`] replaces it, or after that failed.
    writer: Option<IndexWriter>,
    rings: Receiver<()>,
    uncommitted: u64,
    first_uncommitted: Option<Instant>,
    /// The compaction generation the index reaches at its next commit.
    generation: u64,
    /// How a new writer is made after a failure.
    threads: usize,
    memory: usize,
    /// A rebuild asked for is under way (its failure is reported to the caller).
    rebuilding: bool,
    /// The last failed write of the index directory: the cause an indexer error names.
    failure: LastFailure,
}

/// The first wait before the indexer retries after a failure, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Starts the indexer thread of `shared` with `writer`, from the commit `shared` publishes,
/// whose compaction generation is `generation`. `rings` is the doorbell of `shared`; `failure`
/// records the failed writes of the writer's directory; `(threads, memory)` make a new writer
/// after a failure.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    writer: IndexWriter,
    rings: Receiver<()>,
    generation: u64,
    (threads, memory): (usize, usize),
    failure: LastFailure,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("strata-indexer".to_owned())
        .spawn(move || {
            let mut indexer = Indexer {
                shared,
                writer: Some(writer),
                rings,
                uncommitted: 0,
                first_uncommitted: None,
                generation,
                threads,
                memory,
                rebuilding: false,
                failure,
            };
            indexer.serve();
        })
        .map_err(|e| Error::Index {
            message: format!("cannot start the indexer thread: {e}"),
        })
}

impl Indexer {
    /// Runs the indexer until the store closes. A failure (a full disk, an IO error) does not
    /// end it: it records the cause for queries to report, waits (with backoff, or until a
    /// rebuild is asked for), puts a new writer in place of the failed one (tantivy's is dead
    /// once a worker failed) and goes on from the last commit.
    fn serve(&mut self) {
        let mut backoff = RETRY_FIRST;
        loop {
            // A panic (a bug, never expected) is a failure like any other: recorded for
            // queries and rebuilds to report, then retried, rather than a thread that vanishes
            // and leaves `wait_committed` waiting for ever.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run()));
            let failure = self.failure.take();
            let cause = match outcome {
                Ok(Ok(())) => return,
                // The write that failed names the file and the OS error; tantivy's own
                // message is often only that a worker died ("An index writer was killed").
                Ok(Err(e)) => failure.unwrap_or_else(|| e.to_string()),
                Err(panic) => format!("the indexer panicked: {}", panic_message(&*panic)),
            };
            {
                let mut st = self.shared.state.lock();
                if st.error.is_none() {
                    // It had recovered since the last failure: start the backoff over.
                    backoff = RETRY_FIRST;
                }
                st.error = Some(format!(
                    "{cause}; it retries in the background, and a rebuild of the index retries at once"
                ));
                if std::mem::take(&mut self.rebuilding) {
                    // The caller of the rebuild gets the error; a new call retries.
                    st.rebuild_failures += 1;
                    st.rebuild_wanted = false;
                }
                self.shared.published.notify_all();
            }
            let deadline = Instant::now() + backoff;
            loop {
                {
                    let st = self.shared.state.lock();
                    if st.stop {
                        return;
                    }
                    if st.rebuild_wanted {
                        break;
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = self.rings.recv_timeout(left);
            }
            backoff = (backoff * 2).min(RETRY_MAX);
            self.reset();
        }
    }

    /// Replaces the writer after a failure and goes back to the last commit: what was indexed
    /// since is indexed again (queries read it from the log meanwhile).
    fn reset(&mut self) {
        if self.writer.as_mut().is_none_or(|w| w.rollback().is_err()) {
            // The failed rollback released the writer's lock (or there was no writer, after a
            // restart that failed): a new writer can take it. If that fails too, the next
            // attempt fails and tries again.
            self.writer = None;
            self.writer = self.new_writer().ok();
        }
        self.uncommitted = 0;
        self.first_uncommitted = None;
        self.generation = self.shared.state.lock().generation;
        // The commit on disk is what the new writer starts from: if the failed commit got as
        // far as writing it, queries must see it (and nothing may be indexed twice).
        let on_disk = self
            .shared
            .tantivy
            .load_metas()
            .ok()
            .and_then(|metas| metas.payload)
            .and_then(|p| Payload::seq_of(&p));
        let reloaded = match on_disk {
            Some(seq) if seq != self.shared.state.lock().published.committed => self
                .shared
                .reader
                .reload()
                .ok()
                .map(|()| (self.shared.reader.searcher(), seq)),
            _ => None,
        };
        self.shared.publish(|p| {
            let (searcher, committed) =
                reloaded.unwrap_or_else(|| (p.searcher.clone(), p.committed));
            Published {
                searcher,
                committed,
                tail: Vec::new(),
                indexed: committed,
            }
        });
        // A compaction may have dropped versions while the index could not take their removal
        // (its caller got the error, and nothing was queued): queue them as an open would.
        let log_generation = self.shared.engine.compaction_generation();
        let mut st = self.shared.state.lock();
        if st.generation < log_generation {
            let committed = st.published.committed;
            st.deletes = self.shared.engine.dropped_seqs(committed);
            st.generation_wanted = st.generation_wanted.max(log_generation);
        }
    }

    fn run(&mut self) -> Result<()> {
        loop {
            let (stop, rebuild, commit_wanted, published) = {
                let st = self.shared.state.lock();
                (
                    st.stop,
                    st.rebuild_wanted,
                    st.commit_wanted,
                    Arc::clone(&st.published),
                )
            };
            if stop {
                if self.uncommitted > 0 {
                    self.commit(published.indexed())?;
                }
                return Ok(());
            }
            if rebuild {
                self.rebuild()?;
                continue;
            }
            if self.remove_dropped()? {
                continue;
            }
            let indexed = published.indexed();
            let log_seq = self.shared.engine.last_seq();
            if indexed < log_seq {
                self.index_step(indexed + 1, log_seq.min(indexed + STEP))?;
            }
            let indexed = self.shared.current_indexed();
            let due = self
                .first_uncommitted
                .is_some_and(|t| t.elapsed() >= self.shared.options.commit_interval);
            if self.uncommitted > 0
                && (self.uncommitted >= self.shared.options.commit_versions
                    || due
                    || (commit_wanted > published.committed
                        && indexed >= commit_wanted.min(log_seq))
                    || (commit_wanted > published.committed && indexed >= log_seq))
            {
                self.commit(indexed)?;
                continue;
            }
            if indexed < self.shared.engine.last_seq() {
                continue;
            }
            let wait = match self.first_uncommitted {
                Some(t) => self
                    .shared
                    .options
                    .commit_interval
                    .saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            let _ = self.rings.recv_timeout(wait);
        }
    }

    fn index_step(&mut self, from: u64, to: u64) -> Result<()> {
        let mut chunk = Vec::with_capacity((to - from + 1) as usize);
        for seq in from..=to {
            #[cfg(test)]
            if self
                .shared
                .panic_at
                .load(std::sync::atomic::Ordering::Relaxed)
                == seq
            {
                panic!("injected panic at seq {seq}");
            }
            // Versions compaction dropped are not indexed (nor in the tail).
            let Some(version) = self.shared.engine.get_seq(seq)? else {
                continue;
            };
            let body = if version.meta.tombstone {
                Value::Null
            } else {
                serde_json::from_slice(&version.body).map_err(|e| Error::Index {
                    message: format!("the body of seq {seq} is not JSON: {e}"),
                })?
            };
            let info = VersionInfo::from_meta(&version.meta);
            let document = index_document(&self.shared.fields, &info, &body);
            self.writer()?.add_document(document)?;
            chunk.push(TailDoc::new(info, body));
        }
        let chunk: Arc<[TailDoc]> = chunk.into();
        // A step of dropped versions only still counts: the commit records how far it came.
        self.uncommitted += chunk.len().max(1) as u64;
        self.first_uncommitted.get_or_insert_with(Instant::now);
        self.shared.publish(|p| {
            let mut tail = p.tail.clone();
            if !chunk.is_empty() {
                tail.push(chunk);
            }
            Published {
                searcher: p.searcher.clone(),
                committed: p.committed,
                tail,
                indexed: to,
            }
        });
        Ok(())
    }

    fn commit(&mut self, seq: u64) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            strata_index: PAYLOAD_FORMAT,
            seq,
            generation: self.generation,
        })
        .map_err(|e| Error::Index {
            message: e.to_string(),
        })?;
        let mut prepared = self.writer()?.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.shared.reader.reload()?;
        let searcher = self.shared.reader.searcher();
        self.uncommitted = 0;
        self.first_uncommitted = None;
        self.shared.state.lock().error = None;
        self.shared.publish(|p| Published {
            searcher,
            committed: seq,
            // Commits cover everything indexed (a rebuild's first commit resets both to 0).
            indexed: seq,
            // Chunks past `seq` (none today: commits cover everything indexed) stay.
            tail: p
                .tail
                .iter()
                .filter(|c| c.first().is_some_and(|d| d.info.seq > seq))
                .cloned()
                .collect(),
        });
        Ok(())
    }

    /// Removes the versions compaction dropped, if any are waiting, and commits.
    fn remove_dropped(&mut self) -> Result<bool> {
        // The removals stay queued until their commit succeeds: a failed one is rolled back.
        let (deletes, wanted) = {
            let st = self.shared.state.lock();
            if st.generation_wanted <= st.generation && st.deletes.is_empty() {
                return Ok(false);
            }
            (st.deletes.clone(), st.generation_wanted)
        };
        let seq_field = self.shared.fields.seq;
        let writer = self.writer()?;
        for &seq in &deletes {
            writer.delete_term(tantivy::Term::from_field_u64(seq_field, seq));
        }
        self.generation = self.generation.max(wanted);
        self.uncommitted += 1;
        let indexed = self.shared.current_indexed();
        self.commit(indexed)?;
        // The removal is committed: the index holds no dropped version (a failure from here
        // on does not queue the removal again). Reclaiming its space follows; its outcome is
        // what `Index::remove_dropped` returns, and a failure is also the indexer's, like any
        // failed index write (recorded, and the writer replaced).
        {
            let mut st = self.shared.state.lock();
            st.deletes.drain(..deletes.len());
            st.generation = st.generation.max(wanted);
        }
        let reclaimed = self.reclaim();
        {
            let mut st = self.shared.state.lock();
            st.reclaimed = st.reclaimed.max(wanted);
            st.reclaim_error = reclaimed.as_ref().err().map(ToString::to_string);
            self.shared.published.notify_all();
        }
        reclaimed?;
        Ok(true)
    }

    /// Gives back the disk space of removed versions before returning: rewrites the segments
    /// that removals left at least 30% deleted and deletes every file no segment of the
    /// commit uses.
    ///
    /// tantivy's own merge policy may have started merges at the removal's commit (on the
    /// same segments: tantivy does not stop an explicit merge from taking segments a
    /// background merge holds, and the one that ends second is discarded), and its garbage
    /// collection keeps the files of every segment a merge in progress holds. So this waits
    /// for those merges first, merges, waits for the merges that merge started, and only then
    /// collects: nothing is left for a later commit to collect (a `strata compact` process
    /// exits right after), and no merge is cut short by the process exiting.
    fn reclaim(&mut self) -> Result<()> {
        self.settle_merges()?;
        let ids: Vec<tantivy::index::SegmentId> = self
            .shared
            .tantivy
            .searchable_segment_metas()?
            .iter()
            .filter(|m| m.max_doc() > 0 && m.num_deleted_docs() * 10 >= m.max_doc() * 3)
            .map(|m| m.id())
            .collect();
        if !ids.is_empty() {
            self.writer()?.merge(&ids).wait()?;
            self.settle_merges()?;
        }
        self.writer()?.garbage_collect_files().wait()?;
        self.shared.reader.reload()?;
        let searcher = self.shared.reader.searcher();
        self.shared.publish(|p| Published {
            searcher,
            committed: p.committed,
            tail: p.tail.clone(),
            indexed: p.indexed,
        });
        Ok(())
    }

    /// Waits until no merge runs: tantivy waits for its merges only as a writer's last act,
    /// so the writer is replaced by a new one (with nothing uncommitted: callers commit first).
    fn settle_merges(&mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.wait_merging_threads()?;
        }
        self.writer = Some(self.new_writer()?);
        Ok(())
    }

    /// A new writer, once the previous one is gone. Its lock is an `flock` on
    /// `.tantivy-writer.lock`, which a child process forked by the application (to run any
    /// command) holds from its fork until its exec closes the descriptor: a lock found busy
    /// right after the old writer dropped it is retried for up to about two seconds.
    fn new_writer(&self) -> Result<IndexWriter> {
        let mut attempt = 0u32;
        loop {
            match self
                .shared
                .tantivy
                .writer_with_num_threads(self.threads, self.memory)
            {
                Err(tantivy::TantivyError::LockFailure(
                    tantivy::directory::error::LockError::LockBusy,
                    _,
                )) if attempt < 40 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt) * 2));
                }
                result => return Ok(result?),
            }
        }
    }

    /// The writer; none only after replacing it failed (the indexer's retry makes a new one).
    fn writer(&mut self) -> Result<&mut IndexWriter> {
        self.writer.as_mut().ok_or_else(|| Error::Index {
            message: "the index writer could not be restarted".to_owned(),
        })
    }

    fn rebuild(&mut self) -> Result<()> {
        self.rebuilding = true;
        // Documents added since the last commit survive `delete_all_documents`: drop them first.
        let writer = self.writer()?;
        writer.rollback()?;
        writer.delete_all_documents()?;
        // The log holds no dropped version, so the rebuilt index holds none either.
        self.generation = self.shared.engine.compaction_generation();
        self.uncommitted = 1;
        self.commit(0)?;
        self.shared.publish(|p| Published {
            searcher: p.searcher.clone(),
            committed: 0,
            tail: Vec::new(),
            indexed: 0,
        });
        self.rebuilding = false;
        let mut st = self.shared.state.lock();
        st.rebuild_wanted = false;
        self.shared.published.notify_all();
        Ok(())
    }
}
