//! Turning executor [`Output`]s and [`Error`]s into pgwire responses: rows encoded by
//! `arrow-pg`, command tags, COPY streams, and ErrorResponses with SQLSTATE, hint and
//! position.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use super::cancel::CancelSignal;
use streamhouse_executor::{CommandTag, CopyFormat, Error, TransactionEffect};

pub fn error_info(e: &Error) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_owned(), e.sqlstate().to_owned(), e.to_string());
    info.hint = e.hint().map(str::to_owned);
    info.position = e.position().map(|p| p.to_string());
    info
}

pub fn error_response(e: &Error) -> Response {
    Response::Error(Box::new(error_info(e)))
}

pub fn user_error(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

pub fn command(tag: CommandTag) -> Response {
    let mut t = if tag.tag == "INSERT" { Tag::new("INSERT").with_oid(0) } else { Tag::new(&tag.tag) };
    if let Some(rows) = tag.rows {
        t = t.with_rows(rows as usize);
    }
    match tag.transaction {
        TransactionEffect::None => Response::Execution(t),
        TransactionEffect::Begin => Response::TransactionStart(t),
        TransactionEffect::End => Response::TransactionEnd(t),
    }
}

pub fn fields(schema: &arrow::datatypes::Schema, format: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    Ok(Arc::new(arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)?))
}

/// Streams rows batch by batch (a huge result never sits whole in memory), until the
/// client cancels.
pub fn rows(stream: SendableRecordBatchStream, format: &Format, cancel: &CancelSignal) -> PgWireResult<Response> {
    let fields = fields(&stream.schema(), format)?;
    let encode_fields = fields.clone();
    let rows = cancel
        .guard(stream)
        .map(move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
            match batch {
                Ok(batch) => arrow_pg::datatypes::encode_recordbatch(encode_fields.clone(), batch),
                Err(e) => Box::new(std::iter::once(Err(user_error(&e)))),
            }
        })
        .flat_map(stream::iter);
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// `COPY ... TO STDOUT`: one CopyData message per row, so the tag counts rows.
pub fn copy_out(stream: SendableRecordBatchStream, format: CopyFormat, cancel: &CancelSignal) -> Response {
    let columns = stream.schema().fields().len();
    let data = cancel.guard(stream).flat_map(move |batch| {
        let messages: Vec<PgWireResult<CopyData>> = match batch {
            Ok(batch) => encode_rows(&batch, &format),
            Err(e) => vec![Err(user_error(&e))],
        };
        stream::iter(messages)
    });
    Response::CopyOut(CopyResponse::new(0, columns, data))
}

fn encode_rows(batch: &RecordBatch, format: &CopyFormat) -> Vec<PgWireResult<CopyData>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    if let Err(e) = streamhouse_executor::encode_rows(batch, format, |line| {
        out.push(Ok(CopyData::new(Bytes::copy_from_slice(line))))
    }) {
        out.push(Err(user_error(&e)));
    }
    out
}
