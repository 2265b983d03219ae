//! Session settings (`SET`, `SHOW`) and the informational statements `SHOW TABLES` and
//! `DESCRIBE`.
//!
//! Drivers read a handful of settings at connect time (server_version, DateStyle,
//! standard_conforming_strings...) and some `SET` others; we keep them per session and
//! report them the way PostgreSQL 15 does.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::execution::FunctionRegistry;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, Reset, ResetStatement, Set, Value};
use streamhouse_streams::SYSTEM_COLUMNS;

use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::session::Session;

/// The PostgreSQL version we speak, as drivers parse it.
pub const SERVER_VERSION: &str = "15.0";

/// Settings that clients expect in ParameterStatus at startup.
pub const REPORTED_SETTINGS: [&str; 11] = [
    "server_version",
    "server_encoding",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
    "application_name",
    "IntervalStyle",
    "is_superuser",
    "session_authorization",
];

pub fn defaults() -> BTreeMap<String, String> {
    [
        ("server_version", SERVER_VERSION),
        ("server_version_num", "150000"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", ""),
        ("intervalstyle", "postgres"),
        ("is_superuser", "on"),
        ("session_authorization", "streamhouse"),
        ("search_path", "\"$user\", public"),
        ("transaction_isolation", "read committed"),
        ("default_transaction_isolation", "read committed"),
        ("transaction_read_only", "off"),
        ("default_transaction_read_only", "off"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("extra_float_digits", "1"),
        ("max_identifier_length", "63"),
        ("bytea_output", "hex"),
        ("client_min_messages", "notice"),
        ("lc_messages", "C"),
        ("lc_collate", "C"),
        ("lc_ctype", "C"),
        ("max_connections", "100"),
        ("block_size", "8192"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Settings are case-insensitive; `DateStyle` and `datestyle` are one.
fn key(name: &str) -> String {
    name.to_lowercase()
}

impl Session {
    /// A setting a client gives at connect time (a startup parameter, or `-c name=value`
    /// in `options`), checked as `SET` checks it.
    pub fn set_at_startup(&mut self, name: &str, value: &str) -> Result<()> {
        assign(self, name, value.to_string())
    }

    /// The value of a reported setting by its canonical (ParameterStatus) name.
    pub fn reported_setting(&self, canonical: &str) -> Option<&str> {
        self.settings.get(&key(canonical)).map(String::as_str)
    }
}

pub fn set(session: &mut Session, set: &Set) -> Result<Output> {
    match set {
        Set::SingleAssignment { variable, values, .. } => {
            let name = object_name(variable);
            let value = values.iter().map(setting_value).collect::<Vec<_>>().join(", ");
            assign(session, &name, value)?;
        }
        Set::SetTimeZone { value, .. } => assign(session, "timezone", setting_value(value))?,
        Set::SetNames { charset_name, .. } => assign(session, "client_encoding", charset_name.to_string())?,
        // SET TRANSACTION / SESSION CHARACTERISTICS: every statement is read committed here.
        _ => {}
    }
    Ok(Output::Command(CommandTag::new("SET")))
}

/// `RESET name` / `RESET ALL`: back to the values a new session starts with.
pub fn reset(session: &mut Session, reset: &ResetStatement) -> Result<Output> {
    match &reset.reset {
        Reset::ALL => {
            let base = session.engine().base_options();
            let state = session.ctx.state_ref();
            let mut state = state.write();
            *state.config_mut().options_mut() = base;
            refresh_config_dependent_functions(&mut state)?;
            drop(state);
            session.settings = defaults();
        }
        Reset::ConfigurationParameter(name) => {
            let name = key(&object_name(name));
            if name.starts_with("datafusion.") {
                let value = session.engine().base_options().entries().into_iter().find(|e| e.key == name);
                let value = value.ok_or_else(|| Error::UndefinedParameter(name.clone()))?.value;
                set_datafusion_option(session, &name, value.as_deref().unwrap_or(""))?;
            } else {
                let value = defaults().remove(&name).ok_or_else(|| Error::UndefinedParameter(name.clone()))?;
                assign(session, &name, value)?;
            }
        }
    }
    Ok(Output::Command(CommandTag::new("RESET")))
}

fn set_datafusion_option(session: &mut Session, name: &str, value: &str) -> Result<()> {
    let state = session.ctx.state_ref();
    let mut state = state.write();
    state.config_mut().options_mut().set(name, value)?;
    refresh_config_dependent_functions(&mut state)
}

/// Functions such as `now()` capture settings (the time zone) when registered; like
/// DataFusion's own `SET`, re-register them so the new value applies to the next query.
fn refresh_config_dependent_functions(state: &mut datafusion::execution::SessionState) -> Result<()> {
    let updated: Vec<_> = state
        .scalar_functions()
        .values()
        .filter_map(|udf| udf.inner().with_updated_config(state.config().options()).map(std::sync::Arc::new))
        .collect();
    for udf in updated {
        state.register_udf(udf)?;
    }
    Ok(())
}

fn assign(session: &mut Session, name: &str, value: String) -> Result<()> {
    let name = key(name);
    if name.starts_with("datafusion.") {
        return set_datafusion_option(session, &name, &value);
    }
    let value = if value.eq_ignore_ascii_case("default") {
        defaults().remove(&name).unwrap_or_default()
    } else {
        value
    };
    let value = match name.as_str() {
        "timezone" if ["utc", "gmt", "z", "zulu"].contains(&value.to_lowercase().as_str()) => "UTC".to_string(),
        _ => value,
    };
    if name == "timezone" {
        // DataFusion reads timestamptz literals and casts in this zone.
        let invalid = || Error::InvalidParameter(format!("invalid value for parameter \"TimeZone\": \"{value}\""));
        value.parse::<arrow::array::timezone::Tz>().map_err(|_| invalid())?;
        set_datafusion_option(session, "datafusion.execution.time_zone", &value).map_err(|_| invalid())?;
    }
    let value = if name == crate::statement_timeout::SETTING { crate::statement_timeout::normalize(&value)? } else { value };
    if name == "client_encoding" && !matches!(value.to_uppercase().replace('-', "").as_str(), "UTF8" | "UNICODE") {
        return Err(Error::not_supported(format!("client encoding {value} is not supported"), "use UTF8"));
    }
    session.settings.insert(name, value);
    Ok(())
}

fn object_name(name: &ObjectName) -> String {
    name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.clone()).collect::<Vec<_>>().join(".")
}

fn setting_value(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

pub async fn show(session: &mut Session, variable: &[Ident]) -> Result<Output> {
    // `SHOW datafusion.execution.batch_size` arrives as several identifiers, as do the
    // multi-word names (`SHOW TIME ZONE`).
    let parts: Vec<String> = variable.iter().map(|i| i.value.clone()).collect();
    let separator = if parts.first().is_some_and(|p| p.eq_ignore_ascii_case("datafusion")) { "." } else { " " };
    let name = parts.join(separator);
    let lower = match key(&name).as_str() {
        // Multi-word spellings PostgreSQL accepts for SHOW.
        "transaction isolation level" => "transaction_isolation".to_string(),
        "time zone" => "timezone".to_string(),
        other => other.to_string(),
    };
    if lower == "all" {
        let names: Vec<&str> = session.settings.keys().map(String::as_str).collect();
        let values: Vec<&str> = session.settings.values().map(String::as_str).collect();
        return rows(vec![("name", strings(names)), ("setting", strings(values))]);
    }
    if lower == "tables" {
        return show_tables(session).await;
    }
    if lower.starts_with("datafusion.") {
        let value = session.ctx.state().config().options().entries().into_iter().find(|e| e.key == lower).and_then(|e| e.value);
        return rows(vec![(lower.as_str(), strings(vec![value.as_deref().unwrap_or("")]))]);
    }
    let value = session
        .settings
        .get(&lower)
        .ok_or_else(|| Error::UndefinedParameter(name.clone()))?;
    rows(vec![(lower.as_str(), strings(vec![value.as_str()]))])
}

pub async fn show_tables(session: &mut Session) -> Result<Output> {
    let tables = session.streams().tables();
    let col = |f: &dyn Fn(&streamhouse_streams::StreamTable) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(tables.iter().map(|t| f(t)).collect::<Vec<_>>()))
    };
    rows(vec![
        ("table_schema", col(&|t| Some(t.schema_name().to_string()))),
        ("table_name", col(&|t| Some(t.name().to_string()))),
        ("partitions", Arc::new(Int32Array::from(tables.iter().map(|t| t.partition_count() as i32).collect::<Vec<_>>()))),
        ("key", col(&|t| t.options().key.clone())),
        ("retention", col(&|t| t.options().retention_ms.map(|ms| format!("{} ms", ms)))),
        ("cleanup", col(&|t| Some(if t.options().compact { "compact" } else { "delete" }.to_string()))),
    ])
}

pub async fn describe(session: &mut Session, name: &ObjectName) -> Result<Output> {
    let table = session.resolve_table(name)?;
    // An aggregating view is queried as its result's columns, not as its change log.
    let (stored, user_count) = match crate::materialized::result_columns(&table) {
        Some(columns) => (columns.clone(), columns.fields().len()),
        None => (table.stored_schema(), table.schema().fields().len()),
    };
    let names: Vec<String> = stored.fields().iter().map(|f| f.name().clone()).collect();
    let types: Vec<String> = stored.fields().iter().map(|f| sql_type_name(f.data_type())).collect();
    let nullable: Vec<bool> = stored.fields().iter().map(|f| f.is_nullable()).collect();
    let system: Vec<bool> = (0..stored.fields().len()).map(|i| i >= user_count).collect();
    debug_assert!(stored.fields().len() == user_count || stored.fields().len() - user_count == SYSTEM_COLUMNS.len());
    rows(vec![
        ("column_name", Arc::new(StringArray::from(names))),
        ("data_type", Arc::new(StringArray::from(types))),
        ("is_nullable", Arc::new(BooleanArray::from(nullable))),
        ("is_system", Arc::new(BooleanArray::from(system))),
    ])
}

/// The Postgres name of an Arrow type, as `DESCRIBE` shows it.
pub fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond, Some(_)) => {
            "timestamptz".into()
        }
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => format!("{}[]", sql_type_name(f.data_type())),
        other => other.to_string().to_lowercase(),
    }
}

fn strings(values: Vec<&str>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn rows(columns: Vec<(&str, ArrayRef)>) -> Result<Output> {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())?;
    Ok(Output::Rows(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?)))
}
