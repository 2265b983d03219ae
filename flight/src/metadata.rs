//! Flight SQL metadata commands over the live catalog: catalogs, schemas, tables (with
//! their Arrow schemas), table types, server capabilities (SqlInfo) and the SQL types
//! (XdbcTypeInfo). Keys are not declared in StreamHouse, so the key commands answer
//! honestly with no rows.

use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedTransaction,
    XdbcDataType, XdbcDatetimeSubcode,
};
use streamhouse_executor::{Engine, DATABASE_NAME};
use tonic::Status;

use crate::results::wire_schema;
use crate::status;

pub const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

pub fn catalogs() -> Result<RecordBatch, Status> {
    let mut builder = arrow_flight::sql::metadata::GetCatalogsBuilder::new();
    builder.append(DATABASE_NAME);
    builder.build().map_err(Status::from)
}

pub fn schemas(engine: &Engine, query: CommandGetDbSchemas) -> Result<RecordBatch, Status> {
    let mut builder = query.into_builder();
    for schema in engine.streams().schema_names() {
        builder.append(DATABASE_NAME, schema);
    }
    builder.build().map_err(Status::from)
}

pub fn table_types() -> Result<RecordBatch, Status> {
    let mut builder = arrow_flight::sql::CommandGetTableTypes {}.into_builder();
    for t in TABLE_TYPES {
        builder.append(t);
    }
    builder.build().map_err(Status::from)
}

/// Tables and views; each with the columns `SELECT *` returns (system columns hidden).
/// The builder applies the request's catalog, pattern and type filters.
pub async fn tables(engine: &Arc<Engine>, query: CommandGetTables) -> Result<RecordBatch, Status> {
    let include_schema = query.include_schema;
    let mut builder = query.into_builder();
    let streams = engine.streams();
    for schema in streams.schema_names() {
        for table in streams.tables_in(&schema) {
            builder
                .append(DATABASE_NAME, &schema, table.name(), "TABLE", &wire_schema(&table.schema()))
                .map_err(Status::from)?;
        }
        for view in streams.views_in(&schema) {
            let columns = if include_schema { view_columns(engine, &schema, &view.name).await? } else { empty_schema() };
            builder.append(DATABASE_NAME, &schema, &view.name, "VIEW", &columns).map_err(Status::from)?;
        }
    }
    builder.build().map_err(Status::from)
}

async fn view_columns(engine: &Arc<Engine>, schema: &str, view: &str) -> Result<SchemaRef, Status> {
    let mut session = engine.session();
    let sql = format!("SELECT * FROM {} . {}", quote(schema), quote(view));
    let statement = session.parse(&sql).map_err(|e| status::from_sql(&e))?.pop().expect("one statement");
    let description = session.describe(&statement).await.map_err(|e| status::from_sql(&e))?;
    Ok(description.columns.map(|c| wire_schema(&c)).unwrap_or_else(empty_schema))
}

pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// What the server supports, answered to GetSqlInfo.
pub fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "StreamHouse");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        b.append(SqlInfo::FlightSqlServerReadOnly, false);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, true);
        b.append(SqlInfo::SqlDdlTable, true);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedHigh as i32);
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.build().expect("static SqlInfo is well-formed")
    })
}

/// The SQL types StreamHouse tables accept, answered to GetXdbcTypeInfo.
pub fn xdbc_types() -> &'static XdbcTypeInfoData {
    static TYPES: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        let ty = |name: &str, data_type: XdbcDataType, size: Option<i32>, quoted: bool| XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size: size,
            literal_prefix: quoted.then(|| "'".into()),
            literal_suffix: quoted.then(|| "'".into()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: quoted,
            searchable: Searchable::Full,
            fixed_prec_scale: false,
            local_type_name: Some(name.into()),
            sql_data_type: data_type,
            num_prec_radix: (!quoted).then_some(10),
            ..Default::default()
        };
        b.append(ty("boolean", XdbcDataType::XdbcBit, Some(1), false));
        b.append(ty("smallint", XdbcDataType::XdbcSmallint, Some(5), false));
        b.append(ty("integer", XdbcDataType::XdbcInteger, Some(10), false));
        b.append(ty("bigint", XdbcDataType::XdbcBigint, Some(19), false));
        b.append(ty("real", XdbcDataType::XdbcReal, Some(24), false));
        b.append(ty("double precision", XdbcDataType::XdbcDouble, Some(53), false));
        b.append(XdbcTypeInfo {
            create_params: Some(vec!["precision".into(), "scale".into()]),
            fixed_prec_scale: true,
            minimum_scale: Some(0),
            maximum_scale: Some(38),
            ..ty("numeric", XdbcDataType::XdbcDecimal, Some(38), false)
        });
        b.append(ty("text", XdbcDataType::XdbcVarchar, None, true));
        b.append(ty("bytea", XdbcDataType::XdbcVarbinary, None, true));
        b.append(ty("date", XdbcDataType::XdbcDate, Some(10), true));
        b.append(XdbcTypeInfo {
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ..ty("timestamp", XdbcDataType::XdbcTimestamp, Some(26), true)
        });
        b.append(XdbcTypeInfo {
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone),
            ..ty("timestamp with time zone", XdbcDataType::XdbcTimestamp, Some(32), true)
        });
        b.build().expect("static XdbcTypeInfo is well-formed")
    })
}

/// GetPrimaryKeys' columns (Flight SQL spec); StreamHouse declares no keys.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// GetExportedKeys / GetImportedKeys / GetCrossReference columns (Flight SQL spec).
pub fn foreign_keys_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("pk_catalog_name", true),
        text("pk_db_schema_name", true),
        text("pk_table_name", false),
        text("pk_column_name", false),
        text("fk_catalog_name", true),
        text("fk_db_schema_name", true),
        text("fk_table_name", false),
        text("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        text("fk_key_name", true),
        text("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}
