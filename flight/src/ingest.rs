//! `CommandStatementIngest` (ADBC bulk ingest): Arrow batches appended to a stream
//! table with the same durability acknowledgement as INSERT.
//!
//! The whole upload is decoded and checked against the table before anything is
//! written, then appended as one WAL record: a put that fails (bad schema, bad value,
//! client gone) leaves nothing behind. That bounds one put to
//! [`crate::upload::MAX_UPLOAD_BYTES`] of decoded data, like one COPY;
//! bigger loads are several puts.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use streamhouse_executor::{sql_type_name, Engine, Error, Output};
use streamhouse_streams::StreamTable;
use tonic::Status;

use crate::metadata::quote;
use crate::status;

/// Appends the uploaded batches; returns the row count.
pub async fn ingest(engine: &Arc<Engine>, command: CommandStatementIngest, data: PeekableFlightDataStream) -> Result<i64, Status> {
    if command.temporary {
        return Err(Status::unimplemented("temporary tables are not supported; ingest into a stream table"));
    }
    if command.transaction_id.is_some() {
        return Err(Status::unimplemented("Flight SQL transactions are not supported"));
    }
    if let Some(catalog) = command.catalog.as_deref().filter(|c| *c != streamhouse_executor::DATABASE_NAME) {
        return Err(Status::not_found(format!("catalog \"{catalog}\" does not exist")));
    }
    let schema_name = command.schema.clone().unwrap_or_else(|| streamhouse_executor::DEFAULT_SCHEMA.to_string());
    let options = command.table_definition_options.unwrap_or_default();
    let if_not_exist = TableNotExistOption::try_from(options.if_not_exist).unwrap_or(TableNotExistOption::Unspecified);
    let if_exists = TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);

    let (schema, batches) = crate::upload::receive(data).await?;
    let schema = schema.ok_or_else(|| Status::invalid_argument("the upload carried no Arrow schema"))?;
    let mut session = engine.session();
    let table = match engine.streams().table(&schema_name, &command.table) {
        Some(table) => match if_exists {
            TableExistsOption::Append => table,
            TableExistsOption::Replace => {
                return Err(Status::unimplemented(
                    "ingest mode \"replace\" would drop the table's history; stream tables are append-only (drop the table first)",
                ))
            }
            TableExistsOption::Fail | TableExistsOption::Unspecified => {
                return Err(status::from_sql(&Error::DuplicateTable(command.table.clone())))
            }
        },
        None => match if_not_exist {
            TableNotExistOption::Create => create_table(&mut session, &schema_name, &command.table, &schema).await?,
            TableNotExistOption::Fail | TableNotExistOption::Unspecified => {
                return Err(status::from_sql(&Error::UndefinedTable(format!("{schema_name}.{}", command.table))))
            }
        },
    };
    let columns = column_positions(&table, &schema)?;
    let rows = session.ingest(&table, &columns, batches).await.map_err(|e| status::from_sql(&e))?;
    Ok(rows as i64)
}

async fn create_table(session: &mut streamhouse_executor::Session, schema: &str, table: &str, columns: &Schema) -> Result<Arc<StreamTable>, Status> {
    if columns.fields().is_empty() {
        return Err(Status::invalid_argument("cannot create a table with no columns"));
    }
    let definitions: Vec<String> = columns
        .fields()
        .iter()
        .map(|f| format!("{} {}{}", quote(f.name()), sql_type_name(f.data_type()), if f.is_nullable() { "" } else { " NOT NULL" }))
        .collect();
    let sql = format!("CREATE TABLE {}.{} ({})", quote(schema), quote(table), definitions.join(", "));
    let statement = session.parse(&sql).map_err(|e| status::from_sql(&e))?.pop().expect("one statement");
    match session.execute(&statement, None).await.map_err(|e| status::from_sql(&e))? {
        Output::Command(_) => {}
        _ => return Err(Status::internal("CREATE TABLE returned rows")),
    }
    session.engine().streams().table(schema, table).ok_or_else(|| Status::internal("created table is not in the catalog"))
}

/// Where each uploaded column goes in the table (matched by name).
fn column_positions(table: &StreamTable, uploaded: &Schema) -> Result<Vec<usize>, Status> {
    let target = table.schema();
    let mut positions: Vec<usize> = Vec::with_capacity(uploaded.fields().len());
    for field in uploaded.fields() {
        let position = target.index_of(field.name()).map_err(|_| status::from_sql(&Error::UndefinedColumn(field.name().clone())))?;
        if positions.contains(&position) {
            return Err(status::from_sql(&Error::DuplicateColumn(field.name().clone())));
        }
        positions.push(position);
    }
    Ok(positions)
}
