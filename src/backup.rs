//! Online backups and restores, also to a point in time (docs/DESIGN.md §7).
//!
//! A backup directory holds `log/` (the log's segment files, the active one cut at the last
//! batch the backup covers), `index/` (the files of the index's last commit, so a restored
//! store opens without re-indexing) and `BACKUP.json`, the manifest: every file with its
//! length and CRC-32, and a CRC-32 of its own. The manifest is written last, atomically; while
//! a backup is being written the directory holds `BACKUP.partial` instead, so an unfinished
//! backup is recognisable (and is taken up again by the next one). Only an empty directory, a
//! backup or an unfinished backup is written to. A later backup into the same directory copies
//! only what changed: index files whose name and length match (they are immutable under their
//! unique names) and sealed log segments whose CRC-32 matches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use storage::backend::{Backend, OsBackend};
use storage::{LogSnapshot, HORIZON_FILE, INDEX_DIR, LOCK_FILE, LOG_DIR};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::util::now_micros;

/// The manifest of a backup directory.
pub const BACKUP_MANIFEST: &str = "BACKUP.json";
const MANIFEST_TMP: &str = "BACKUP.json.tmp";
/// Marks a backup directory whose backup has not finished (so it may be taken up again).
const PARTIAL_MARKER: &str = "BACKUP.partial";
const MANIFEST_FORMAT: u32 = 1;
/// Bytes copied per read.
const CHUNK: usize = 1 << 20;
/// Times the index's files are copied again when a commit replaced them meanwhile.
const INDEX_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    strata_backup: u32,
    created_micros: u64,
    /// The newest seq the backup holds, and its time.
    last_seq: u64,
    last_time_micros: u64,
    /// The seq the backed-up index covers (`None`: no index; a restore rebuilds it).
    index_seq: Option<u64>,
    files: Vec<FileEntry>,
    /// CRC-32 of the manifest's JSON with this field 0: a damaged manifest is refused too.
    crc32: u32,
}

impl Manifest {
    fn checksum(&self) -> u32 {
        let mut zeroed = self.clone();
        zeroed.crc32 = 0;
        crc32fast::hash(&serde_json::to_vec(&zeroed).unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    /// Relative to the backup directory, with `/`.
    path: String,
    len: u64,
    crc32: u32,
}

/// What [`Store::backup`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// The newest seq the backup holds.
    pub last_seq: u64,
    /// The update time of that seq: restoring gives the store as it was then.
    pub last_time_micros: u64,
    /// Whether the index is in the backup (if not, a restored store rebuilds it on open).
    pub index_included: bool,
    /// Files in the backup.
    pub files: u64,
    /// Files copied by this run (the others were already there, unchanged).
    pub files_copied: u64,
    /// Bytes in the backup.
    pub bytes: u64,
    /// Bytes copied by this run.
    pub bytes_copied: u64,
    /// Wall time, microseconds.
    pub micros: u64,
}

/// Options of [`Store::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Restore the store as it was at this time (microseconds since the epoch): every version
    /// written after it is left out. `None`: everything the backup holds.
    pub at: Option<u64>,
}

impl RestoreOptions {
    /// Restores the store as it was at `time` (microseconds since the epoch, a
    /// [`std::time::SystemTime`] or a [`crate::Timestamp`]).
    pub fn at(mut self, time: impl Into<crate::Timestamp>) -> Self {
        self.at = Some(time.into().as_micros());
        self
    }
}

/// What [`Store::restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The newest seq of the restored store.
    pub last_seq: u64,
    /// Whether the backup's index was kept (if not, the store rebuilds it when it opens: the
    /// backup had none, or a point in time cut versions it had indexed).
    pub index_kept: bool,
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Wall time, microseconds.
    pub micros: u64,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn damaged(path: &Path, reason: impl Into<String>) -> Error {
    Error::BackupDamaged {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn sync_dir(backend: &dyn Backend, dir: &Path) -> Result<()> {
    backend.sync_dir(dir).map_err(io("sync directory", dir))
}

/// Writes what `read` gives (`len` bytes, in chunks, each at its offset) to the file `dest` of
/// `backend` from the start (replacing what it held), and syncs it; returns its CRC-32.
fn write_file(
    backend: &dyn Backend,
    dest: &Path,
    len: u64,
    mut read: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    progress: &mut dyn FnMut(u64),
) -> Result<u32> {
    let out = backend.open(dest, true).map_err(io("create", dest))?;
    out.set_len(0).map_err(io("truncate", dest))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut offset = 0u64;
    while offset < len {
        let n = usize::try_from((len - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        let chunk = &mut buf[..n];
        read(offset, chunk).map_err(io("read", dest))?;
        hasher.update(chunk);
        out.write_all_at(chunk, offset).map_err(io("write", dest))?;
        offset += n as u64;
        progress(n as u64);
    }
    out.sync().map_err(io("sync", dest))?;
    Ok(hasher.finalize())
}

/// Writes `bytes` to the file `dest` of `backend`, synced; returns their CRC-32.
fn write_bytes(backend: &dyn Backend, dest: &Path, bytes: &[u8]) -> Result<u32> {
    write_file(
        backend,
        dest,
        bytes.len() as u64,
        |offset, buf| {
            let start = offset as usize;
            buf.copy_from_slice(&bytes[start..start + buf.len()]);
            Ok(())
        },
        &mut |_| {},
    )
}

/// The CRC-32 of `len` bytes that `read` gives, in chunks.
fn file_crc(
    len: u64,
    mut read: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut offset = 0u64;
    while offset < len {
        let n = usize::try_from((len - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        read(offset, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hasher.finalize())
}

/// Copies the file `src` whole to `dest`, both on `backend`; returns its length and CRC-32.
fn copy_file(
    backend: &dyn Backend,
    src: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, u32)> {
    let input = backend.open_read(src).map_err(io("open", src))?;
    let len = input.len().map_err(io("stat", src))?;
    let crc = write_file(
        backend,
        dest,
        len,
        |offset, buf| input.read_exact_at(buf, offset),
        progress,
    )?;
    Ok((len, crc))
}

/// The length of the file `path` of `backend`.
fn file_len(backend: &dyn Backend, path: &Path) -> std::io::Result<u64> {
    backend.open_read(path)?.len()
}

/// The whole content of the file `path` of `backend`.
fn read_all(backend: &dyn Backend, path: &Path) -> std::io::Result<Vec<u8>> {
    let file = backend.open_read(path)?;
    let len = usize::try_from(file.len()?).map_err(std::io::Error::other)?;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Whether the directory `dir` of `backend` holds an entry `name` (`false` if it cannot be
/// listed).
fn has_entry(backend: &dyn Backend, dir: &Path, name: &str) -> bool {
    backend
        .list_dir(dir)
        .is_ok_and(|names| names.iter().any(|n| n == name))
}

fn read_manifest(backend: &dyn Backend, dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(BACKUP_MANIFEST);
    let bytes = match read_all(backend, &path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| damaged(&path, format!("the manifest does not parse: {e}")))?;
    if manifest.crc32 != manifest.checksum() {
        return Err(damaged(
            &path,
            "the manifest's checksum does not match its content",
        ));
    }
    if manifest.strata_backup != MANIFEST_FORMAT {
        return Err(damaged(
            &path,
            format!(
                "manifest format {} is not {MANIFEST_FORMAT}",
                manifest.strata_backup
            ),
        ));
    }
    Ok(Some(manifest))
}

/// Whether `dir` is missing or empty.
fn is_empty_dir(backend: &dyn Backend, dir: &Path) -> Result<bool> {
    Ok(entries(backend, dir)?.is_none_or(|names| names.is_empty()))
}

impl Store {
    /// Writes a consistent snapshot of the store into `dest` while reads and writes go on: the
    /// log up to the last acknowledged batch, and the index's last commit, so that a restore
    /// opens without re-indexing. If `dest` holds an earlier backup of this store, only what
    /// changed is copied. Compaction waits while the log is copied.
    ///
    /// ```
    /// use serde_json::json;
    /// use strata::{RestoreOptions, Store};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = Store::open(dir.path().join("db"), Default::default())?;
    /// store.put("/a", "doc", json!({"n": 1}))?;
    /// let report = store.backup(dir.path().join("backup"))?;
    /// assert_eq!(report.last_seq, 1);
    /// store.put("/a", "doc", json!({"n": 2}))?;
    /// drop(store);
    /// Store::restore(dir.path().join("backup"), dir.path().join("restored"), RestoreOptions::default())?;
    /// let restored = Store::open(dir.path().join("restored"), Default::default())?;
    /// assert_eq!(restored.get("/a")?.expect("there").body["n"], 1);
    /// # Ok::<_, strata::Error>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        self.backup_with_progress(dest, &mut |_, _| {})
    }

    /// [`Store::backup`], calling `progress(bytes done, bytes in all)` as it copies.
    pub fn backup_with_progress(
        &self,
        dest: impl AsRef<Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BackupReport> {
        let started = Instant::now();
        let dest = dest.as_ref();
        if !self.inner.on_disk {
            return Err(Error::Unsupported {
                what: "backing up a store in memory: only a store opened with Store::open (on disk) can be backed up".into(),
            });
        }
        if self.path().is_some_and(|p| dest.starts_with(p)) {
            return Err(Error::InvalidOption(format!(
                "the backup directory {} is inside the store's",
                dest.display()
            )));
        }
        // A store on disk is on the real file system, and its backup is written there too.
        let backend: &dyn Backend = &OsBackend;
        let old = prepare_destination(backend, dest)?;
        let mut run = BackupRun {
            backend,
            dest,
            known: old
                .into_iter()
                .flat_map(|m| m.files)
                .map(|f| (f.path.clone(), f))
                .collect(),
            files: Vec::new(),
            report: BackupReport::default(),
        };
        // The index first: what it covers must not pass the log copied after it.
        let mut index_seq = run.copy_index(&self.inner.index)?;

        // Then the log, with compaction paused. A read-only open first reads the batches the
        // writer completed meanwhile: the index commit just copied covers no more than them.
        if self.is_read_only() {
            self.inner.engine.refresh()?;
        }
        let snapshot = self.inner.engine.snapshot()?;
        if index_seq.is_some_and(|seq| seq > snapshot.last_seq) {
            // Only if the log could not be read up to the commit: leave the index out, and a
            // restore rebuilds it from the log.
            run.files
                .retain(|f| !f.path.starts_with(&format!("{INDEX_DIR}/")));
            index_seq = None;
        }
        run.copy_log(&snapshot, progress)?;
        let (last_seq, last_time) = (snapshot.last_seq, snapshot.last_time);
        drop(snapshot);

        run.remove_stale()?;
        let mut report = run.finish(last_seq, last_time, index_seq)?;
        report.micros = started.elapsed().as_micros() as u64;
        Ok(report)
    }

    /// Restores the backup in `src` into `dest` (missing or empty), checking every file
    /// against the backup's manifest first: a damaged or unfinished backup is
    /// [`Error::BackupDamaged`], never a store that silently differs. With
    /// [`RestoreOptions::at`], the store is restored as it was at that time: the versions after
    /// it are left out, and [`Error::HistoryTrimmed`] is the answer for a time before what
    /// retention kept. Open the restored store with [`Store::open`].
    ///
    /// A restore is all or nothing: until it has written and synced everything, `dest` holds
    /// [`RESTORE_MARKER`], and opening it (or verifying it) is [`Error::RestoreUnfinished`].
    /// If the restore fails it removes what it wrote; if it is killed, run it again into the
    /// same directory: a directory holding an unfinished restore is started over (any other
    /// non-empty one is [`Error::DestinationNotEmpty`]). The restore holds the lock an open
    /// store holds on `dest` throughout: a store open there, or another restore into it, is
    /// [`Error::Locked`] (and nothing is removed), and no store opens there meanwhile.
    pub fn restore(
        src: impl AsRef<Path>,
        dest: impl AsRef<Path>,
        options: RestoreOptions,
    ) -> Result<RestoreReport> {
        Self::restore_with_progress(src, dest, options, &mut |_, _| {})
    }

    /// [`Store::restore`], calling `progress(bytes done, bytes in all)` as it copies.
    pub fn restore_with_progress(
        src: impl AsRef<Path>,
        dest: impl AsRef<Path>,
        options: RestoreOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RestoreReport> {
        restore_on(&OsBackend, src.as_ref(), dest.as_ref(), options, progress)
    }

    /// [`Store::restore`] of a backup on the real file system into `dest` on any
    /// [`storage::backend::Backend`], e.g. the simulated one of crash tests (open the result
    /// with [`Store::open_with_backend`]).
    pub fn restore_with_backend(
        backend: &dyn Backend,
        src: &Path,
        dest: &Path,
        options: RestoreOptions,
    ) -> Result<RestoreReport> {
        restore_on(backend, src, dest, options, &mut |_, _| {})
    }
}

/// Makes `dest` an unfinished backup, after checking that it is empty, a backup or an
/// unfinished backup; returns the manifest of the backup it held, if any (removed, so that the
/// directory is recognisably unfinished until the new one is written).
fn prepare_destination(backend: &dyn Backend, dest: &Path) -> Result<Option<Manifest>> {
    let old = read_manifest(backend, dest).ok().flatten();
    let (log_dir, index_dir) = (dest.join(LOG_DIR), dest.join(INDEX_DIR));
    // Only an empty directory, a backup, or an unfinished backup is written to: never a
    // store's directory (which has a lock file) or anything else.
    let is_backup = (old.is_some() || has_entry(backend, dest, PARTIAL_MARKER))
        && !has_entry(backend, &log_dir, LOCK_FILE);
    if !is_backup && !is_empty_dir(backend, dest)? {
        return Err(Error::DestinationNotEmpty {
            op: "back up",
            path: dest.to_path_buf(),
        });
    }
    backend
        .create_dir_all(&log_dir)
        .map_err(io("create directory", &log_dir))?;
    backend
        .create_dir_all(&index_dir)
        .map_err(io("create directory", &index_dir))?;
    // From here until the new manifest is written, the directory is an unfinished backup.
    let partial = dest.join(PARTIAL_MARKER);
    backend
        .open(&partial, true)
        .and_then(|marker| marker.set_len(0))
        .map_err(io("create", &partial))?;
    if old.is_some() {
        let manifest_path = dest.join(BACKUP_MANIFEST);
        backend
            .remove_file(&manifest_path)
            .map_err(io("remove", &manifest_path))?;
    }
    sync_dir(backend, dest)?;
    Ok(old)
}

/// One backup being written into `dest`.
struct BackupRun<'a> {
    backend: &'a dyn Backend,
    dest: &'a Path,
    /// The files of the backup `dest` held before, by path.
    known: HashMap<String, FileEntry>,
    /// The files the backup holds so far.
    files: Vec<FileEntry>,
    report: BackupReport,
}

impl BackupRun<'_> {
    /// What the backup holds already, if its length (and, when given, its CRC-32) match.
    /// Index files are named after a unique segment id and never change; log segments are
    /// compared by content, since another history (a store restored to a point in time and
    /// written again) may have segments of the same name and length.
    fn unchanged(&self, rel: &str, len: u64, crc32: Option<u32>) -> Option<FileEntry> {
        let entry = self
            .known
            .get(rel)
            .filter(|f| f.len == len && crc32.is_none_or(|c| c == f.crc32))?;
        let on_disk = file_len(self.backend, &self.dest.join(rel)).ok()?;
        (on_disk == len).then(|| entry.clone())
    }

    /// Copies the files of the index's last commit, then its `meta.json`; returns the seq the
    /// commit covers (`None`: no index on disk, or its commits changed too often).
    fn copy_index(&mut self, index: &query::Index) -> Result<Option<u64>> {
        for _ in 0..INDEX_ATTEMPTS {
            let Some(committed) = index.committed_files()? else {
                return Ok(None);
            };
            let Some(mut copied) = self.copy_commit(&committed)? else {
                continue;
            };
            if !index.commit_unchanged(&committed) {
                continue;
            }
            let rel = format!("{INDEX_DIR}/{}", query::META_FILE);
            let crc32 = write_bytes(self.backend, &self.dest.join(&rel), &committed.meta)?;
            self.report.files_copied += 1;
            self.report.bytes_copied += committed.meta.len() as u64;
            copied.push(FileEntry {
                path: rel,
                len: committed.meta.len() as u64,
                crc32,
            });
            self.files.extend(copied);
            return Ok(Some(committed.seq));
        }
        Ok(None)
    }

    /// Copies the segment files of `committed` that the backup does not hold yet; `None` if
    /// one vanished (a merge replaced the commit: start again).
    fn copy_commit(&mut self, committed: &query::CommittedFiles) -> Result<Option<Vec<FileEntry>>> {
        let mut copied = Vec::new();
        for name in &committed.files {
            let rel = format!("{INDEX_DIR}/{name}");
            let src = committed.dir.join(name);
            let Ok(len) = file_len(self.backend, &src) else {
                return Ok(None);
            };
            if let Some(entry) = self.unchanged(&rel, len, None) {
                copied.push(entry);
                continue;
            }
            let target = self.dest.join(&rel);
            let bytes_copied = &mut self.report.bytes_copied;
            match copy_file(self.backend, &src, &target, &mut |n| *bytes_copied += n) {
                Ok((len, crc32)) => {
                    self.report.files_copied += 1;
                    copied.push(FileEntry {
                        path: rel,
                        len,
                        crc32,
                    });
                }
                // A merge deleted it: the commit changed, start again.
                Err(_) if file_len(self.backend, &src).is_err() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(copied))
    }

    /// Copies the log's segments as `snapshot` holds them (sealed ones only if their content
    /// changed), and its horizon file.
    fn copy_log(
        &mut self,
        snapshot: &LogSnapshot<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let horizon_len = snapshot.horizon.as_ref().map_or(0, |h| h.len() as u64);
        let total: u64 = snapshot.files.iter().map(|f| f.len).sum::<u64>()
            + self.files.iter().map(|f| f.len).sum::<u64>()
            + horizon_len;
        let mut done: u64 = self.files.iter().map(|f| f.len).sum();
        progress(done, total);
        let last = snapshot.files.len().saturating_sub(1);
        for (i, file) in snapshot.files.iter().enumerate() {
            let rel = format!("{LOG_DIR}/{}", file.name);
            // The active segment grows in place: always copied. A sealed one is read (reading
            // is cheaper than writing) and written only if its content changed.
            if i < last && self.known.contains_key(&rel) {
                let crc32 = file_crc(file.len, |offset, buf| file.read_at(offset, buf))
                    .map_err(io("read", &self.dest.join(&rel)))?;
                if let Some(entry) = self.unchanged(&rel, file.len, Some(crc32)) {
                    done += file.len;
                    progress(done, total);
                    self.files.push(entry);
                    continue;
                }
            }
            let bytes_copied = &mut self.report.bytes_copied;
            let crc32 = write_file(
                self.backend,
                &self.dest.join(&rel),
                file.len,
                |offset, buf| file.read_at(offset, buf),
                &mut |n| {
                    done += n;
                    *bytes_copied += n;
                    progress(done, total);
                },
            )?;
            self.report.files_copied += 1;
            self.files.push(FileEntry {
                path: rel,
                len: file.len,
                crc32,
            });
        }
        if let Some(horizon) = &snapshot.horizon {
            let rel = format!("{LOG_DIR}/{HORIZON_FILE}");
            let crc32 = write_bytes(self.backend, &self.dest.join(&rel), horizon)?;
            self.report.files_copied += 1;
            self.report.bytes_copied += horizon_len;
            done += horizon_len;
            progress(done, total);
            self.files.push(FileEntry {
                path: rel,
                len: horizon.len() as u64,
                crc32,
            });
        }
        Ok(())
    }

    /// Removes the files of earlier backups that this one does not hold.
    fn remove_stale(&self) -> Result<()> {
        for sub in [LOG_DIR, INDEX_DIR] {
            let dir = self.dest.join(sub);
            let names = self
                .backend
                .list_dir(&dir)
                .map_err(io("list directory", &dir))?;
            for name in names {
                let rel = format!("{sub}/{name}");
                if !self.files.iter().any(|f| f.path == rel) {
                    let path = dir.join(name);
                    self.backend
                        .remove_file(&path)
                        .map_err(io("remove", &path))?;
                }
            }
            sync_dir(self.backend, &dir)?;
        }
        Ok(())
    }

    /// Writes the manifest (atomically, by a rename), which makes the directory a finished
    /// backup, and removes the unfinished backup's marker.
    fn finish(self, last_seq: u64, last_time: u64, index_seq: Option<u64>) -> Result<BackupReport> {
        let mut manifest = Manifest {
            strata_backup: MANIFEST_FORMAT,
            created_micros: now_micros(),
            last_seq,
            last_time_micros: last_time,
            index_seq,
            files: self.files,
            crc32: 0,
        };
        manifest.crc32 = manifest.checksum();
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal {
            message: format!("encoding the backup manifest: {e}"),
        })?;
        let tmp = self.dest.join(MANIFEST_TMP);
        write_bytes(self.backend, &tmp, &bytes)?;
        let manifest_path = self.dest.join(BACKUP_MANIFEST);
        self.backend
            .rename(&tmp, &manifest_path)
            .map_err(io("rename", &tmp))?;
        let partial = self.dest.join(PARTIAL_MARKER);
        self.backend
            .remove_file(&partial)
            .map_err(io("remove", &partial))?;
        sync_dir(self.backend, self.dest)?;
        let mut report = self.report;
        report.last_seq = last_seq;
        report.last_time_micros = last_time;
        report.index_included = index_seq.is_some();
        report.files = manifest.files.len() as u64;
        report.bytes = manifest.files.iter().map(|f| f.len).sum();
        Ok(report)
    }
}

/// Marks a directory whose restore has not finished (FORMAT.md §11): nothing opens it as a
/// store, and the next restore into it starts over.
pub const RESTORE_MARKER: &str = "RESTORE.partial";

/// What [`RESTORE_MARKER`] holds: which backup is being restored, for the error message.
#[derive(Debug, Serialize, Deserialize)]
struct RestoreMarker {
    strata_restore: u32,
    backup: String,
    started_micros: u64,
}

/// [`Error::RestoreUnfinished`] if `dir` holds an unfinished restore. Every path that opens a
/// data directory asks this first.
pub(crate) fn refuse_unfinished_restore(backend: &dyn Backend, dir: &Path) -> Result<()> {
    match unfinished_restore(backend, dir)? {
        Some(backup) => Err(Error::RestoreUnfinished {
            path: dir.to_path_buf(),
            backup,
        }),
        None => Ok(()),
    }
}

/// The entries of `dir` (files, and on a real file system directories); `None` if it is missing.
fn entries(backend: &dyn Backend, dir: &Path) -> Result<Option<Vec<String>>> {
    match backend.list_dir(dir) {
        Ok(names) => Ok(Some(names)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("list directory", dir)(e)),
    }
}

/// The backup an unfinished restore in `dir` was restoring, if `dir` holds one.
fn unfinished_restore(backend: &dyn Backend, dir: &Path) -> Result<Option<String>> {
    let found =
        entries(backend, dir)?.is_some_and(|names| names.iter().any(|n| n == RESTORE_MARKER));
    if !found {
        return Ok(None);
    }
    // The marker's name is what counts; its content only makes the message helpful.
    let path = dir.join(RESTORE_MARKER);
    let content = backend.open(&path, false).and_then(|file| {
        let len = usize::try_from(file.len()?)
            .unwrap_or(usize::MAX)
            .min(64 << 10);
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    });
    let backup = content
        .ok()
        .and_then(|bytes| serde_json::from_slice::<RestoreMarker>(&bytes).ok())
        .map_or_else(
            || "(unknown: the marker does not read)".to_owned(),
            |m| m.backup,
        );
    Ok(Some(backup))
}

/// Removes every file of `dest/log` (but its lock file, which the restore holds: unlinked, a
/// second opener would lock a new one) and of `dest/index`, and the index directory (what a
/// restore writes), syncing what it changed.
fn remove_restored_files(backend: &dyn Backend, dest: &Path) -> Result<()> {
    for sub in [LOG_DIR, INDEX_DIR] {
        let dir = dest.join(sub);
        let Some(names) = entries(backend, &dir)? else {
            continue;
        };
        for name in names.into_iter().filter(|n| n != LOCK_FILE) {
            let path = dir.join(name);
            backend.remove_file(&path).map_err(io("remove", &path))?;
        }
        backend.sync_dir(&dir).map_err(io("sync directory", &dir))?;
        if sub == INDEX_DIR {
            backend
                .remove_dir(&dir)
                .map_err(io("remove directory", &dir))?;
        }
    }
    backend.sync_dir(dest).map_err(io("sync directory", dest))
}

/// The directory holding `path` (`.` for a relative name without one).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing ancestors, then syncs the parent of each directory it
/// created, from the first ancestor that existed down: a new directory survives a power loss
/// only once its parent is synced.
fn create_dir_durably(backend: &dyn Backend, dir: &Path) -> Result<()> {
    // The missing directories, deepest first; the root and `.` always exist.
    let mut missing = Vec::new();
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty()
            || ancestor.parent().is_none()
            || entries(backend, ancestor)?.is_some()
        {
            break;
        }
        missing.push(ancestor);
    }
    backend
        .create_dir_all(dir)
        .map_err(io("create directory", dir))?;
    for created in missing.iter().rev() {
        let parent = parent_dir(created);
        backend
            .sync_dir(parent)
            .map_err(io("sync directory", parent))?;
    }
    Ok(())
}

/// Whether a restore may write into `dest`: `Ok(false)` if it is missing or empty, `Ok(true)`
/// if it holds nothing but an unfinished restore (which starts over), otherwise
/// [`Error::DestinationNotEmpty`]. A `log/` holding nothing but its lock file counts as empty.
fn check_destination(backend: &dyn Backend, dest: &Path) -> Result<bool> {
    let mut names = entries(backend, dest)?.unwrap_or_default();
    let log_names = entries(backend, &dest.join(LOG_DIR))?;
    if log_names.is_some_and(|n| n.iter().all(|n| n == LOCK_FILE)) {
        names.retain(|n| n != LOG_DIR);
    }
    // A backend may list files only (the simulated one): a store's subdirectories count too.
    for sub in [LOG_DIR, INDEX_DIR] {
        if entries(backend, &dest.join(sub))?.is_some_and(|n| n.iter().any(|n| n != LOCK_FILE))
            && !names.iter().any(|n| n == sub)
        {
            names.push(sub.to_owned());
        }
    }
    let unfinished = names.iter().any(|n| n == RESTORE_MARKER)
        && names
            .iter()
            .all(|n| [RESTORE_MARKER, LOG_DIR, INDEX_DIR].contains(&n.as_str()));
    if !unfinished && !names.is_empty() {
        return Err(Error::DestinationNotEmpty {
            op: "restore",
            path: dest.to_path_buf(),
        });
    }
    Ok(unfinished)
}

fn restore_on(
    backend: &dyn Backend,
    src: &Path,
    dest: &Path,
    options: RestoreOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport> {
    let started = Instant::now();
    // A backup is read from the real file system, whatever `backend` the store is restored to.
    let source: &dyn Backend = &OsBackend;
    let manifest = read_manifest(source, src)?.ok_or_else(|| {
        damaged(
            src,
            format!("it has no {BACKUP_MANIFEST}: not a backup, or one that did not finish"),
        )
    })?;
    // Only a missing or empty directory, or one holding nothing but an unfinished restore
    // (which starts over), is restored into. The restore holds the lock an open store holds
    // (`log/LOCK`) from before that check until the marker is gone, so that no store opens,
    // and no other restore starts, in the directory meanwhile. A directory that is neither
    // empty nor a store's is refused before anything is created in it.
    let log = dest.join(LOG_DIR);
    let has_lock_file =
        entries(backend, &log)?.is_some_and(|names| names.iter().any(|n| n == LOCK_FILE));
    if !has_lock_file {
        check_destination(backend, dest)?;
    }
    // Every directory created is durable before the marker is (FORMAT.md §11).
    create_dir_durably(backend, &log)?;
    let lock = storage::lock_dir(backend, &log).map_err(|e| match e {
        storage::Error::Locked { holder, .. } => Error::Locked {
            path: dest.to_path_buf(),
            holder,
        },
        e => Error::from(e),
    })?;
    check_destination(backend, dest)?;
    // The marker is durable before any file of the store is written, and removed only once
    // all of them are (FORMAT.md §11). A crash before it is durable leaves an empty directory
    // (but for `log/LOCK`).
    let marker = dest.join(RESTORE_MARKER);
    let content = serde_json::to_vec(&RestoreMarker {
        strata_restore: 1,
        backup: src.display().to_string(),
        started_micros: now_micros(),
    })
    .map_err(|e| Error::Internal {
        message: format!("encoding the restore marker: {e}"),
    })?;
    write_bytes(backend, &marker, &content)?;
    backend.sync_dir(dest).map_err(io("sync directory", dest))?;
    let result = remove_restored_files(backend, dest)
        .and_then(|()| copy_backup(source, backend, src, dest, &manifest, progress))
        .and_then(|mut report| {
            if let Some(at) = options.at {
                let log = dest.join(LOG_DIR);
                report.last_seq = storage::cut_log_after_locked(backend, &log, at, &lock)?;
                if manifest.index_seq.is_some_and(|seq| seq > report.last_seq) {
                    // The index holds versions the cut left out: rebuilt on open.
                    let index = dest.join(INDEX_DIR);
                    for name in entries(backend, &index)?.unwrap_or_default() {
                        let path = index.join(name);
                        backend.remove_file(&path).map_err(io("remove", &path))?;
                    }
                    backend
                        .sync_dir(&index)
                        .map_err(io("sync directory", &index))?;
                    report.index_kept = false;
                }
            }
            Ok(report)
        })
        .and_then(|report| {
            // Everything is durable: only now is the directory a store.
            backend
                .remove_file(&marker)
                .map_err(io("remove", &marker))?;
            backend.sync_dir(dest).map_err(io("sync directory", dest))?;
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                backend
                    .sync_dir(parent)
                    .map_err(io("sync directory", parent))?;
            }
            Ok(report)
        });
    let result = match result {
        Ok(mut report) => {
            report.micros = started.elapsed().as_micros() as u64;
            Ok(report)
        }
        Err(e) => {
            // Leave no half-restored store behind: the files go first, the marker last, so
            // that a failure of the clean-up itself still leaves a directory open refuses.
            if remove_restored_files(backend, dest).is_ok() && backend.remove_file(&marker).is_ok()
            {
                let _ = backend.sync_dir(dest);
            }
            Err(e)
        }
    };
    drop(lock);
    result
}

/// Copies and checks every file of the manifest, from `src` on `source` into `dest` on
/// `backend`, synced.
fn copy_backup(
    source: &dyn Backend,
    backend: &dyn Backend,
    src: &Path,
    dest: &Path,
    manifest: &Manifest,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport> {
    let total: u64 = manifest.files.iter().map(|f| f.len).sum();
    let mut done = 0;
    for sub in [LOG_DIR, INDEX_DIR] {
        let dir = dest.join(sub);
        backend
            .create_dir_all(&dir)
            .map_err(io("create directory", &dir))?;
    }
    for file in &manifest.files {
        let rel = Path::new(&file.path);
        let safe = rel.components().count() == 2
            && (rel.starts_with(LOG_DIR) || rel.starts_with(INDEX_DIR))
            && rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(damaged(
                &src.join(BACKUP_MANIFEST),
                format!("it names a file outside the backup: {:?}", file.path),
            ));
        }
        let from: PathBuf = src.join(rel);
        let input = source
            .open_read(&from)
            .map_err(|e| damaged(&from, format!("the file is missing: {e}")))?;
        let len = input.len().map_err(io("stat", &from))?;
        if len != file.len {
            return Err(damaged(
                &from,
                format!("it has {len} bytes, the manifest says {}", file.len),
            ));
        }
        let crc32 = write_file(
            backend,
            &dest.join(rel),
            len,
            |offset, buf| input.read_exact_at(buf, offset),
            &mut |n| {
                done += n;
                progress(done, total);
            },
        )?;
        if crc32 != file.crc32 {
            return Err(damaged(
                &from,
                format!(
                    "its checksum is {crc32:08x}, the manifest says {:08x}",
                    file.crc32
                ),
            ));
        }
    }
    for sub in [LOG_DIR, INDEX_DIR] {
        let dir = dest.join(sub);
        backend.sync_dir(&dir).map_err(io("sync directory", &dir))?;
    }
    backend.sync_dir(dest).map_err(io("sync directory", dest))?;
    Ok(RestoreReport {
        last_seq: manifest.last_seq,
        index_kept: manifest.index_seq.is_some(),
        files: manifest.files.len() as u64,
        bytes: total,
        micros: 0,
    })
}

#[cfg(test)]
mod tests {
    use storage::backend::MemoryBackend;

    use super::*;

    // The backup's file helpers go through a `Backend`: a rewrite replaces the whole file
    // (a shorter one leaves no old tail), the CRC-32 is that of the bytes written, and
    // lengths, reads and entries come from the backend, not from the real file system.
    #[test]
    fn backup_files_are_written_and_read_through_the_backend() {
        let backend = MemoryBackend::new();
        let dir = Path::new("/backup");
        backend.create_dir_all(dir).unwrap();
        let path = dir.join(BACKUP_MANIFEST);
        let long = vec![7u8; CHUNK + 10];
        assert_eq!(
            write_bytes(&backend, &path, &long).unwrap(),
            crc32fast::hash(&long)
        );
        assert_eq!(file_len(&backend, &path).unwrap(), long.len() as u64);
        let short = b"{}";
        assert_eq!(
            write_bytes(&backend, &path, short).unwrap(),
            crc32fast::hash(short)
        );
        assert_eq!(read_all(&backend, &path).unwrap(), short);
        assert!(has_entry(&backend, dir, BACKUP_MANIFEST));
        assert!(!has_entry(&backend, dir, PARTIAL_MARKER));
        assert!(!is_empty_dir(&backend, dir).unwrap());
        assert!(is_empty_dir(&backend, &dir.join(LOG_DIR)).unwrap());
        let copy = dir.join(MANIFEST_TMP);
        let mut copied = 0;
        let (len, crc32) = copy_file(&backend, &path, &copy, &mut |n| copied += n).unwrap();
        assert_eq!((len, crc32, copied), (2, crc32fast::hash(short), 2));
        // A manifest that does not parse is a damaged backup, not an IO error.
        assert!(matches!(
            read_manifest(&backend, dir),
            Err(Error::BackupDamaged { .. })
        ));
    }
}
