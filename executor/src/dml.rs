//! Writes: `INSERT` (VALUES or SELECT, with parameters) and `COPY` in both directions.
//!
//! DataFusion plans an INSERT (so `$n` parameters get the target column types); we run
//! only its source and hand the rows to the storage engine ourselves, so writes follow
//! the session's transaction and the WAL's durability contract.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::common::ParamValues;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyOption, CopyOption, CopySource, CopyTarget, Expr, Ident, Insert, ObjectName, SetExpr, Statement,
    TableObject, Value,
};
use futures::TryStreamExt;
use streamhouse_streams::{is_system_column, StreamTable, TableWrite};

use crate::copy::CopyFormat;
use crate::error::{Error, Result};
use crate::hidden::normalize;
use crate::output::{CopyIn, Output};
use crate::session::Session;

fn target_table(session: &Session, insert: &Insert) -> Result<Arc<StreamTable>> {
    match &insert.table {
        TableObject::TableName(name) => session.resolve_table(name),
        other => Err(Error::not_supported(format!("INSERT INTO {other} is not supported"), "insert into a table")),
    }
}

/// The DataFusion plan of an INSERT, with the column list made explicit so the hidden
/// system columns are never targets.
pub async fn insert_plan(session: &Session, insert: &Insert) -> Result<LogicalPlan> {
    let table = target_table(session, insert)?;
    if insert.returning.is_some() {
        return Err(Error::not_supported("INSERT ... RETURNING is not supported", "SELECT the rows by _offset afterwards"));
    }
    if insert.on.is_some() {
        return Err(Error::not_supported("INSERT ... ON CONFLICT is not supported", "stream tables keep every row"));
    }
    let mut insert = insert.clone();
    for c in &insert.columns {
        let name = c.0.last().and_then(|p| p.as_ident()).map(normalize).unwrap_or_default();
        if is_system_column(&name) {
            return Err(Error::InvalidParameter(format!("column \"{name}\" is a system column and cannot be written")));
        }
        if table.schema().index_of(&name).is_err() {
            return Err(Error::UndefinedColumn(name));
        }
    }
    if insert.columns.is_empty() {
        insert.columns = table
            .schema()
            .fields()
            .iter()
            .map(|f| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
            .collect();
    }
    bytea_literals_as_hex(&mut insert, &table);
    let mut insert = Statement::Insert(insert);
    crate::windows::rewrite_windows(&mut insert)?;
    crate::naming::alias_names_function_column(&mut insert);
    let Statement::Insert(insert) = insert else { unreachable!("rewriting keeps the statement kind") };
    let plan = session.ctx.state().statement_to_plan(DfStatement::Statement(Box::new(Statement::Insert(insert)))).await?;
    Ok(plan)
}

/// `'\x0102'` written to a bytea column means the bytes 01 02 (PostgreSQL's hex form),
/// not the six characters: in VALUES such literals become `X'0102'`.
fn bytea_literals_as_hex(insert: &mut Insert, table: &StreamTable) {
    let schema = table.schema();
    let binary: Vec<bool> = insert
        .columns
        .iter()
        .map(|c| {
            let name = c.0.last().and_then(|p| p.as_ident()).map(normalize).unwrap_or_default();
            schema.field_with_name(&name).is_ok_and(|f| f.data_type() == &arrow::datatypes::DataType::Binary)
        })
        .collect();
    let Some(source) = insert.source.as_mut() else { return };
    let SetExpr::Values(values) = source.body.as_mut() else { return };
    for row in values.rows.iter_mut() {
        for (expr, is_binary) in row.iter_mut().zip(&binary) {
            if !is_binary {
                continue;
            }
            if let Expr::Value(v) = expr {
                if let Value::SingleQuotedString(s) = &v.value {
                    if let Some(hex) = s.strip_prefix("\\x") {
                        v.value = Value::HexStringLiteral(hex.to_string());
                    }
                }
            }
        }
    }
}

/// Runs an INSERT's source and returns the rows for the table.
pub async fn insert(session: &Session, insert: &Insert, params: Option<&ParamValues>) -> Result<TableWrite> {
    let table = target_table(session, insert)?;
    let mut plan = insert_plan(session, insert).await?;
    if let Some(params) = params {
        plan = plan.with_param_values(params.clone())?;
    }
    let LogicalPlan::Dml(dml) = plan else {
        return Err(Error::Internal("INSERT did not plan as DML".into()));
    };
    if !matches!(dml.op, WriteOp::Insert(_)) {
        return Err(Error::Internal("INSERT planned as another write".into()));
    }
    let source = Arc::unwrap_or_clone(dml.input);
    let stream = session.ctx.execute_logical_plan(source).await?.execute_stream().await?;
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    let user_columns: Vec<usize> = (0..table.schema().fields().len()).collect();
    // The source yields the stored layout (system columns as nulls): keep the user columns.
    let projected = batches
        .into_iter()
        .map(|b| b.project(&user_columns))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let batches = widen_to_table(&table, &user_columns, projected)?;
    Ok(TableWrite { table, batches })
}

/// Builds full user-schema batches from batches holding only `columns` (in that order):
/// missing columns become nulls, types are cast strictly, NOT NULL is enforced.
pub fn widen_to_table(table: &StreamTable, columns: &[usize], batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let schema = table.schema();
    batches
        .into_iter()
        .map(|b| {
            let mut out: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for (i, field) in schema.fields().iter().enumerate() {
                let array = match columns.iter().position(|&c| c == i) {
                    Some(j) => crate::cast::to_column_type(b.column(j), field)?,
                    None => new_null_array(field.data_type(), b.num_rows()),
                };
                if !field.is_nullable() && array.null_count() > 0 {
                    return Err(Error::NotNullViolation(format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        field.name(),
                        table.name()
                    )));
                }
                out.push(array);
            }
            Ok(RecordBatch::try_new(schema.clone(), out)?)
        })
        .collect()
}

pub async fn copy(
    session: &mut Session,
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
    params: Option<&ParamValues>,
) -> Result<Output> {
    let format = CopyFormat::from_options(options, legacy)?;
    match (to, target) {
        (false, CopyTarget::Stdin) => {
            let CopySource::Table { table_name, columns } = source else {
                return Err(Error::InvalidParameter("COPY FROM needs a table".into()));
            };
            if format.binary {
                return Err(Error::not_supported(
                    "COPY FROM with FORMAT binary is not supported",
                    "use FORMAT text or FORMAT csv (COPY TO supports binary)",
                ));
            }
            let table = session.resolve_table(table_name)?;
            let schema = table.schema();
            let columns = if columns.is_empty() {
                (0..schema.fields().len()).collect()
            } else {
                columns
                    .iter()
                    .map(|c| {
                        let name = normalize(c);
                        schema.index_of(&name).map_err(|_| Error::UndefinedColumn(name))
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            Ok(Output::CopyIn(CopyIn { table, columns, format }))
        }
        (true, CopyTarget::Stdout) => {
            let query = match source {
                CopySource::Query(q) => Statement::Query(q.clone()),
                CopySource::Table { table_name, columns } => {
                    session.resolve_table(table_name)?;
                    let list = if columns.is_empty() {
                        "*".to_string()
                    } else {
                        columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                    };
                    let sql = format!("SELECT {list} FROM {table_name}");
                    match session.parse(&sql)?.pop() {
                        Some(crate::statement::Statement::Sql(query)) => query,
                        _ => return Err(Error::Internal("COPY's table query did not parse as a query".into())),
                    }
                }
            };
            let mut plan = session.logical_plan(&query).await?;
            if let Some(params) = params {
                plan = plan.with_param_values(params.clone())?;
            }
            let rows = session.ctx.execute_logical_plan(plan).await?.execute_stream().await?;
            Ok(Output::CopyOut { rows, format })
        }
        _ => Err(Error::not_supported(
            "COPY to or from a server file or program is not supported",
            "use COPY ... FROM STDIN or COPY ... TO STDOUT (psql's \\copy)",
        )),
    }
}
