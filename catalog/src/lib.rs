//! StreamHouse metadata catalog: schemas, tables, views, partitions, segments,
//! consumer-group offsets and the schema registry's schemas.
//!
//! Why this crate exists: every other component needs one durable, transactional place
//! for "what tables exist, what their Arrow schema is, and which offsets of each partition
//! are safely stored in which segment". That place is a SQLite file for the embedded
//! single-node default and PostgreSQL for scale-out; both are reached through one
//! `sqlx::AnyPool` code path and one migration tree (`catalog/migrations`).
//!
//! The catalog is the commit point of the flush path: a segment file only "exists" once
//! [`Catalog::commit_segment`] succeeded, and that call fences stale or duplicate flushes
//! by requiring `base_offset == committed_offset`.

mod comments;
mod connect;
mod consumer_offsets;
mod error;
mod schema_registry;
mod schemas;
mod segments;
mod tables;
mod views;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use comments::CommentEntry;
pub use consumer_offsets::ConsumerOffset;
pub use error::Error;
pub use schema_registry::{StoredSchema, SubjectVersion};
pub use tables::MAX_PARTITIONS;

/// Shared Arrow schema, as used throughout DataFusion.
pub type SchemaRef = Arc<arrow_schema::Schema>;

/// Handle to the catalog database. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Catalog {
    pool: sqlx::AnyPool,
    backend: connect::Backend,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

/// Per-table options from `CREATE TABLE … WITH (…)`.
///
/// Stored as JSON. `#[serde(default)]` plus serde's default of ignoring unknown fields
/// keeps old and new binaries able to read each other's rows (forward/backward compat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableOptions {
    /// Number of partitions; at least 1.
    pub partitions: u32,
    /// Column whose value is hashed to pick the partition (`None`: round-robin).
    pub key: Option<String>,
    /// Delete segments whose rows are all older than this.
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments while a partition is larger than this.
    pub retention_bytes: Option<i64>,
    /// Set when the table holds a materialized view's rows: written only by its maintenance.
    pub materialized: Option<MaterializedView>,
    /// `WATERMARK FOR column AS column - INTERVAL '…'`: how far event time may run behind.
    pub watermark: Option<Watermark>,
    /// `cleanup = 'compact'`: the table is the latest row per key (every version is
    /// stored; `SELECT` and materialized views read the latest).
    pub compact: bool,
}

/// A table's watermark: views over the table hold that no row will arrive more than
/// `delay_us` behind the latest event time they have seen; rows that do are late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The event-time column (a timestamp).
    pub column: String,
    /// Allowed lateness, in microseconds (0: rows must arrive in event-time order).
    pub delay_us: i64,
}

/// What a materialized view's table is kept equal to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterializedView {
    /// The view's query (SQL), planned in the view's schema.
    pub definition: String,
    /// The stream table it reads (the first, when it reads several).
    pub source_table_id: i64,
    /// Every stream table it reads, in the order its progress is recorded (empty in
    /// views stored before views could read several: then `source_table_id` alone).
    #[serde(default)]
    pub source_table_ids: Vec<i64>,
    /// Set for aggregating views: the table holding their groups' aggregate states (the
    /// view's own table then holds its change log).
    #[serde(default)]
    pub state_table_id: Option<i64>,
    /// `EMIT ON WINDOW CLOSE`: each window's row appears once, final, when the source's
    /// watermark passes the window's end (and its state is then dropped).
    #[serde(default)]
    pub emit_on_window_close: bool,
    /// Set for views of rows (no aggregation) over another view's change log: rows leave
    /// such a view too, so its table is a change log (`insert` / `delete`) as well.
    #[serde(default)]
    pub change_log: bool,
    /// The views made of the query's aggregating subqueries, which it reads (see
    /// `executor/src/materialized/parts.rs`), in the order they were made: dropped with it.
    #[serde(default)]
    pub parts: Vec<i64>,
}

impl MaterializedView {
    /// The stream tables the view reads.
    pub fn sources(&self) -> Vec<i64> {
        if self.source_table_ids.is_empty() {
            vec![self.source_table_id]
        } else {
            self.source_table_ids.clone()
        }
    }
}

/// Written by hand rather than derived so that the default is a usable table
/// (one partition) instead of a table nobody can write to.
impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            partitions: 1,
            key: None,
            retention_ms: None,
            retention_bytes: None,
            materialized: None,
            watermark: None,
            compact: false,
        }
    }
}

/// A table as stored in the catalog.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// Catalog-wide unique id, never reused after a drop.
    pub id: i64,
    /// SQL schema (namespace) name.
    pub schema: String,
    pub name: String,
    /// User columns only; system columns (`_offset`, …) are added by the engine.
    pub arrow_schema: SchemaRef,
    pub options: TableOptions,
    pub created_at_ms: i64,
}

/// A view as stored in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewEntry {
    pub schema: String,
    pub name: String,
    /// The query's SQL text.
    pub definition: String,
    pub created_at_ms: i64,
}

/// Offsets of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionEntry {
    pub table_id: i64,
    pub partition: i32,
    /// Offsets `< committed_offset` are in committed segments; the WAL replays from here.
    pub committed_offset: i64,
    /// Offsets `< start_offset` were deleted by retention.
    pub start_offset: i64,
}

/// One immutable segment file covering `[base_offset, end_offset)` of a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub table_id: i64,
    pub partition: i32,
    pub base_offset: i64,
    /// Exclusive.
    pub end_offset: i64,
    pub row_count: i64,
    pub min_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub size_bytes: i64,
    /// Object-store path of the Parquet file.
    pub path: String,
    pub created_at_ms: i64,
}

/// The two kinds of relation, which share one namespace per schema.
#[derive(Clone, Copy)]
pub(crate) enum Relation {
    Table,
    View,
}

/// Whether `schema.name` exists as this kind of relation, seen from `conn` (a transaction).
pub(crate) async fn relation_exists(
    conn: &mut sqlx::AnyConnection,
    kind: Relation,
    schema: &str,
    name: &str,
) -> Result<bool, Error> {
    let sql = match kind {
        Relation::Table => "SELECT 1 FROM sh_tables WHERE schema_name = $1 AND name = $2",
        Relation::View => "SELECT 1 FROM sh_views WHERE schema_name = $1 AND name = $2",
    };
    Ok(sqlx::query(sql).bind(schema).bind(name).fetch_optional(conn).await?.is_some())
}

/// Wall-clock milliseconds since the Unix epoch, for `created_at_ms` columns.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
