//! Segment commits and retention.
//!
//! Exists because this is the durability hand-off between the WAL and object storage: a
//! flushed Parquet file becomes part of the table only when `commit_segment` moves the
//! partition's committed offset, and that move is conditional on the offset it expects,
//! so a stale writer (an old node, a retried flush) can never commit over newer data.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Catalog, Error, SegmentEntry};

const SEGMENT_COLUMNS: &str = "table_id, partition_id, base_offset, end_offset, row_count, \
     min_timestamp_ms, max_timestamp_ms, size_bytes, path, created_at_ms";

impl Catalog {
    /// The segments of a table, ordered by (partition, base_offset).
    pub async fn segments(&self, table_id: i64) -> Result<Vec<SegmentEntry>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM sh_segments WHERE table_id = $1 \
             ORDER BY partition_id, base_offset"
        ))
        .bind(table_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(segment_from_row).collect()
    }

    /// Atomically inserts the segment and advances the partition's committed_offset to
    /// `seg.end_offset`.
    ///
    /// Fails with [`Error::Conflict`] if `seg.base_offset` is not the current
    /// committed_offset (fencing: a stale or duplicate flush never commits), and with
    /// [`Error::TableNotFound`] if the partition does not exist (e.g. the table was dropped
    /// while the flush ran).
    pub async fn commit_segment(&self, seg: &SegmentEntry) -> Result<(), Error> {
        if seg.end_offset <= seg.base_offset {
            return Err(Error::Invalid(format!(
                "segment {} of table {} partition {}: empty or inverted offset range [{}, {})",
                seg.path, seg.table_id, seg.partition, seg.base_offset, seg.end_offset
            )));
        }
        let mut tx = self.begin_write().await?;
        // Compare-and-set in one statement. On PostgreSQL a concurrent committer blocks on
        // the row lock and then re-checks the WHERE clause against the new value, so
        // exactly one of two racing commits of the same base offset updates a row.
        let updated = sqlx::query(
            "UPDATE sh_partitions SET committed_offset = $1 \
             WHERE table_id = $2 AND partition_id = $3 AND committed_offset = $4",
        )
        .bind(seg.end_offset)
        .bind(seg.table_id)
        .bind(seg.partition)
        .bind(seg.base_offset)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let current = committed_offset(&mut tx, seg.table_id, seg.partition).await?;
            return Err(match current {
                None => partition_not_found(seg.table_id, seg.partition),
                Some(current) => Error::Conflict(format!(
                    "segment {} of table {} partition {} starts at offset {} but the \
                     committed offset is {current}",
                    seg.path, seg.table_id, seg.partition, seg.base_offset
                )),
            });
        }

        let inserted = sqlx::query(&format!(
            "INSERT INTO sh_segments ({SEGMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(seg.table_id)
        .bind(seg.partition)
        .bind(seg.base_offset)
        .bind(seg.end_offset)
        .bind(seg.row_count)
        .bind(seg.min_timestamp_ms)
        .bind(seg.max_timestamp_ms)
        .bind(seg.size_bytes)
        .bind(&seg.path)
        .bind(seg.created_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Cannot happen while offsets only move forward, but if a row with this base
            // offset somehow exists, refusing is the safe answer.
            Err(e) if Error::is_unique_violation(&e) => {
                return Err(Error::Conflict(format!(
                    "segment at offset {} of table {} partition {} already exists",
                    seg.base_offset, seg.table_id, seg.partition
                )))
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        tracing::debug!(
            table_id = seg.table_id,
            partition = seg.partition,
            base_offset = seg.base_offset,
            end_offset = seg.end_offset,
            "segment committed"
        );
        Ok(())
    }

    /// Retention: deletes the segment rows of (table, partition) with `end_offset <= up_to`
    /// and moves start_offset up to `up_to`; returns the deleted entries (the caller
    /// deletes the files after this commits).
    ///
    /// start_offset never moves backwards and never past committed_offset: offsets above
    /// the committed offset are still in the WAL/in-memory tail and were not deleted.
    pub async fn delete_segments_before(
        &self,
        table_id: i64,
        partition: i32,
        up_to: i64,
    ) -> Result<Vec<SegmentEntry>, Error> {
        let mut tx = self.begin_write().await?;
        // The partition row first: this takes its lock on PostgreSQL, ordering us with a
        // concurrent commit_segment. CASE rather than LEAST/MIN: portable.
        let updated = sqlx::query(
            "UPDATE sh_partitions SET start_offset = \
                 CASE WHEN committed_offset < $1 THEN committed_offset ELSE $1 END \
             WHERE table_id = $2 AND partition_id = $3 AND start_offset < $1",
        )
        .bind(up_to)
        .bind(table_id)
        .bind(partition)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0
            && committed_offset(&mut tx, table_id, partition)
                .await?
                .is_none()
        {
            return Err(partition_not_found(table_id, partition));
        }

        let rows = sqlx::query(&format!(
            "DELETE FROM sh_segments \
             WHERE table_id = $1 AND partition_id = $2 AND end_offset <= $3 \
             RETURNING {SEGMENT_COLUMNS}"
        ))
        .bind(table_id)
        .bind(partition)
        .bind(up_to)
        .fetch_all(&mut *tx)
        .await?;
        let mut deleted = rows
            .iter()
            .map(segment_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        // RETURNING order is unspecified; callers get offset order.
        deleted.sort_by_key(|s| s.base_offset);
        Ok(deleted)
    }
}

async fn committed_offset(
    tx: &mut Transaction<'static, Any>,
    table_id: i64,
    partition: i32,
) -> Result<Option<i64>, Error> {
    let row = sqlx::query(
        "SELECT committed_offset FROM sh_partitions WHERE table_id = $1 AND partition_id = $2",
    )
    .bind(table_id)
    .bind(partition)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

fn partition_not_found(table_id: i64, partition: i32) -> Error {
    Error::TableNotFound(format!("table id {table_id} partition {partition}"))
}

fn segment_from_row(r: &AnyRow) -> Result<SegmentEntry, Error> {
    Ok(SegmentEntry {
        table_id: r.try_get("table_id")?,
        partition: r.try_get("partition_id")?,
        base_offset: r.try_get("base_offset")?,
        end_offset: r.try_get("end_offset")?,
        row_count: r.try_get("row_count")?,
        min_timestamp_ms: r.try_get("min_timestamp_ms")?,
        max_timestamp_ms: r.try_get("max_timestamp_ms")?,
        size_bytes: r.try_get("size_bytes")?,
        path: r.try_get("path")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}
