//! The hidden system columns every stream table carries, and the stored row layout.
//!
//! Rows are stored (in the WAL, the tails and the segments) as the user's columns followed
//! by the system columns, so a segment is self-describing and readers need no side table
//! to answer `SELECT _offset, ...`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

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

/// User columns followed by the system columns, as stored and as scanned.
pub fn stored_schema(user: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = user.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(PARTITION_COLUMN, DataType::Int32, false)));
    fields.push(Arc::new(Field::new(OFFSET_COLUMN, DataType::Int64, false)));
    fields.push(Arc::new(Field::new(TIMESTAMP_COLUMN, timestamp_type(), false)));
    fields.push(Arc::new(Field::new(KEY_COLUMN, DataType::Utf8, true)));
    Arc::new(Schema::new_with_metadata(fields, user.metadata().clone()))
}
