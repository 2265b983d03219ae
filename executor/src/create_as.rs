//! `CREATE TABLE t [(columns)] [WITH (...)] AS query` and `SELECT ... INTO t`: a new
//! stream table holding a query's rows.
//!
//! The table's columns are the query's (names and types, made storable) unless the
//! statement lists them. The rows are written like an INSERT (one WAL record, held until
//! COMMIT inside a transaction block); if that fails the new table is dropped again, so a
//! failed statement leaves nothing behind.

use std::collections::HashSet;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{CreateTable, Query, SetExpr, Statement};
use futures::TryStreamExt;
use streamhouse_streams::{is_system_column, TableWrite};

use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::session::{resolve_name, Session};

pub async fn create_table_as(session: &mut Session, create: &CreateTable, query: &Query) -> Result<Output> {
    let (schema_name, table_name) = resolve_name(&create.name, &session.default_schema())
        .ok_or_else(|| Error::InvalidParameter(format!("bad table name {}", create.name)))?;
    if session.streams().table(&schema_name, &table_name).is_some() {
        if create.if_not_exists {
            return Ok(Output::Command(CommandTag::new("CREATE TABLE AS")));
        }
        if !create.or_replace {
            return Err(Error::DuplicateTable(table_name));
        }
    }

    let plan = session.logical_plan(&Statement::Query(Box::new(query.clone()))).await?;
    let produced = plan.schema().as_arrow().clone();
    let columns = if create.columns.is_empty() {
        storable_columns(&produced)?
    } else {
        let mut declared = create.clone();
        declared.query = None;
        let declared = crate::ddl::column_schema(session, &declared).await?;
        if declared.fields().len() != produced.fields().len() {
            return Err(Error::InvalidParameter(format!(
                "the table has {} columns but the query gives {}",
                declared.fields().len(),
                produced.fields().len()
            )));
        }
        declared
    };
    // Run the query before anything is created: a query that fails leaves no table.
    let batches: Vec<RecordBatch> = session.ctx.execute_logical_plan(plan).await?.execute_stream().await?.try_collect().await?;

    if create.or_replace {
        session.streams().drop_table(&schema_name, &table_name).await?;
    }
    let mut plain = create.clone();
    plain.query = None;
    crate::ddl::create_table_with_schema(session, &plain, &schema_name, &table_name, columns).await?;
    let table = session
        .streams()
        .table(&schema_name, &table_name)
        .ok_or_else(|| Error::Internal(format!("table {schema_name}.{table_name} vanished after CREATE")))?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let all_columns: Vec<usize> = (0..table.schema().fields().len()).collect();
    let written = match crate::dml::widen_to_table(&table, &all_columns, batches) {
        Ok(batches) => session.write(vec![TableWrite { table: table.clone(), batches }]).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // Best effort: the statement failed, so its table should not outlive it.
        let _ = session.streams().drop_table(&schema_name, &table_name).await;
        return Err(e);
    }
    Ok(Output::Command(CommandTag::with_rows("SELECT", rows)))
}

/// `SELECT ... INTO t FROM ...` (PostgreSQL's older spelling of CREATE TABLE AS) as the
/// equivalent CREATE TABLE, or None when the statement has no INTO.
pub fn select_into_as_create(statement: &Statement) -> Option<(CreateTable, Query)> {
    let Statement::Query(query) = statement else { return None };
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let into = select.into.as_ref()?;
    let mut query = query.as_ref().clone();
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.into = None;
    }
    let create = datafusion::sql::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder::new(into.name.clone()).build();
    Some((create, query))
}

/// The query's columns as a stream table's: unique, not system names, storable types.
pub(crate) fn storable_columns(produced: &Schema) -> Result<Schema> {
    let mut seen = HashSet::new();
    let fields = produced
        .fields()
        .iter()
        .map(|f| {
            if is_system_column(f.name()) {
                return Err(Error::InvalidParameter(format!(
                    "column name \"{}\" is reserved for a system column; give it another name with AS",
                    f.name()
                )));
            }
            if !seen.insert(f.name().clone()) {
                return Err(Error::DuplicateColumn(f.name().clone()));
            }
            Ok(Field::new(f.name(), storable_type(f.data_type()), true).with_metadata(f.metadata().clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    if fields.is_empty() {
        return Err(Error::InvalidParameter("a stream table needs at least one column".into()));
    }
    Ok(Schema::new(fields))
}

/// The type a column of a query's type is stored as: text and bytes in their plain Arrow
/// forms, timestamps in microseconds (PostgreSQL's precision), an untyped NULL as text
/// (as PostgreSQL does).
pub(crate) fn storable_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Dictionary(_, value) => storable_type(value),
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn query_columns_become_storable() {
        let produced = Schema::new(vec![
            Field::new("a", DataType::Utf8View, false),
            Field::new("b", DataType::Null, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("UTC"))), true),
            Field::new("d", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::LargeUtf8)), true),
        ]);
        let stored = storable_columns(&produced).unwrap();
        let types: Vec<_> = stored.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(
            types,
            vec![
                DataType::Utf8,
                DataType::Utf8,
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
                DataType::Utf8
            ]
        );
        assert!(stored.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn duplicate_and_system_names_are_refused() {
        let dup = Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("a", DataType::Int64, true)]);
        assert!(matches!(storable_columns(&dup), Err(Error::DuplicateColumn(_))));
        let sys = Schema::new(vec![Field::new("_offset", DataType::Int64, true)]);
        assert!(matches!(storable_columns(&sys), Err(Error::InvalidParameter(_))));
    }
}
