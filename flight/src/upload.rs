//! Incoming Flight data (DoPut): decoded whole, within a byte limit, because what it
//! carries — an ingest or a set of parameter rows — is applied all at once or not at all.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use futures::{StreamExt, TryStreamExt};
use streamhouse_executor::COPY_MAX_BUFFER_BYTES;
use tonic::Status;

/// Decoded bytes one DoPut may carry (the same bound as one COPY).
pub const MAX_UPLOAD_BYTES: usize = COPY_MAX_BUFFER_BYTES;

/// The upload's schema (None when it carried none) and its batches.
pub async fn receive(data: PeekableFlightDataStream) -> Result<(Option<Arc<Schema>>, Vec<RecordBatch>), Status> {
    let mut stream = FlightRecordBatchStream::new_from_flight_data(data.map_err(FlightError::from));
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Status::from)?;
        // The batch's own bytes: its columns share the message body, so
        // `get_array_memory_size` would count the body once per column.
        bytes += batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0)).sum::<usize>();
        if bytes > MAX_UPLOAD_BYTES {
            return Err(Status::resource_exhausted(format!(
                "one upload may carry at most {MAX_UPLOAD_BYTES} bytes of decoded data; split it into several puts"
            )));
        }
        batches.push(batch);
    }
    Ok((stream.schema().cloned(), batches))
}
