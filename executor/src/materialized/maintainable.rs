//! What a materialized view may be made of: the stream tables its plan reads, and the
//! refusals (0A000, naming the operator or function) of what cannot be maintained
//! incrementally: it is never recomputed behind the user's back.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use streamhouse_streams::StreamTable;

use super::inputs::{is_change_log, stream_table_of};
use super::keyed;
use crate::error::{Error, Result};

/// The stream tables a maintainable plan reads, each once; any operator but projection,
/// filter and UNION ALL is refused, naming it.
pub(super) fn maintainable(plan: &LogicalPlan) -> Result<Vec<Arc<StreamTable>>> {
    let mut refused = None;
    let mut sources = Vec::new();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => match stream_table_of(scan) {
                Some(table) => sources.push(table),
                None => refused = Some(format!("a scan of {}, which is not a stream table", scan.table_name)),
            },
            // No table at all: said below, as "at least one stream table".
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {}
            // HOP windows: each row in every window it falls in.
            LogicalPlan::Unnest(_) => {}
            // UNION ALL: each branch's rows as they come (UNION is a Distinct above it).
            LogicalPlan::Union(_) => {}
            // Inner joins: each new row joins with the other sides' rows applied so far.
            LogicalPlan::Join(join) if join.join_type == datafusion::logical_expr::JoinType::Inner => {}
            LogicalPlan::Join(join) => refused = Some(format!("{} joins", join.join_type)),
            other => refused = crate::subscribe::not_row_by_row(other),
        }
        Ok(if refused.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    if let Some(operator) = refused {
        return Err(Error::not_supported(
            format!("materialized views cannot maintain {operator} incrementally yet"),
            "materialized views maintain filters, projections, UNION ALL, inner joins and aggregations (an aggregating subquery becomes a view of its own); use a VIEW (computed at each query) for the rest",
        ));
    }
    let mut distinct: Vec<Arc<StreamTable>> = Vec::new();
    for table in sources {
        if !distinct.iter().any(|t| t.id() == table.id()) {
            distinct.push(table);
        } else if has_join(plan) {
            return Err(Error::not_supported(
                format!("materialized views cannot maintain a join that reads {} twice yet", table.name()),
                "join two different tables, or use a VIEW",
            ));
        }
    }
    if has_join(plan) && plan.exists(|node| Ok(matches!(node, LogicalPlan::Union(_)))).unwrap_or(false) {
        // A step reads the other sources' applied rows: a UNION ALL branch of another
        // source would yield all of them again.
        return Err(Error::not_supported(
            "materialized views cannot maintain a join and UNION ALL in one query yet",
            "make the join or the union a materialized view of its own and read it",
        ));
    }
    if distinct.is_empty() {
        return Err(Error::not_supported("a materialized view reads at least one stream table", "use a VIEW for constant rows"));
    }
    Ok(distinct)
}

/// The one stream table a view with window functions reads (checked: partitioned by key,
/// see [`keyed`]); refused (0A000) otherwise.
pub(super) fn keyed_sources(plan: &LogicalPlan) -> Result<Vec<Arc<StreamTable>>> {
    let mut refused = None;
    let mut sources: Vec<Arc<StreamTable>> = Vec::new();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => match stream_table_of(scan) {
                Some(table) if !is_change_log(&table) => {
                    if !sources.iter().any(|t| t.id() == table.id()) {
                        sources.push(table);
                    }
                }
                _ => refused = Some(format!("window functions over {}, which is not a stream table", scan.table_name)),
            },
            // Joins: refused below, as a second table.
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) | LogicalPlan::Window(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Join(_) => {}
            other => refused = Some(format!("{} with window functions", other.display())),
        }
        Ok(if refused.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    if let Some(operator) = refused {
        return Err(Error::not_supported(format!("materialized views cannot maintain {operator} yet"), "use a VIEW (computed at each query)"));
    }
    if sources.len() != 1 {
        return Err(Error::not_supported(
            "materialized views with window functions read exactly one table yet",
            "make the join a materialized view of its own and window over it, or use a VIEW",
        ));
    }
    keyed::partition_keys(plan)?;
    Ok(sources)
}

/// Over a change log, a removed row must come out of the view's plan as it went in when
/// it was added: a function whose value changes between calls (`now()`, `random()`) would
/// make a removal miss its row. Refused (0A000) naming the function.
pub(super) fn refuse_changing_functions(plan: &LogicalPlan) -> Result<()> {
    use datafusion::logical_expr::{Expr, Volatility};
    let mut found = None;
    let _ = plan.apply(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.func.signature().volatility != Volatility::Immutable {
                        found = Some(f.func.name().to_string());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    match found {
        Some(function) => Err(Error::not_supported(
            format!("materialized views over a view whose rows change cannot call {function}(): its value changes between calls, so a removed row could not be found again"),
            "compute it in the view that is read, or leave it out",
        )),
        None => Ok(()),
    }
}

/// Whether `plan` joins (its maintenance then keeps each source's applied rows).
pub(super) fn has_join(plan: &LogicalPlan) -> bool {
    plan.exists(|node| Ok(matches!(node, LogicalPlan::Join(_)))).unwrap_or(false)
}
