//! Options of the storage engine.

use std::time::Duration;

use crate::error::{Error, Result};

/// When a write is acknowledged, relative to stable storage (docs/DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge after `fdatasync` returned: nothing acknowledged is ever lost. The default.
    #[default]
    Sync,
    /// Acknowledge after the write reached the OS; sync about this long afterwards (at most
    /// 1.25 times it, plus a group in progress). A crash can lose the writes since the last
    /// sync, never part of a batch. An interval too long for an [`std::time::Instant`] to
    /// reach (such as `Duration::MAX`) means no timed sync: as with [`Durability::None`],
    /// writes are synced only when a segment is sealed and when the store closes.
    Buffered(Duration),
    /// Acknowledge after the write reached the OS and never sync explicitly (except when a
    /// segment is sealed or the store closes). For tests and rebuildable data.
    None,
}

/// Options of [`crate::Engine`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Size at which the active segment is sealed and a new one started.
    pub segment_size: u64,
    /// Durability of acknowledged writes.
    pub durability: Durability,
    /// Most bytes of frames one group commit writes at once.
    pub max_group_bytes: usize,
    /// How far ahead of the clock an explicit batch time may be. Default one day. Any
    /// duration is accepted; one longer than `u64::MAX` microseconds accepts every time.
    pub max_time_ahead: Duration,
}

/// Smallest accepted [`EngineOptions::segment_size`].
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Largest accepted [`EngineOptions::segment_size`] (offsets inside a segment are 32-bit).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 31;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            segment_size: 64 << 20,
            durability: Durability::Sync,
            max_group_bytes: 16 << 20,
            max_time_ahead: Duration::from_secs(24 * 3600),
        }
    }
}

impl EngineOptions {
    /// Sets the segment size.
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets how far ahead of the clock an explicit batch time may be.
    pub fn with_max_time_ahead(mut self, ahead: Duration) -> Self {
        self.max_time_ahead = ahead;
        self
    }

    /// Sets the durability mode.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Checks every option; `Engine::open` does this too.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidOption(format!(
                "segment size {} is outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE} bytes",
                self.segment_size
            )));
        }
        if let Durability::Buffered(d) = self.durability {
            if d.is_zero() {
                return Err(Error::InvalidOption(
                    "a buffered durability interval must be above zero".into(),
                ));
            }
        }
        Ok(())
    }
}
