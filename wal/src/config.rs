//! Configuration of the write-ahead log and its named limits.
//!
//! Every queue, buffer and size the log uses is a named constant here so that operators and
//! the other crates can see (and document) the bounds in one place.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::format::{FILE_HEADER_SIZE, RECORD_HEADER_SIZE};

/// Default size of one WAL file. Large enough that rotation (and its directory fsync) is rare,
/// small enough that a released file is recycled soon after its records reach segments.
pub const WAL_FILE_SIZE_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted file size: the header block plus at least one block of records.
pub const WAL_FILE_SIZE_MIN: u64 = 2 * FILE_HEADER_SIZE;

/// Default largest payload of one record. Payloads that do not fit in a regular file (this
/// default exceeds `WAL_FILE_SIZE_DEFAULT` minus its header) get a dedicated, larger file.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Hard ceiling for `max_record_bytes`: the record header stores the length in 32 bits.
pub const MAX_RECORD_BYTES_LIMIT: usize = u32::MAX as usize - RECORD_HEADER_SIZE;

/// Default number of appends that may wait for the writer before `enqueue` applies
/// back-pressure.
pub const QUEUE_DEPTH_DEFAULT: usize = 4096;

/// Default number of released files kept (renamed) for reuse instead of being deleted.
pub const SPARE_FILES_DEFAULT: usize = 2;

/// A reasonable period for `Durability::Interval` (what the server uses unless configured).
pub const SYNC_INTERVAL_DEFAULT: Duration = Duration::from_millis(10);

/// Most bytes of records coalesced into one write (and covered by one fdatasync). Bounds the
/// writer's buffer; a single larger record still forms a group of its own.
pub const GROUP_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Records at least this large get a file of their own when no spare file is ready, instead
/// of waiting for a spare to be zero-filled: writing the bytes once plus one fdatasync that
/// also persists the file's size (~7 ms) is cheaper than writing zeros over them first.
pub const BULK_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// Payload parts at least this large are written straight from their buffer (one more
/// positioned write) instead of being copied into the group buffer.
pub const DIRECT_WRITE_MIN_BYTES: usize = 256 * 1024;

/// Most records coalesced into one group, so acknowledgements are not held back
/// indefinitely behind an endless stream of tiny appends.
pub const GROUP_MAX_RECORDS: usize = 16 * 1024;

/// Size of the zero buffer used to preallocate files and to wipe a torn tail.
pub const ZERO_CHUNK_BYTES: usize = 1024 * 1024;

/// Read buffer used while replaying files at startup.
pub const RECOVERY_READ_BUFFER_BYTES: usize = 1024 * 1024;

/// When should an acknowledged record be on stable storage?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after an fdatasync covering the record (group commit). An
    /// acknowledged record survives `kill -9` and power loss.
    #[default]
    Fsync,
    /// Acknowledge after the write reaches the OS; fdatasync at most this long afterwards.
    /// A power loss can lose the records of the last interval; `kill -9` loses nothing.
    Interval(Duration),
    /// Acknowledge after the write reaches the OS; fdatasync only at rotation and close.
    /// `kill -9` loses nothing; a power loss can lose everything since the last rotation.
    None,
}

/// How to open a [`crate::Wal`]. Build with [`WalConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// Directory holding the log files (created if missing). One log per node.
    pub dir: PathBuf,
    /// When appends are acknowledged, see [`Durability`].
    pub durability: Durability,
    /// Size of each preallocated file, header included.
    pub file_size: u64,
    /// Largest accepted payload; larger ones fail with `Error::RecordTooLarge`.
    pub max_record_bytes: usize,
    /// Appends that may be queued for the writer before `enqueue` waits (back-pressure).
    pub queue_depth: usize,
    /// Released files kept for reuse instead of deleted.
    pub spare_files: usize,
}

impl WalConfig {
    /// The defaults: fsync durability, 64 MiB files, 64 MiB records, queue of 4096, 2 spares.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            durability: Durability::Fsync,
            file_size: WAL_FILE_SIZE_DEFAULT,
            max_record_bytes: MAX_RECORD_BYTES,
            queue_depth: QUEUE_DEPTH_DEFAULT,
            spare_files: SPARE_FILES_DEFAULT,
        }
    }

    /// Rejects settings the log cannot honour, before anything touches the disk.
    pub(crate) fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.file_size < WAL_FILE_SIZE_MIN {
            return invalid(format!(
                "WAL file_size {} is below the minimum of {WAL_FILE_SIZE_MIN} bytes",
                self.file_size
            ));
        }
        if self.max_record_bytes > MAX_RECORD_BYTES_LIMIT {
            return invalid(format!(
                "WAL max_record_bytes {} exceeds the format limit of {MAX_RECORD_BYTES_LIMIT}",
                self.max_record_bytes
            ));
        }
        if self.queue_depth == 0 {
            return invalid("WAL queue_depth must be at least 1".to_string());
        }
        Ok(())
    }
}
