//! Key-compacted tables (`WITH (key = 'id', cleanup = 'compact')`): a table of the latest
//! row per key, as a Kafka topic with `cleanup.policy=compact` keeps it. Every version is
//! stored (a Kafka consumer reads them all, as from a topic not compacted yet); `SELECT`
//! reads the latest row of each key in each partition (rows routed by the same key land
//! in the same partition; rows without a key are all kept), and a materialized view reads
//! the table as a change log: a row replaces the key's previous row
//! (`materialized::inputs::LatestByKey`).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Column;
use datafusion::datasource::{provider_as_source, TableProvider, TableType};
use datafusion::error::Result;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{lit, when, Expr, ExprFunctionExt, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use streamhouse_streams::{StreamTable, Streams, KEY_COLUMN, OFFSET_COLUMN, PARTITION_COLUMN};

use crate::provider::StreamTableProvider;

/// The window column marking each key's latest row (1).
const LATEST_COLUMN: &str = "__latest_of_key";

/// `SELECT` over a key-compacted table: the latest row per key.
#[derive(Debug)]
pub(crate) struct CompactedTableProvider {
    rows: Arc<StreamTableProvider>,
}

impl CompactedTableProvider {
    pub(crate) fn new(streams: Arc<Streams>, table: Arc<StreamTable>) -> Self {
        CompactedTableProvider { rows: Arc::new(StreamTableProvider::new(streams, table)) }
    }

    /// The table whose latest rows these are.
    pub(crate) fn table(&self) -> &Arc<StreamTable> {
        self.rows.table()
    }
}

/// The column whose value is the key: the table's key column, or `_key` (the Kafka
/// record key of a typed topic) for a table without one.
pub(crate) fn compaction_key(table: &StreamTable) -> &str {
    table.options().key.as_deref().unwrap_or(KEY_COLUMN)
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

#[async_trait]
impl TableProvider for CompactedTableProvider {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Rows without a key are each their own "key": a partition of one.
        let key = compaction_key(self.table());
        let keyless_alone = when(column(key).is_null(), column(OFFSET_COLUMN)).end()?;
        let latest = row_number()
            .partition_by(vec![column(PARTITION_COLUMN), column(key), keyless_alone])
            .order_by(vec![column(OFFSET_COLUMN).sort(false, true)])
            .build()?
            .alias(LATEST_COLUMN);
        let schema = self.schema();
        let wanted: Vec<Expr> = match projection {
            Some(indices) => indices.iter().map(|i| column(schema.field(*i).name())).collect(),
            None => schema.fields().iter().map(|f| column(f.name())).collect(),
        };
        let plan = LogicalPlanBuilder::scan(self.table().name(), provider_as_source(self.rows.clone()), None)?
            .window(vec![latest])?
            .filter(column(LATEST_COLUMN).eq(lit(1u64)))?
            .project(wanted)?
            .build()?;
        state.create_physical_plan(&plan).await
    }
}
