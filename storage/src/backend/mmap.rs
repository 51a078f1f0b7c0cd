//! The only module with `unsafe` code: read-only maps of sealed segment files.
#![expect(unsafe_code, reason = "memory-mapping a file is unsafe by nature")]

use std::fs::File;
use std::io;
use std::ops::Deref;

use super::Mapped;

/// A read-only map of a whole file.
#[derive(Debug)]
pub(crate) struct ReadOnlyMap(memmap2::Mmap);

impl ReadOnlyMap {
    pub(crate) fn new(file: &File) -> io::Result<Self> {
        // SAFETY: a map is undefined behaviour if the file changes underneath it. The engine maps
        // only sealed segments, which it never writes, truncates or removes while mapped (FORMAT.md
        // §7), and the data directory is held under an exclusive lock (`LOCK`), so no other
        // cooperating process writes them either. A read-only open (FORMAT.md §12) maps only
        // segments with a later segment beside them, which the writer never writes again, and
        // compaction replaces by renaming a new file over them, never in place. A process that
        // ignores the lock and edits the files can crash this one; that is the documented limit
        // of mapping (as in heed and lmdb).
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        Ok(ReadOnlyMap(map))
    }
}

impl Deref for ReadOnlyMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Mapped for ReadOnlyMap {}
