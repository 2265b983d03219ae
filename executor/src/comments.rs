//! `COMMENT ON TABLE | VIEW | MATERIALIZED VIEW | COLUMN … IS '…' | NULL`: descriptions in
//! the users' words, kept in the catalog. `ASK` links questions to them, so a column named
//! `latency_ms` can be found by "load time".

use datafusion::sql::sqlparser::ast::{CommentObject, ObjectName};
use datafusion::common::TableReference;

use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::session::{resolve_name, Session};

pub async fn comment_on(
    session: &Session,
    object_type: &CommentObject,
    object_name: &ObjectName,
    comment: Option<&str>,
    if_exists: bool,
) -> Result<Output> {
    let done = || Ok(Output::Command(CommandTag::new("COMMENT")));
    let (relation_name, column) = match object_type {
        CommentObject::Table | CommentObject::View | CommentObject::MaterializedView => (object_name.clone(), None),
        CommentObject::Column => {
            // `[schema.]relation.column`: the last part names the column.
            let mut parts = object_name.0.clone();
            let column = parts.pop().and_then(|p| p.as_ident().map(crate::hidden::normalize));
            match column {
                Some(column) if !parts.is_empty() => (ObjectName(parts), Some(column)),
                _ => return Err(Error::InvalidParameter(format!("column name \"{object_name}\" must be qualified by its table"))),
            }
        }
        other => return Err(Error::not_supported(format!("COMMENT ON {other}"), "comments are kept on tables, views and columns")),
    };
    let (schema, relation) = resolve_name(&relation_name, &session.default_schema())
        .ok_or_else(|| Error::InvalidParameter(format!("bad relation name {relation_name}")))?;
    let streams = session.streams();
    let columns: Vec<String> = if let Some(table) = streams.table(&schema, &relation) {
        table.schema().fields().iter().map(|f| f.name().clone()).collect()
    } else if streams.view(&schema, &relation).is_some() {
        let view = session.ctx.table(TableReference::partial(schema.as_str(), relation.as_str())).await?;
        view.schema().fields().iter().map(|f| f.name().clone()).collect()
    } else if if_exists {
        return done();
    } else {
        return Err(Error::UndefinedTable(relation));
    };
    if let Some(column) = &column {
        if !columns.contains(column) {
            return Err(Error::UndefinedColumn(format!("{relation}.{column}")));
        }
    }
    streams
        .catalog()
        .set_comment(&schema, &relation, column.as_deref(), comment)
        .await
        .map_err(|e| Error::Storage(e.into()))?;
    done()
}
