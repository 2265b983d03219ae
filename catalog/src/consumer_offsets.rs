//! Consumer-group offsets: where each Kafka consumer group will resume reading each
//! partition. Kept in the catalog so they survive restarts and are visible to SQL.

use sqlx::Row;

use crate::{Catalog, Error};

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOffset {
    pub group_id: String,
    pub table_id: i64,
    pub partition: i32,
    /// The next offset the group will read.
    pub next_offset: i64,
    pub metadata: Option<String>,
    pub committed_at_ms: i64,
}

impl Catalog {
    /// Stores the positions of one group, all together (one OffsetCommit request).
    pub async fn commit_consumer_offsets(&self, offsets: &[ConsumerOffset]) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        for o in offsets {
            sqlx::query(
                "INSERT INTO sh_consumer_offsets (group_id, table_id, partition_index, next_offset, metadata, committed_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (group_id, table_id, partition_index) \
                 DO UPDATE SET next_offset = excluded.next_offset, metadata = excluded.metadata, committed_at_ms = excluded.committed_at_ms",
            )
            .bind(&o.group_id)
            .bind(o.table_id)
            .bind(o.partition)
            .bind(o.next_offset)
            .bind(&o.metadata)
            .bind(o.committed_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every committed position of one group, or of all groups when `group_id` is `None`.
    pub async fn consumer_offsets(&self, group_id: Option<&str>) -> Result<Vec<ConsumerOffset>, Error> {
        let columns = "SELECT group_id, table_id, partition_index, next_offset, metadata, committed_at_ms FROM sh_consumer_offsets";
        let rows = match group_id {
            Some(g) => sqlx::query(&format!("{columns} WHERE group_id = $1")).bind(g).fetch_all(&self.pool).await?,
            None => sqlx::query(columns).fetch_all(&self.pool).await?,
        };
        rows.iter()
            .map(|r| {
                Ok(ConsumerOffset {
                    group_id: r.try_get("group_id")?,
                    table_id: r.try_get("table_id")?,
                    partition: r.try_get("partition_index")?,
                    next_offset: r.try_get("next_offset")?,
                    metadata: r.try_get("metadata")?,
                    committed_at_ms: r.try_get("committed_at_ms")?,
                })
            })
            .collect()
    }
}
