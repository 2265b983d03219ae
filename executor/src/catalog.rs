//! DataFusion's view of the StreamHouse catalog: one database (`streamhouse`) whose
//! schemas, tables and views are read live from [`Streams`], so a table created on one
//! connection is visible to every other at once.
//!
//! A view is planned from its SQL each time it is used (with the engine's base session
//! state), so it always reads the tables as they are now.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::TableProvider;
use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion::error::{DataFusionError, Result};
use streamhouse_streams::{Streams, ViewEntry};

use crate::materialized::{is_change_log_view, CurrentRowsProvider, ViewResults};
use crate::provider::StreamTableProvider;
use crate::session::plan_statement;

/// The database name clients see (`current_database()`, `\l`).
pub const DATABASE_NAME: &str = "streamhouse";
pub const DEFAULT_SCHEMA: &str = "public";

pub struct StreamCatalog {
    streams: Arc<Streams>,
    /// Schemas that are not stream tables (pg_catalog): registered by DataFusion helpers.
    builtin: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
    /// Plans view definitions; set once the engine's session state is complete.
    planner: Arc<OnceLock<SessionState>>,
    /// What `SELECT` reads for materialized views whose tables are change logs.
    view_results: ViewResults,
}

impl std::fmt::Debug for StreamCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCatalog").finish_non_exhaustive()
    }
}

impl StreamCatalog {
    pub(crate) fn new(streams: Arc<Streams>, view_results: ViewResults) -> Self {
        StreamCatalog { streams, builtin: RwLock::new(HashMap::new()), planner: Arc::new(OnceLock::new()), view_results }
    }

    /// Gives the catalog the session state that view definitions are planned with.
    pub fn set_planner(&self, state: SessionState) {
        let _ = self.planner.set(state);
    }
}

impl CatalogProvider for StreamCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.streams.schema_names();
        if !names.iter().any(|n| n == crate::system_tables::SYSTEM_SCHEMA) {
            names.push(crate::system_tables::SYSTEM_SCHEMA.to_string());
        }
        names.extend(self.builtin.read().unwrap_or_else(|p| p.into_inner()).keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.builtin.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Some(s.clone());
        }
        (self.streams.schema_exists(name) || name == crate::system_tables::SYSTEM_SCHEMA).then(|| {
            Arc::new(StreamSchema {
                streams: self.streams.clone(),
                name: name.to_string(),
                planner: self.planner.clone(),
                view_results: self.view_results.clone(),
            }) as _
        })
    }

    fn register_schema(&self, name: &str, schema: Arc<dyn SchemaProvider>) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Ok(self.builtin.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), schema))
    }
}

struct StreamSchema {
    streams: Arc<Streams>,
    name: String,
    planner: Arc<OnceLock<SessionState>>,
    view_results: ViewResults,
}

impl std::fmt::Debug for StreamSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSchema").field("name", &self.name).finish()
    }
}

impl StreamSchema {
    fn system_table(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        if self.name == crate::system_tables::SYSTEM_SCHEMA {
            crate::system_tables::lookup(&self.streams, name)
        } else {
            None
        }
    }

    async fn view(&self, view: ViewEntry) -> Result<Arc<dyn TableProvider>> {
        let state = self.planner.get().ok_or_else(|| DataFusionError::Internal("views are not ready yet".into()))?;
        let external = |e: crate::error::Error| DataFusionError::External(Box::new(e));
        let statement = parse_view_definition(&view.definition).map_err(external)?;
        let plan = plan_statement(state, &self.streams, &statement, &view.schema).await.map_err(external)?;
        Ok(Arc::new(ViewTable::new(plan, Some(view.definition))))
    }
}

#[async_trait]
impl SchemaProvider for StreamSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.streams.tables_in(&self.name).iter().map(|t| t.name().to_string()).collect();
        names.extend(self.streams.views_in(&self.name).into_iter().map(|v| v.name));
        if self.name == crate::system_tables::SYSTEM_SCHEMA {
            names.extend(crate::system_tables::SYSTEM_TABLES.iter().map(|n| n.to_string()));
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(t) = self.streams.table(&self.name, name) {
            // A change-log view (aggregating, or over one) keeps its rows in memory
            // (without a maintainer, e.g. whose source is gone, the change log shows).
            if let Some(final_rows) = crate::materialized::emitted_rows(&self.streams, &t) {
                return final_rows.map(Some);
            }
            if let Some(result) = is_change_log_view(&t).then(|| self.view_results.get(t.id())).flatten() {
                return Ok(Some(Arc::new(CurrentRowsProvider::new(result))));
            }
            if t.options().compact {
                return Ok(Some(Arc::new(crate::compacted::CompactedTableProvider::new(self.streams.clone(), t))));
            }
            return Ok(Some(Arc::new(StreamTableProvider::new(self.streams.clone(), t))));
        }
        if let Some(view) = self.streams.view(&self.name, name) {
            return Ok(Some(self.view(view).await?));
        }
        Ok(self.system_table(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.streams.table(&self.name, name).is_some()
            || self.streams.view(&self.name, name).is_some()
            || self.system_table(name).is_some()
    }
}

/// A stored view definition as one query statement.
pub(crate) fn parse_view_definition(sql: &str) -> crate::error::Result<Statement> {
    let mut statements = PostgresCompatibilityParser::new()
        .parse(sql)
        .map_err(|e| crate::error::Error::Internal(format!("stored view definition does not parse: {e}")))?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        _ => Err(crate::error::Error::Internal("stored view definition is not one statement".into())),
    }
}
