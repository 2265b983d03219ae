//! The hidden system columns every stream table carries, and the stored row layout.
//!
//! Rows are stored (in the tails and the segments) as the user's columns followed by the
//! system columns, so a segment is self-describing and readers need no side table to
//! answer `SELECT _offset, ...`. The WAL keeps a leaner layout, the user's columns and
//! `_key`: the other system columns follow from the record (see `record.rs`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

pub const PARTITION_COLUMN: &str = "_partition";
pub const OFFSET_COLUMN: &str = "_offset";
pub const TIMESTAMP_COLUMN: &str = "_timestamp";
pub const KEY_COLUMN: &str = "_key";
pub const SYSTEM_COLUMNS: [&str; 4] = [PARTITION_COLUMN, OFFSET_COLUMN, TIMESTAMP_COLUMN, KEY_COLUMN];

pub fn is_system_column(name: &str) -> bool {
    SYSTEM_COLUMNS.contains(&name)
}

/// The type of `_timestamp`: ingest time in microseconds, UTC (Postgres `timestamptz`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn key_field() -> Field {
    Field::new(KEY_COLUMN, DataType::Utf8, true)
}

/// User columns followed by the system columns, as stored and as scanned.
pub fn stored_schema(user: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = user.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(PARTITION_COLUMN, DataType::Int32, false)));
    fields.push(Arc::new(Field::new(OFFSET_COLUMN, DataType::Int64, false)));
    fields.push(Arc::new(Field::new(TIMESTAMP_COLUMN, timestamp_type(), false)));
    fields.push(Arc::new(key_field()));
    Arc::new(Schema::new_with_metadata(fields, user.metadata().clone()))
}

/// The WAL layout: user columns followed by `_key`.
pub fn wal_schema(user: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = user.fields().iter().cloned().collect();
    fields.push(Arc::new(key_field()));
    Arc::new(Schema::new_with_metadata(fields, user.metadata().clone()))
}

/// Turns rows in the WAL layout into the stored layout by adding `_partition`, `_offset`
/// (from `base_offset` on) and `_timestamp`.
pub fn stored_batch(
    stored: &SchemaRef,
    wal_rows: &RecordBatch,
    partition: u32,
    base_offset: i64,
    timestamp_us: i64,
) -> Result<RecordBatch, ArrowError> {
    let n = wal_rows.num_rows();
    let (key, user) = wal_rows.columns().split_last().expect("the WAL layout ends with _key");
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(user.len() + SYSTEM_COLUMNS.len());
    columns.extend_from_slice(user);
    columns.push(Arc::new(Int32Array::from_value(partition as i32, n)));
    columns.push(Arc::new(Int64Array::from_iter_values(base_offset..base_offset + n as i64)));
    columns.push(Arc::new(TimestampMicrosecondArray::from_value(timestamp_us, n).with_data_type(timestamp_type())));
    columns.push(key.clone());
    RecordBatch::try_new(stored.clone(), columns)
}
