//! Comments on relations and columns (`COMMENT ON`): free text in the users' own words,
//! which `ASK` links questions to. Keyed by name, as PostgreSQL's are by object; the
//! relation's drop removes them (see `drop_table`, `drop_view`).

use sqlx::Row;

use crate::{Catalog, Error};

/// One comment; `column` is `None` for the relation's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentEntry {
    pub schema: String,
    pub relation: String,
    pub column: Option<String>,
    pub comment: String,
}

impl Catalog {
    /// Sets (or with `None`, removes) the comment on `schema.relation` or one of its columns.
    pub async fn set_comment(&self, schema: &str, relation: &str, column: Option<&str>, comment: Option<&str>) -> Result<(), Error> {
        let column = column.unwrap_or("");
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sh_comments WHERE schema_name = $1 AND relation = $2 AND column_name = $3")
            .bind(schema)
            .bind(relation)
            .bind(column)
            .execute(&mut *tx)
            .await?;
        if let Some(comment) = comment.filter(|c| !c.is_empty()) {
            sqlx::query("INSERT INTO sh_comments (schema_name, relation, column_name, comment) VALUES ($1, $2, $3, $4)")
                .bind(schema)
                .bind(relation)
                .bind(column)
                .bind(comment)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every comment, sorted by schema, relation and column (the relation's own first).
    pub async fn list_comments(&self) -> Result<Vec<CommentEntry>, Error> {
        let rows = sqlx::query(
            "SELECT schema_name, relation, column_name, comment FROM sh_comments ORDER BY schema_name, relation, column_name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let column: String = r.try_get("column_name")?;
                Ok(CommentEntry {
                    schema: r.try_get("schema_name")?,
                    relation: r.try_get("relation")?,
                    column: (!column.is_empty()).then_some(column),
                    comment: r.try_get("comment")?,
                })
            })
            .collect()
    }
}

/// Removes every comment of `schema.relation`, on the connection of the transaction that drops it.
pub(crate) async fn delete_relation_comments(conn: &mut sqlx::AnyConnection, schema: &str, relation: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM sh_comments WHERE schema_name = $1 AND relation = $2")
        .bind(schema)
        .bind(relation)
        .execute(conn)
        .await?;
    Ok(())
}
