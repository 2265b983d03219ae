//! Stream tables: partitions, offsets, in-memory tails and Parquet segments.
//!
//! Every table is an append-only log split into partitions. An append is routed to
//! partitions (key hash or round-robin), stamped with offsets and ingest time, written to
//! the write-ahead log as one atomic record, and kept in an in-memory Arrow *tail* until a
//! background flush turns the tail into a Parquet *segment* on object storage and commits
//! it in the catalog. Readers take a [`TableSnapshot`]: the committed segments plus the
//! tail up to the WAL's acknowledged position, so a reader never sees a row before it is
//! durable, and sees every row of one append together.

mod columns;
mod config;
mod engine;
mod error;
mod flush;
mod mapped;
mod partition;
mod read_ahead;
mod reader;
mod record;
mod routing;
pub mod store;
mod table;

pub use columns::{
    is_system_column, stored_schema, KEY_COLUMN, OFFSET_COLUMN, PARTITION_COLUMN,
    SYSTEM_COLUMNS, TIMESTAMP_COLUMN,
};
pub use config::{StreamsConfig, MAX_TAIL_BYTES_DEFAULT, SEGMENT_TARGET_BYTES_DEFAULT};
pub use engine::{AppendInFlight, AppendReceipt, Changes, PartitionAppend, Streams, TableWrite, WrittenRange};
pub use error::Error;
pub use partition::{PartitionSnapshot, TailBatch};
pub use reader::{PartitionBounds, PartitionRead};
pub use table::{StreamTable, TableSnapshot};

pub use streamhouse_catalog::{Catalog, MaterializedView, SegmentEntry, TableEntry, TableOptions, ViewEntry, Watermark, MAX_PARTITIONS};
pub use streamhouse_wal::Durability;
