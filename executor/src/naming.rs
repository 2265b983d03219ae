//! Result column names as PostgreSQL gives them.
//!
//! DataFusion names an unaliased `count(*)` column "count(*)" and `avg(t.x)` "avg(t.x)";
//! PostgreSQL names them after the function ("count", "avg"), and tools such as pandas
//! and BI clients rely on that. Before planning, unaliased function calls in the outer
//! SELECT list get the function's name as alias, unless another column already has it.
//!
//! In FROM, PostgreSQL names the one column of a function returning scalars after the
//! call's alias (`SELECT g FROM generate_series(1, 3) AS g`), where DataFusion names it
//! `value`: such calls get the alias as column name too.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut};

/// Table functions whose one column PostgreSQL names after the call's alias.
const SCALAR_TABLE_FUNCTIONS: &[&str] = &["generate_series", "unnest"];

/// `FROM f(…) AS a` becomes `FROM f(…) AS a(a)` for [`SCALAR_TABLE_FUNCTIONS`] and a
/// one-array `UNNEST`.
pub fn alias_names_function_column(statement: &mut Statement) {
    struct Aliaser;
    impl VisitorMut for Aliaser {
        type Break = ();

        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let alias = match factor {
                TableFactor::Table { name, args: Some(_), alias: Some(alias), .. }
                    if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| SCALAR_TABLE_FUNCTIONS.contains(&i.value.to_lowercase().as_str())) =>
                {
                    alias
                }
                TableFactor::UNNEST { alias: Some(alias), array_exprs, with_offset: false, with_ordinality: false, .. } if array_exprs.len() == 1 => alias,
                _ => return ControlFlow::Continue(()),
            };
            if alias.columns.is_empty() {
                alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Aliaser);
}

pub fn postgres_column_names(statement: &mut Statement) {
    let Statement::Query(query) = statement else { return };
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let mut taken: HashSet<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|i| i.value.to_lowercase()),
            _ => None,
        })
        .collect();
    for item in select.projection.iter_mut() {
        let SelectItem::UnnamedExpr(Expr::Function(f)) = item else { continue };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()) else { continue };
        if !taken.insert(name.clone()) {
            continue;
        }
        let expr = Expr::Function(f.clone());
        *item = SelectItem::ExprWithAlias { expr, alias: Ident::new(name) };
    }
}
