//! Time windows as table functions in FROM: `TUMBLE(t, ts, size [, offset])`,
//! `HOP(t, ts, slide, size [, offset])` and `SESSION(t, ts, gap)`. Each yields the rows of
//! `t` with `window_start` and `window_end` added (a row of HOP once per window holding
//! it), so `GROUP BY window_start` aggregates per window.
//!
//! They are rewritten into plain SQL before planning, as a derived table named like the
//! table (or the call's alias):
//! * TUMBLE: `date_bin(size, ts)` (origin shifted by `offset`).
//! * HOP: the window starts `k·slide` with `start ≤ ts < start + size`, generated and
//!   unnested per row.
//! * SESSION: a row starts a new session when the previous row (by `ts`) is `gap` or
//!   more before it; sessions are per key when the enclosing query groups by columns of
//!   the table, as each group's sessions are separate. A session ends `gap` after its last
//!   row.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, GroupByExpr, Query, SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};
use crate::hidden::normalize;

/// The time column of every window call in `statement` (as written: a plain column
/// name normalized, anything else as its SQL).
pub fn window_time_columns(statement: &Statement) -> Vec<String> {
    struct Finder(Vec<String>);
    impl datafusion::sql::sqlparser::ast::Visitor for Finder {
        type Break = ();

        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, args: Some(args), .. } = factor else { return ControlFlow::Continue(()) };
            let is_window = name.0.len() == 1
                && matches!(name.0[0].as_ident().map(normalize).as_deref(), Some("tumble" | "hop" | "session"));
            if let (true, Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(time)))) = (is_window, args.args.get(1)) {
                self.0.push(match time {
                    Expr::Identifier(column) => normalize(column),
                    other => other.to_string(),
                });
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(Vec::new());
    let _ = datafusion::sql::sqlparser::ast::Visit::visit(statement, &mut finder);
    finder.0
}

/// Rewrites every window call in `statement` in place.
pub fn rewrite_windows(statement: &mut Statement) -> Result<()> {
    let mut rewriter = Rewriter { error: None };
    let _ = statement.visit(&mut rewriter);
    match rewriter.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Rewriter {
    error: Option<Error>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Err(e) = rewrite_set_expr(&mut query.body) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn rewrite_set_expr(body: &mut SetExpr) -> Result<()> {
    match body {
        SetExpr::Select(select) => {
            let keys = group_keys(&select.group_by);
            for from in &mut select.from {
                rewrite_factor(&mut from.relation, &keys)?;
                for join in &mut from.joins {
                    rewrite_factor(&mut join.relation, &keys)?;
                }
            }
            Ok(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left)?;
            rewrite_set_expr(right)
        }
        _ => Ok(()),
    }
}

/// GROUP BY columns other than the window's own: a SESSION's keys.
fn group_keys(group_by: &GroupByExpr) -> Vec<String> {
    let GroupByExpr::Expressions(exprs, _) = group_by else { return Vec::new() };
    exprs
        .iter()
        .filter_map(|e| match e {
            Expr::Identifier(i) => Some(i),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        })
        .filter(|i| !matches!(normalize(i).as_str(), "window_start" | "window_end"))
        .map(|i| i.to_string())
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Tumble,
    Hop,
    Session,
}

fn rewrite_factor(factor: &mut TableFactor, keys: &[String]) -> Result<()> {
    let TableFactor::Table { name, args: Some(args), alias, .. } = factor else { return Ok(()) };
    let kind = match name.0.last().and_then(|p| p.as_ident()).map(normalize).as_deref() {
        Some("tumble") if name.0.len() == 1 => Kind::Tumble,
        Some("hop") if name.0.len() == 1 => Kind::Hop,
        Some("session") if name.0.len() == 1 => Kind::Session,
        _ => return Ok(()),
    };
    let call = name.to_string().to_uppercase();
    let exprs: Vec<&Expr> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(Error::InvalidParameter(format!("{call} takes plain arguments: {call}(table, time_column, …)"))),
        })
        .collect::<Result<_>>()?;
    let usage = match kind {
        Kind::Tumble => "TUMBLE(table, time_column, size [, offset])",
        Kind::Hop => "HOP(table, time_column, slide, size [, offset])",
        Kind::Session => "SESSION(table, time_column, gap)",
    };
    let (min, max) = match kind {
        Kind::Tumble => (3, 4),
        Kind::Hop => (4, 5),
        Kind::Session => (3, 3),
    };
    if exprs.len() < min || exprs.len() > max {
        return Err(Error::InvalidParameter(format!("{call} takes {usage}")));
    }
    let table = match exprs[0] {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => exprs[0].to_string(),
        _ => return Err(Error::InvalidParameter(format!("the first argument of {usage} names a table"))),
    };
    let binding = match alias {
        Some(a) => a.name.to_string(),
        None => match exprs[0] {
            Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.to_string()).unwrap_or_default(),
            other => other.to_string(),
        },
    };
    let ts = exprs[1].to_string();
    let sql = match kind {
        Kind::Tumble => {
            let size = exprs[2].to_string();
            let bin = shifted_bin(&size, &ts, exprs.get(3));
            format!("SELECT *, {bin} AS window_start, {bin} + {size} AS window_end FROM {table}")
        }
        Kind::Hop => {
            let (slide, size) = (exprs[2].to_string(), exprs[3].to_string());
            let first = shifted_bin(&slide, &format!("__sh_ts - {size}"), exprs.get(4));
            let last = shifted_bin(&slide, "__sh_ts", exprs.get(4));
            format!(
                "SELECT * EXCLUDE (__sh_ts), window_start + {size} AS window_end FROM (\
                 SELECT *, unnest(generate_series({first} + {slide}, {last}, {slide})) AS window_start FROM (\
                 SELECT *, {ts} AS __sh_ts FROM {table}) AS __sh_a) AS __sh_b"
            )
        }
        Kind::Session => {
            let gap = exprs[2].to_string();
            let partition = |extra: &str| {
                let mut columns: Vec<String> = keys.to_vec();
                if !extra.is_empty() {
                    columns.push(extra.to_string());
                }
                if columns.is_empty() { String::new() } else { format!("PARTITION BY {}", columns.join(", ")) }
            };
            let (by_key, by_session) = (partition(""), partition("__sh_session"));
            format!(
                "SELECT * EXCLUDE (__sh_ts, __sh_prev, __sh_session), \
                 min(__sh_ts) OVER ({by_session}) AS window_start, max(__sh_ts) OVER ({by_session}) + {gap} AS window_end FROM (\
                 SELECT *, sum(CASE WHEN __sh_prev IS NOT NULL AND __sh_ts - __sh_prev < {gap} THEN 0 ELSE 1 END) \
                 OVER ({by_key} ORDER BY __sh_ts ROWS UNBOUNDED PRECEDING) AS __sh_session FROM (\
                 SELECT *, lag(__sh_ts) OVER ({by_key} ORDER BY __sh_ts) AS __sh_prev FROM (\
                 SELECT *, {ts} AS __sh_ts FROM {table}) AS __sh_a) AS __sh_b) AS __sh_c"
            )
        }
    };
    let wrapped = format!("SELECT * FROM ({sql}) AS {binding}");
    // The generic dialect: PostgreSQL's has no `* EXCLUDE (…)`.
    let parsed = Parser::parse_sql(&GenericDialect {}, &wrapped)
        .map_err(|e| Error::InvalidParameter(format!("{call}: {e} (in {wrapped})")))?;
    let Some(Statement::Query(query)) = parsed.into_iter().next() else {
        return Err(Error::Internal(format!("{call} did not rewrite to a query")));
    };
    let SetExpr::Select(select) = *query.body else { return Err(Error::Internal(format!("{call} rewrite is not a SELECT"))) };
    let derived = select.from.into_iter().next().map(|f| f.relation);
    *factor = derived.ok_or_else(|| Error::Internal(format!("{call} rewrite has no FROM")))?;
    Ok(())
}

/// `date_bin(size, ts)`, with windows starting `offset` after the epoch's boundaries.
fn shifted_bin(size: &str, ts: &str, offset: Option<&&Expr>) -> String {
    match offset {
        None => format!("date_bin({size}, {ts})"),
        Some(offset) => format!("(date_bin({size}, {ts} - {offset}) + {offset})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        rewrite_windows(&mut statement).unwrap();
        statement.to_string()
    }

    #[test]
    fn tumble_becomes_a_derived_table_named_like_the_table() {
        let sql = rewritten("SELECT window_start, count(*) FROM TUMBLE(clicks, ts, INTERVAL '1 minute') GROUP BY window_start");
        assert!(sql.contains("date_bin(INTERVAL '1 minute', ts) AS window_start"), "{sql}");
        assert!(sql.contains(") AS clicks GROUP BY window_start"), "{sql}");
    }

    #[test]
    fn session_partitions_by_the_group_keys() {
        let sql = rewritten("SELECT user_id, window_start, count(*) FROM session(s.clicks, ts, INTERVAL '5 minutes') AS w GROUP BY user_id, window_start");
        assert!(sql.contains("PARTITION BY user_id, __sh_session"), "{sql}");
        assert!(sql.contains("FROM s.clicks"), "{sql}");
        assert!(sql.ends_with("AS w GROUP BY user_id, window_start"), "{sql}");
    }

    #[test]
    fn wrong_arguments_are_refused() {
        for sql in ["SELECT * FROM TUMBLE(t, ts)", "SELECT * FROM HOP(t, ts, INTERVAL '1 minute')", "SELECT * FROM TUMBLE(1, ts, INTERVAL '1 minute')"] {
            let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
            assert!(matches!(rewrite_windows(&mut statement), Err(Error::InvalidParameter(_))), "{sql}");
        }
        // Other table functions are left alone.
        assert_eq!(rewritten("SELECT * FROM generate_series(1, 3)"), "SELECT * FROM generate_series(1, 3)");
    }
}
