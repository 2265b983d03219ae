//! The errors of the storage layer, classified so front ends can map them to protocol codes.

/// Everything that can go wrong below the SQL layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog: {0}")]
    Catalog(#[from] streamhouse_catalog::Error),
    #[error("write-ahead log: {0}")]
    Wal(#[from] streamhouse_wal::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("table {0} does not exist")]
    TableNotFound(String),
    /// The rows handed to an append do not have the table's columns.
    #[error("{0}")]
    SchemaMismatch(String),
    /// A NOT NULL column got a null.
    #[error("null value in column \"{0}\" violates not-null constraint")]
    NullViolation(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A WAL record that passed its checksum but cannot be decoded: a bug or a format change.
    #[error("corrupt log record: {0}")]
    CorruptRecord(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl Error {
    /// The rows of one append do not fit in one WAL record: split them.
    pub fn is_record_too_large(&self) -> bool {
        matches!(self, Error::Wal(streamhouse_wal::Error::RecordTooLarge { .. }))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
