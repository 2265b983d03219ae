//! `CREATE SCHEMA`, `CREATE TABLE ... WITH (...)` and `DROP`.

use std::collections::HashMap;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, CreateTableOptions, DataType as SqlType, Expr, ObjectName, ObjectType, SchemaName, SqlOption,
    Statement, Value,
};
use streamhouse_streams::{is_system_column, TableOptions, Watermark, MAX_PARTITIONS};

use crate::error::{Error, Result};
use crate::hidden::normalize;
use crate::output::{CommandTag, Output};
use crate::session::{resolve_name, Session};

/// Field metadata naming the Postgres type of a column whose Arrow type is ambiguous (json).
pub const PG_TYPE_METADATA: &str = "streamhouse.pg_type";

pub async fn create_schema(session: &Session, name: &SchemaName, if_not_exists: bool) -> Result<Output> {
    let SchemaName::Simple(name) = name else {
        return Err(Error::not_supported("CREATE SCHEMA AUTHORIZATION is not supported", "name the schema"));
    };
    let (_, schema) = resolve_name(name, "").ok_or_else(|| Error::InvalidParameter(format!("bad schema name {name}")))?;
    session.streams().create_schema(&schema, if_not_exists).await.map_err(|e| match e {
        streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::AlreadyExists(_)) => Error::DuplicateSchema(schema.clone()),
        other => other.into(),
    })?;
    Ok(Output::Command(CommandTag::new("CREATE SCHEMA")))
}

pub async fn create_table(session: &Session, create: &CreateTable) -> Result<Output> {
    let (schema_name, table_name) = resolve_name(&create.name, &session.default_schema())
        .ok_or_else(|| Error::InvalidParameter(format!("bad table name {}", create.name)))?;
    if !session.streams().schema_exists(&schema_name) {
        return Err(Error::UndefinedSchema(schema_name));
    }
    let user_schema = column_schema(session, create).await?;
    if create.or_replace {
        // Refused options must not cost the table OR REPLACE drops.
        table_options(&create.table_options, &user_schema)?;
        session.streams().drop_table(&schema_name, &table_name).await?;
    }
    create_table_with_schema(session, create, &schema_name, &table_name, user_schema).await?;
    Ok(Output::Command(CommandTag::new("CREATE TABLE")))
}

/// Creates a stream table with these columns and the statement's options (`WITH (...)`).
pub(crate) async fn create_table_with_schema(
    session: &Session,
    create: &CreateTable,
    schema_name: &str,
    table_name: &str,
    user_schema: Schema,
) -> Result<()> {
    if !session.streams().schema_exists(schema_name) {
        return Err(Error::UndefinedSchema(schema_name.to_string()));
    }
    let options = table_options(&create.table_options, &user_schema)?;
    let created = session
        .streams()
        .create_table(schema_name, table_name, &user_schema, &options, create.if_not_exists)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::AlreadyExists(_))) => {
            Err(Error::DuplicateTable(table_name.to_string()))
        }
        Err(streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::SchemaNotFound(s))) => {
            Err(Error::UndefinedSchema(s))
        }
        Err(e) => Err(e.into()),
    }
}

/// Lets DataFusion turn the SQL column types into Arrow types (json becomes text, marked).
pub(crate) async fn column_schema(session: &Session, create: &CreateTable) -> Result<Schema> {
    let mut plain = create.clone();
    plain.table_options = CreateTableOptions::None;
    plain.if_not_exists = false;
    let mut pg_types = HashMap::new();
    for column in &mut plain.columns {
        let name = normalize(&column.name);
        if column.options.iter().any(|o| matches!(o.option, ColumnOption::Default(_))) {
            // Ignoring it would store NULLs where the user expects the default.
            return Err(Error::not_supported(
                format!("DEFAULT for column \"{name}\" is not supported yet"),
                "write the value explicitly in INSERT and COPY",
            ));
        }
        if is_system_column(&name) {
            return Err(Error::InvalidParameter(format!(
                "column name \"{name}\" is reserved for a system column"
            )));
        }
        match column.data_type {
            // PostgreSQL keeps microseconds (and a far wider range than nanoseconds allow).
            SqlType::Timestamp(None, tz) => column.data_type = SqlType::Timestamp(Some(6), tz),
            SqlType::JSON => {
                pg_types.insert(name, "json");
                column.data_type = SqlType::Text;
            }
            SqlType::JSONB => {
                pg_types.insert(name, "jsonb");
                column.data_type = SqlType::Text;
            }
            _ => {}
        }
    }
    let plan = session.ctx.state().statement_to_plan(DfStatement::Statement(Box::new(Statement::CreateTable(plain)))).await?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmt)) = plan else {
        return Err(Error::Internal("CREATE TABLE did not plan as a table".into()));
    };
    let fields: Vec<Field> = cmt
        .input
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let mut field = f.as_ref().clone();
            if let Some(t) = pg_types.get(f.name()) {
                field = field.with_metadata(HashMap::from([(PG_TYPE_METADATA.to_string(), t.to_string())]));
            }
            field
        })
        .collect();
    if fields.is_empty() {
        return Err(Error::InvalidParameter("a stream table needs at least one column".into()));
    }
    Ok(Schema::new(fields))
}

/// The `key = value` options of a CREATE statement, however they were written.
pub(crate) fn option_list(options: &CreateTableOptions) -> &[SqlOption] {
    match options {
        CreateTableOptions::None => &[],
        CreateTableOptions::With(l) | CreateTableOptions::Options(l) | CreateTableOptions::Plain(l) => l,
        CreateTableOptions::TableProperties(l) => l,
    }
}

fn table_options(options: &CreateTableOptions, schema: &Schema) -> Result<TableOptions> {
    let mut out = TableOptions { partitions: 1, ..Default::default() };
    for option in option_list(options) {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(Error::InvalidParameter(format!("unrecognized table option {option}")));
        };
        let key = normalize(key);
        match key.as_str() {
            "partitions" => {
                let n = int_value(value, &key)?;
                if !(1..=MAX_PARTITIONS as i64).contains(&n) {
                    return Err(Error::InvalidParameter(format!("partitions must be between 1 and {MAX_PARTITIONS}")));
                }
                out.partitions = n as u32;
            }
            "key" => {
                let column = string_value(value, &key)?;
                if schema.index_of(&column).is_err() {
                    return Err(Error::UndefinedColumn(column));
                }
                out.key = Some(column);
            }
            "retention" => out.retention_ms = Some(duration_value(value, &key)?.as_millis() as i64),
            "retention_bytes" => out.retention_bytes = Some(int_value(value, &key)?),
            "cleanup" => match string_value(value, &key)?.as_str() {
                "delete" => {}
                "compact" => out.compact = true,
                other => return Err(Error::InvalidParameter(format!("cleanup must be 'delete' or 'compact', not '{other}'"))),
            },
            crate::streaming_clauses::WATERMARK_OPTION => out.watermark = Some(watermark(value, schema)?),
            other => {
                return Err(Error::InvalidParameter(format!(
                    "unrecognized table option \"{other}\" (known: partitions, key, retention, retention_bytes, cleanup, watermark)"
                )))
            }
        }
    }
    if out.compact && out.key.is_none() {
        return Err(Error::InvalidParameter(
            "cleanup = 'compact' keeps the latest row per key: name the key column with key = '…'".into(),
        ));
    }
    Ok(out)
}

/// `watermark = c - INTERVAL '…'` (what `WATERMARK FOR c AS c - INTERVAL '…'` becomes):
/// `c` must be a timestamp column, the delay a fixed duration, zero or more.
fn watermark(value: &Expr, schema: &Schema) -> Result<Watermark> {
    let (column, delay) = crate::streaming_clauses::watermark_parts(value).ok_or_else(|| {
        Error::InvalidObjectDefinition(format!("a watermark is column or column - INTERVAL '…', not {value}"))
    })?;
    let field = schema.field_with_name(&column).map_err(|_| Error::UndefinedColumn(column.clone()))?;
    if !matches!(field.data_type(), DataType::Timestamp(..)) {
        return Err(Error::DatatypeMismatch(format!(
            "WATERMARK FOR {column}: the column must be a timestamp, not {}",
            field.data_type()
        )));
    }
    let delay_us = delay.map(interval_micros).transpose()?.unwrap_or(0);
    if delay_us < 0 {
        return Err(Error::InvalidParameter(format!("WATERMARK FOR {column}: the delay must not be negative")));
    }
    Ok(Watermark { column, delay_us })
}

/// A SQL interval of fixed length in microseconds (months and years have none).
fn interval_micros(interval: &datafusion::sql::sqlparser::ast::Interval) -> Result<i64> {
    let text = match literal(&interval.value) {
        Some(Value::SingleQuotedString(s)) => s.clone(),
        Some(Value::Number(n, _)) => n.clone(),
        _ => return Err(Error::InvalidParameter(format!("cannot read {} as an interval", interval.value))),
    } + &interval.leading_field.as_ref().map(|f| format!(" {f}")).unwrap_or_default();
    let parsed = arrow::compute::kernels::cast_utils::parse_interval_month_day_nano(&text)
        .map_err(|e| Error::InvalidParameter(format!("cannot read '{text}' as an interval: {e}")))?;
    if parsed.months != 0 {
        return Err(Error::InvalidParameter(format!(
            "the interval '{text}' has no fixed length (months, years): give it in days or smaller units"
        )));
    }
    (parsed.days as i64)
        .checked_mul(86_400_000_000)
        .and_then(|days| days.checked_add(parsed.nanoseconds / 1_000))
        .ok_or_else(|| Error::InvalidParameter(format!("the interval '{text}' is out of range")))
}

fn literal(value: &Expr) -> Option<&Value> {
    match value {
        Expr::Value(v) => Some(&v.value),
        _ => None,
    }
}

fn int_value(value: &Expr, key: &str) -> Result<i64> {
    match literal(value) {
        Some(Value::Number(n, _)) => n.parse().ok(),
        Some(Value::SingleQuotedString(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::InvalidParameter(format!("table option {key} must be an integer, not {value}")))
}

pub(crate) fn string_value(value: &Expr, key: &str) -> Result<String> {
    match (literal(value), value) {
        (Some(Value::SingleQuotedString(s)), _) => Ok(s.clone()),
        (_, Expr::Identifier(ident)) => Ok(normalize(ident)),
        _ => Err(Error::InvalidParameter(format!("table option {key} must be a string, not {value}"))),
    }
}

fn duration_value(value: &Expr, key: &str) -> Result<Duration> {
    let text = match (literal(value), value) {
        (Some(Value::SingleQuotedString(s)), _) => s.clone(),
        (_, Expr::Interval(i)) => i.value.to_string().trim_matches('\'').to_string()
            + &i.leading_field.as_ref().map(|f| format!(" {f}")).unwrap_or_default(),
        _ => return Err(Error::InvalidParameter(format!("table option {key} must be a duration like '7 days'"))),
    };
    parse_duration(&text).ok_or_else(|| Error::InvalidParameter(format!("table option {key}: cannot read '{text}' as a duration")))
}

/// Reads durations like `7 days`, `12h`, `30 minutes`, `1 week`, `500 ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().to_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 604800.0,
        _ => return None,
    };
    (number > 0.0).then(|| Duration::from_secs_f64(number * seconds))
}

pub async fn drop(
    session: &Session,
    object_type: &ObjectType,
    if_exists: bool,
    names: &[ObjectName],
    cascade: bool,
) -> Result<Output> {
    match object_type {
        ObjectType::Table => {
            for name in names {
                let (schema, table) = resolve_name(name, &session.default_schema())
                    .ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
                if let Some(existing) = session.streams().table(&schema, &table) {
                    crate::materialized::check_drop_table(session.streams(), &existing)?;
                    crate::views::drop_dependent_views(session, "table", &schema, &table, cascade).await?;
                }
                let dropped = session.streams().drop_table(&schema, &table).await?;
                if !dropped && !if_exists {
                    return Err(Error::UndefinedTable(name.to_string()));
                }
            }
            Ok(Output::Command(CommandTag::new("DROP TABLE")))
        }
        ObjectType::Schema => {
            for name in names {
                let (_, schema) = resolve_name(name, "").ok_or_else(|| Error::UndefinedSchema(name.to_string()))?;
                let dropped = session.streams().drop_schema(&schema, if_exists).await.map_err(|e| match e {
                    streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::NotEmpty(m)) => {
                        Error::DependentObjects(format!("cannot drop schema {schema} because other objects depend on it: {m}"))
                    }
                    streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::SchemaNotFound(s)) => Error::UndefinedSchema(s),
                    other => other.into(),
                })?;
                if !dropped && !if_exists {
                    return Err(Error::UndefinedSchema(schema));
                }
            }
            Ok(Output::Command(CommandTag::new("DROP SCHEMA")))
        }
        other => Err(Error::not_supported(format!("DROP {other} is not supported"), "StreamHouse has tables and schemas")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7 days"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("500 ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0 days"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}
