//! A simulated file system for crash and fault tests.
//!
//! Each file keeps the bytes that reads see (`data`) apart from the bytes that would survive a
//! power loss (`synced`); a new file's name survives only once its directory was synced. A crash
//! image keeps the synced state and, depending on [`CrashMode`], part of what was written after
//! the last sync, as a torn write would. Chosen calls can fail with any [`io::ErrorKind`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Backend, BackendFile, LockGuard, Mapped};

/// Which calls a [`Fault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// `write_all_at`.
    Write,
    /// File and directory syncs.
    Sync,
}

/// An injected failure: the `nth` (0-based) call of `op` from now fails with `kind`, and so
/// does every later one if `sticky`.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// The calls counted.
    pub op: FaultOp,
    /// How many matching calls succeed first.
    pub nth: u64,
    /// The error returned.
    pub kind: io::ErrorKind,
    /// Whether later calls keep failing.
    pub sticky: bool,
}

/// What a crash keeps of the bytes written after a file's last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing: only synced bytes survive.
    DropUnsynced,
    /// The first `n` unsynced bytes of each file survive (a torn write).
    KeepPrefix(usize),
    /// The first `n` unsynced bytes of each file survive, but scrambled.
    GarbagePrefix(usize),
    /// Everything written survives (the OS wrote it back before the power went).
    KeepAll,
    /// Everything written survives except `len` bytes from `at` (counted from the first unsynced
    /// byte), which read as zeros: pages written back out of order.
    Hole {
        /// Start of the lost bytes, relative to the first unsynced byte.
        at: usize,
        /// Number of lost bytes.
        len: usize,
    },
}

#[derive(Debug, Clone, Default)]
struct SimFile {
    data: Vec<u8>,
    synced: Vec<u8>,
    /// Whether the directory entry survives a crash.
    durable_name: bool,
}

/// A rename whose directory was not synced yet: a crash undoes it.
#[derive(Debug, Clone)]
struct PendingRename {
    from: PathBuf,
    to: PathBuf,
    /// Whether the name `from` had survived a crash before the rename.
    from_durable: bool,
    /// The durable file the name `to` held before, which a crash brings back.
    replaced: Option<SimFile>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, SimFile>,
    renames: Vec<PendingRename>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    fault: Option<Fault>,
    writes: u64,
    syncs: u64,
    record: bool,
    images: Vec<SimImage>,
    /// What `available_space` reports.
    available: Option<u64>,
}

/// The durable state of a [`SimBackend`] at one moment, from which crash images are made.
#[derive(Debug, Clone)]
pub struct SimImage {
    /// Number of syncs completed when the image was taken.
    pub syncs: u64,
    files: BTreeMap<PathBuf, SimFile>,
    renames: Vec<PendingRename>,
    dirs: BTreeSet<PathBuf>,
}

impl SimImage {
    /// A new backend holding what this crash would leave on disk.
    pub fn materialize(&self, mode: CrashMode) -> SimBackend {
        // Renames whose directory was never synced are undone, newest first.
        let mut before = self.files.clone();
        for rename in self.renames.iter().rev() {
            if let Some(mut moved) = before.remove(&rename.to) {
                moved.durable_name = rename.from_durable;
                before.insert(rename.from.clone(), moved);
            }
            if let Some(replaced) = &rename.replaced {
                before.insert(rename.to.clone(), replaced.clone());
            }
        }
        let mut files = BTreeMap::new();
        for (path, file) in &before {
            if !file.durable_name {
                continue;
            }
            let mut bytes = file.synced.clone();
            let unsynced_from = common_prefix(&file.synced, &file.data);
            let tail = file.data.get(unsynced_from..).unwrap_or(&[]);
            let keep = match mode {
                CrashMode::DropUnsynced => 0,
                CrashMode::KeepPrefix(n) | CrashMode::GarbagePrefix(n) => n.min(tail.len()),
                CrashMode::KeepAll | CrashMode::Hole { .. } => tail.len(),
            };
            if keep > 0 {
                bytes.truncate(unsynced_from);
                bytes.extend_from_slice(&tail[..keep]);
                if let CrashMode::GarbagePrefix(_) = mode {
                    for (i, b) in bytes[unsynced_from..].iter_mut().enumerate() {
                        *b ^= 0x5a ^ (i as u8);
                    }
                }
                if let CrashMode::Hole { at, len } = mode {
                    let start = (unsynced_from + at).min(bytes.len());
                    let end = start.saturating_add(len).min(bytes.len());
                    bytes[start..end].fill(0);
                }
            }
            files.insert(
                path.clone(),
                SimFile {
                    data: bytes.clone(),
                    synced: bytes,
                    durable_name: true,
                },
            );
        }
        SimBackend {
            state: Arc::new(Mutex::new(State {
                files,
                dirs: self.dirs.clone(),
                ..State::default()
            })),
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// An in-memory file system that simulates power loss and IO failures.
#[derive(Debug, Clone, Default)]
pub struct SimBackend {
    state: Arc<Mutex<State>>,
}

impl SimBackend {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a fault (replacing any armed one).
    pub fn inject(&self, fault: Fault) {
        self.state.lock().fault = Some(fault);
    }

    /// Sets the free space the backend reports (`None`: unknown, the default). Writes do not
    /// consume it; inject a `StorageFull` fault for that.
    pub fn set_available_space(&self, bytes: Option<u64>) {
        self.state.lock().available = bytes;
    }

    /// Disarms any fault.
    pub fn clear_fault(&self) {
        self.state.lock().fault = None;
    }

    /// Number of completed syncs (file and directory) so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Number of completed writes so far.
    pub fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// Starts recording an image before and after every sync (see [`SimBackend::images`]).
    pub fn record_images(&self) {
        let mut state = self.state.lock();
        state.record = true;
        let image = snapshot(&state);
        state.images.push(image);
    }

    /// The images recorded since [`SimBackend::record_images`], oldest first.
    pub fn images(&self) -> Vec<SimImage> {
        self.state.lock().images.clone()
    }

    /// The durable state now, as a crash this instant would find it.
    pub fn image(&self) -> SimImage {
        snapshot(&self.state.lock())
    }

    /// The whole current content of a file (what reads see), for tests that damage files.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().files.get(path).map(|f| f.data.clone())
    }

    /// Replaces a file's content, written and synced, for tests that damage files.
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = self.state.lock();
        let file = state.files.entry(path.to_path_buf()).or_default();
        file.data = bytes.clone();
        file.synced = bytes;
        file.durable_name = true;
    }

    /// Paths of all files, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.state.lock().files.keys().cloned().collect()
    }

    fn check_fault(state: &mut State, op: FaultOp) -> io::Result<()> {
        if let Some(fault) = &mut state.fault {
            if fault.op == op {
                if fault.nth == 0 {
                    let kind = fault.kind;
                    if !fault.sticky {
                        state.fault = None;
                    }
                    return Err(io::Error::new(kind, "injected fault"));
                }
                fault.nth -= 1;
            }
        }
        Ok(())
    }
}

fn snapshot(state: &State) -> SimImage {
    SimImage {
        syncs: state.syncs,
        files: state.files.clone(),
        renames: state.renames.clone(),
        dirs: state.dirs.clone(),
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl Backend for SimBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        for ancestor in path.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        if !state.dirs.contains(path) {
            return Err(not_found(path));
        }
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn BackendFile>> {
        let mut state = self.state.lock();
        if !state.files.contains_key(path) {
            let parent_exists = path.parent().is_some_and(|p| state.dirs.contains(p));
            if !create || !parent_exists {
                return Err(not_found(path));
            }
            state.files.insert(path.to_path_buf(), SimFile::default());
        }
        Ok(Arc::new(SimHandle {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.dirs.contains(path) {
            return Err(not_found(path));
        }
        let occupied = state.files.keys().any(|p| p.starts_with(path))
            || state.dirs.iter().any(|d| d != path && d.starts_with(path));
        if occupied {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{} is not empty", path.display()),
            ));
        }
        state.dirs.remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let mut moved = state.files.remove(from).ok_or_else(|| not_found(from))?;
        let from_durable = moved.durable_name;
        let replaced = state.files.remove(to).filter(|f| f.durable_name);
        // The name `to` is durable at once only if it was before (the directory entry exists and
        // a crash leaves either file under it); otherwise it waits for a directory sync.
        moved.durable_name = replaced.is_some();
        state.files.insert(to.to_path_buf(), moved);
        state.renames.push(PendingRename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            from_durable,
            replaced,
        });
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        Self::check_fault(&mut state, FaultOp::Sync)?;
        if state.record {
            let image = snapshot(&state);
            state.images.push(image);
        }
        for (p, file) in state.files.iter_mut() {
            if p.parent() == Some(path) {
                file.durable_name = true;
            }
        }
        state.renames.retain(|r| r.to.parent() != Some(path));
        state.syncs += 1;
        if state.record {
            let image = snapshot(&state);
            state.images.push(image);
        }
        Ok(())
    }

    fn available_space(&self, _path: &Path) -> io::Result<Option<u64>> {
        Ok(self.state.lock().available)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let mut state = self.state.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(LockGuard::new(SimLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
        })))
    }
}

struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.path);
    }
}

#[derive(Debug)]
struct SimHandle {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl SimHandle {
    fn with_file<T>(&self, f: impl FnOnce(&mut SimFile) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock();
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        f(file)
    }
}

#[derive(Debug)]
struct SimMap(Vec<u8>);

impl Deref for SimMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Mapped for SimMap {}

impl BackendFile for SimHandle {
    fn len(&self) -> io::Result<u64> {
        self.with_file(|f| Ok(f.data.len() as u64))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_file(|f| {
            let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
            let src = f
                .data
                .get(start..start + buf.len())
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        SimBackend::check_fault(&mut state, FaultOp::Write)?;
        state.writes += 1;
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        let start = offset as usize;
        if file.data.len() < start + buf.len() {
            file.data.resize(start + buf.len(), 0);
        }
        file.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        SimBackend::check_fault(&mut state, FaultOp::Sync)?;
        if state.record {
            let image = snapshot(&state);
            state.images.push(image);
        }
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        file.synced = file.data.clone();
        state.syncs += 1;
        if state.record {
            let image = snapshot(&state);
            state.images.push(image);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_file(|f| {
            f.data.resize(len as usize, 0);
            Ok(())
        })
    }

    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        self.with_file(|f| Ok(Arc::new(SimMap(f.data.clone())) as Arc<dyn Mapped>))
    }
}
