//! Views: named queries. Tables and views share one namespace per schema, as relations do
//! in PostgreSQL, so each refuses a name the other holds.

use sqlx::Row;

use crate::{relation_exists, Catalog, Error, Relation, ViewEntry};

impl Catalog {
    /// Creates (or with `or_replace`, redefines) view `schema.name`.
    pub async fn create_view(&self, schema: &str, name: &str, definition: &str, or_replace: bool) -> Result<ViewEntry, Error> {
        let qualified = format!("{schema}.{name}");
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM sh_schemas WHERE name = $1").bind(schema).fetch_optional(&mut *tx).await?.is_none() {
            return Err(Error::SchemaNotFound(schema.to_string()));
        }
        if relation_exists(&mut tx, Relation::Table, schema, name).await? {
            return Err(Error::AlreadyExists(qualified));
        }
        let existing = relation_exists(&mut tx, Relation::View, schema, name).await?;
        if existing && !or_replace {
            return Err(Error::AlreadyExists(qualified));
        }
        let created_at_ms = crate::now_ms();
        let statement = if existing {
            "UPDATE sh_views SET definition = $3, created_at_ms = $4 WHERE schema_name = $1 AND name = $2"
        } else {
            "INSERT INTO sh_views (schema_name, name, definition, created_at_ms) VALUES ($1, $2, $3, $4)"
        };
        match sqlx::query(statement).bind(schema).bind(name).bind(definition).bind(created_at_ms).execute(&mut *tx).await {
            Ok(_) => {}
            Err(e) if Error::is_unique_violation(&e) => return Err(Error::AlreadyExists(qualified)),
            Err(e) if Error::is_foreign_key_violation(&e) => return Err(Error::SchemaNotFound(schema.to_string())),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(ViewEntry { schema: schema.to_string(), name: name.to_string(), definition: definition.to_string(), created_at_ms })
    }

    /// Drops view `schema.name`; `false` if there was none.
    pub async fn drop_view(&self, schema: &str, name: &str) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM sh_views WHERE schema_name = $1 AND name = $2")
            .bind(schema)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Only the dropped view's comments: a table of this name keeps its own.
        if deleted > 0 {
            crate::comments::delete_relation_comments(&mut tx, schema, name).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    pub async fn list_views(&self) -> Result<Vec<ViewEntry>, Error> {
        let rows = sqlx::query("SELECT schema_name, name, definition, created_at_ms FROM sh_views").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ViewEntry {
                    schema: r.try_get("schema_name")?,
                    name: r.try_get("name")?,
                    definition: r.try_get("definition")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect()
    }
}
