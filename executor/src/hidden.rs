//! Keeps the system columns out of `SELECT *`.
//!
//! Stream tables expose `_partition`, `_offset`, `_timestamp` and `_key` to DataFusion as
//! ordinary columns so they can be selected and filtered by name. Before planning, every
//! wildcard that would expand over a stream table is rewritten with an
//! `EXCLUDE (...)` of those columns: `*` over one stream table gets the exclusion
//! directly, `*` over several relations becomes one qualified wildcard per relation, and
//! `t.*` gets it when `t` is a stream table.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, TableFactor, VisitMut, VisitorMut, WildcardAdditionalOptions,
};
use streamhouse_streams::SYSTEM_COLUMNS;

/// Rewrites `statement` in place. `is_stream_table` answers for a (schema-qualified or bare) name.
pub fn hide_system_columns(statement: &mut Statement, is_stream_table: &dyn Fn(&ObjectName) -> bool) {
    let mut ctes = HashSet::new();
    let _ = statement.visit(&mut CteCollector(&mut ctes));
    let _ = statement.visit(&mut Rewriter { is_stream_table, ctes: &ctes });
}

struct CteCollector<'a>(&'a mut HashSet<String>);

impl VisitorMut for CteCollector<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normalize(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter<'a> {
    is_stream_table: &'a dyn Fn(&ObjectName) -> bool,
    ctes: &'a HashSet<String>,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.rewrite_set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// A relation in a FROM clause: the name it is referred to by, and whether it is a stream table.
struct Relation {
    binding: Option<String>,
    stream: bool,
}

impl Rewriter<'_> {
    fn rewrite_set_expr(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                let relations: Vec<Relation> = select
                    .from
                    .iter()
                    .flat_map(|twj| std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)))
                    .map(|f| self.relation(f))
                    .collect();
                if !relations.iter().any(|r| r.stream) {
                    return;
                }
                let mut projection = Vec::with_capacity(select.projection.len());
                for item in select.projection.drain(..) {
                    match item {
                        SelectItem::Wildcard(opts) if untouched(&opts) => {
                            if relations.len() == 1 {
                                projection.push(SelectItem::Wildcard(with_exclusion(opts)));
                            } else if relations.iter().all(|r| r.binding.is_some()) {
                                for r in &relations {
                                    let name = ObjectName::from(vec![Ident::new(r.binding.clone().expect("checked"))]);
                                    let opts = if r.stream {
                                        with_exclusion(opts.clone())
                                    } else {
                                        opts.clone()
                                    };
                                    projection.push(SelectItem::QualifiedWildcard(
                                        SelectItemQualifiedWildcardKind::ObjectName(name),
                                        opts,
                                    ));
                                }
                            } else {
                                projection.push(SelectItem::Wildcard(opts));
                            }
                        }
                        SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), opts)
                            if untouched(&opts) =>
                        {
                            let qualifier = name.0.last().and_then(|p| p.as_ident()).map(normalize);
                            let stream = relations
                                .iter()
                                .any(|r| r.stream && r.binding.is_some() && r.binding == qualifier);
                            let opts = if stream { with_exclusion(opts) } else { opts };
                            projection.push(SelectItem::QualifiedWildcard(
                                SelectItemQualifiedWildcardKind::ObjectName(name),
                                opts,
                            ));
                        }
                        other => projection.push(other),
                    }
                }
                select.projection = projection;
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.rewrite_set_expr(left);
                self.rewrite_set_expr(right);
            }
            _ => {}
        }
    }

    fn relation(&self, factor: &TableFactor) -> Relation {
        match factor {
            TableFactor::Table { name, alias, args: None, .. } => {
                let bare = name.0.len() == 1
                    && name.0[0].as_ident().is_some_and(|i| self.ctes.contains(&normalize(i)));
                let stream = !bare && (self.is_stream_table)(name);
                let binding = match alias {
                    Some(a) => Some(normalize(&a.name)),
                    None => name.0.last().and_then(|p| p.as_ident()).map(normalize),
                };
                Relation { binding, stream }
            }
            TableFactor::Derived { alias, .. } | TableFactor::TableFunction { alias, .. } => Relation {
                binding: alias.as_ref().map(|a| normalize(&a.name)),
                stream: false,
            },
            _ => Relation { binding: None, stream: false },
        }
    }
}

fn untouched(opts: &WildcardAdditionalOptions) -> bool {
    opts.opt_exclude.is_none() && opts.opt_except.is_none() && opts.opt_ilike.is_none()
}

pub(crate) fn with_exclusion(mut opts: WildcardAdditionalOptions) -> WildcardAdditionalOptions {
    opts.opt_exclude = Some(ExcludeSelectItem::Multiple(
        SYSTEM_COLUMNS.iter().map(|c| ObjectName::from(vec![Ident::new(*c)])).collect(),
    ));
    opts
}

/// SQL identifier folding: unquoted names are lower-cased, quoted ones kept as written.
pub fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}
