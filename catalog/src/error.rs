//! The catalog's error type.
//!
//! Exists so callers can tell "your request conflicts with the catalog state" (mapped to
//! SQLSTATEs and protocol error codes by the front ends) apart from "the database failed".

/// Errors returned by [`crate::Catalog`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database (connection, I/O, SQL) failed.
    #[error("catalog database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed (e.g. the database was written by a newer version).
    #[error("catalog migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("schema \"{0}\" does not exist")]
    SchemaNotFound(String),
    #[error("table \"{0}\" does not exist")]
    TableNotFound(String),
    #[error("\"{0}\" already exists")]
    AlreadyExists(String),
    /// Dropping a schema that still contains tables.
    #[error("schema \"{0}\" is not empty")]
    NotEmpty(String),
    /// Optimistic-concurrency failure, e.g. a segment commit whose base offset is not the
    /// partition's committed offset (a stale or duplicate flush).
    #[error("catalog conflict: {0}")]
    Conflict(String),
    /// A stored Arrow schema or options JSON could not be decoded.
    #[error("catalog entry is corrupt: {0}")]
    Corrupt(String),
    /// The catalog URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("invalid catalog URL: {0}")]
    InvalidUrl(String),
    /// A caller passed an impossible value (zero partitions, an inverted offset range, …).
    #[error("invalid catalog request: {0}")]
    Invalid(String),
}

impl Error {
    /// True for a unique-constraint violation; used to turn insert races into
    /// `AlreadyExists`/`Conflict` instead of a generic database error.
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
    }

    /// True for a foreign-key violation (a concurrent drop/create raced with us).
    pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
    }
}
