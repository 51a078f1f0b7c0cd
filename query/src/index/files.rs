//! Which files are the index's, and what does its last commit hold? tantivy's file names in an
//! index directory, the commit payload (the seq the commit covers and the compaction generation
//! it reached), and the listing of the last commit's files that a backup copies.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// The version of [`Payload`] this build writes and understands.
pub(crate) const PAYLOAD_FORMAT: u64 = 1;

/// The file naming an index's committed segments (tantivy's).
pub const META_FILE: &str = "meta.json";

/// The files of an index's last commit ([`crate::Index::committed_files`]).
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

/// What every commit of the index records in tantivy's commit payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Payload {
    pub strata_index: u64,
    pub seq: u64,
    /// The log's compaction generation whose dropped versions the index has removed.
    #[serde(default)]
    pub generation: u64,
}

impl Payload {
    /// The seq and compaction generation a payload of this build's format names.
    pub(crate) fn parse(payload: &str) -> Option<(u64, u64)> {
        match serde_json::from_str::<Payload>(payload) {
            Ok(p) if p.strata_index == PAYLOAD_FORMAT => Some((p.seq, p.generation)),
            _ => None,
        }
    }

    /// The seq a payload names, whatever its format (0 when it does not read).
    pub(crate) fn seq_of(payload: &str) -> Option<u64> {
        serde_json::from_str::<Payload>(payload).ok().map(|p| p.seq)
    }
}

/// The commit payload in `dir/meta.json` as text (`None`: no commit that reads).
pub(crate) fn payload_on_disk(dir: &Path) -> Option<String> {
    let bytes = std::fs::read(dir.join(META_FILE)).ok()?;
    let meta: Value = serde_json::from_slice(&bytes).ok()?;
    Some(meta.get("payload")?.as_str()?.to_owned())
}

/// The seq the last commit of the index in `dir` covers, read from its `meta.json` without
/// opening the index (which would discard an index ahead of the log); `None` without a commit
/// that reads.
pub fn committed_seq_on_disk(dir: &Path) -> Option<u64> {
    Payload::seq_of(&payload_on_disk(dir)?)
}

/// Whether `name` is a file tantivy writes in an index directory: its metadata, lock and
/// temporary files, and segment files (`<32 hex digits of a segment id>.<component>`).
pub(crate) fn is_index_file(name: &std::ffi::OsStr) -> bool {
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

/// The files of the last commit of `index`, which lives in `dir`, for a backup.
pub(crate) fn committed_files(dir: &Path, index: &tantivy::Index) -> Result<CommittedFiles> {
    let io = |e: std::io::Error| Error::Index {
        message: format!("{}: {e}", dir.display()),
    };
    let meta = std::fs::read(dir.join(META_FILE)).map_err(io)?;
    let metas = index.load_metas()?;
    let seq = match metas.payload.as_deref() {
        None => 0,
        Some(p) => Payload::seq_of(p).unwrap_or(0),
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
    Ok(CommittedFiles {
        dir: dir.to_path_buf(),
        meta,
        files,
        seq,
    })
}

/// Whether the index's last commit is still the one `files` describes.
pub(crate) fn commit_unchanged(files: &CommittedFiles) -> bool {
    std::fs::read(files.dir.join(META_FILE)).is_ok_and(|now| now == files.meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_files_are_tantivys_names_only() {
        let yes = [
            "0123456789abcdef0123456789abcdef.idx",
            "0123456789ABCDEF0123456789abcdef.store",
            META_FILE,
            ".managed.json",
            ".tantivy-meta.lock",
            ".tantivy-writer.lock",
            ".tmp1234",
        ];
        let no = [
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdeg.idx",
            "notes.txt",
            "meta.json.bak",
        ];
        for name in yes {
            assert!(is_index_file(std::ffi::OsStr::new(name)), "{name}");
        }
        for name in no {
            assert!(!is_index_file(std::ffi::OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn a_payload_of_another_format_names_no_commit_but_still_a_seq() {
        let ours = r#"{"strata_index":1,"seq":7,"generation":2}"#;
        let other = r#"{"strata_index":9,"seq":7}"#;
        assert_eq!(Payload::parse(ours), Some((7, 2)));
        assert_eq!(Payload::parse(other), None);
        assert_eq!(Payload::seq_of(other), Some(7));
        assert_eq!(Payload::seq_of("garbage"), None);
    }

    #[test]
    fn committed_seq_on_disk_reads_the_payload_of_meta_json() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(committed_seq_on_disk(tmp.path()), None);
        let meta = serde_json::json!({"payload": r#"{"strata_index":1,"seq":42}"#});
        std::fs::write(tmp.path().join(META_FILE), meta.to_string()).unwrap();
        assert_eq!(committed_seq_on_disk(tmp.path()), Some(42));
    }
}
