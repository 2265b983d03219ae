//! The relations a statement reads: checked to exist before DataFusion plans it, so a
//! missing table gets PostgreSQL's error (42P01, `relation "x" does not exist`) rather
//! than a planner message, and listed for dependency checks (which views read a table).
//!
//! A `WITH` name hides a relation of the same name only inside the query that defines it
//! (its body, its other CTEs and the queries nested in them), as in SQL's scoping: in
//! `SELECT … FROM base UNION ALL (WITH base AS (…) SELECT * FROM base)` the first `base`
//! is the table.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};

use crate::error::{Error, Result};
use crate::hidden::normalize;

/// `is_missing(name)` says whether a relation name resolves to nothing we know.
pub fn check_relations(statement: &Statement, is_missing: &dyn Fn(&ObjectName) -> bool) -> Result<()> {
    match referenced_relations(statement).into_iter().find(|name| is_missing(name)) {
        Some(name) => {
            let shown = name.0.last().and_then(|p| p.as_ident()).map(normalize).unwrap_or_else(|| name.to_string());
            Err(Error::UndefinedTable(shown))
        }
        None => Ok(()),
    }
}

/// The relation names a statement reads (names of CTEs in scope excluded), in order of
/// appearance.
pub fn referenced_relations(statement: &Statement) -> Vec<ObjectName> {
    let mut collect = Collect { scopes: Vec::new(), names: Vec::new() };
    let _ = statement.visit(&mut collect);
    collect.names
}

struct Collect {
    /// The CTE names of each query being visited, innermost last.
    scopes: Vec<HashSet<String>>,
    names: Vec<ObjectName>,
}

impl Visitor for Collect {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let names = query.with.iter().flat_map(|with| with.cte_tables.iter().map(|cte| normalize(&cte.alias.name))).collect();
        self.scopes.push(names);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = factor {
            let bare_cte = name.0.len() == 1
                && name.0[0].as_ident().is_some_and(|i| {
                    let n = normalize(i);
                    self.scopes.iter().any(|scope| scope.contains(&n))
                });
            if !bare_cte {
                self.names.push(name.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn read(sql: &str) -> Vec<String> {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        referenced_relations(&statement).iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_cte_hides_a_table_only_where_it_is_defined() {
        assert_eq!(read("WITH t AS (SELECT * FROM base) SELECT * FROM t JOIN other ON true"), ["base", "other"]);
        assert_eq!(read("SELECT * FROM base UNION ALL (WITH base AS (SELECT 1) SELECT * FROM base)"), ["base"]);
        assert_eq!(read("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) q, x"), ["x"]);
        assert_eq!(read("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b, s.a"), ["s.a"]);
    }
}
