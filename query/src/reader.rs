//! What does a query read? The state the indexer publishes and every search reads: the
//! searcher of the index's last commit, the seq it covers, and the versions indexed since
//! ([`Published`], with its tail of [`TailDoc`]s), behind [`Shared`], the one state the index
//! handle, the indexer thread and searches hold. A query at snapshot `S` takes versions up to
//! the commit from the index and the rest, up to `S`, from the tail.
//!
//! The writer side (the indexer, the opening of the index) and the search sit above this
//! module; it imports neither.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use storage::Engine;
use tantivy::{IndexReader, Searcher};

use crate::error::{Error, Result};
use crate::matcher::Flat;
use crate::options::IndexOptions;
use crate::schema::{Fields, VersionInfo};

/// A version indexed after the last commit.
#[derive(Debug)]
pub(crate) struct TailDoc {
    pub info: VersionInfo,
    pub body: Value,
    /// The body flattened for the matcher, on first use (most tail versions are never matched).
    flat: std::sync::OnceLock<Flat>,
}

impl TailDoc {
    pub(crate) fn new(info: VersionInfo, body: Value) -> TailDoc {
        TailDoc {
            info,
            body,
            flat: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn flat(&self) -> &Flat {
        self.flat.get_or_init(|| Flat::new(&self.body))
    }
}

/// What queries read.
pub(crate) struct Published {
    pub searcher: Searcher,
    pub committed: u64,
    /// Versions `committed + 1 ..= indexed` the log holds, in seq order.
    pub tail: Vec<Arc<[TailDoc]>>,
    /// Every seq up to this one is indexed (committed or in the tail) or was dropped by
    /// compaction.
    pub indexed: u64,
}

impl Published {
    pub(crate) fn indexed(&self) -> u64 {
        self.indexed.max(self.committed)
    }
}

/// What the index handle, the indexer and queries share, under one lock.
pub(crate) struct State {
    pub published: Arc<Published>,
    /// Seqs to remove from the index (compaction dropped them), and the generation that
    /// removing them reaches.
    pub deletes: Vec<u64>,
    pub generation_wanted: u64,
    /// The generation the last commit reached.
    pub generation: u64,
    /// The generation whose removal's disk space was last reclaimed (or tried:
    /// `reclaim_error` then says why it failed); [`crate::Index::remove_dropped`] waits for it.
    pub reclaimed: u64,
    pub reclaim_error: Option<String>,
    /// Queries and `rebuild` want a commit covering this seq.
    pub commit_wanted: u64,
    pub rebuild_wanted: bool,
    pub stop: bool,
    /// Why the indexer's last attempt failed; cleared by its next successful commit. While it
    /// is set the indexer retries (with backoff, at once for a rebuild), queries that can be
    /// answered from the last commit plus the log still are, and waiting for a commit fails.
    pub error: Option<String>,
    /// Rebuilds that failed so far, so that a rebuild can tell that the one it asked for did.
    pub rebuild_failures: u64,
}

pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    /// The tantivy index, and its directory when it lives on disk.
    pub tantivy: tantivy::Index,
    pub dir: Option<PathBuf>,
    pub fields: Fields,
    pub options: IndexOptions,
    /// Opened with [`crate::Index::open_read_only`]: no indexer, no writer; the index's last
    /// commit on disk and the log serve queries.
    pub read_only: bool,
    pub reader: IndexReader,
    pub state: Mutex<State>,
    /// Signalled on every publish and on errors.
    pub published: Condvar,
    pub doorbell: Sender<()>,
    /// Unit tests make the indexer panic when it reaches this seq.
    #[cfg(test)]
    pub panic_at: std::sync::atomic::AtomicU64,
}

/// What a [`Shared`] is made of: the opened index, and the commit it starts from.
pub(crate) struct Parts {
    pub engine: Arc<Engine>,
    pub tantivy: tantivy::Index,
    pub reader: IndexReader,
    pub dir: Option<PathBuf>,
    pub fields: Fields,
    pub options: IndexOptions,
    pub read_only: bool,
    /// The seq the opened commit covers, and the compaction generation it reached.
    pub committed: u64,
    pub generation: u64,
    /// Removals queued before anything else (versions compaction dropped since the commit),
    /// and the generation they reach.
    pub deletes: Vec<u64>,
    pub generation_wanted: u64,
}

/// Tells whoever waits on `doorbell` (the indexer) that there is something to do.
pub(crate) fn ring(doorbell: &Sender<()>) {
    match doorbell.try_send(()) {
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

impl State {
    pub(crate) fn check(&self) -> Result<()> {
        match &self.error {
            Some(message) => Err(Error::IndexerStopped {
                message: message.clone(),
            }),
            None => self.check_open(),
        }
    }

    /// [`State::check`] without the indexer's failure: for reads the last commit and the log
    /// can answer, and for a rebuild, which retries.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.stop {
            return Err(Error::IndexerStopped {
                message: "the store is closing".to_owned(),
            });
        }
        Ok(())
    }
}

impl Shared {
    /// The shared state of an index opened for writing or reading only, publishing the opened
    /// commit with an empty tail; the receiver is the doorbell the indexer waits on.
    pub(crate) fn new(parts: Parts) -> (Arc<Shared>, Receiver<()>) {
        let searcher = parts.reader.searcher();
        let (doorbell, rings) = crossbeam_channel::bounded(1);
        let shared = Shared {
            engine: parts.engine,
            tantivy: parts.tantivy,
            dir: parts.dir,
            fields: parts.fields,
            options: parts.options,
            read_only: parts.read_only,
            reader: parts.reader,
            state: Mutex::new(State {
                published: Arc::new(Published {
                    searcher,
                    committed: parts.committed,
                    tail: Vec::new(),
                    indexed: parts.committed,
                }),
                deletes: parts.deletes,
                generation_wanted: parts.generation_wanted,
                generation: parts.generation,
                reclaimed: parts.generation,
                reclaim_error: None,
                commit_wanted: 0,
                rebuild_wanted: false,
                stop: false,
                error: None,
                rebuild_failures: 0,
            }),
            published: Condvar::new(),
            doorbell,
            #[cfg(test)]
            panic_at: std::sync::atomic::AtomicU64::new(0),
        };
        (Arc::new(shared), rings)
    }

    pub(crate) fn current(&self) -> Result<Arc<Published>> {
        let st = self.state.lock();
        // While the indexer retries after a failure, the last commit plus the log still answer
        // (up to `max_tail` versions past the commit; then waiting for a commit fails).
        st.check_open()?;
        Ok(Arc::clone(&st.published))
    }

    /// Asks for a commit covering `seq` and waits for it.
    pub(crate) fn wait_committed(&self, seq: u64) -> Result<Arc<Published>> {
        let mut st = self.state.lock();
        if st.published.committed >= seq {
            return Ok(Arc::clone(&st.published));
        }
        if self.read_only {
            // No commit comes from this process: waiting would be for ever.
            return Err(Error::ReadOnlyIndexBehind {
                committed: st.published.committed,
                needed: seq,
            });
        }
        st.commit_wanted = st.commit_wanted.max(seq);
        ring(&self.doorbell);
        loop {
            st.check()?;
            if st.published.committed >= seq {
                return Ok(Arc::clone(&st.published));
            }
            self.published.wait(&mut st);
        }
    }

    /// Replaces what queries read by `f` of it, and wakes every waiter.
    pub(crate) fn publish(&self, f: impl FnOnce(&Published) -> Published) {
        let mut st = self.state.lock();
        st.published = Arc::new(f(&st.published));
        self.published.notify_all();
    }

    /// Every seq up to this one is indexed (see [`Published::indexed`]).
    pub(crate) fn current_indexed(&self) -> u64 {
        self.state.lock().published.indexed()
    }
}
