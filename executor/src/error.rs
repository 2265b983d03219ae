//! Errors of the SQL layer, each classified by the SQLSTATE a Postgres client expects.
//!
//! Front ends never look at message text: they call [`Error::sqlstate`]. The mapping is
//! one exhaustive match, so a new variant cannot ship without a code.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text does not parse.
    #[error("{message}")]
    Syntax { message: String, position: Option<usize> },
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    #[error("schema \"{0}\" does not exist")]
    UndefinedSchema(String),
    #[error("schema \"{0}\" already exists")]
    DuplicateSchema(String),
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    #[error("unrecognized configuration parameter \"{0}\"")]
    UndefinedParameter(String),
    /// A view (or other object) whose definition cannot be accepted, e.g. a cycle.
    #[error("{0}")]
    InvalidObjectDefinition(String),
    /// Valid SQL that StreamHouse deliberately does not do (with a hint on what to do instead).
    #[error("{message}")]
    NotSupported { message: String, hint: Option<String> },
    /// A value that cannot become the column's type.
    #[error("{0}")]
    InvalidValue(String),
    /// A column or expression of the wrong type for where it is used.
    #[error("{0}")]
    DatatypeMismatch(String),
    #[error("{0}")]
    NotNullViolation(String),
    /// COPY input that is not well-formed (wrong column count, bad quoting, bad encoding).
    #[error("{0}")]
    BadCopyData(String),
    /// Wrong arguments to a StreamHouse statement (table options, COPY options...).
    #[error("{0}")]
    InvalidParameter(String),
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    TransactionAborted,
    #[error("savepoint \"{0}\" does not exist")]
    NoSuchSavepoint(String),
    #[error("{0}")]
    NoActiveTransaction(String),
    #[error("{0}")]
    DependentObjects(String),
    #[error("canceling statement due to user request")]
    Canceled,
    /// The object exists but is of another kind (a materialized view written to, …).
    #[error("{0}")]
    WrongObjectType(String),
    #[error("cursor \"{0}\" does not exist")]
    UndefinedCursor(String),
    #[error("cursor \"{0}\" already exists")]
    DuplicateCursor(String),
    /// An object cannot do this in its present state: a cursor asked to scroll backward,
    /// a materialized view still recovering.
    #[error("{0}")]
    ObjectNotInPrerequisiteState(String),
    /// Planning or execution failed inside DataFusion.
    #[error("{0}")]
    Query(DataFusionError),
    #[error("{0}")]
    Storage(streamhouse_streams::Error),
    /// `ASK` could not understand a question (names what it could not link).
    #[error("{0}")]
    CannotAnswer(String),
    /// A statement ran past a time limit.
    #[error("canceling statement due to statement timeout: {0}")]
    TimedOut(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_supported(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::NotSupported { message: message.into(), hint: Some(hint.into()) }
    }

    /// The SQLSTATE code of this error (Postgres appendix A).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "42601",
            Error::UndefinedTable(_) => "42P01",
            Error::DuplicateTable(_) => "42P07",
            Error::UndefinedSchema(_) => "3F000",
            Error::DuplicateSchema(_) => "42P06",
            Error::UndefinedColumn(_) => "42703",
            Error::DuplicateColumn(_) => "42701",
            Error::UndefinedParameter(_) => "42704",
            Error::InvalidObjectDefinition(_) => "42P17",
            Error::NotSupported { .. } => "0A000",
            Error::InvalidValue(_) => "22P02",
            Error::DatatypeMismatch(_) => "42804",
            Error::NotNullViolation(_) => "23502",
            Error::BadCopyData(_) => "22P04",
            Error::InvalidParameter(_) => "22023",
            Error::TransactionAborted => "25P02",
            Error::NoSuchSavepoint(_) => "3B001",
            Error::NoActiveTransaction(_) => "25P01",
            Error::DependentObjects(_) => "2BP01",
            Error::Canceled => "57014",
            Error::WrongObjectType(_) => "42809",
            Error::UndefinedCursor(_) => "34000",
            Error::DuplicateCursor(_) => "42P03",
            Error::ObjectNotInPrerequisiteState(_) => "55000",
            Error::Query(e) => datafusion_sqlstate(e),
            Error::Storage(e) => storage_sqlstate(e),
            Error::CannotAnswer(_) => "42704",
            Error::TimedOut(_) => "57014",
            Error::Internal(_) => "XX000",
        }
    }

    /// A panic caught where the work must outlive it (a statement, a view's step): an
    /// internal error (XX000) that names what panicked and the panic's message.
    pub fn from_panic(what: &str, payload: Box<dyn std::any::Any + Send>) -> Error {
        let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
        Error::Internal(format!("{what} panicked: {}", message.unwrap_or_default()))
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::NotSupported { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// Byte position (1-based, as Postgres reports it) of the error in the SQL text, if known.
    pub fn position(&self) -> Option<usize> {
        match self {
            Error::Syntax { position, .. } => *position,
            _ => None,
        }
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    match e.find_root() {
        DataFusionError::SQL(_, _) => "42601",
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            datafusion::common::SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P10",
        },
        // PostgreSQL: `function foo(text) does not exist` (undefined_function).
        DataFusionError::Plan(m)
            if m.starts_with("Invalid function") || m.contains("No function matches") || m.contains("Failed to coerce arguments") =>
        {
            "42883"
        }
        DataFusionError::Plan(_) => "42804",
        // Our own errors raised inside DataFusion (a view's definition) keep their code.
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(ours) => ours.sqlstate(),
            None => "XX000",
        },
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            arrow::error::ArrowError::CastError(_) | arrow::error::ArrowError::ParseError(_) => "22P02",
            arrow::error::ArrowError::DivideByZero => "22012",
            arrow::error::ArrowError::ArithmeticOverflow(_) => "22003",
            _ => "XX000",
        },
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::Execution(_) => "22000",
        _ => "XX000",
    }
}

fn storage_sqlstate(e: &streamhouse_streams::Error) -> &'static str {
    use streamhouse_streams::Error as S;
    match e {
        S::TableNotFound(_) => "42P01",
        S::SchemaMismatch(_) => "42804",
        S::NullViolation(_) => "23502",
        S::Config(_) => "22023",
        S::ShuttingDown => "57P01",
        S::Catalog(c) => catalog_sqlstate(c),
        S::Wal(_) | S::Io(_) | S::ObjectStore(_) => "58030",
        S::Arrow(_) | S::Parquet(_) | S::CorruptRecord(_) => "XX000",
    }
}

fn catalog_sqlstate(e: &streamhouse_catalog::Error) -> &'static str {
    use streamhouse_catalog::Error as C;
    match e {
        C::SchemaNotFound(_) => "3F000",
        C::TableNotFound(_) => "42P01",
        C::AlreadyExists(_) => "42P07",
        C::NotEmpty(_) => "2BP01",
        C::Conflict(_) => "40001",
        C::InvalidUrl(_) | C::Invalid(_) => "22023",
        C::Db(_) | C::Migrate(_) | C::Corrupt(_) => "58000",
    }
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::Query(e)
    }
}

impl From<streamhouse_streams::Error> for Error {
    fn from(e: streamhouse_streams::Error) -> Self {
        Error::Storage(e)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Query(DataFusionError::ArrowError(Box::new(e), None))
    }
}
