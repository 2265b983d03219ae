//! Stream tables and their partitions: create, drop, look up, list.
//!
//! Exists to keep a table, its partition rows and its segment rows consistent: they are
//! created and removed in one transaction, so no reader ever sees a table without its
//! partitions or segments of a table that no longer exists.

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{relation_exists, Catalog, Error, PartitionEntry, Relation, TableEntry, TableOptions};

const TABLE_COLUMNS: &str = "id, schema_name, name, arrow_schema, options, created_at_ms";

/// The most partitions a table may have. Bounded so that a (source, partition) pair fits
/// in one `i32` progress code of a materialized view (`source × MAX_PARTITIONS + partition`).
pub const MAX_PARTITIONS: u32 = 1024;

impl Catalog {
    /// Creates table `schema.name` with `options.partitions` partitions, all at offset 0.
    ///
    /// Returns `None` if the table existed and `if_not_exists` is set.
    pub async fn create_table(
        &self,
        schema: &str,
        name: &str,
        arrow_schema: &arrow_schema::Schema,
        options: &TableOptions,
        if_not_exists: bool,
    ) -> Result<Option<TableEntry>, Error> {
        let qualified = format!("{schema}.{name}");
        check_partition_count(&qualified, options.partitions)?;
        // Serialise before touching the database: a schema that cannot be stored must not
        // leave a half-created table behind.
        let schema_json = serde_json::to_string(arrow_schema)
            .map_err(|e| Error::Invalid(format!("{qualified}: cannot encode schema: {e}")))?;
        let options_json = serde_json::to_string(options)
            .map_err(|e| Error::Invalid(format!("{qualified}: cannot encode options: {e}")))?;
        let existed = || {
            if if_not_exists {
                Ok(None)
            } else {
                Err(Error::AlreadyExists(qualified.clone()))
            }
        };

        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM sh_schemas WHERE name = $1")
            .bind(schema)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(Error::SchemaNotFound(schema.to_string()));
        }
        if relation_exists(&mut tx, Relation::Table, schema, name).await? {
            return existed();
        }
        if relation_exists(&mut tx, Relation::View, schema, name).await? {
            return Err(Error::AlreadyExists(qualified));
        }

        // Portable id allocation: bump a one-row counter inside this transaction. On
        // PostgreSQL the row lock serialises concurrent creators; ids are never reused.
        let id: i64 = sqlx::query(
            "UPDATE sh_id_sequence SET next_id = next_id + 1 WHERE id = 1 RETURNING next_id",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>(0)?
            - 1;

        let created_at_ms = crate::now_ms();
        let inserted = sqlx::query(
            "INSERT INTO sh_tables (id, schema_name, name, arrow_schema, options, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(schema)
        .bind(name)
        .bind(&schema_json)
        .bind(&options_json)
        .bind(created_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Races with another node (PostgreSQL): same name created, or schema dropped.
            Err(e) if Error::is_unique_violation(&e) => return existed(),
            Err(e) if Error::is_foreign_key_violation(&e) => {
                return Err(Error::SchemaNotFound(schema.to_string()))
            }
            Err(e) => return Err(e.into()),
        }

        for partition in 0..options.partitions as i32 {
            sqlx::query(
                "INSERT INTO sh_partitions (table_id, partition_id, committed_offset, start_offset) \
                 VALUES ($1, $2, 0, 0)",
            )
            .bind(id)
            .bind(partition)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::debug!(table = %qualified, id, partitions = options.partitions, "table created");

        Ok(Some(TableEntry {
            id,
            schema: schema.to_string(),
            name: name.to_string(),
            arrow_schema: Arc::new(arrow_schema.clone()),
            options: options.clone(),
            created_at_ms,
        }))
    }

    /// Drops `schema.name` with its partition and segment rows, in one transaction.
    ///
    /// Returns the dropped entry (`None` if it did not exist); the caller deletes the
    /// segment files afterwards, so a crash in between leaves only unreferenced files.
    pub async fn drop_table(&self, schema: &str, name: &str) -> Result<Option<TableEntry>, Error> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {TABLE_COLUMNS} FROM sh_tables WHERE schema_name = $1 AND name = $2"
        ))
        .bind(schema)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        // Decoding may fail on a corrupt entry; dropping it must still be possible, so
        // fall back to an empty schema rather than refusing.
        let entry = table_from_row(&row).or_else(|e| match e {
            Error::Corrupt(_) => Ok(TableEntry {
                id,
                schema: schema.to_string(),
                name: name.to_string(),
                arrow_schema: Arc::new(arrow_schema::Schema::empty()),
                options: TableOptions::default(),
                created_at_ms: row.try_get("created_at_ms")?,
            }),
            e => Err(e),
        })?;

        // Children first: the foreign keys forbid the other order.
        for sql in [
            "DELETE FROM sh_segments WHERE table_id = $1",
            "DELETE FROM sh_partitions WHERE table_id = $1",
            "DELETE FROM sh_tables WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        crate::comments::delete_relation_comments(&mut tx, schema, name).await?;
        tx.commit().await?;
        tracing::debug!(table = %format!("{schema}.{name}"), id, "table dropped");
        Ok(Some(entry))
    }

    /// Grows `schema.name` to `total` partitions (Kafka's CreatePartitions): the new ones
    /// start empty at offset 0; the recorded options and the partition rows change in one
    /// transaction. Partitions are never removed, so `total` must exceed the current count.
    pub async fn add_partitions(&self, schema: &str, name: &str, total: u32) -> Result<TableEntry, Error> {
        let qualified = format!("{schema}.{name}");
        check_partition_count(&qualified, total)?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {TABLE_COLUMNS} FROM sh_tables WHERE schema_name = $1 AND name = $2"))
            .bind(schema)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(Error::TableNotFound(qualified)) };
        let mut entry = table_from_row(&row)?;
        let current = entry.options.partitions;
        if total <= current {
            return Err(Error::Invalid(format!(
                "{qualified} has {current} partitions; it can only grow (asked for {total})"
            )));
        }
        entry.options.partitions = total;
        let options_json = serde_json::to_string(&entry.options)
            .map_err(|e| Error::Invalid(format!("{qualified}: cannot encode options: {e}")))?;
        sqlx::query("UPDATE sh_tables SET options = $1 WHERE id = $2")
            .bind(&options_json)
            .bind(entry.id)
            .execute(&mut *tx)
            .await?;
        for partition in current as i32..total as i32 {
            sqlx::query(
                "INSERT INTO sh_partitions (table_id, partition_id, committed_offset, start_offset) \
                 VALUES ($1, $2, 0, 0)",
            )
            .bind(entry.id)
            .bind(partition)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::debug!(table = %qualified, from = current, to = total, "partitions added");
        Ok(entry)
    }

    /// Looks up `schema.name`.
    pub async fn get_table(&self, schema: &str, name: &str) -> Result<Option<TableEntry>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {TABLE_COLUMNS} FROM sh_tables WHERE schema_name = $1 AND name = $2"
        ))
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(table_from_row).transpose()
    }

    /// All tables, sorted by (schema, name) in byte order.
    pub async fn list_tables(&self) -> Result<Vec<TableEntry>, Error> {
        let rows = sqlx::query(&format!("SELECT {TABLE_COLUMNS} FROM sh_tables"))
            .fetch_all(&self.pool)
            .await?;
        let mut tables = rows
            .iter()
            .map(table_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        Ok(tables)
    }

    /// The partitions of a table, ordered by partition number (empty if no such table).
    pub async fn partitions(&self, table_id: i64) -> Result<Vec<PartitionEntry>, Error> {
        let rows = sqlx::query(
            "SELECT table_id, partition_id, committed_offset, start_offset \
             FROM sh_partitions WHERE table_id = $1 ORDER BY partition_id",
        )
        .bind(table_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PartitionEntry {
                    table_id: r.try_get("table_id")?,
                    partition: r.try_get("partition_id")?,
                    committed_offset: r.try_get("committed_offset")?,
                    start_offset: r.try_get("start_offset")?,
                })
            })
            .collect()
    }
}

fn check_partition_count(qualified: &str, partitions: u32) -> Result<(), Error> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(Error::Invalid(format!(
            "{qualified}: partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
        )));
    }
    Ok(())
}

fn table_from_row(row: &AnyRow) -> Result<TableEntry, Error> {
    let schema: String = row.try_get("schema_name")?;
    let name: String = row.try_get("name")?;
    let schema_json: String = row.try_get("arrow_schema")?;
    let options_json: String = row.try_get("options")?;
    let arrow_schema: arrow_schema::Schema = serde_json::from_str(&schema_json)
        .map_err(|e| Error::Corrupt(format!("{schema}.{name}: arrow schema: {e}")))?;
    let options: TableOptions = serde_json::from_str(&options_json)
        .map_err(|e| Error::Corrupt(format!("{schema}.{name}: options: {e}")))?;
    Ok(TableEntry {
        id: row.try_get("id")?,
        schema,
        name,
        arrow_schema: Arc::new(arrow_schema),
        options,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    //! Tests that need raw SQL access to stored rows (hence inside the crate).
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    async fn catalog_with_table() -> (Catalog, TableEntry) {
        let c = Catalog::connect("sqlite::memory:").await.unwrap();
        let schema = Schema::new(vec![Field::new("a", DataType::Int64, false)]);
        let t = c
            .create_table("public", "t", &schema, &TableOptions::default(), false)
            .await
            .unwrap()
            .unwrap();
        (c, t)
    }

    #[tokio::test]
    async fn options_ignore_unknown_and_missing_fields() {
        let (c, t) = catalog_with_table().await;
        // A newer version wrote an option we do not know and omitted one we do.
        sqlx::query("UPDATE sh_tables SET options = $1 WHERE id = $2")
            .bind(r#"{"partitions": 3, "key": "a", "compaction": "lz4", "future": {"x": 1}}"#)
            .bind(t.id)
            .execute(&c.pool)
            .await
            .unwrap();
        let got = c.get_table("public", "t").await.unwrap().unwrap();
        assert_eq!(
            got.options,
            TableOptions {
                partitions: 3,
                key: Some("a".into()),
                retention_ms: None,
                retention_bytes: None,
                materialized: None,
                watermark: None,
                compact: false,
            }
        );
    }

    #[tokio::test]
    async fn partitions_only_grow_within_the_limit() {
        let (c, t) = catalog_with_table().await;
        let grown = c.add_partitions("public", "t", 4).await.unwrap();
        assert_eq!(grown.options.partitions, 4);
        assert_eq!(c.get_table("public", "t").await.unwrap().unwrap().options.partitions, 4);
        let partitions = c.partitions(t.id).await.unwrap();
        assert_eq!(partitions.iter().map(|p| (p.partition, p.committed_offset)).collect::<Vec<_>>(), [(0, 0), (1, 0), (2, 0), (3, 0)]);
        for refused in [4, 2, 0, MAX_PARTITIONS + 1] {
            assert!(matches!(c.add_partitions("public", "t", refused).await, Err(Error::Invalid(_))), "{refused}");
        }
        assert!(matches!(c.add_partitions("public", "missing", 2).await, Err(Error::TableNotFound(_))));
        assert_eq!(c.partitions(t.id).await.unwrap().len(), 4, "refusals change nothing");
    }

    #[tokio::test]
    async fn corrupt_entry_is_reported_and_still_droppable() {
        let (c, t) = catalog_with_table().await;
        sqlx::query("UPDATE sh_tables SET arrow_schema = 'not json' WHERE id = $1")
            .bind(t.id)
            .execute(&c.pool)
            .await
            .unwrap();
        assert!(matches!(
            c.get_table("public", "t").await,
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(c.list_tables().await, Err(Error::Corrupt(_))));
        let dropped = c.drop_table("public", "t").await.unwrap().unwrap();
        assert_eq!(dropped.id, t.id);
        assert!(c.list_tables().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn default_options_have_one_partition() {
        let (c, t) = catalog_with_table().await;
        assert_eq!(t.options.partitions, 1);
        assert_eq!(c.partitions(t.id).await.unwrap().len(), 1);
    }
}
