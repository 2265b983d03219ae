//! `CREATE [OR REPLACE] VIEW` and `DROP VIEW`: named queries, stored in the catalog as SQL
//! and planned again at each use (see `catalog.rs`).
//!
//! A definition is checked by planning it before it is stored, and a view may not read
//! itself, directly or through other views: PostgreSQL refuses that too (42P17), and a
//! stored cycle would make every later use recurse.
//!
//! Dropping a table or view that views read is refused (2BP01) unless `CASCADE` drops those
//! views too, as in PostgreSQL: a view left reading nothing would fail at every use, and
//! break every listing of the catalog (`information_schema.columns` plans each view).

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{CreateView, ObjectName, Query, Statement};

use crate::catalog::parse_view_definition;
use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::relations::referenced_relations;
use crate::session::{resolve_name, Session};

/// How deep a chain of views may be checked for cycles before it is refused.
const MAX_VIEW_DEPTH: usize = 64;

pub async fn create_view(session: &Session, create: &CreateView) -> Result<Output> {
    if create.materialized {
        return crate::materialized::create(session, create).await;
    }
    let (schema, name) = resolve_name(&create.name, &session.default_schema())
        .ok_or_else(|| Error::InvalidParameter(format!("bad view name {}", create.name)))?;
    if !session.streams().schema_exists(&schema) {
        return Err(Error::UndefinedSchema(schema));
    }
    if session.streams().table(&schema, &name).is_some() {
        return Err(Error::DuplicateTable(name));
    }
    if session.streams().view(&schema, &name).is_some() && create.if_not_exists {
        return Ok(Output::Command(CommandTag::new("CREATE VIEW")));
    }
    let definition = definition_sql(&create.query, &create.columns.iter().map(|c| c.name.to_string()).collect::<Vec<_>>());
    // The definition must plan now, in the view's own schema, as it will at each use.
    let statement = parse_view_definition(&definition)?;
    crate::session::plan_statement(&session.ctx.state(), session.streams(), &statement, &schema).await?;
    refuse_cycles(session, &schema, &name, &statement)?;
    session.streams().create_view(&schema, &name, &definition, create.or_replace).await.map_err(|e| match e {
        streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::AlreadyExists(_)) => Error::DuplicateTable(name.clone()),
        streamhouse_streams::Error::Catalog(streamhouse_catalog::Error::SchemaNotFound(s)) => Error::UndefinedSchema(s),
        other => other.into(),
    })?;
    Ok(Output::Command(CommandTag::new("CREATE VIEW")))
}

pub async fn drop_views(session: &Session, names: &[ObjectName], if_exists: bool, cascade: bool) -> Result<Output> {
    for name in names {
        let (schema, view) =
            resolve_name(name, &session.default_schema()).ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
        if session.streams().view(&schema, &view).is_some() {
            drop_dependent_views(session, "view", &schema, &view, cascade).await?;
        }
        if !session.streams().drop_view(&schema, &view).await? && !if_exists {
            return Err(Error::UndefinedTable(name.to_string()));
        }
    }
    Ok(Output::Command(CommandTag::new("DROP VIEW")))
}

/// Before `kind` `schema.name` is dropped: refuses when views read it, or with `cascade`
/// drops them (and the views reading those) first.
pub(crate) async fn drop_dependent_views(session: &Session, kind: &str, schema: &str, name: &str, cascade: bool) -> Result<()> {
    if kind == "view" {
        // A materialized view over a plain view (tables are guarded by their own check).
        let target = (schema.to_string(), name.to_string());
        for table in session.streams().tables() {
            let Some(mv) = table.options().materialized.clone() else { continue };
            let statement = parse_view_definition(&mv.definition)?;
            if referenced_relations(&statement).iter().any(|r| resolve_name(r, table.schema_name()).as_ref() == Some(&target)) {
                return Err(Error::DependentObjects(format!(
                    "cannot drop view {name} because materialized view {}.{} depends on it",
                    table.schema_name(),
                    table.name()
                )));
            }
        }
    }
    let readers = views_reading(session, schema, name)?;
    if readers.is_empty() {
        return Ok(());
    }
    if !cascade {
        let listed = readers.iter().map(|(s, v)| format!("view {s}.{v}")).collect::<Vec<_>>().join(", ");
        return Err(Error::DependentObjects(format!(
            "cannot drop {kind} {name} because other objects depend on it: {listed} (DROP ... CASCADE drops them too)"
        )));
    }
    for (reader_schema, reader) in readers {
        Box::pin(drop_dependent_views(session, "view", &reader_schema, &reader, true)).await?;
        session.streams().drop_view(&reader_schema, &reader).await?;
    }
    Ok(())
}

/// The views whose definitions read `schema.name` directly.
pub(crate) fn views_reading(session: &Session, schema: &str, name: &str) -> Result<Vec<(String, String)>> {
    let target = (schema.to_string(), name.to_string());
    let mut readers = Vec::new();
    for view_schema in session.streams().schema_names() {
        for view in session.streams().views_in(&view_schema) {
            let statement = parse_view_definition(&view.definition)?;
            if referenced_relations(&statement).iter().any(|r| resolve_name(r, &view.schema).as_ref() == Some(&target)) {
                readers.push((view.schema.clone(), view.name.clone()));
            }
        }
    }
    readers.sort();
    Ok(readers)
}

/// The stored SQL: the query, with the declared column names applied as an alias list.
pub(crate) fn definition_sql(query: &Query, columns: &[String]) -> String {
    if columns.is_empty() {
        query.to_string()
    } else {
        format!("SELECT * FROM ({query}) AS v({})", columns.join(", "))
    }
}

/// Refuses a definition that reaches `schema.name` through the views it reads.
fn refuse_cycles(session: &Session, schema: &str, name: &str, statement: &Statement) -> Result<()> {
    let target = (schema.to_string(), name.to_string());
    let mut seen = HashSet::new();
    let mut frontier: Vec<(String, Statement)> = vec![(schema.to_string(), statement.clone())];
    for _ in 0..MAX_VIEW_DEPTH {
        let Some((default_schema, statement)) = frontier.pop() else { return Ok(()) };
        for relation in referenced_relations(&statement) {
            let Some(resolved) = resolve_name(&relation, &default_schema) else { continue };
            if resolved == target {
                return Err(Error::InvalidObjectDefinition(format!(
                    "infinite recursion detected in view \"{name}\": it reads itself"
                )));
            }
            if !seen.insert(resolved.clone()) {
                continue;
            }
            if let Some(view) = session.streams().view(&resolved.0, &resolved.1) {
                frontier.push((view.schema.clone(), parse_view_definition(&view.definition)?));
            }
        }
    }
    Err(Error::InvalidObjectDefinition(format!("view \"{name}\" reads views nested more than {MAX_VIEW_DEPTH} deep")))
}
