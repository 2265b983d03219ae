//! The statements a session executes: SQL that sqlparser parses, and StreamHouse's own
//! statements that it does not (`SUBSCRIBE` in its three deliveries, `FETCH` with a
//! timeout, `ASK`, and schema inference for raw topics).

use std::time::Duration;

use datafusion::sql::sqlparser::ast;

/// The SQL variant is sqlparser's (large) statement, unboxed: it is by far the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Statement {
    Sql(ast::Statement),
    Subscribe(SubscribeStatement),
    Fetch(Fetch),
    /// `SHOW MATERIALIZED VIEWS`.
    ShowMaterializedViews,
    /// `ASK [SQL] 'question'`.
    Ask(crate::ask::Ask),
    /// `INFER SCHEMA FROM TOPIC …`, `CREATE TABLE | MATERIALIZED VIEW … FROM TOPIC … INFER SCHEMA`.
    InferSchema(crate::infer_schema::InferSchema),
}

impl From<ast::Statement> for Statement {
    fn from(statement: ast::Statement) -> Self {
        Statement::Sql(statement)
    }
}

impl Statement {
    /// The SQL statement, when it is one sqlparser knows.
    pub fn as_sql(&self) -> Option<&ast::Statement> {
        match self {
            Statement::Sql(s) => Some(s),
            _ => None,
        }
    }
}

/// `SUBSCRIBE …` and how its rows leave.
#[derive(Debug, Clone)]
pub struct SubscribeStatement {
    pub subscribe: Subscribe,
    pub delivery: Delivery,
}

/// What to follow, and from where.
#[derive(Debug, Clone)]
pub struct Subscribe {
    pub source: SubscribeSource,
    pub start: StartAt,
}

#[derive(Debug, Clone)]
pub enum SubscribeSource {
    /// `SUBSCRIBE t`: a table or a view, by name.
    Relation(ast::ObjectName),
    /// `SUBSCRIBE (SELECT … FROM one_table WHERE …)`.
    Query(Box<ast::Query>),
}

/// The first row a subscription delivers, per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// Every row still stored (the default: history first).
    Earliest,
    /// Only rows committed after the subscription starts.
    Latest,
    /// The same offset in every partition (the first offset delivered).
    Offset(i64),
    /// A position per partition (`'0:15,1:20'`); partitions not named start at the earliest row.
    Offsets(Vec<(u32, i64)>),
    /// The first row ingested at or after this time (text, read as timestamptz).
    Timestamp(String),
}

#[derive(Debug, Clone)]
pub enum Delivery {
    /// `SUBSCRIBE …`: an endless result set.
    Rows,
    /// `COPY (SUBSCRIBE …) TO STDOUT [options]`: the COPY statement gives the options.
    Copy(Box<ast::Statement>),
    /// `DECLARE name CURSOR [WITH HOLD] FOR SUBSCRIBE …`.
    Cursor { name: String, hold: bool },
}

/// `FETCH [FORWARD] [n | ALL | NEXT] [FROM | IN] cursor [WITH (timeout = '…')]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub cursor: String,
    /// `None` for ALL.
    pub count: Option<u64>,
    /// How long to wait for rows of an endless cursor. Without it, FETCH waits for at
    /// least one row and then returns what is ready.
    pub timeout: Option<Duration>,
}
