//! `SUBSCRIBE`: an endless, resumable feed of a stream table's rows.
//!
//! `SUBSCRIBE t` and `SUBSCRIBE (SELECT cols FROM t WHERE …)` are planned as that SELECT
//! over the table function [`SUBSCRIBE_FUNCTION`] instead of the table, with `_partition`
//! and `_offset` in front so every row says where to resume (`FROM OFFSET 'p:o+1,…'`). The
//! plan must be one that runs row by row forever: projection and filter only. Anything
//! that needs all rows before answering (aggregates, joins, ORDER BY, LIMIT…) is refused
//! with 0A000, naming the operator: that is a materialized view's job.

mod parse;
mod source;
pub(crate) use parse::byte_offset;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Ident, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement as SqlStatement, TableAlias, TableFactor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

pub use parse::parse;
pub use source::SUBSCRIBE_FUNCTION;
use source::SubscribeFunction;

use crate::error::{Error, Result};
use crate::hidden::with_exclusion;
use crate::session::{plan_statement, resolve_name, Session};
use crate::statement::{StartAt, Subscribe, SubscribeSource};
use source::Start;

/// Plans and starts a subscription: its rows, endless.
pub(crate) async fn execute(session: &Session, subscribe: &Subscribe) -> Result<SendableRecordBatchStream> {
    let (state, plan) = plan(session, subscribe).await?;
    Ok(DataFrame::new(state, plan).execute_stream().await?)
}

/// The subscription's logical plan (its columns, for Describe), and the session state
/// it must run with: one partition, so rows leave in offset order.
pub(crate) async fn plan(
    session: &Session,
    subscribe: &Subscribe,
) -> Result<(datafusion::execution::context::SessionState, LogicalPlan)> {
    let (query, default_schema) = source_query(session, &subscribe.source)?;
    // The feed function exists only here: anywhere else (CREATE TABLE AS, INSERT …
    // SELECT) an endless input would be collected forever.
    let ctx = SessionContext::new_with_state(session.ctx.state());
    ctx.register_udtf(SUBSCRIBE_FUNCTION, Arc::new(SubscribeFunction::new(session.streams().clone())));
    let mut state = ctx.state();
    state.config_mut().options_mut().execution.target_partitions = 1;
    // The query as written, over the table itself, says which operators it needs.
    let as_written = SqlStatement::Query(Box::new(query.clone()));
    refuse_unbounded_state(&plan_statement(&state, session.streams(), &as_written, &default_schema).await?)?;
    let start = resolve_start(session, &subscribe.start).await?;
    let rewritten = over_feed(session, query, &default_schema, &start)?;
    let plan = plan_statement(&state, session.streams(), &SqlStatement::Query(Box::new(rewritten)), &default_schema).await?;
    refuse_unbounded_state(&plan)?;
    Ok((state, plan))
}

/// The SELECT to follow, and the schema its unqualified names resolve in.
fn source_query(session: &Session, source: &SubscribeSource) -> Result<(Query, String)> {
    match source {
        SubscribeSource::Query(query) => Ok((query.as_ref().clone(), session.default_schema())),
        SubscribeSource::Relation(name) => {
            let (schema, relation) =
                resolve_name(name, &session.default_schema()).ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
            let streams = session.streams();
            if streams.table(&schema, &relation).is_some() {
                let sql = format!("SELECT * FROM {}.{}", quote(&schema), quote(&relation));
                return Ok((only_query(&sql)?, schema));
            }
            match streams.view(&schema, &relation) {
                // A view over one table, by filter and projection, is followed as its query.
                Some(view) => match crate::catalog::parse_view_definition(&view.definition)? {
                    SqlStatement::Query(query) => Ok((*query, schema)),
                    _ => Err(Error::Internal(format!("view {relation} is not a query"))),
                },
                None => Err(Error::UndefinedTable(name.to_string())),
            }
        }
    }
}

/// The query with its one stream table replaced by the feed and `_partition, _offset`
/// in front of its columns.
fn over_feed(session: &Session, mut query: Query, default_schema: &str, start: &Start) -> Result<Query> {
    if query.with.is_some() || query.order_by.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(refusal("WITH, ORDER BY, LIMIT and FETCH"));
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(refusal("set operations (UNION, INTERSECT, EXCEPT) and VALUES"));
    };
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return Err(refusal("joins"));
    }
    let no_grouping = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) => exprs.is_empty() && modifiers.is_empty(),
        GroupByExpr::All(_) => false,
    };
    if !no_grouping || select.having.is_some() || select.distinct.is_some() || !select.named_window.is_empty() {
        return Err(refusal("GROUP BY, HAVING, DISTINCT and WINDOW"));
    }
    let TableFactor::Table { name, alias, args: None, .. } = &select.from[0].relation else {
        return Err(refusal("subqueries and table functions in FROM"));
    };
    let (schema, table) = resolve_name(name, default_schema).ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
    if session.streams().table(&schema, &table).is_none() {
        return Err(match session.streams().view(&schema, &table) {
            Some(_) => Error::not_supported(
                format!("SUBSCRIBE reads a stream table directly; \"{table}\" is a view"),
                format!("SUBSCRIBE {table} follows the view itself, when it filters and projects one table"),
            ),
            None => Error::UndefinedTable(name.to_string()),
        });
    }
    let binding = alias.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| Ident::with_quote('"', table.clone()));
    let feed_sql = format!(
        "SELECT 1 FROM {SUBSCRIBE_FUNCTION}({}, {}, {})",
        literal(&schema),
        literal(&table),
        literal(&start.encode())
    );
    let SetExpr::Select(feed) = *only_query(&feed_sql)?.body else { unreachable!("a SELECT") };
    let mut relation = feed.from[0].relation.clone();
    if let TableFactor::Table { alias, .. } = &mut relation {
        *alias = Some(TableAlias { explicit: true, name: binding.clone(), columns: Vec::new(), at: None });
    }
    select.from[0].relation = relation;

    let mut projection = vec![
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![binding.clone(), Ident::new("_partition")])),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![binding, Ident::new("_offset")])),
    ];
    for item in select.projection.drain(..) {
        projection.push(match item {
            SelectItem::Wildcard(opts) if opts.opt_exclude.is_none() => SelectItem::Wildcard(with_exclusion(opts)),
            SelectItem::QualifiedWildcard(kind @ SelectItemQualifiedWildcardKind::ObjectName(_), opts) if opts.opt_exclude.is_none() => {
                SelectItem::QualifiedWildcard(kind, with_exclusion(opts))
            }
            other => other,
        });
    }
    select.projection = projection;
    Ok(query)
}

/// Only operators that handle each row as it comes may run in a subscription.
fn refuse_unbounded_state(plan: &LogicalPlan) -> Result<()> {
    let mut refused = None;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let _ = plan.apply(|node| {
        refused = not_row_by_row(node);
        Ok(if refused.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    match refused {
        Some(operator) => Err(refusal(&operator)),
        None => Ok(()),
    }
}

/// What keeps a plan node from handling each row as it comes (subscriptions and
/// materialized views need that): a subquery, or an operator other than projection,
/// filter, scan and alias, named as DataFusion names it. `None` for a row-by-row node.
pub(crate) fn not_row_by_row(node: &LogicalPlan) -> Option<String> {
    if has_subquery(node) {
        return Some("subqueries".to_string());
    }
    match node {
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) | LogicalPlan::SubqueryAlias(_) => None,
        other => Some(other.display().to_string().split(':').next().unwrap_or("operator").trim().to_string()),
    }
}

/// Whether a node's expressions hold a subquery, which would read other data (or the
/// same table again) at each evaluation.
fn has_subquery(node: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::Expr as DfExpr;
    node.expressions().iter().any(|e| {
        e.exists(|e| Ok(matches!(e, DfExpr::ScalarSubquery(_) | DfExpr::InSubquery(_) | DfExpr::Exists(_) | DfExpr::SetComparison(_))))
            .unwrap_or(true)
    })
}

fn refusal(what: &str) -> Error {
    Error::not_supported(
        format!("SUBSCRIBE cannot maintain {what}: a subscription filters and projects one stream table"),
        "subscribe to the table and aggregate, join or sort in the client; continuously maintained results are what materialized views are for",
    )
}

/// The start position in the feed's terms; a time is read as timestamptz in the session's zone.
async fn resolve_start(session: &Session, start: &StartAt) -> Result<Start> {
    Ok(match start {
        StartAt::Earliest => Start::Earliest,
        StartAt::Latest => Start::Latest,
        StartAt::Offset(n) => Start::Offsets { default: *n, per_partition: Vec::new() },
        StartAt::Offsets(pairs) => Start::Offsets { default: 0, per_partition: pairs.clone() },
        StartAt::Timestamp(text) => {
            let sql = format!("SELECT CAST({} AS TIMESTAMPTZ)", literal(text));
            let batches = session.ctx.sql(&sql).await?.collect().await?;
            let column = batches.first().map(|b| b.column(0).clone()).ok_or_else(|| Error::InvalidValue(text.clone()))?;
            let micros = arrow::compute::cast(&column, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
                .map_err(|e| Error::InvalidValue(e.to_string()))?;
            if micros.is_null(0) {
                return Err(Error::InvalidValue(format!("invalid start time \"{text}\"")));
            }
            Start::TimestampMicros(micros.as_primitive::<TimestampMicrosecondType>().value(0))
        }
    })
}

fn only_query(sql: &str) -> Result<Query> {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| Error::Internal(e.to_string()))?.pop() {
        Some(SqlStatement::Query(query)) => Ok(*query),
        _ => Err(Error::Internal(format!("not a query: {sql}"))),
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
