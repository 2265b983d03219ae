//! DataFusion's view of the StreamHouse catalog: one database (`streamhouse`) whose
//! schemas and tables are read live from [`Streams`], so a table created on one
//! connection is visible to every other at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use streamhouse_streams::Streams;

use crate::provider::StreamTableProvider;

/// The database name clients see (`current_database()`, `\l`).
pub const DATABASE_NAME: &str = "streamhouse";
pub const DEFAULT_SCHEMA: &str = "public";

#[derive(Debug)]
pub struct StreamCatalog {
    streams: Arc<Streams>,
    /// Schemas that are not stream tables (pg_catalog): registered by DataFusion helpers.
    builtin: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl StreamCatalog {
    pub fn new(streams: Arc<Streams>) -> Self {
        StreamCatalog { streams, builtin: RwLock::new(HashMap::new()) }
    }
}

impl CatalogProvider for StreamCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.streams.schema_names();
        names.extend(self.builtin.read().unwrap_or_else(|p| p.into_inner()).keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.builtin.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Some(s.clone());
        }
        self.streams
            .schema_exists(name)
            .then(|| Arc::new(StreamSchema { streams: self.streams.clone(), name: name.to_string() }) as _)
    }

    fn register_schema(&self, name: &str, schema: Arc<dyn SchemaProvider>) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Ok(self.builtin.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), schema))
    }
}

#[derive(Debug)]
struct StreamSchema {
    streams: Arc<Streams>,
    name: String,
}

#[async_trait]
impl SchemaProvider for StreamSchema {
    fn table_names(&self) -> Vec<String> {
        self.streams.tables_in(&self.name).iter().map(|t| t.name().to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self
            .streams
            .table(&self.name, name)
            .map(|t| Arc::new(StreamTableProvider::new(self.streams.clone(), t)) as _))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.streams.table(&self.name, name).is_some()
    }
}
