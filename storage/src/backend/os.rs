//! The real file system.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::mmap::ReadOnlyMap;
use super::{Backend, BackendFile, LockGuard, Mapped};

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsBackend;

#[derive(Debug)]
struct OsFile(File);

impl Backend for OsBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn BackendFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn BackendFile>> {
        Ok(Arc::new(OsFile(File::open(path)?)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn lock_holder(&self, path: &Path) -> Option<u32> {
        // At most a pid and a newline: a file that is something else is no answer.
        let mut bytes = [0u8; 16];
        let n = File::open(path)
            .and_then(|f| f.read_at(&mut bytes, 0))
            .ok()?;
        std::str::from_utf8(bytes.get(..n)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn available_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let stat = rustix::fs::statvfs(path)?;
        Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // `flock` locks belong to the open file description, so a second open in the same
        // process conflicts too.
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message of the next opener (FORMAT.md §2). Whatever an
                // earlier, dead holder left there is replaced; a failure here costs only that
                // hint, never the lock.
                let pid = format!("{}\n", std::process::id());
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.write_all_at(pid.as_bytes(), 0));
                Ok(Some(LockGuard::new(file)))
            }
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl BackendFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        Ok(Arc::new(ReadOnlyMap::new(&self.0)?))
    }
}
