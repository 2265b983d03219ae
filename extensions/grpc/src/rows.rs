//! A produce request's rows, decoded against the table: JSON lines by the table's own
//! types (arrow-json), Arrow IPC by column name (cast later, like COPY and Flight ingest).

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use streamhouse_executor::{Engine, Error, COPY_MAX_BUFFER_BYTES, DEFAULT_SCHEMA};
use streamhouse_streams::StreamTable;
use tonic::Status;

use crate::proto::{ProduceRequest, Rows};

/// Decoded bytes one request may expand to (an Arrow IPC stream may be compressed): the
/// same bound as one COPY or one Flight ingest.
pub const MAX_DECODED_BYTES: usize = COPY_MAX_BUFFER_BYTES;

/// Rows ready to append: the table, the table column of each batch column, the batches.
pub struct Decoded {
    pub table: Arc<StreamTable>,
    pub columns: Vec<usize>,
    pub batches: Vec<RecordBatch>,
}

pub fn decode(engine: &Engine, request: ProduceRequest) -> Result<Decoded, Status> {
    let table = find_table(engine, &request.table)?;
    match request.rows {
        None => Err(Status::invalid_argument("the request carries no rows: set json or arrow_ipc")),
        Some(Rows::Json(bytes)) => {
            let schema = table.schema();
            let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
                .with_strict_mode(true)
                .build_decoder()
                .map_err(|e| Status::internal(e.to_string()))?;
            let mut batches = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let read = decoder.decode(rest).map_err(|e| Status::invalid_argument(format!("JSON rows do not decode: {e}")))?;
                rest = &rest[read..];
                if let Some(batch) = decoder.flush().map_err(|e| Status::invalid_argument(format!("JSON rows do not fit the table: {e}")))? {
                    batches.push(batch);
                }
            }
            if decoder.has_partial_record() {
                return Err(Status::invalid_argument("JSON rows end in the middle of an object"));
            }
            if let Some(batch) = decoder.flush().map_err(|e| Status::invalid_argument(format!("JSON rows do not fit the table: {e}")))? {
                batches.push(batch);
            }
            Ok(Decoded { columns: (0..schema.fields().len()).collect(), table, batches })
        }
        Some(Rows::ArrowIpc(bytes)) => {
            let reader = StreamReader::try_new(Cursor::new(bytes), None)
                .map_err(|e| Status::invalid_argument(format!("not an Arrow IPC stream: {e}")))?;
            let uploaded = reader.schema();
            let mut batches = Vec::new();
            let mut decoded = 0usize;
            for batch in reader {
                let batch = batch.map_err(|e| Status::invalid_argument(format!("Arrow IPC stream does not decode: {e}")))?;
                decoded += batch.get_array_memory_size();
                if decoded > MAX_DECODED_BYTES {
                    return Err(Status::resource_exhausted(format!(
                        "one request may expand to at most {MAX_DECODED_BYTES} bytes of rows; send several"
                    )));
                }
                batches.push(batch);
            }
            let target = table.schema();
            let mut columns = Vec::with_capacity(uploaded.fields().len());
            for field in uploaded.fields() {
                let position = target.index_of(field.name()).map_err(|_| sql_status(&Error::UndefinedColumn(field.name().clone())))?;
                if columns.contains(&position) {
                    return Err(sql_status(&Error::DuplicateColumn(field.name().clone())));
                }
                columns.push(position);
            }
            Ok(Decoded { table, columns, batches })
        }
    }
}

/// `name` or `schema.name`, found as written or, as SQL folds unquoted names, lowercased.
fn find_table(engine: &Engine, name: &str) -> Result<Arc<StreamTable>, Status> {
    let (schema, table) = name.split_once('.').unwrap_or((DEFAULT_SCHEMA, name));
    let streams = engine.streams();
    streams
        .table(schema, table)
        .or_else(|| streams.table(&schema.to_lowercase(), &table.to_lowercase()))
        .ok_or_else(|| sql_status(&Error::UndefinedTable(name.to_string())))
}

pub fn sql_status(error: &Error) -> Status {
    streamhouse_flight::status::from_sql(error)
}
