//! Tunables of the storage layer, each with the reason for its default.

use std::time::Duration;

/// A partition's tail is flushed to a Parquet segment once it holds this many bytes:
/// large enough for good compression and few objects, small enough to bound memory.
pub const SEGMENT_TARGET_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// All tails together may hold this much before appends wait for flushes (back-pressure).
pub const MAX_TAIL_BYTES_DEFAULT: usize = 512 * 1024 * 1024;
/// A non-empty tail older than this is flushed even if small, so the WAL can be truncated.
pub const FLUSH_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);
/// How often retention is checked (in memory; the catalog is touched only to delete).
pub const RETENTION_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub segment_target_bytes: usize,
    pub max_tail_bytes: usize,
    pub flush_interval: Duration,
    pub retention_interval: Duration,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            segment_target_bytes: SEGMENT_TARGET_BYTES_DEFAULT,
            max_tail_bytes: MAX_TAIL_BYTES_DEFAULT,
            flush_interval: FLUSH_INTERVAL_DEFAULT,
            retention_interval: RETENTION_INTERVAL_DEFAULT,
        }
    }
}
