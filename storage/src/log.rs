//! The on-disk log: segment files of checksummed frames, each holding one record.
//!
//! The byte layout is specified once, normatively, in `storage/FORMAT.md`; the code below cites
//! its sections instead of describing layouts again.

pub(crate) mod frame;
pub(crate) mod record;
pub(crate) mod segment;

/// The newest format version this build writes (FORMAT.md §1): that of segments whose batches
/// carry origins.
pub const FORMAT_VERSION: u32 = 3;
/// The format version of a segment rewritten by compaction (FORMAT.md §1).
pub(crate) const COMPACTED_FORMAT_VERSION: u32 = 2;
/// The format version of a segment that may hold batches with an origin (FORMAT.md §1).
pub(crate) const ORIGINS_FORMAT_VERSION: u32 = 3;
/// The oldest format version this build reads (FORMAT.md §1).
pub const OLDEST_SUPPORTED_FORMAT_VERSION: u32 = 1;
