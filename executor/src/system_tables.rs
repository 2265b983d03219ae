//! Read-only system tables in the `streamhouse` schema, computed when scanned: state the
//! server keeps outside stream tables, made queryable with ordinary SQL.
//!
//! - `streamhouse.consumer_lag`: every Kafka consumer group's committed position per
//!   partition, the partition's high watermark, and the difference (the lag).

use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use streamhouse_streams::Streams;

/// The schema system tables live in (shared with materialized-view progress).
pub const SYSTEM_SCHEMA: &str = crate::materialized::PROGRESS_SCHEMA;
pub const CONSUMER_LAG: &str = "consumer_lag";
pub const SYSTEM_TABLES: [&str; 1] = [CONSUMER_LAG];

/// The system table `name`, if there is one.
pub fn lookup(streams: &Arc<Streams>, name: &str) -> Option<Arc<dyn TableProvider>> {
    (name == CONSUMER_LAG).then(|| Arc::new(ConsumerLag { streams: streams.clone() }) as _)
}

#[derive(Debug)]
struct ConsumerLag {
    streams: Arc<Streams>,
}

fn consumer_lag_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("group_id", DataType::Utf8, false),
        Field::new("table_schema", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("committed_offset", DataType::Int64, false),
        Field::new("high_watermark", DataType::Int64, false),
        Field::new("lag", DataType::Int64, false),
        Field::new("committed_at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]))
}

#[async_trait]
impl TableProvider for ConsumerLag {
    fn schema(&self) -> SchemaRef {
        consumer_lag_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let offsets = self.streams.catalog().consumer_offsets(None).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut rows: Vec<(String, String, String, i32, i64, i64, i64)> = Vec::new();
        for o in offsets {
            // Positions of dropped tables are kept by the catalog but shown no more.
            let Some(table) = self.streams.table_by_id(o.table_id) else { continue };
            let Ok(bounds) = self.streams.partition_bounds(&table, o.partition as u32) else { continue };
            rows.push((
                o.group_id,
                table.schema_name().to_string(),
                table.name().to_string(),
                o.partition,
                o.next_offset,
                bounds.high_watermark,
                o.committed_at_ms,
            ));
        }
        rows.sort();
        let schema = consumer_lag_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.3))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.4))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.5))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.5.saturating_sub(r.4).max(0)))),
                Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.6)).with_timezone("UTC")),
            ],
        )?;
        let memory = MemorySourceConfig::try_new(&[vec![batch]], schema, projection.cloned())?;
        Ok(DataSourceExec::from_data_source(memory))
    }
}
