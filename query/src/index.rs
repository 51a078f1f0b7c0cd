//! The version index: a tantivy index of every version, fed by an indexer thread that follows
//! the log, committed in groups with the last indexed seq as the commit payload.
//!
//! Queries read a [`Published`] state: the searcher of the last commit, the seq it covers, and
//! the versions indexed since (parsed, for the in-memory matcher). A query at snapshot `S` takes
//! versions up to the commit from the index and the rest, up to `S`, from the tail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use storage::Engine;
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentComponent;
use tantivy::Directory;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, Searcher};

use crate::convert::{text_analyzer, TEXT_TOKENIZER};
use crate::error::{Error, Result};
use crate::matcher::Flat;
use crate::schema::{index_document, Fields, VersionInfo};
use crate::search::Interrupt;
use crate::search::{self, QueryOutput};
use crate::spec::QuerySpec;

mod read_only;
mod watched;

#[cfg(any(test, feature = "test-support"))]
pub use watched::fail_index_writes;
use watched::{LastFailure, Watched};

/// Where the index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    /// In this directory (created if missing).
    Dir(PathBuf),
    /// In memory; rebuilt from the log at every open.
    Memory,
}

/// Tuning of the indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexOptions {
    /// Longest time an indexed version waits for a commit. Default 500 ms.
    pub commit_interval: Duration,
    /// Most versions indexed between two commits. Default 50 000.
    pub commit_versions: u64,
    /// Writers wait while the log is more than this many versions ahead of the last index
    /// commit. Default 100 000.
    pub max_lag: u64,
    /// A query whose snapshot is more than this many versions past the last commit waits for a
    /// commit instead of matching the tail in memory. Default 10 000.
    pub max_tail: u64,
    /// Indexing memory budget of tantivy's writer, in bytes. Default 128 MiB.
    pub writer_memory: usize,
    /// Indexing threads (0: half the cores, 1 to 4; the indexer thread and writers need the
    /// rest). Default 0.
    pub writer_threads: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            commit_interval: Duration::from_millis(500),
            commit_versions: 50_000,
            max_lag: 100_000,
            max_tail: 10_000,
            writer_memory: 128 << 20,
            writer_threads: 0,
        }
    }
}

impl IndexOptions {
    /// Sets the longest wait of an indexed version for its commit.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Sets the most versions between two commits.
    pub fn with_commit_versions(mut self, versions: u64) -> Self {
        self.commit_versions = versions;
        self
    }

    /// Sets how far the log may run ahead of the last commit before writers wait.
    pub fn with_max_lag(mut self, versions: u64) -> Self {
        self.max_lag = versions;
        self
    }

    /// Sets the largest tail a query matches in memory before it waits for a commit.
    pub fn with_max_tail(mut self, versions: u64) -> Self {
        self.max_tail = versions;
        self
    }

    /// Sets tantivy's indexing memory budget.
    pub fn with_writer_memory(mut self, bytes: usize) -> Self {
        self.writer_memory = bytes;
        self
    }

    /// Sets the number of indexing threads (0: automatic).
    pub fn with_writer_threads(mut self, threads: usize) -> Self {
        self.writer_threads = threads;
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidSpec {
                reason: format!("index options: {reason}"),
            })
        };
        if self.commit_versions == 0 || self.max_lag == 0 {
            return bad("commit_versions and max_lag must be positive");
        }
        if self.max_lag < self.commit_versions {
            return bad("max_lag must be at least commit_versions");
        }
        if self.writer_memory < (16 << 20) {
            return bad("writer_memory must be at least 16 MiB");
        }
        if self.writer_threads > 64 {
            return bad("writer_threads is at most 64");
        }
        Ok(())
    }
}

/// What opening the index found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexOpenReport {
    /// The seq the index had committed (0 for a new index).
    pub committed_seq: u64,
    /// Why the index was discarded and is being rebuilt from the log, if it was.
    pub rebuilt: Option<String>,
    /// The log's compaction generation whose dropped versions the index had removed.
    pub compaction_generation: u64,
    /// On a read-only open, why the index on disk is not used, if it is not (queries then read
    /// every version from the log, which is exact but slower).
    pub unused: Option<String>,
}

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

struct State {
    published: Arc<Published>,
    /// Seqs to remove from the index (compaction dropped them), and the generation that
    /// removing them reaches.
    deletes: Vec<u64>,
    generation_wanted: u64,
    /// The generation the last commit reached.
    generation: u64,
    /// The generation whose removal's disk space was last reclaimed (or tried:
    /// `reclaim_error` then says why it failed); [`Index::remove_dropped`] waits for it.
    reclaimed: u64,
    reclaim_error: Option<String>,
    /// Queries and `rebuild` want a commit covering this seq.
    commit_wanted: u64,
    rebuild_wanted: bool,
    stop: bool,
    /// Why the indexer's last attempt failed; cleared by its next successful commit. While it
    /// is set the indexer retries (with backoff, at once for a rebuild), queries that can be
    /// answered from the last commit plus the log still are, and waiting for a commit fails.
    error: Option<String>,
    /// Rebuilds that failed so far, so that a rebuild can tell that the one it asked for did.
    rebuild_failures: u64,
}

pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    /// The tantivy index, and its directory when it lives on disk.
    tantivy: tantivy::Index,
    dir: Option<PathBuf>,
    pub fields: Fields,
    pub options: IndexOptions,
    /// Opened with [`Index::open_read_only`]: no indexer, no writer; the index's last commit
    /// on disk and the log serve queries.
    pub read_only: bool,
    reader: IndexReader,
    state: Mutex<State>,
    /// Signalled on every publish and on errors.
    published: Condvar,
    doorbell: Sender<()>,
    /// The last failed write of the index directory: the cause an indexer error names.
    failure: LastFailure,
    /// Unit tests make the indexer panic when it reaches this seq.
    #[cfg(test)]
    panic_at: std::sync::atomic::AtomicU64,
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
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

const PAYLOAD_FORMAT: u64 = 1;

/// The file naming an index's committed segments (tantivy's).
pub const META_FILE: &str = "meta.json";

/// The files of an index's last commit ([`Index::committed_files`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommittedFiles {
    /// The index directory.
    pub dir: PathBuf,
    /// The bytes of [`META_FILE`] naming the commit.
    pub meta: Vec<u8>,
    /// The segment files of the commit, relative to `dir`.
    pub files: Vec<String>,
    /// The seq the commit covers.
    pub seq: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    strata_index: u64,
    seq: u64,
    /// The log's compaction generation whose dropped versions the index has removed.
    #[serde(default)]
    generation: u64,
}

/// The seq the last commit of the index in `dir` covers, read from its `meta.json` without
/// opening the index (which would discard an index ahead of the log); `None` without a commit
/// that reads.
pub fn committed_seq_on_disk(dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join(META_FILE)).ok()?;
    let meta: Value = serde_json::from_slice(&bytes).ok()?;
    let payload = meta.get("payload")?.as_str()?;
    serde_json::from_str::<Payload>(payload).ok().map(|p| p.seq)
}

fn open_tantivy(
    location: &IndexLocation,
    schema: &tantivy::schema::Schema,
    log_seq: u64,
) -> Result<(tantivy::Index, IndexOpenReport)> {
    let dir = match location {
        IndexLocation::Memory => {
            return Ok((
                tantivy::Index::create_in_ram(schema.clone()),
                IndexOpenReport::default(),
            ))
        }
        IndexLocation::Dir(dir) => dir,
    };
    let rebuild = |reason: String| -> Result<(tantivy::Index, IndexOpenReport)> {
        let index = recreate(dir, schema, &reason)?;
        Ok((
            index,
            IndexOpenReport {
                committed_seq: 0,
                rebuilt: Some(reason),
                compaction_generation: 0,
                unused: None,
            },
        ))
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return rebuild(format!("its directory cannot be read: {e}")),
        Ok(m) if !m.is_dir() && !m.file_type().is_symlink() => {
            return Err(Error::IndexRebuildFailed {
                dir: dir.clone(),
                reason: "its path is not a directory (remove or move what is there, then open \
                         again: the index is rebuilt from the log)"
                    .to_owned(),
            })
        }
        Ok(_) => {}
    }
    let leftovers = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter(|e| e.as_ref().map_or(true, |e| is_index_file(&e.file_name())))
            .count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return rebuild(format!("its directory cannot be read: {e}")),
    };
    if dir.join(META_FILE).exists() {
        return match open_existing(dir, schema, log_seq) {
            Ok((index, seq, generation)) => Ok((
                index,
                IndexOpenReport {
                    committed_seq: seq,
                    rebuilt: None,
                    compaction_generation: generation,
                    unused: None,
                },
            )),
            Err(reason) => rebuild(reason),
        };
    }
    // No commit: whatever the directory holds (tantivy writes meta.json as it creates an
    // index) is the rest of an index whose meta.json was lost, and a damaged `.managed.json`
    // among it would make tantivy refuse to create a new one.
    if leftovers > 0 {
        return rebuild(format!(
            "it has no {META_FILE} ({leftovers} files without a commit)"
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Index {
        message: format!("{}: {e}", dir.display()),
    })?;
    match create(dir, schema) {
        Ok(index) => Ok((index, IndexOpenReport::default())),
        Err(e) => rebuild(format!("it cannot be created: {e}")),
    }
}

/// Whether `name` is a file tantivy writes in an index directory: its metadata, lock and
/// temporary files, and segment files (`<32 hex digits of a segment id>.<component>`).
fn is_index_file(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let segment_file = name.len() > 33
        && name.as_bytes()[32] == b'.'
        && name.as_bytes()[..32].iter().all(u8::is_ascii_hexdigit);
    segment_file
        || matches!(
            name,
            META_FILE | ".managed.json" | ".tantivy-meta.lock" | ".tantivy-writer.lock"
        )
        || name.starts_with(".tmp")
}

/// Removes the index's own files from the index directory `dir` (see [`is_index_file`]) and
/// creates a new index in it, for a rebuild from the log. Nothing else is removed: entries are
/// unlinked, never followed (a link goes, not its target), and files or directories that are
/// not the index's stay where they are.
fn recreate(dir: &Path, schema: &tantivy::schema::Schema, reason: &str) -> Result<tantivy::Index> {
    let failed = |what: String| Error::IndexRebuildFailed {
        dir: dir.to_path_buf(),
        reason: format!("{reason}; then {what}"),
    };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| failed(format!("listing it failed: {e}")))?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir || !is_index_file(&entry.file_name()) {
                    continue;
                }
                let path = entry.path();
                std::fs::remove_file(&path)
                    .map_err(|e| failed(format!("removing {} failed: {e}", path.display())))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(format!("listing it failed: {e}"))),
    }
    std::fs::create_dir_all(dir).map_err(|e| failed(format!("creating it failed: {e}")))?;
    create(dir, schema).map_err(|e| failed(format!("creating a new index failed: {e}")))
}

fn create(dir: &Path, schema: &tantivy::schema::Schema) -> Result<tantivy::Index> {
    let directory = MmapDirectory::open(dir).map_err(|e| Error::Index {
        message: e.to_string(),
    })?;
    Ok(tantivy::Index::create(
        directory,
        schema.clone(),
        tantivy::IndexSettings::default(),
    )?)
}

/// Opens an index that must match the schema and not be ahead of the log.
fn open_existing(
    dir: &Path,
    schema: &tantivy::schema::Schema,
    log_seq: u64,
) -> std::result::Result<(tantivy::Index, u64, u64), String> {
    let index = tantivy::Index::open_in_dir(dir).map_err(|e| format!("it does not open: {e}"))?;
    let same = serde_json::to_string(&index.schema()).ok() == serde_json::to_string(schema).ok();
    if !same {
        return Err("its schema is not this version's".to_owned());
    }
    let metas = index
        .load_metas()
        .map_err(|e| format!("its metadata does not load: {e}"))?;
    // tantivy opens a segment without its positions file (taking it for empty) and fails only
    // when a query reads them: check that every file of every committed segment is there and
    // ends in a valid footer (cheap: a map and a few bytes each), so that such an index is
    // rebuilt now rather than failing queries later.
    for segment in &metas.segments {
        let mut components = vec![
            SegmentComponent::Postings,
            SegmentComponent::Positions,
            SegmentComponent::FastFields,
            SegmentComponent::FieldNorms,
            SegmentComponent::Terms,
            SegmentComponent::Store,
        ];
        if segment.has_deletes() {
            components.push(SegmentComponent::Delete);
        }
        for component in components {
            let path = segment.relative_path(component);
            if let Err(e) = index.directory().open_read(&path) {
                return Err(format!("its file {} does not open: {e}", path.display()));
            }
        }
    }
    let (seq, generation) = match metas.payload.as_deref() {
        None => (0, 0),
        Some(p) => match serde_json::from_str::<Payload>(p) {
            Ok(p) if p.strata_index == PAYLOAD_FORMAT => (p.seq, p.generation),
            _ => return Err(format!("its commit payload {p:?} is not understood")),
        },
    };
    if seq > log_seq {
        return Err(format!(
            "it covers seq {seq} but the log ends at {log_seq} (unsynced writes were lost)"
        ));
    }
    Ok((index, seq, generation))
}

/// `index` again, on a [`Watched`] directory, so that a failed write names its file (and fault
/// tests can fail them). An index in memory is new and empty, so it is made again.
fn watch(
    index: tantivy::Index,
    location: &IndexLocation,
    failure: &LastFailure,
) -> Result<tantivy::Index> {
    match location {
        IndexLocation::Memory => {
            let directory = Watched::new(
                Box::new(tantivy::directory::RamDirectory::create()),
                None,
                failure.clone(),
            );
            Ok(tantivy::Index::create(
                directory,
                index.schema(),
                index.settings().clone(),
            )?)
        }
        IndexLocation::Dir(dir) => {
            drop(index);
            let mmap = MmapDirectory::open(dir).map_err(|e| Error::Index {
                message: e.to_string(),
            })?;
            let directory = Watched::new(Box::new(mmap), Some(dir.clone()), failure.clone());
            Ok(tantivy::Index::open(directory)?)
        }
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
        let threads = match options.writer_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
            n => n,
        };
        let memory = options.writer_memory.max(threads * (16 << 20));
        let failure = LastFailure::default();
        let start = |index: tantivy::Index| -> Result<(tantivy::Index, IndexWriter, IndexReader)> {
            let index = watch(index, &location, &failure)?;
            index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
            let writer: IndexWriter = index.writer_with_num_threads(threads, memory)?;
            // Files of merges another process cut short by exiting, and of segments it
            // merged away without collecting them, are named in tantivy's list of the files
            // it wrote: delete them now rather than at the next commit (which a process that
            // only reads may never make). A failure leaves them for the next collection.
            let _ = writer.garbage_collect_files().wait();
            let reader: IndexReader = index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()?;
            Ok((index, writer, reader))
        };
        let (index, mut report) = open_tantivy(&location, &schema, engine.last_seq())?;
        let (tantivy_index, writer, reader) = match (start(index), &location) {
            (Ok(parts), _) => parts,
            // Segment files that do not open (meta.json was fine), or a writer that cannot
            // start in the directory: rebuild from the log, once.
            (Err(e), IndexLocation::Dir(dir)) => {
                let reason = match report.rebuilt.take() {
                    Some(first) => format!("{first}; then the new index did not start: {e}"),
                    None => format!("its segment files do not open: {e}"),
                };
                let index = recreate(dir, &schema, &reason)?;
                report = IndexOpenReport {
                    committed_seq: 0,
                    rebuilt: Some(reason.clone()),
                    compaction_generation: 0,
                    unused: None,
                };
                start(index).map_err(|e| Error::IndexRebuildFailed {
                    dir: dir.clone(),
                    reason: format!("{reason}; then the new index did not start: {e}"),
                })?
            }
            (Err(e), IndexLocation::Memory) => return Err(e),
        };
        let searcher = reader.searcher();
        let (doorbell, rings) = crossbeam_channel::bounded(1);
        // Versions compaction dropped since the index last committed (a crash came between
        // the compaction and the removal) are removed before anything else.
        let log_generation = engine.compaction_generation();
        let (deletes, generation_wanted) = if report.compaction_generation < log_generation {
            (engine.dropped_seqs(report.committed_seq), log_generation)
        } else {
            (Vec::new(), report.compaction_generation)
        };
        let shared = Arc::new(Shared {
            tantivy: tantivy_index,
            dir: match &location {
                IndexLocation::Dir(dir) => Some(dir.clone()),
                IndexLocation::Memory => None,
            },
            engine,
            fields,
            options,
            read_only: false,
            reader,
            state: Mutex::new(State {
                published: Arc::new(Published {
                    searcher,
                    committed: report.committed_seq,
                    tail: Vec::new(),
                    indexed: report.committed_seq,
                }),
                deletes,
                generation_wanted,
                generation: report.compaction_generation,
                reclaimed: report.compaction_generation,
                reclaim_error: None,
                commit_wanted: 0,
                rebuild_wanted: false,
                stop: false,
                error: None,
                rebuild_failures: 0,
            }),
            published: Condvar::new(),
            doorbell,
            failure,
            #[cfg(test)]
            panic_at: std::sync::atomic::AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let report_generation = report.compaction_generation;
        let thread = std::thread::Builder::new()
            .name("strata-indexer".to_owned())
            .spawn(move || {
                let mut indexer = Indexer {
                    shared: worker,
                    writer: Some(writer),
                    rings,
                    uncommitted: 0,
                    first_uncommitted: None,
                    generation: report_generation,
                    threads,
                    memory,
                    rebuilding: false,
                };
                indexer.serve();
            })
            .map_err(|e| Error::Index {
                message: format!("cannot start the indexer thread: {e}"),
            })?;
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
        let mut report = IndexOpenReport::default();
        let opened = match read_only::open(&dir, &schema) {
            Ok(opened) => {
                // The log batches the commit covers were written before it: read them if
                // the engine was opened before they were.
                if opened.seq > engine.last_seq() {
                    engine.refresh()?;
                }
                if opened.seq > engine.last_seq() {
                    report.unused = Some(format!(
                        "it covers seq {} but the log ends at {}",
                        opened.seq,
                        engine.last_seq()
                    ));
                    None
                } else {
                    Some(opened)
                }
            }
            Err(reason) => {
                report.unused = Some(reason);
                None
            }
        };
        let (tantivy_index, reader, dir) = match opened {
            Some(opened) => {
                report.committed_seq = opened.seq;
                report.compaction_generation = opened.generation;
                (opened.index, opened.reader, Some(dir))
            }
            None => {
                let index = tantivy::Index::create_in_ram(schema);
                index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
                let reader: IndexReader = index
                    .reader_builder()
                    .reload_policy(ReloadPolicy::Manual)
                    .try_into()?;
                (index, reader, None)
            }
        };
        let searcher = reader.searcher();
        let (doorbell, _) = crossbeam_channel::bounded(1);
        let shared = Arc::new(Shared {
            tantivy: tantivy_index,
            dir,
            engine,
            fields,
            options,
            read_only: true,
            reader,
            state: Mutex::new(State {
                published: Arc::new(Published {
                    searcher,
                    committed: report.committed_seq,
                    tail: Vec::new(),
                    indexed: report.committed_seq,
                }),
                deletes: Vec::new(),
                generation_wanted: report.compaction_generation,
                generation: report.compaction_generation,
                reclaimed: report.compaction_generation,
                reclaim_error: None,
                commit_wanted: 0,
                rebuild_wanted: false,
                stop: false,
                error: None,
                rebuild_failures: 0,
            }),
            published: Condvar::new(),
            doorbell,
            failure: LastFailure::default(),
            #[cfg(test)]
            panic_at: std::sync::atomic::AtomicU64::new(0),
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
        let Some(dir) = &self.shared.dir else {
            return Ok(None);
        };
        let io = |e: std::io::Error| Error::Index {
            message: format!("{}: {e}", dir.display()),
        };
        let meta = std::fs::read(dir.join(META_FILE)).map_err(io)?;
        let metas = self.shared.tantivy.load_metas()?;
        let seq = match metas.payload.as_deref() {
            None => 0,
            Some(p) => serde_json::from_str::<Payload>(p).map_or(0, |p| p.seq),
        };
        // Every file of a committed segment is named after its id.
        let ids: Vec<String> = metas
            .segments
            .iter()
            .map(|segment| segment.id().uuid_string())
            .collect();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            if let Some(name) = name.to_str() {
                if ids.iter().any(|id| name.starts_with(id.as_str())) {
                    files.push(name.to_owned());
                }
            }
        }
        files.sort();
        Ok(Some(CommittedFiles {
            dir: dir.clone(),
            meta,
            files,
            seq,
        }))
    }

    /// Whether the index's last commit is still the one `files` describes.
    pub fn commit_unchanged(&self, files: &CommittedFiles) -> bool {
        std::fs::read(files.dir.join(META_FILE)).is_ok_and(|now| now == files.meta)
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

fn ring(doorbell: &Sender<()>) {
    match doorbell.try_send(()) {
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

impl State {
    fn check(&self) -> Result<()> {
        match &self.error {
            Some(message) => Err(Error::IndexerStopped {
                message: message.clone(),
            }),
            None => self.check_open(),
        }
    }

    /// [`State::check`] without the indexer's failure: for reads the last commit and the log
    /// can answer, and for a rebuild, which retries.
    fn check_open(&self) -> Result<()> {
        if self.stop {
            return Err(Error::IndexerStopped {
                message: "the store is closing".to_owned(),
            });
        }
        Ok(())
    }
}

impl Shared {
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

    fn publish(&self, f: impl FnOnce(&Published) -> Published) {
        let mut st = self.state.lock();
        st.published = Arc::new(f(&st.published));
        self.published.notify_all();
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
}

/// The first wait before the indexer retries after a failure, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

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
            let failure = self.shared.failure.take();
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
            .and_then(|p| serde_json::from_str::<Payload>(&p).ok())
            .map(|p| p.seq);
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

impl Shared {
    fn current_indexed(&self) -> u64 {
        self.state.lock().published.indexed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A failure to rebuild an unusable index was tantivy's or the OS's bare text: it is a typed
    // error naming the index directory (here one whose parent is a file, which even root cannot
    // turn into a directory).
    #[test]
    fn an_index_that_cannot_be_rebuilt_is_a_typed_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"not a directory").unwrap();
        let dir = file.join("index");
        let (schema, _) = Fields::schema();
        match open_tantivy(&IndexLocation::Dir(dir.clone()), &schema, 0) {
            Err(e @ Error::IndexRebuildFailed { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&dir.display().to_string())
                        && message.contains("cannot be rebuilt from the log"),
                    "{message}"
                );
            }
            Err(e) => panic!("not IndexRebuildFailed: {e:?}"),
            Ok(_) => panic!("an index opened under a file"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    }

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
