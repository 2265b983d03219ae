//! Topics are stream tables. A topic name is the table's name in `public`, or
//! `schema.table` for tables of other schemas; StreamHouse's own `streamhouse` schema
//! is not exposed. A table whose columns are exactly [`raw_topic_schema`] is a *raw*
//! topic and stores Kafka records as they are; any other table is *typed* and exchanges
//! JSON values (see `records.rs`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use kafka_protocol::ResponseError;
use streamhouse_streams::{StreamTable, TableOptions};
use uuid::Uuid;

use crate::Broker;

/// Where topics created by Kafka clients go, and whose tables are named without a schema.
pub const TOPIC_SCHEMA: &str = "public";
/// Schemas never listed as topics.
const HIDDEN_SCHEMAS: [&str; 3] = ["streamhouse", "information_schema", "pg_catalog"];
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_CHARS: usize = 249;
/// Kafka has one broker per topic partition here: more replicas cannot be honoured.
pub const BROKER_ID: i32 = 0;
/// The high 64 bits of every topic id; the low 64 bits are the table id, which is never
/// reused, so a topic id is stable across restarts and unique over time.
const TOPIC_ID_PREFIX: u64 = u64::from_be_bytes(*b"StrmHous");

/// How a table exchanges records with Kafka clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `key`, `value`, `headers`, `timestamp`: Kafka records stored as they are.
    Raw,
    /// Any other columns: values are JSON objects with one field per column.
    Typed,
}

/// A raw topic's column holding each record's key.
pub const RAW_KEY_COLUMN: &str = "key";

/// The columns of a raw topic.
pub fn raw_topic_schema() -> Schema {
    Schema::new(vec![
        Field::new(RAW_KEY_COLUMN, DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("headers", DataType::List(Arc::new(Field::new("item", header_type(), false))), true),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ])
}

/// One record header: a name and optional bytes.
pub fn header_type() -> DataType {
    DataType::Struct(header_fields())
}

pub fn header_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Binary, true)])
}

pub fn kind(table: &StreamTable) -> TopicKind {
    let raw = raw_topic_schema();
    let schema = table.schema();
    let same = schema.fields().len() == raw.fields().len()
        && schema.fields().iter().zip(raw.fields()).all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        TopicKind::Raw
    } else {
        TopicKind::Typed
    }
}

/// Whether the table has partition `partition` (Kafka partition indexes are i32).
pub fn has_partition(table: &StreamTable, partition: i32) -> bool {
    usize::try_from(partition).is_ok_and(|p| p < table.partition_count())
}

pub fn topic_name(table: &StreamTable) -> String {
    if table.schema_name() == TOPIC_SCHEMA {
        table.name().to_string()
    } else {
        format!("{}.{}", table.schema_name(), table.name())
    }
}

pub fn topic_id(table: &StreamTable) -> Uuid {
    Uuid::from_u64_pair(TOPIC_ID_PREFIX, table.id() as u64)
}

/// The table behind a topic name: `public.name` first, then `schema.table`.
pub fn lookup(broker: &Broker, name: &str) -> Option<Arc<StreamTable>> {
    let streams = broker.streams();
    if let Some(t) = streams.table(TOPIC_SCHEMA, name) {
        return Some(t);
    }
    let (schema, table) = name.split_once('.')?;
    // `public.x` is the topic `x`, never a second name for it.
    if HIDDEN_SCHEMAS.contains(&schema) || schema == TOPIC_SCHEMA {
        return None;
    }
    streams.table(schema, table)
}

/// Every table exposed as a topic, by name.
pub fn all(broker: &Broker) -> Vec<Arc<StreamTable>> {
    let mut tables: Vec<_> = broker
        .streams()
        .tables()
        .into_iter()
        .filter(|t| !HIDDEN_SCHEMAS.contains(&t.schema_name()))
        .collect();
    tables.sort_by_key(|t| topic_name(t));
    tables
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name \"{name}\" is not allowed"));
    }
    if name.chars().count() > MAX_TOPIC_NAME_CHARS {
        return Err(format!("topic name is longer than {MAX_TOPIC_NAME_CHARS} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name \"{name}\" contains '{c}'; only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

/// Creates a raw topic; `Ok(None)` when it already exists.
pub async fn create_raw(
    broker: &Broker,
    name: &str,
    partitions: u32,
    configs: &[(String, Option<String>)],
) -> Result<Option<Arc<StreamTable>>, (ResponseError, String)> {
    validate_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if partitions == 0 {
        return Err((ResponseError::InvalidPartitions, "a topic needs at least one partition".into()));
    }
    let mut options = TableOptions { partitions, ..TableOptions::default() };
    apply_configs(&mut options, configs).map_err(|m| (ResponseError::InvalidConfig, m))?;
    let streams = broker.streams();
    match streams.create_table(TOPIC_SCHEMA, name, &raw_topic_schema(), &options, true).await {
        Ok(true) => Ok(streams.table(TOPIC_SCHEMA, name)),
        Ok(false) => Ok(None),
        Err(streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::AlreadyExists(what))) => {
            Err((ResponseError::TopicAlreadyExists, format!("{what} already exists (a view)")))
        }
        Err(e) => Err((ResponseError::UnknownServerError, e.to_string())),
    }
}

/// Topic settings given at creation (CreateTopics `configs`): the retention and cleanup
/// ones map to the table's options; anything else that would change behaviour is refused rather than
/// silently ignored.
pub fn apply_configs(options: &mut TableOptions, configs: &[(String, Option<String>)]) -> Result<(), String> {
    for (name, value) in configs {
        let value = value.as_deref().unwrap_or("");
        let number = || value.parse::<i64>().map_err(|_| format!("{name} must be a whole number, not \"{value}\""));
        match name.as_str() {
            "retention.ms" => options.retention_ms = Some(number()?).filter(|v| *v >= 0),
            "retention.bytes" => options.retention_bytes = Some(number()?).filter(|v| *v >= 0),
            "cleanup.policy" if value == "delete" => options.compact = false,
            // The latest record per key is what SELECT and views read; consumers see every
            // record, as from a topic not compacted yet.
            "cleanup.policy" if value == "compact" => {
                options.compact = true;
                // A raw topic keeps the record key in its `key` column.
                options.key = Some(RAW_KEY_COLUMN.to_string());
            }
            // Replication and durability are fixed by this node's WAL settings.
            "min.insync.replicas" if value == "1" => {}
            _ => return Err(format!("topic setting {name}={value} is not supported")),
        }
    }
    Ok(())
}

/// The topic, created as a raw topic when missing and auto-creation is on and allowed by
/// the request.
pub async fn lookup_or_create(broker: &Broker, name: &str, allowed: bool) -> Result<Arc<StreamTable>, (ResponseError, String)> {
    if let Some(t) = lookup(broker, name) {
        return Ok(t);
    }
    if !(allowed && broker.config.auto_create_topics) {
        return Err((ResponseError::UnknownTopicOrPartition, format!("topic \"{name}\" does not exist")));
    }
    match create_raw(broker, name, broker.config.default_partitions, &[]).await? {
        Some(t) => {
            tracing::info!(topic = name, partitions = broker.config.default_partitions, "topic created on first use");
            Ok(t)
        }
        None => lookup(broker, name).ok_or((ResponseError::UnknownTopicOrPartition, format!("topic \"{name}\" does not exist"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("orders-v1.eu_west").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a b").unwrap_err().contains("' '"));
        assert!(validate_name(&"x".repeat(250)).is_err());
    }
}
