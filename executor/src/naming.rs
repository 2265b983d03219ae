//! Result column names as PostgreSQL gives them.
//!
//! DataFusion names an unaliased `count(*)` column "count(*)" and `avg(t.x)` "avg(t.x)";
//! PostgreSQL names them after the function ("count", "avg"), and tools such as pandas
//! and BI clients rely on that. Before planning, unaliased function calls in the outer
//! SELECT list get the function's name as alias, unless another column already has it.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};

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
