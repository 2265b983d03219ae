//! Nested aggregations in one materialized view: `SELECT … FROM (SELECT … GROUP BY …) q
//! GROUP BY …`, or an aggregating subquery joined with something. One maintainer runs
//! one aggregation; views read other views' change logs ([`super::rows`],
//! [`super::aggregate`]). So when a view's query is refused as it stands, each aggregating
//! subquery in a FROM clause (innermost first) becomes a materialized view of its own, a
//! *part* named `<view>_part<n>`, and the query reads the part instead: the view is then
//! maintained as views over views. Parts are listed by `SHOW MATERIALIZED VIEWS` and
//! dropped with their view (`MaterializedView.parts`).

use std::ops::ControlFlow;

use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{CreateView, Ident, ObjectName, Query, TableFactor, ViewColumnDef, VisitMut, VisitorMut};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::session::{plan_statement, Engine, Session};

/// At most this many parts per view (each is a maintainer, a change log and state).
const MAX_PARTS: usize = 16;

/// Makes a part of each aggregating subquery of `query` (creating them as materialized
/// views, innermost first) and returns the query reading them, with the parts' names;
/// `None` when no subquery aggregates. A failure drops the parts made so far.
pub(super) async fn split(session: &Session, schema: &str, view: &str, query: &Query) -> Result<Option<(Query, Vec<String>)>> {
    let mut query = query.clone();
    // A subquery planned alone would read a table where the query meant its CTE.
    if has_cte(&mut query) {
        return Ok(None);
    }
    let mut guard = PartsGuard { engine: session.engine().clone(), schema: schema.to_string(), parts: Vec::new() };
    let parts = &mut guard.parts;
    let mut made: Vec<(String, String)> = Vec::new();
    let outcome: Result<()> = async {
        // Each round makes one part: the first aggregating subquery in post order (no
        // aggregating subquery inside it remains, those came first).
        for _ in 0..MAX_PARTS * 2 {
            let subqueries = derived_tables(&mut query);
            let mut found = None;
            for (at, subquery) in subqueries.into_iter().enumerate() {
                if let Some(columns) = aggregating_columns(session, schema, &subquery).await {
                    found = Some((at, subquery, columns));
                    break;
                }
            }
            let Some((at, subquery, columns)) = found else { break };
            // The same subquery twice (Nexmark q5) is one part, read twice.
            if let Some((_, name)) = made.iter().find(|(sql, _)| *sql == subquery.to_string()) {
                replace_derived_table(&mut query, at, schema, name)?;
                continue;
            }
            if parts.len() == MAX_PARTS {
                return Err(Error::not_supported(
                    format!("materialized views make at most {MAX_PARTS} views of a query's aggregating subqueries"),
                    "create some of them as materialized views yourself and read those",
                ));
            }
            let name = free_name(session, schema, view, parts.len() + 1);
            let create = CreateView {
                or_alter: false,
                or_replace: false,
                materialized: true,
                secure: false,
                name: ObjectName::from(vec![Ident::with_quote('"', schema), Ident::with_quote('"', &name)]),
                name_before_not_exists: false,
                // The columns keep the names the query reads them by ("count(*)"), not
                // the names a view's own SELECT list gets ("count").
                columns: columns.into_iter().map(|c| ViewColumnDef { name: Ident::with_quote('"', c), data_type: None, options: None }).collect(),
                query: Box::new(subquery),
                options: datafusion::sql::sqlparser::ast::CreateTableOptions::None,
                cluster_by: vec![],
                comment: None,
                with_no_schema_binding: false,
                if_not_exists: false,
                temporary: false,
                copy_grants: false,
                to: None,
                params: None,
            };
            // Listed first: a cancellation during its backfill drops it too.
            parts.push(name.clone());
            Box::pin(super::create(session, &create)).await?;
            made.push((create.query.to_string(), name.clone()));
            replace_derived_table(&mut query, at, schema, &name)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        let parts = std::mem::take(parts);
        drop_parts(session, schema, &parts).await;
        return Err(e);
    }
    let parts = std::mem::take(parts);
    Ok((!parts.is_empty()).then_some((query, parts)))
}

/// The parts made so far while a view is being created: dropped if the statement is
/// cancelled (its future dropped) before the view exists. The caller takes them over
/// ([`PartsGuard::disarm`]) once the view is created.
pub(super) struct PartsGuard {
    engine: Arc<Engine>,
    schema: String,
    parts: Vec<String>,
}

impl PartsGuard {
    pub(super) fn new(session: &Session, schema: &str, parts: Vec<String>) -> PartsGuard {
        PartsGuard { engine: session.engine().clone(), schema: schema.to_string(), parts }
    }

    /// The parts now belong to a created view (or were dropped): nothing to clean up.
    pub(super) fn disarm(mut self) {
        self.parts.clear();
    }
}

impl Drop for PartsGuard {
    fn drop(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let (engine, schema, parts) = (self.engine.clone(), std::mem::take(&mut self.schema), std::mem::take(&mut self.parts));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { drop_parts(&engine.session(), &schema, &parts).await });
        }
    }
}

/// Drops parts made for a view that was then not created (last made first).
pub(super) async fn drop_parts(session: &Session, schema: &str, parts: &[String]) {
    for part in parts.iter().rev() {
        let name = ObjectName::from(vec![Ident::with_quote('"', schema), Ident::with_quote('"', part)]);
        if let Err(e) = Box::pin(super::drop(session, &[name], true, false)).await {
            tracing::warn!(part, error = %e, "a part of a materialized view that was not created was not dropped");
        }
    }
}

/// If `query`, planned alone, aggregates (GROUP BY, an aggregate function, DISTINCT):
/// its column names. A subquery that does not plan alone is left as it is.
async fn aggregating_columns(session: &Session, schema: &str, query: &Query) -> Option<Vec<String>> {
    // Planned as a derived table, as the query reads it: an unaliased `count(*)` is then
    // named as the query knows it (a top-level SELECT list is named like PostgreSQL's).
    let statement = crate::catalog::parse_view_definition(&format!("SELECT * FROM ({query}) AS part")).ok()?;
    let engine = session.engine();
    let plan = plan_statement(&engine.base_state(), engine.streams(), &statement, schema).await.ok()?;
    let aggregates = plan.exists(|node| Ok(matches!(node, LogicalPlan::Aggregate(_)))).unwrap_or(false);
    aggregates.then(|| plan.schema().fields().iter().map(|f| f.name().clone()).collect())
}

/// Whether a WITH clause appears anywhere in `query`.
fn has_cte(query: &mut Query) -> bool {
    struct Find;
    impl VisitorMut for Find {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if query.with.is_some() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    query.visit(&mut Find).is_break()
}

/// `<view>_part<n>`, or with a higher n where that name is taken.
fn free_name(session: &Session, schema: &str, view: &str, mut n: usize) -> String {
    let streams = session.streams();
    loop {
        let name = format!("{view}_part{n}");
        if streams.table(schema, &name).is_none() && streams.view(schema, &name).is_none() {
            return name;
        }
        n += 1;
    }
}

/// The subqueries of the FROM clauses (derived tables, not LATERAL), in post order.
fn derived_tables(query: &mut Query) -> Vec<Query> {
    struct Collect(Vec<Query>);
    impl VisitorMut for Collect {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Derived { lateral: false, subquery, .. } = factor {
                self.0.push(subquery.as_ref().clone());
            }
            ControlFlow::Continue(())
        }
    }
    let mut collect = Collect(Vec::new());
    let _ = query.visit(&mut collect);
    collect.0
}

/// Replaces the `at`-th subquery of [`derived_tables`] with `SELECT * FROM schema.part`
/// (its alias stays).
fn replace_derived_table(query: &mut Query, at: usize, schema: &str, part: &str) -> Result<()> {
    struct Replace<'a> {
        seen: usize,
        at: usize,
        with: &'a Query,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Derived { lateral: false, subquery, .. } = factor {
                if self.seen == self.at {
                    **subquery = self.with.clone();
                    return ControlFlow::Break(());
                }
                self.seen += 1;
            }
            ControlFlow::Continue(())
        }
    }
    let reading = format!("SELECT * FROM \"{}\".\"{}\"", schema.replace('"', "\"\""), part.replace('"', "\"\""));
    let datafusion::sql::sqlparser::ast::Statement::Query(with) = crate::catalog::parse_view_definition(&reading)? else {
        return Err(Error::Internal(format!("{reading} is not a query")));
    };
    let _ = query.visit(&mut Replace { seen: 0, at, with: &with });
    Ok(())
}
