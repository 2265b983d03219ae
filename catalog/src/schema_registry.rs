//! Storage for the schema registry: schemas by id, subjects' versions, compatibility
//! levels. The rules (compatibility, parsing, the REST API) live in `streamhouse-registry`;
//! this module only keeps what it decided, transactionally.

use sqlx::Row;

use crate::{Catalog, Error};

/// A schema as registered: one id for one (type, canonical form), shared by every subject
/// using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    pub id: i64,
    /// `AVRO` or `JSON`.
    pub schema_type: String,
    /// As the client first sent it.
    pub text: String,
    /// The schema's references, a JSON array (kept as given; resolving them is the
    /// registry's business).
    pub references: String,
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub schema_id: i64,
    pub deleted: bool,
}

/// The global compatibility level is stored under this subject name.
const GLOBAL: &str = "";

/// PostgreSQL advisory lock key serializing registrations across nodes.
const REGISTRY_LOCK: i64 = 0x5348_5245_4749; // "SHREGI"

impl Catalog {
    /// Every registered schema (the registry loads them at start).
    pub async fn stored_schemas(&self) -> Result<Vec<StoredSchema>, Error> {
        let rows = sqlx::query("SELECT schema_id, schema_type, schema_text, refs FROM sh_registry_schemas ORDER BY schema_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_schema).collect()
    }

    /// The schema with `id`, if any.
    pub async fn stored_schema(&self, id: i64) -> Result<Option<StoredSchema>, Error> {
        let row = sqlx::query("SELECT schema_id, schema_type, schema_text, refs FROM sh_registry_schemas WHERE schema_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_schema).transpose()
    }

    /// The versions of one subject (or of all subjects), soft-deleted ones included,
    /// ordered by subject and version.
    pub async fn subject_versions(&self, subject: Option<&str>) -> Result<Vec<SubjectVersion>, Error> {
        let columns = "SELECT subject, version, schema_id, deleted FROM sh_registry_versions";
        let rows = match subject {
            Some(s) => sqlx::query(&format!("{columns} WHERE subject = $1 ORDER BY version")).bind(s).fetch_all(&self.pool).await?,
            None => sqlx::query(&format!("{columns} ORDER BY subject, version")).fetch_all(&self.pool).await?,
        };
        rows.iter()
            .map(|r| {
                Ok(SubjectVersion {
                    subject: r.try_get("subject")?,
                    version: r.try_get::<i64, _>("version")? as i32,
                    schema_id: r.try_get("schema_id")?,
                    deleted: r.try_get::<i64, _>("deleted")? != 0,
                })
            })
            .collect()
    }

    /// Adds `text` as the next version of `subject` and returns (schema id, version).
    ///
    /// The schema keeps the id of a schema with the same `canonical` form registered
    /// before (under any subject). When the subject already has a live version with that schema, nothing is
    /// added and that version is returned. `checked_latest` is the latest live version the
    /// caller's compatibility check saw: if another registration got in first, this fails
    /// with [`Error::Conflict`] rather than adding an unchecked version.
    pub async fn register_subject_version(
        &self,
        subject: &str,
        schema_type: &str,
        text: &str,
        canonical: &str,
        references: &str,
        checked_latest: Option<i32>,
    ) -> Result<(i64, i32), Error> {
        let mut tx = self.begin_write().await?;
        // Ids and version numbers are MAX + 1: registrations must not interleave. SQLite's
        // BEGIN IMMEDIATE already serializes writers; on PostgreSQL (which several nodes
        // may share) a transaction-scoped advisory lock does.
        if self.backend == crate::connect::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(REGISTRY_LOCK).execute(&mut *tx).await?;
        }
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT schema_id FROM sh_registry_schemas WHERE schema_type = $1 AND canonical = $2 AND refs = $3",
        )
        .bind(schema_type)
        .bind(canonical)
        .bind(references)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(schema_id), 0) + 1 FROM sh_registry_schemas").fetch_one(&mut *tx).await?;
                sqlx::query("INSERT INTO sh_registry_schemas (schema_id, schema_type, schema_text, canonical, refs) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id)
                    .bind(schema_type)
                    .bind(text)
                    .bind(canonical)
                    .bind(references)
                    .execute(&mut *tx)
                    .await?;
                id
            }
        };
        let live: Vec<(i64, i64)> = sqlx::query("SELECT version, schema_id FROM sh_registry_versions WHERE subject = $1 AND deleted = 0 ORDER BY version")
            .bind(subject)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        if let Some((version, _)) = live.iter().find(|(_, schema)| *schema == id) {
            // Nothing was inserted: an existing version implies the schema existed.
            tx.rollback().await?;
            return Ok((id, *version as i32));
        }
        if live.last().map(|(v, _)| *v as i32) != checked_latest {
            return Err(Error::Conflict(format!("subject \"{subject}\" changed while the new schema was being checked; retry")));
        }
        let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM sh_registry_versions WHERE subject = $1")
            .bind(subject)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sh_registry_versions (subject, version, schema_id, deleted) VALUES ($1, $2, $3, 0)")
            .bind(subject)
            .bind(version as i32)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((id, version as i32))
    }

    /// Marks versions deleted (`permanent = false`) or removes versions that were marked
    /// before (`permanent = true`); `version = None` means every version of the subject.
    /// Returns the versions affected.
    pub async fn delete_subject_versions(&self, subject: &str, version: Option<i32>, permanent: bool) -> Result<Vec<i32>, Error> {
        let mut tx = self.begin_write().await?;
        let wanted = if permanent { 1 } else { 0 };
        let mut select = String::from("SELECT version FROM sh_registry_versions WHERE subject = $1 AND deleted = $2");
        if version.is_some() {
            select.push_str(" AND version = $3");
        }
        let mut query = sqlx::query(&select).bind(subject).bind(wanted);
        if let Some(v) = version {
            query = query.bind(v);
        }
        let versions: Vec<i32> = query
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0).map(|v| v as i32))
            .collect::<Result<_, _>>()?;
        for v in &versions {
            let change = if permanent {
                "DELETE FROM sh_registry_versions WHERE subject = $1 AND version = $2"
            } else {
                "UPDATE sh_registry_versions SET deleted = 1 WHERE subject = $1 AND version = $2"
            };
            sqlx::query(change).bind(subject).bind(*v).execute(&mut *tx).await?;
        }
        if permanent && version.is_none() {
            sqlx::query("DELETE FROM sh_registry_config WHERE subject = $1").bind(subject).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(versions)
    }

    /// The compatibility level of `subject` (`None`: the global default), if one is set.
    pub async fn compatibility_level(&self, subject: Option<&str>) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar("SELECT compatibility FROM sh_registry_config WHERE subject = $1")
            .bind(subject.unwrap_or(GLOBAL))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets (`Some`) or removes (`None`) the compatibility level of `subject` or, with
    /// `subject = None`, the global default.
    pub async fn set_compatibility_level(&self, subject: Option<&str>, level: Option<&str>) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        match level {
            Some(level) => {
                sqlx::query(
                    "INSERT INTO sh_registry_config (subject, compatibility) VALUES ($1, $2) \
                     ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility",
                )
                .bind(subject.unwrap_or(GLOBAL))
                .bind(level)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM sh_registry_config WHERE subject = $1").bind(subject.unwrap_or(GLOBAL)).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn stored_schema(r: &sqlx::any::AnyRow) -> Result<StoredSchema, Error> {
    Ok(StoredSchema {
        id: r.try_get("schema_id")?,
        schema_type: r.try_get("schema_type")?,
        text: r.try_get("schema_text")?,
        references: r.try_get("refs")?,
    })
}
