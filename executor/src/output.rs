//! What executing a statement produces, independent of any wire protocol.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use streamhouse_streams::StreamTable;

use crate::copy::CopyFormat;

pub enum Output {
    /// A result set, streamed batch by batch.
    Rows(SendableRecordBatchStream),
    /// A command completed; `tag` is the Postgres command tag ("CREATE TABLE", "INSERT 0 3").
    Command(CommandTag),
    /// `COPY t FROM STDIN`: the front end collects the data and calls `Session::copy_in`.
    CopyIn(CopyIn),
    /// `COPY ... TO STDOUT`: the rows to encode in `format`.
    CopyOut { rows: SendableRecordBatchStream, format: CopyFormat },
    /// An endless result (`SUBSCRIBE`): rows arrive as they commit, with pauses between.
    /// Front ends send each batch as it comes instead of buffering, as a result set or,
    /// with `copy`, as `COPY … TO STDOUT` in that format.
    Feed { rows: SendableRecordBatchStream, copy: Option<CopyFormat> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTag {
    pub tag: String,
    pub rows: Option<u64>,
    /// Whether this statement begins or ends a transaction block.
    pub transaction: TransactionEffect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEffect {
    None,
    Begin,
    End,
}

impl CommandTag {
    pub fn new(tag: impl Into<String>) -> Self {
        CommandTag { tag: tag.into(), rows: None, transaction: TransactionEffect::None }
    }
    pub fn with_rows(tag: impl Into<String>, rows: u64) -> Self {
        CommandTag { tag: tag.into(), rows: Some(rows), transaction: TransactionEffect::None }
    }
}

/// The target of a `COPY ... FROM STDIN`.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub table: Arc<StreamTable>,
    /// Indices of the user columns the data provides, in data order.
    pub columns: Vec<usize>,
    pub format: CopyFormat,
}

impl CopyIn {
    /// The schema of the incoming data (the listed columns).
    pub fn data_schema(&self) -> SchemaRef {
        Arc::new(self.table.schema().project(&self.columns).expect("valid column indices"))
    }
}

/// Transaction status as reported in Postgres' ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InBlock,
    Failed,
}
