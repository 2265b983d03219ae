//! Turning executor [`Output`]s and [`Error`]s into pgwire responses: rows encoded by
//! `arrow-pg`, command tags, COPY streams, and ErrorResponses with SQLSTATE, hint and
//! position.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyEncoder, CopyResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use super::cancel::CancelSignal;
use pgwire::api::Type;
use streamhouse_executor::{pg_text, CommandTag, CopyFormat, Error, TransactionEffect, PG_TYPE_METADATA};

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

/// The row description: `arrow-pg`'s mapping, except that columns declared json or jsonb
/// (stored as text, marked in the field metadata) are reported as such, so drivers decode
/// them as JSON.
pub fn fields(schema: &arrow::datatypes::Schema, format: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    let mut fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)?;
    for (info, field) in fields.iter_mut().zip(schema.fields()) {
        let declared = match field.metadata().get(PG_TYPE_METADATA).map(String::as_str) {
            Some("json") => Type::JSON,
            Some("jsonb") => Type::JSONB,
            _ => continue,
        };
        *info = FieldInfo::new(info.name().to_string(), info.table_id(), info.column_id(), declared, info.format());
    }
    Ok(Arc::new(fields))
}

/// Streams rows batch by batch (a huge result never sits whole in memory), until the
/// client cancels. Text-format columns of the types PostgreSQL prints its own way are
/// formatted by [`pg_text`] (in the session's time zone `zone`); the rest by `arrow-pg`.
pub fn rows(stream: SendableRecordBatchStream, format: &Format, zone: Tz, cancel: &CancelSignal) -> PgWireResult<Response> {
    let fields = fields(&stream.schema(), format)?;
    let encode_fields = fields.clone();
    let rows = cancel
        .guard(stream)
        .map(move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
            match batch.and_then(|b| in_pg_text(b, &encode_fields, &zone)) {
                Ok(batch) => arrow_pg::datatypes::encode_recordbatch(encode_fields.clone(), batch),
                Err(e) => Box::new(std::iter::once(Err(user_error(&e)))),
            }
        })
        .flat_map(stream::iter);
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// The batch as PostgreSQL's encodings need it (the row description keeps the original
/// types): text-format columns of [`pg_text::needs_pg_text`] types already turned into
/// PostgreSQL's text, and binary-format jsonb as its binary form (version byte 1, then
/// the text).
fn in_pg_text(batch: RecordBatch, fields: &[FieldInfo], zone: &Tz) -> Result<RecordBatch, Error> {
    let rewrite: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| match fields[i].format() {
            FieldFormat::Text => pg_text::needs_pg_text(batch.column(i).data_type()),
            FieldFormat::Binary => fields[i].datatype() == &Type::JSONB,
        })
        .collect();
    if rewrite.is_empty() {
        return Ok(batch);
    }
    let mut schema_fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = batch.columns().to_vec();
    for i in rewrite {
        if fields[i].format() == FieldFormat::Binary {
            columns[i] = jsonb_binary(&columns[i])?;
            schema_fields[i] = schema_fields[i].clone().with_data_type(DataType::Binary);
            continue;
        }
        columns[i] = pg_text::to_pg_text(&columns[i], zone);
        schema_fields[i] = schema_fields[i].clone().with_data_type(DataType::Utf8);
    }
    RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns).map_err(|e| Error::Internal(e.to_string()))
}

/// jsonb's binary wire form: a version byte (1) followed by the JSON text.
fn jsonb_binary(column: &arrow::array::ArrayRef) -> Result<arrow::array::ArrayRef, Error> {
    let text = arrow::compute::cast(column, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
    let text = text.as_any().downcast_ref::<arrow::array::StringArray>().expect("cast to Utf8 gives strings");
    let binary: arrow::array::BinaryArray = text
        .iter()
        .map(|v| v.map(|json| [&[JSONB_VERSION][..], json.as_bytes()].concat()))
        .collect();
    Ok(Arc::new(binary))
}

/// The only jsonb binary format version PostgreSQL has.
const JSONB_VERSION: u8 = 1;

/// `COPY ... TO STDOUT`: one CopyData message per row, so the tag counts rows.
pub fn copy_out(stream: SendableRecordBatchStream, format: CopyFormat, zone: Tz, cancel: &CancelSignal) -> PgWireResult<Response> {
    if format.binary {
        return copy_out_binary(stream, zone, cancel);
    }
    let columns = stream.schema().fields().len();
    let data = cancel.guard(stream).flat_map(move |batch| {
        let messages: Vec<PgWireResult<CopyData>> = match batch {
            Ok(batch) => encode_rows(&batch, &format, &zone),
            Err(e) => vec![Err(user_error(&e))],
        };
        stream::iter(messages)
    });
    Ok(Response::CopyOut(CopyResponse::new(0, columns, data)))
}

/// A binary COPY of no rows: the file header (signature, flags, no extension) and the
/// trailer (-1 field count), in one message as PostgreSQL sends it.
const EMPTY_BINARY_COPY: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff";

/// `COPY ... TO STDOUT (FORMAT binary)`: PostgreSQL's binary COPY stream, each value in
/// its binary wire form (`arrow-pg`'s encoders, as for binary-format results; jsonb with
/// its version byte). pgwire's encoder writes the file header before the first row; we
/// end with the trailer ourselves (rather than `CopyResponse::new(1, …)`, which appends
/// one even after an empty result, whose header must come with it). pgwire counts the
/// header+trailer message of an empty result as a row: the tag then says `COPY 1`.
fn copy_out_binary(stream: SendableRecordBatchStream, zone: Tz, cancel: &CancelSignal) -> PgWireResult<Response> {
    let schema = stream.schema();
    let fields = fields(&schema, &Format::UnifiedBinary)?;
    let columns = fields.len();
    let mut encoder = CopyEncoder::new_binary(fields.clone());
    let wrote_rows = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = wrote_rows.clone();
    let rows = cancel.guard(stream).flat_map(move |batch| {
        let messages = match batch.and_then(|b| in_pg_text(b, &fields, &zone)) {
            Ok(batch) => encode_binary_rows(&batch, &fields, &mut encoder),
            Err(e) => vec![Err(user_error(&e))],
        };
        if !messages.is_empty() {
            seen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        stream::iter(messages)
    });
    let end = stream::once(async move {
        Ok(if wrote_rows.load(std::sync::atomic::Ordering::Relaxed) {
            CopyEncoder::finish_copy_binary()
        } else {
            CopyData::new(Bytes::from_static(EMPTY_BINARY_COPY))
        })
    });
    let mut response = CopyResponse::new(0, columns, rows.chain(end));
    response.format = 1;
    Ok(Response::CopyOut(response))
}

fn encode_binary_rows(batch: &RecordBatch, fields: &[FieldInfo], encoder: &mut CopyEncoder) -> Vec<PgWireResult<CopyData>> {
    let schema = batch.schema();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (i, column) in batch.columns().iter().enumerate() {
            if let Err(e) = arrow_pg::encoder::encode_value(encoder, column, row, schema.field(i), &fields[i]) {
                out.push(Err(e));
                return out;
            }
        }
        out.push(Ok(arrow_pg::encoder::Encoder::take_row(encoder)));
    }
    out
}

fn encode_rows(batch: &RecordBatch, format: &CopyFormat, zone: &Tz) -> Vec<PgWireResult<CopyData>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    if let Err(e) = streamhouse_executor::encode_rows(batch, format, zone, |line| {
        out.push(Ok(CopyData::new(Bytes::copy_from_slice(line))))
    }) {
        out.push(Err(user_error(&e)));
    }
    out
}
