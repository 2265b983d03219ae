//! What `SELECT` reads of a view whose table is a change log (aggregating views, and
//! views of rows over another view's change log): the view's current rows, kept in
//! memory by its maintainer and served once it has recovered them after a start.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session as CatalogSession;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use streamhouse_streams::StreamTable;

use crate::error::{Error, Result};

/// How long a `SELECT` waits for a restarted view to recover its rows.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

/// A view's current rows, as its maintainer keeps them.
pub(crate) trait CurrentRows: Send + Sync + std::fmt::Debug {
    /// The view (its table holds the change log).
    fn view(&self) -> &Arc<StreamTable>;
    /// Whether the maintainer has recovered the rows after a start.
    fn readiness(&self) -> &Readiness;
    /// The rows now, as the view's result columns.
    fn snapshot(&self) -> Result<RecordBatch>;
}

/// Set once a maintainer has recovered a view's rows (or failed to).
pub(crate) struct Readiness(tokio::sync::watch::Sender<Option<std::result::Result<(), String>>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(tokio::sync::watch::Sender::new(None))
    }
}

impl Readiness {
    pub(crate) fn set(&self, outcome: std::result::Result<(), String>) {
        self.0.send_replace(Some(outcome));
    }

    async fn wait(&self, view: &str) -> Result<()> {
        let mut ready = self.0.subscribe();
        let outcome = tokio::time::timeout(RECOVERY_WAIT, ready.wait_for(|r| r.is_some()))
            .await
            .map_err(|_| Error::ObjectNotInPrerequisiteState(format!("materialized view \"{view}\" is still recovering its state")))?
            .map_err(|_| Error::ObjectNotInPrerequisiteState(format!("materialized view \"{view}\" is not maintained")))?
            .clone();
        outcome
            .expect("waited for Some")
            .map_err(|e| Error::ObjectNotInPrerequisiteState(format!("materialized view \"{view}\" could not recover its state: {e}")))
    }
}

/// A view's columns as `SELECT` sees them: its change log's, without `_change`.
pub(crate) fn result_columns(view: &StreamTable) -> SchemaRef {
    let schema = view.schema();
    let fields: Vec<_> = schema.fields().iter().filter(|f| f.name() != super::CHANGE_COLUMN).cloned().collect();
    Arc::new(arrow::datatypes::Schema::new(fields))
}

/// `SELECT` over such a view: its current rows, from memory.
#[derive(Debug)]
pub(crate) struct CurrentRowsProvider {
    rows: Arc<dyn CurrentRows>,
    schema: SchemaRef,
}

impl CurrentRowsProvider {
    pub(crate) fn new(rows: Arc<dyn CurrentRows>) -> Self {
        let schema = result_columns(rows.view());
        CurrentRowsProvider { rows, schema }
    }

    /// The view whose rows these are.
    pub(crate) fn view(&self) -> &Arc<StreamTable> {
        self.rows.view()
    }
}

#[async_trait]
impl TableProvider for CurrentRowsProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let external = |e: Error| datafusion::error::DataFusionError::External(Box::new(e));
        self.rows.readiness().wait(self.rows.view().name()).await.map_err(external)?;
        let batch = self.rows.snapshot().map_err(external)?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())?)
    }
}
