//! Checks that every table a statement reads exists before DataFusion plans it, so a
//! missing table gets PostgreSQL's error (42P01, `relation "x" does not exist`) rather
//! than a planner message.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};

use crate::error::{Error, Result};
use crate::hidden::normalize;

/// `is_missing(name)` says whether a relation name resolves to nothing we know.
pub fn check_relations(statement: &Statement, is_missing: &dyn Fn(&ObjectName) -> bool) -> Result<()> {
    let mut ctes = HashSet::new();
    let _ = statement.visit(&mut CteNames(&mut ctes));
    let mut check = Check { ctes: &ctes, is_missing, missing: None };
    let _ = statement.visit(&mut check);
    match check.missing {
        Some(name) => Err(Error::UndefinedTable(name)),
        None => Ok(()),
    }
}

/// The relation names a statement reads (CTE names excluded), in order of appearance.
pub fn referenced_relations(statement: &Statement) -> Vec<ObjectName> {
    let mut ctes = HashSet::new();
    let _ = statement.visit(&mut CteNames(&mut ctes));
    let mut names = Vec::new();
    let _ = statement.visit(&mut Collect { ctes: &ctes, names: &mut names });
    names
}

struct Collect<'a> {
    ctes: &'a HashSet<String>,
    names: &'a mut Vec<ObjectName>,
}

impl Visitor for Collect<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = factor {
            let bare_cte = name.0.len() == 1 && name.0[0].as_ident().is_some_and(|i| self.ctes.contains(&normalize(i)));
            if !bare_cte {
                self.names.push(name.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

struct CteNames<'a>(&'a mut HashSet<String>);

impl Visitor for CteNames<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normalize(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

struct Check<'a> {
    ctes: &'a HashSet<String>,
    is_missing: &'a dyn Fn(&ObjectName) -> bool,
    missing: Option<String>,
}

impl Visitor for Check<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, args: None, .. } = factor else { return ControlFlow::Continue(()) };
        let bare_cte = name.0.len() == 1 && name.0[0].as_ident().is_some_and(|i| self.ctes.contains(&normalize(i)));
        if !bare_cte && (self.is_missing)(name) {
            let shown = name.0.last().and_then(|p| p.as_ident()).map(normalize).unwrap_or_else(|| name.to_string());
            self.missing = Some(shown);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}
