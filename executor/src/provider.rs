//! The DataFusion `TableProvider` of a stream table: a snapshot's Parquet segments plus
//! its in-memory tail, read as one table.
//!
//! Segments are pruned here by partition, offset and ingest-time ranges (known from the
//! catalog, without opening a file); DataFusion's Parquet reader then prunes row groups
//! and pages by their statistics using the same filters. Segment files never change once
//! committed, so their Parquet footers and page indexes are read once and kept in the
//! runtime's metadata cache (bounded by DataFusion's `metadata_cache_limit`).
//!
//! Inside a transaction block a session's scans also read the rows the block has written
//! but not committed ([`PendingRows`], a session-config extension), as PostgreSQL shows a
//! transaction its own writes; their system columns are NULL until COMMIT assigns them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use streamhouse_streams::{
    SegmentEntry, StreamTable, Streams, TableWrite, OFFSET_COLUMN, PARTITION_COLUMN, TIMESTAMP_COLUMN,
};

/// The URL under which the segment store is registered in DataFusion's runtime.
pub const SEGMENT_STORE_URL: &str = "streamhouse://segments";

pub struct StreamTableProvider {
    streams: Arc<Streams>,
    table: Arc<StreamTable>,
    /// The stored layout with every column nullable and text as `Utf8View`. NOT
    /// NULL is enforced by the write path (`dml::widen_to_table`, `Streams::append`) with
    /// SQLSTATE 23502; declaring it to DataFusion as well would make it fail earlier,
    /// inside VALUES, with an untyped error.
    schema: SchemaRef,
}

impl std::fmt::Debug for StreamTableProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTableProvider").field("table", &self.table.name()).finish()
    }
}

impl StreamTableProvider {
    pub fn new(streams: Arc<Streams>, table: Arc<StreamTable>) -> Self {
        let schema = scan_schema(&table);
        StreamTableProvider { streams, table, schema }
    }

    /// The stream table this provider scans.
    pub(crate) fn table(&self) -> &Arc<StreamTable> {
        &self.table
    }
}

/// The layout scans produce: the stored columns, all nullable, text as `Utf8View`.
pub(crate) fn scan_schema(table: &StreamTable) -> SchemaRef {
    let stored = table.stored_schema();
    let fields: Vec<_> = stored
        .fields()
        .iter()
        .map(|f| {
            let scan_type = scan_type(f.data_type());
            f.as_ref().clone().with_nullable(true).with_data_type(scan_type)
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(fields, stored.metadata().clone()))
}

#[async_trait]
impl TableProvider for StreamTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Pruning is best effort; DataFusion re-applies every filter above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.streams.snapshot(&self.table);
        let schema = self.schema.clone();
        let bounds = Bounds::from_filters(filters);

        let mut tail_partitions = Vec::new();
        let mut files = Vec::new();
        for p in &snapshot.partitions {
            if !bounds.partition_may_match(p.partition as i64) {
                continue;
            }
            files.extend(p.segments.iter().filter(|s| bounds.segment_may_match(s)).map(segment_file));
            if !p.tail.is_empty() {
                let batches = p.tail.iter().map(|b| to_scan_layout(b, &schema)).collect::<Result<Vec<_>>>()?;
                tail_partitions.push(batches);
            }
        }
        if let Some(pending) = state.config().get_extension::<PendingRows>() {
            if let Some(batches) = pending.by_table.get(&self.table.id()) {
                let rows = batches.iter().map(|b| pending_in_scan_layout(b, &schema)).collect::<Result<Vec<_>>>()?;
                tail_partitions.push(rows);
            }
        }

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let store_url = ObjectStoreUrl::parse(SEGMENT_STORE_URL)?;
            let runtime = state.runtime_env();
            let readers = CachedParquetFileReaderFactory::new(
                runtime.object_store(&store_url)?,
                runtime.cache_manager.get_file_metadata_cache(),
            );
            let mut source = ParquetSource::new(schema.clone()).with_parquet_file_reader_factory(Arc::new(readers));
            if let Some(predicate) = conjunction(filters.iter().cloned()) {
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
            }
            let groups = split_into_groups(files, state.config().target_partitions());
            let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        if !tail_partitions.is_empty() {
            let mut memory = MemorySourceConfig::try_new(&tail_partitions, schema.clone(), projection.cloned())?;
            memory = memory.with_limit(limit);
            inputs.push(DataSourceExec::from_data_source(memory));
        }
        Ok(match inputs.len() {
            0 => Arc::new(EmptyExec::new(datafusion::common::project_schema(&schema, projection)?)),
            1 => inputs.pop().expect("one input"),
            _ => UnionExec::try_new(inputs)?,
        })
    }
}

/// The type a scan produces for a stored column type (see the module comment).
fn scan_type(stored: &DataType) -> DataType {
    match stored {
        DataType::Utf8 => DataType::Utf8View,
        other => other.clone(),
    }
}

/// A tail batch (stored layout) in the scan layout: view-typed columns cast, others shared.
pub(crate) fn to_scan_layout(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The rows a session's open transaction block has written, by table id (see the module
/// comment). Set on the session's config before each statement is planned.
#[derive(Debug, Default)]
pub(crate) struct PendingRows {
    by_table: HashMap<i64, Vec<RecordBatch>>,
}

impl PendingRows {
    pub(crate) fn of(writes: &[TableWrite]) -> Self {
        let mut by_table: HashMap<i64, Vec<RecordBatch>> = HashMap::new();
        for w in writes {
            by_table.entry(w.table.id()).or_default().extend(w.batches.iter().cloned());
        }
        PendingRows { by_table }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_table.is_empty()
    }
}

/// A pending batch (the table's user columns) in the scan layout: user columns by name,
/// cast where the scan type differs; system columns NULL (no partition, offset or ingest
/// time is assigned before COMMIT).
fn pending_in_scan_layout(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            Some(column) => arrow::compute::cast(column, field.data_type()),
            None => Ok(arrow::array::new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn segment_file(s: &SegmentEntry) -> PartitionedFile {
    PartitionedFile::new(s.path.clone(), s.size_bytes as u64)
}

fn split_into_groups(files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    let groups = groups.max(1).min(files.len());
    let mut out: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
    for (i, f) in files.into_iter().enumerate() {
        out[i % groups].push(f);
    }
    out.into_iter().map(FileGroup::new).collect()
}

pub(crate) fn conjunction(exprs: impl Iterator<Item = Expr>) -> Option<Expr> {
    exprs.reduce(|a, b| a.and(b))
}

/// Inclusive ranges on the system columns implied by simple `col op literal` filters.
#[derive(Debug)]
struct Bounds {
    partition: (i64, i64),
    offset: (i64, i64),
    timestamp_ms: (i64, i64),
}

impl Bounds {
    fn from_filters(filters: &[Expr]) -> Self {
        let mut b = Bounds { partition: FULL, offset: FULL, timestamp_ms: FULL };
        for f in filters {
            b.narrow(f);
        }
        b
    }

    fn narrow(&mut self, e: &Expr) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { return };
        if *op == Operator::And {
            self.narrow(left);
            self.narrow(right);
            return;
        }
        let (column, op, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) => (c.name.as_str(), *op, v),
            (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                Some(op) => (c.name.as_str(), op, v),
                None => return,
            },
            _ => return,
        };
        let (range, value) = match column {
            PARTITION_COLUMN => (&mut self.partition, scalar_i64(value)),
            OFFSET_COLUMN => (&mut self.offset, scalar_i64(value)),
            TIMESTAMP_COLUMN => (&mut self.timestamp_ms, scalar_timestamp_ms(value)),
            _ => return,
        };
        let Some(v) = value else { return };
        match op {
            Operator::Eq => *range = (range.0.max(v), range.1.min(v)),
            Operator::Gt => range.0 = range.0.max(v.saturating_add(1)),
            Operator::GtEq => range.0 = range.0.max(v),
            Operator::Lt => range.1 = range.1.min(v.saturating_sub(1)),
            Operator::LtEq => range.1 = range.1.min(v),
            _ => {}
        }
    }

    fn partition_may_match(&self, p: i64) -> bool {
        self.partition.0 <= p && p <= self.partition.1
    }

    fn segment_may_match(&self, s: &SegmentEntry) -> bool {
        overlaps(self.offset, (s.base_offset, s.end_offset - 1))
            // Segment times are whole milliseconds; widen by one to stay conservative.
            && overlaps(self.timestamp_ms, (s.min_timestamp_ms - 1, s.max_timestamp_ms + 1))
    }
}

const FULL: (i64, i64) = (i64::MIN, i64::MAX);

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn scalar_i64(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(x)) => Some(*x as i64),
        ScalarValue::Int16(Some(x)) => Some(*x as i64),
        ScalarValue::Int32(Some(x)) => Some(*x as i64),
        ScalarValue::Int64(Some(x)) => Some(*x),
        ScalarValue::UInt8(Some(x)) => Some(*x as i64),
        ScalarValue::UInt16(Some(x)) => Some(*x as i64),
        ScalarValue::UInt32(Some(x)) => Some(*x as i64),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
        _ => None,
    }
}

fn scalar_timestamp_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1000),
        ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampMicrosecond(Some(x), _) => Some(x.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(x.div_euclid(1_000_000)),
        _ => None,
    }
}
