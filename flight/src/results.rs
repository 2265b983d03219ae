//! Result sets as Flight data: record batches streamed as they are produced (a large
//! result never sits whole in memory; if the client stops reading, gRPC flow control
//! stops the query), in the plain Arrow types every client reads.
//!
//! Scans produce view types (`Utf8View`, `BinaryView`); they leave as `Utf8`/`Binary`
//! because Arrow implementations in BI tools and older drivers do not all read views.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::Status;

use crate::status;

pub type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Target size of one encoded batch (the encoder splits larger ones).
const TARGET_FLIGHT_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// The type a column has on the wire.
fn wire_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// The schema clients see for a table with `schema`.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> =
        schema.fields().iter().map(|f| f.as_ref().clone().with_data_type(wire_type(f.data_type()))).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The schema clients see for a query result: wire types, every column nullable.
/// GetFlightInfo describes a query from its logical plan, DoGet streams what the optimized
/// physical plan produces, and the optimizer may prove a column non-null (a folded
/// `arrow_typeof(now())`); clients such as ADBC refuse a stream whose schema differs from
/// the announced one, so both sides announce the weaker, always-true nullability.
pub fn result_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = wire_schema(schema).fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn to_wire(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, FlightError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { arrow::compute::cast(c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Streams a query's rows.
pub fn stream_rows(rows: SendableRecordBatchStream) -> FlightDataStream {
    let schema = result_schema(&rows.schema());
    let batch_schema = schema.clone();
    let batches = rows.map(move |r| match r {
        Ok(batch) => to_wire(batch, &batch_schema),
        Err(e) => Err(FlightError::Tonic(Box::new(status::from_datafusion(e)))),
    });
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(TARGET_FLIGHT_BATCH_BYTES)
        .build(batches);
    Box::pin(encoded.map_err(Status::from))
}

/// Streams batches already in memory (metadata results).
pub fn stream_batch(batch: RecordBatch) -> FlightDataStream {
    let schema = batch.schema();
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }));
    Box::pin(encoded.map_err(Status::from))
}

/// A result with these columns and no rows (a command run through DoGet).
pub fn stream_empty(schema: SchemaRef) -> FlightDataStream {
    let encoded = FlightDataEncoderBuilder::new().with_schema(schema).build(futures::stream::empty());
    Box::pin(encoded.map_err(Status::from))
}
