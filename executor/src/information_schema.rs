//! `information_schema.columns` with PostgreSQL's type names.
//!
//! DataFusion serves `information_schema` itself and writes each column's Arrow type in
//! `data_type` (`Int64`, `Utf8View`); tools written for PostgreSQL (dbt, Grafana, BI
//! connectors) read `bigint`, `text`, `timestamp without time zone` there, and `udt_name`
//! (`int8`, `text`, `timestamp`) beside it. Every reference to the table in a statement is
//! replaced by a query over DataFusion's, with both columns translated by two SQL functions
//! registered here ([`register`]).

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Ident, Query, Statement, TableAlias, TableFactor, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

const DATA_TYPE_FUNCTION: &str = "streamhouse_information_schema_type";
const UDT_NAME_FUNCTION: &str = "streamhouse_information_schema_udt";

/// The query that stands for `information_schema.columns`: DataFusion's table, with the
/// types named as PostgreSQL names them.
fn columns_query() -> Query {
    static QUERY: OnceLock<Query> = OnceLock::new();
    QUERY
        .get_or_init(|| {
            let sql = format!(
                "SELECT table_catalog, table_schema, table_name, column_name, ordinal_position, column_default, is_nullable, \
                 {DATA_TYPE_FUNCTION}(data_type) AS data_type, character_maximum_length, character_octet_length, \
                 numeric_precision, numeric_precision_radix, numeric_scale, datetime_precision, interval_type, \
                 {UDT_NAME_FUNCTION}(data_type) AS udt_name FROM information_schema.columns"
            );
            match Parser::parse_sql(&PostgreSqlDialect {}, &sql).expect("the columns query parses").pop() {
                Some(Statement::Query(query)) => *query,
                _ => unreachable!("the columns query is one query"),
            }
        })
        .clone()
}

/// Replaces every `information_schema.columns` the statement reads (any catalog prefix, any
/// case) by [`columns_query`], keeping the reference's alias.
pub fn rewrite(statement: &mut Statement) {
    let _ = statement.visit(&mut Rewriter);
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = ();

    // After the factor's own children: the query put in its place is not visited again.
    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, args: None, .. } = factor {
            let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.to_lowercase()).collect();
            if parts.len() == name.0.len() && parts.ends_with(&["information_schema".to_string(), "columns".to_string()]) && parts.len() <= 3 {
                let alias = alias.take().unwrap_or_else(|| TableAlias { explicit: true, name: Ident::new("columns"), columns: Vec::new(), at: None });
                *factor = TableFactor::Derived { lateral: false, subquery: Box::new(columns_query()), alias: Some(alias), sample: None };
            }
        }
        ControlFlow::Continue(())
    }
}

/// Registers the two functions the rewritten query calls.
pub fn register(ctx: &SessionContext) {
    for (name, translate) in [(DATA_TYPE_FUNCTION, data_type_name as fn(&DataType) -> String), (UDT_NAME_FUNCTION, udt_name)] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |args: &[ColumnarValue]| {
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let names = arrays[0].as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal(format!("{name} takes text"))
                })?;
                let translated: StringArray = names
                    .iter()
                    .map(|arrow_name| arrow_name.map(|n| n.parse::<DataType>().map(|t| translate(&t)).unwrap_or_else(|_| n.to_string())))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(translated) as ArrayRef))
            }),
        ));
    }
}

/// The SQL-standard name `information_schema.columns.data_type` shows in PostgreSQL.
pub fn data_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
        DataType::Float16 | DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone",
        DataType::Timestamp(_, None) => "timestamp without time zone",
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone",
        DataType::Interval(_) | DataType::Duration(_) => "interval",
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_) | DataType::LargeListView(_) => "ARRAY",
        _ => "USER-DEFINED",
    }
    .to_string()
}

/// The type's name in `pg_type` (`udt_name`): `int8`, `text`, `_float8` for arrays.
pub fn udt_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "bool".to_string(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "int2".to_string(),
        DataType::Int32 | DataType::UInt16 => "int4".to_string(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "int8".to_string(),
        DataType::Float16 | DataType::Float32 => "float4".to_string(),
        DataType::Float64 => "float8".to_string(),
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric".to_string(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_string(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "bytea".to_string(),
        DataType::Date32 | DataType::Date64 => "date".to_string(),
        DataType::Time32(_) | DataType::Time64(_) => "time".to_string(),
        DataType::Timestamp(_, None) => "timestamp".to_string(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".to_string(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".to_string(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) | DataType::LargeListView(f) => {
            format!("_{}", udt_name(f.data_type()))
        }
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::TimeUnit;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        rewrite(&mut statement);
        statement.to_string()
    }

    #[test]
    fn every_reference_to_the_columns_table_is_replaced_once() {
        let out = rewritten("SELECT c.column_name FROM information_schema.columns c JOIN INFORMATION_SCHEMA.COLUMNS d ON true");
        assert_eq!(out.matches(DATA_TYPE_FUNCTION).count(), 2, "{out}");
        assert!(out.contains(") c JOIN (") && out.ends_with(") d ON true"), "the user's aliases stay: {out}");
        let qualified = rewritten("SELECT * FROM streamhouse.information_schema.columns");
        assert!(qualified.contains(UDT_NAME_FUNCTION) && qualified.ends_with("AS columns"), "{qualified}");
        assert_eq!(rewritten("SELECT * FROM information_schema.tables"), "SELECT * FROM information_schema.tables");
        assert_eq!(rewritten("SELECT * FROM my.columns"), "SELECT * FROM my.columns");
    }

    #[test]
    fn arrow_type_names_become_postgres_names() {
        for (arrow, data_type, udt) in [
            ("Int64", "bigint", "int8"),
            ("Utf8View", "text", "text"),
            ("Float64", "double precision", "float8"),
            ("Boolean", "boolean", "bool"),
            ("Timestamp(µs)", "timestamp without time zone", "timestamp"),
        ] {
            let t: DataType = arrow.parse().unwrap_or_else(|e| panic!("{arrow}: {e}"));
            assert_eq!((data_type_name(&t).as_str(), udt_name(&t).as_str()), (data_type, udt), "{arrow}");
        }
        let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(data_type_name(&tz.to_string().parse().unwrap()), "timestamp with time zone");
        let list = DataType::List(Arc::new(arrow::datatypes::Field::new("item", DataType::Float32, true)));
        assert_eq!((data_type_name(&list), udt_name(&list)), ("ARRAY".to_string(), "_float4".to_string()));
    }
}
