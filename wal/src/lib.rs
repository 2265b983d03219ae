//! `streamhouse-wal`: the write-ahead log that makes an acknowledged append durable.
//!
//! Every append becomes a checksummed record with a log sequence number (LSN) in a file of
//! this node's log directory before it is acknowledged; after a crash, [`Wal::open`] replays
//! the records so the in-memory tails can be rebuilt, and once rows are in Parquet segments
//! [`Wal::release_before`] lets their files go. It exists because object storage is far too
//! slow to write per append, while an fdatasync of a local file is fast if done right:
//!
//! - **group commit** (`writer`): one writer thread coalesces everything queued meanwhile into
//!   one write and ONE fdatasync, then acknowledges the whole group;
//! - **preallocated, recycled files** (`files`): records always overwrite existing blocks, so
//!   fdatasync flushes data only (about 0.2 ms here instead of about 7 ms for a growing file);
//! - **self-validating records** (`format`): CRC32C + expected LSN, so recovery (`recovery`)
//!   stops exactly at a torn tail or at stale bytes of a recycled file;
//! - **fail-stop** on any write or fdatasync error (`Error::Poisoned`).
//!
//! Durability is configurable ([`Durability`]): `Fsync` (default) acknowledges after the
//! fdatasync, `Interval` and `None` after the write, trading power-loss safety for latency.

mod config;
mod error;
mod files;
mod format;
mod handle;
mod payload;
mod recovery;
mod writer;

#[cfg(test)]
mod tests;

pub use config::{
    BULK_RECORD_BYTES, DIRECT_WRITE_MIN_BYTES, Durability, WalConfig, GROUP_MAX_BYTES, GROUP_MAX_RECORDS, MAX_RECORD_BYTES,
    MAX_RECORD_BYTES_LIMIT, QUEUE_DEPTH_DEFAULT, RECOVERY_READ_BUFFER_BYTES, SPARE_FILES_DEFAULT,
    SYNC_INTERVAL_DEFAULT, WAL_FILE_SIZE_DEFAULT, WAL_FILE_SIZE_MIN, ZERO_CHUNK_BYTES,
};
pub use error::Error;
pub use format::{FILE_HEADER_SIZE, RECORD_HEADER_SIZE};
pub use handle::{Pending, Wal, WalStats};
pub use payload::Payload;

/// Log sequence number: the first record is 1; 0 means "nothing".
pub type Lsn = u64;
