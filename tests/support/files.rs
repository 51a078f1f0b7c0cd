//! Files the suites share: copying a store's directory. A suite includes it with
//! `#[path = "../support/files.rs"] mod files;`.

use std::path::Path;

/// Copies the directory `from` into `to` (created), recursively, leaving out lock files
/// (`LOCK`): a copy is a store nobody holds, and opening it writes its own.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read a directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}
