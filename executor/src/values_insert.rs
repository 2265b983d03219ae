//! The fast path for `INSERT ... VALUES` of constants and `$n` parameters: the rows are
//! built directly from the statement, without DataFusion planning, which costs far more
//! than the write itself for a one-row INSERT. Anything else (expressions, casts,
//! `INSERT ... SELECT`) goes through DataFusion (`dml::insert`).

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{Expr, Insert, SetExpr, Statement, TableObject, UnaryOperator, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use streamhouse_streams::{StreamTable, TableWrite};

use crate::error::{Error, Result};
use crate::hidden::normalize;
use crate::session::Session;

/// One value of the VALUES list.
enum Cell {
    Null,
    /// A literal, kept as text and cast to the column type the way PostgreSQL reads
    /// an untyped literal.
    Text(String),
    /// A numeric literal, as written.
    Number(String),
    /// `$n`, zero-based.
    Param(usize),
}

pub struct ValuesInsert {
    table: Arc<StreamTable>,
    /// User-column index of each VALUES position.
    columns: Vec<usize>,
    rows: Vec<Vec<Cell>>,
}

impl ValuesInsert {
    /// `None` when the statement is not a plain VALUES insert of constants and parameters.
    pub fn plan(session: &Session, insert: &Insert) -> Result<Option<ValuesInsert>> {
        let TableObject::TableName(name) = &insert.table else { return Ok(None) };
        if insert.returning.is_some() || insert.on.is_some() || insert.partitioned.is_some() {
            return Ok(None);
        }
        let Some(source) = &insert.source else { return Ok(None) };
        if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
            return Ok(None);
        }
        let SetExpr::Values(values) = source.body.as_ref() else { return Ok(None) };
        let table = session.resolve_table(name)?;
        let schema = table.schema();
        let columns: Vec<usize> = if insert.columns.is_empty() {
            (0..schema.fields().len()).collect()
        } else {
            let mut out = Vec::with_capacity(insert.columns.len());
            for c in &insert.columns {
                let name = c.0.last().and_then(|p| p.as_ident()).map(normalize).unwrap_or_default();
                if streamhouse_streams::is_system_column(&name) {
                    return Err(Error::InvalidParameter(format!("column \"{name}\" is a system column and cannot be written")));
                }
                out.push(schema.index_of(&name).map_err(|_| Error::UndefinedColumn(name))?);
            }
            out
        };
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in values.rows.iter() {
            if row.len() > columns.len() {
                return Err(Error::Syntax { message: "INSERT has more expressions than target columns".into(), position: None });
            }
            if row.len() < columns.len() {
                // PostgreSQL fills the rest with defaults (NULL here) only with DEFAULT VALUES;
                // a short row is an error there too, but DataFusion's wording is the same.
                return Err(Error::Syntax { message: "INSERT has more target columns than expressions".into(), position: None });
            }
            let mut cells = Vec::with_capacity(row.len());
            for expr in row.iter() {
                match cell(expr) {
                    Some(c) => cells.push(c),
                    None => return Ok(None),
                }
            }
            rows.push(cells);
        }
        Ok(Some(ValuesInsert { table, columns, rows }))
    }

    /// `$n` takes the type of the column it is written to.
    pub fn parameter_types(&self) -> Vec<Option<DataType>> {
        let schema = self.table.schema();
        let mut types: Vec<Option<DataType>> = Vec::new();
        for row in &self.rows {
            for (cell, &column) in row.iter().zip(&self.columns) {
                if let Cell::Param(i) = cell {
                    if types.len() <= *i {
                        types.resize(i + 1, None);
                    }
                    types[*i].get_or_insert_with(|| schema.field(column).data_type().clone());
                }
            }
        }
        types
    }

    pub fn execute(&self, params: Option<&ParamValues>) -> Result<TableWrite> {
        let schema = self.table.schema();
        let params: Vec<&ScalarValue> = match params {
            Some(ParamValues::List(list)) => list.iter().map(|p| &p.value).collect(),
            Some(ParamValues::Map(_)) => return Err(Error::InvalidParameter("named parameters are not supported".into())),
            None => Vec::new(),
        };
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (position, &column) in self.columns.iter().enumerate() {
            let field = schema.field(column);
            let cells: Vec<ArrayRef> = self
                .rows
                .iter()
                .map(|row| value_array(&row[position], &params, field))
                .collect::<Result<_>>()?;
            let refs: Vec<&dyn Array> = cells.iter().map(|a| a.as_ref()).collect();
            arrays.push(if refs.len() == 1 { cells[0].clone() } else { concat(&refs)? });
        }
        let data_schema = Arc::new(Schema::new(
            self.columns.iter().map(|&c| Field::new(schema.field(c).name(), schema.field(c).data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(data_schema, arrays)?;
        let batches = crate::dml::widen_to_table(&self.table, &self.columns, vec![batch])?;
        Ok(TableWrite { table: self.table.clone(), batches })
    }
}

/// Parses `sql` when it is one `INSERT … VALUES` of constants and `$n` parameters, the
/// statement drivers send most. Such a statement holds nothing the pg-compatibility
/// rewrites of [`crate::Engine::parse`] act on (they fix clients' catalog queries), and
/// skipping them roughly halves the cost of parsing it. `None` for anything else, and for
/// SQL that does not parse (the full parser reports the error).
pub fn parse_constant_insert(sql: &str) -> Option<Statement> {
    if !sql.trim_start().get(..6)?.eq_ignore_ascii_case("insert") {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let [Statement::Insert(insert)] = statements.as_slice() else { return None };
    let SetExpr::Values(values) = insert.source.as_ref()?.body.as_ref() else { return None };
    if !values.rows.iter().all(|row| row.iter().all(|e| cell(e).is_some())) {
        return None;
    }
    statements.pop()
}

fn cell(expr: &Expr) -> Option<Cell> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Null => Some(Cell::Null),
            Value::Number(n, _) => Some(Cell::Number(n.to_string())),
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(Cell::Text(s.clone())),
            Value::Boolean(b) => Some(Cell::Text(b.to_string())),
            Value::Placeholder(p) => p.strip_prefix('$')?.parse::<usize>().ok().filter(|n| *n >= 1).map(|n| Cell::Param(n - 1)),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match cell(expr)? {
            Cell::Number(n) => Some(Cell::Number(format!("-{n}"))),
            _ => None,
        },
        Expr::Nested(inner) => cell(inner),
        _ => None,
    }
}

/// One value as a one-element array of the column's type.
fn value_array(cell: &Cell, params: &[&ScalarValue], field: &Field) -> Result<ArrayRef> {
    let target = field.data_type();
    let source: ArrayRef = match cell {
        Cell::Null => return Ok(new_null_array(target, 1)),
        Cell::Text(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        // A numeric literal with a fraction written to an integer column is rounded, as
        // PostgreSQL's numeric-to-integer assignment does (half away from zero).
        Cell::Number(n) if target.is_integer() && n.contains(['.', 'e', 'E']) => {
            let value: f64 = n.parse().map_err(|_| Error::InvalidValue(format!("invalid number {n}")))?;
            Arc::new(arrow::array::Float64Array::from(vec![value.round()]))
        }
        Cell::Number(n) => Arc::new(StringArray::from(vec![n.as_str()])),
        Cell::Param(i) => params
            .get(*i)
            .ok_or_else(|| Error::InvalidParameter(format!("there is no parameter ${}", i + 1)))?
            .to_array_of_size(1)?,
    };
    crate::cast::to_column_type(&source, field)
}

#[cfg(test)]
mod tests {
    use super::parse_constant_insert;
    use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    #[test]
    fn constant_inserts_skip_the_compatibility_parser_with_the_same_result() {
        let sql = "  insert INTO s.t (a, b, c) VALUES (1, 'x', $1), (-2.5, NULL, true)";
        let fast = parse_constant_insert(sql).expect("a constant insert");
        let full = PostgresCompatibilityParser::new().parse(sql).unwrap();
        assert_eq!(vec![fast.to_string()], full.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn anything_else_takes_the_full_parser() {
        for sql in [
            "SELECT 1",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t VALUES (now())",
            "INSERT INTO t VALUES ('1'::regclass)",
            "INSERT INTO t VALUES (1); SELECT 1",
            "INSERT INTO t VALUES (1",
            "INSERTX",
        ] {
            assert!(parse_constant_insert(sql).is_none(), "{sql}");
        }
    }
}
