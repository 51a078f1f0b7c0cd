//! A file system held in memory, for stores that need no files (`Store::open_in_memory`).
//!
//! Files behave as on a POSIX file system: an open handle keeps reading and writing its file
//! after the file is renamed, replaced or removed, and a map is a copy of the bytes at the
//! time of the call (the engine maps only files it never writes again). Nothing is ever lost
//! or torn, so syncs do nothing; there are no faults and no crash images (that is
//! `SimBackend`'s job, behind the `test-support` feature).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::{Backend, BackendFile, LockGuard, Mapped};

/// The bytes of one file, shared by its directory entry and every open handle.
type Inode = Arc<RwLock<Vec<u8>>>;

#[derive(Debug, Default)]
struct Tree {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Inode>,
    locks: BTreeSet<PathBuf>,
}

/// A [`Backend`] whose files live in memory and vanish with the last clone of it.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    tree: Arc<Mutex<Tree>>,
}

impl MemoryBackend {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl Backend for MemoryBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.tree.lock();
        for ancestor in path.ancestors() {
            tree.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.tree.lock();
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        let names = |p: &PathBuf| p.file_name()?.to_str().map(str::to_owned);
        let files = tree.files.keys().filter(|p| p.parent() == Some(path));
        let dirs = tree.dirs.iter().filter(|p| p.parent() == Some(path));
        Ok(files.chain(dirs).filter_map(names).collect())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn BackendFile>> {
        let mut tree = self.tree.lock();
        let inode = match tree.files.get(path) {
            Some(inode) => Arc::clone(inode),
            None => {
                let parent_exists = path.parent().is_some_and(|p| tree.dirs.contains(p));
                if !create || !parent_exists {
                    return Err(not_found(path));
                }
                let inode = Inode::default();
                tree.files.insert(path.to_path_buf(), Arc::clone(&inode));
                inode
            }
        };
        Ok(Arc::new(MemoryFile(inode)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.tree.lock();
        tree.files
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.tree.lock();
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        let occupied = tree.files.keys().any(|p| p.starts_with(path))
            || tree.dirs.iter().any(|d| d != path && d.starts_with(path));
        if occupied {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{} is not empty", path.display()),
            ));
        }
        tree.dirs.remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut tree = self.tree.lock();
        let inode = tree.files.remove(from).ok_or_else(|| not_found(from))?;
        tree.files.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.tree.lock().dirs.contains(path) {
            Ok(())
        } else {
            Err(not_found(path))
        }
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let mut tree = self.tree.lock();
        if !tree.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(LockGuard::new(MemoryLock {
            tree: Arc::clone(&self.tree),
            path: path.to_path_buf(),
        })))
    }
}

struct MemoryLock {
    tree: Arc<Mutex<Tree>>,
    path: PathBuf,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.tree.lock().locks.remove(&self.path);
    }
}

#[derive(Debug)]
struct MemoryFile(Inode);

#[derive(Debug)]
struct MemoryMap(Vec<u8>);

impl Deref for MemoryMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Mapped for MemoryMap {}

impl BackendFile for MemoryFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.read().len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.0.read();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let src = data.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.0.write();
        let too_big = || io::Error::new(io::ErrorKind::OutOfMemory, "file too large");
        let start = usize::try_from(offset).map_err(|_| too_big())?;
        let end = start.checked_add(buf.len()).ok_or_else(too_big)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large"))?;
        self.0.write().resize(len, 0);
        Ok(())
    }

    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        Ok(Arc::new(MemoryMap(self.0.read().clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_handle_outlives_rename_and_removal_of_its_file() {
        let fs = MemoryBackend::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let file = fs.open(Path::new("/d/a"), true).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        fs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        file.write_all_at(b"!", 5).unwrap();
        let renamed = fs.open(Path::new("/d/b"), false).unwrap();
        let mut buf = [0; 6];
        renamed.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello!");
        fs.remove_file(Path::new("/d/b")).unwrap();
        assert!(fs.open(Path::new("/d/b"), false).is_err());
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello!");
        assert_eq!(fs.list_dir(Path::new("/d")).unwrap(), Vec::<String>::new());
        assert!(file.read_exact_at(&mut buf, u64::MAX).is_err());
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let fs = MemoryBackend::new();
        let held = fs.try_lock(Path::new("/LOCK")).unwrap();
        assert!(held.is_some());
        assert!(fs.try_lock(Path::new("/LOCK")).unwrap().is_none());
        drop(held);
        assert!(fs.try_lock(Path::new("/LOCK")).unwrap().is_some());
    }
}
