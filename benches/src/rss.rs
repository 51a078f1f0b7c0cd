//! The process's resident memory, from `/proc/self/status` (Linux).

/// Resident memory of this process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStatus {
    /// `VmRSS`: all resident pages, including mapped files.
    pub rss: u64,
    /// `RssAnon`: resident anonymous pages (the heap and stacks, not mapped files).
    pub anon: u64,
    /// `RssFile`: resident pages of mapped files.
    pub file: u64,
}

/// Reads `/proc/self/status`; `None` where it does not exist or lacks the fields.
pub fn memory_status() -> Option<MemoryStatus> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(MemoryStatus {
        rss: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}
