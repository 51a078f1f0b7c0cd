//! How is the index directory opened, created or repaired? The writer's open: the last commit
//! if it is whole, matches this build's schema and is not ahead of the log, otherwise the
//! index's own files removed and a new index created for a rebuild from the log; then the
//! directory wrapped in [`Watched`] and a writer and a reader started on it.

use std::path::Path;

use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentComponent;
use tantivy::Directory;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy};

use super::files::{is_index_file, Payload, META_FILE};
use super::watched::{LastFailure, Watched};
use crate::convert::{text_analyzer, TEXT_TOKENIZER};
use crate::error::{Error, Result};
use crate::options::{IndexLocation, IndexOptions};

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

/// The index opened for writing: tantivy's index, its writer and reader, and what opening
/// found.
pub(crate) struct Writable {
    pub index: tantivy::Index,
    pub writer: IndexWriter,
    pub reader: IndexReader,
    pub report: IndexOpenReport,
}

/// Indexing threads and memory budget of tantivy's writer for `options`.
pub(crate) fn writer_budget(options: &IndexOptions) -> (usize, usize) {
    let threads = match options.writer_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
        n => n,
    };
    (threads, options.writer_memory.max(threads * (16 << 20)))
}

/// Opens (or creates) the index at `location` for a log ending at `log_seq` and starts a
/// writer and a reader on it; an index whose segment files do not open, or in which a writer
/// cannot start, is rebuilt once. Failed writes are recorded in `failure`.
pub(crate) fn open_writable(
    location: &IndexLocation,
    schema: &tantivy::schema::Schema,
    log_seq: u64,
    (threads, memory): (usize, usize),
    failure: &LastFailure,
) -> Result<Writable> {
    let start = |index: tantivy::Index| -> Result<(tantivy::Index, IndexWriter, IndexReader)> {
        let index = watch(index, location, failure)?;
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
    let (index, mut report) = open_tantivy(location, schema, log_seq)?;
    let (index, writer, reader) = match (start(index), location) {
        (Ok(parts), _) => parts,
        // Segment files that do not open (meta.json was fine), or a writer that cannot
        // start in the directory: rebuild from the log, once.
        (Err(e), IndexLocation::Dir(dir)) => {
            let reason = match report.rebuilt.take() {
                Some(first) => format!("{first}; then the new index did not start: {e}"),
                None => format!("its segment files do not open: {e}"),
            };
            let index = recreate(dir, schema, &reason)?;
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
    Ok(Writable {
        index,
        writer,
        reader,
        report,
    })
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
        Some(p) => match Payload::parse(p) {
            Some(found) => found,
            None => return Err(format!("its commit payload {p:?} is not understood")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Fields;

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
}
