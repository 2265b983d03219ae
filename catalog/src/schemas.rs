//! SQL schemas (namespaces): create, drop, list.
//!
//! Exists separately from tables because a schema's lifetime rules (it cannot be dropped
//! while it holds tables) are enforced here, backed by a foreign key in the database so
//! concurrent catalog users (several nodes on one PostgreSQL) cannot break them either.

use sqlx::Row;

use crate::{Catalog, Error};

impl Catalog {
    /// Creates schema `name`. Returns `false` if it existed and `if_not_exists` is set.
    pub async fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM sh_schemas WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(Error::AlreadyExists(name.to_string()))
            };
        }
        match sqlx::query("INSERT INTO sh_schemas (name) VALUES ($1)")
            .bind(name)
            .execute(&mut *tx)
            .await
        {
            Ok(_) => {}
            // Another node created it between our check and insert (PostgreSQL only;
            // SQLite serialises writers with BEGIN IMMEDIATE).
            Err(e) if Error::is_unique_violation(&e) => {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(Error::AlreadyExists(name.to_string()))
                };
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Drops schema `name`. Refuses with [`Error::NotEmpty`] while it contains tables or views.
    /// Returns `false` if it did not exist and `if_exists` is set.
    pub async fn drop_schema(&self, name: &str, if_exists: bool) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let has_tables = sqlx::query("SELECT 1 FROM sh_tables WHERE schema_name = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let has_views = sqlx::query("SELECT 1 FROM sh_views WHERE schema_name = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if has_tables || has_views {
            return Err(Error::NotEmpty(name.to_string()));
        }
        let deleted = match sqlx::query("DELETE FROM sh_schemas WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
        {
            Ok(r) => r.rows_affected(),
            // A table was created in it concurrently; the foreign key caught it.
            Err(e) if Error::is_foreign_key_violation(&e) => {
                return Err(Error::NotEmpty(name.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        if deleted == 0 {
            return if if_exists {
                Ok(false)
            } else {
                Err(Error::SchemaNotFound(name.to_string()))
            };
        }
        tx.commit().await?;
        Ok(true)
    }

    /// All schema names, sorted by byte order (the same on both backends, whatever the
    /// PostgreSQL collation).
    pub async fn list_schemas(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT name FROM sh_schemas")
            .fetch_all(&self.pool)
            .await?;
        let mut names = rows
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    }
}
