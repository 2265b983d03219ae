//! Errors of the write-ahead log.
//!
//! The variants separate what a caller must react to differently: bad input
//! (`RecordTooLarge`), a log that is shutting down (`Closed`), a log that can no longer
//! promise durability (`Poisoned`), and a log whose files cannot be trusted (`Corrupt`).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed; the message names the file and the operation.
    #[error("WAL I/O error: {0}")]
    Io(#[from] io::Error),
    /// The payload exceeds `WalConfig::max_record_bytes`; nothing was written.
    #[error("WAL record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// The log was closed (or its writer stopped); no more appends are accepted.
    #[error("WAL is closed")]
    Closed,
    /// An earlier write or fdatasync failed. After a failed fdatasync the kernel may have
    /// dropped the dirty pages, so retrying could acknowledge data that is not on disk; the
    /// log therefore refuses every further append (fail-stop, as PostgreSQL does). Records
    /// that received this error may or may not be in the log after a restart.
    #[error("WAL is poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// The files are inconsistent in a way recovery must not paper over (e.g. a gap between
    /// files, which means acknowledged records are missing).
    #[error("WAL is corrupt: {0}")]
    Corrupt(String),
    /// The replay callback rejected a record.
    #[error("WAL replay failed: {0}")]
    Replay(String),
}

/// Adds the file and the operation to an `io::Error`, keeping its kind, so that a message
/// like "No space left on device" says where it happened.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> io::Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> io::Result<T> {
        self.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", what())))
    }
}
