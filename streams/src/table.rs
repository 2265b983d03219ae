//! A stream table as the storage layer holds it: catalog entry, stored layout, partitions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arrow::datatypes::SchemaRef;
use streamhouse_catalog::{TableEntry, TableOptions};
use streamhouse_wal::Lsn;

use crate::columns::{stored_schema, wal_schema};
use crate::partition::{Partition, PartitionSnapshot, PartitionState};

#[derive(Debug)]
pub struct StreamTable {
    /// As loaded or created: `options.partitions` is the count then; it may have grown
    /// since (see [`Self::partition_count`]).
    pub entry: TableEntry,
    stored_schema: SchemaRef,
    wal_schema: SchemaRef,
    /// Only ever grows (Kafka CreatePartitions): a partition number, once valid, stays valid.
    partitions: RwLock<Vec<Arc<Partition>>>,
    /// Index of the key column in the user schema.
    pub(crate) key_index: Option<usize>,
    /// Where the next round-robin append starts.
    pub(crate) round_robin: AtomicU64,
    pub(crate) dropped: AtomicBool,
}

impl StreamTable {
    pub(crate) fn new(entry: TableEntry, partitions: Vec<Partition>) -> Self {
        let partitions = RwLock::new(partitions.into_iter().map(Arc::new).collect());
        let key_index = entry
            .options
            .key
            .as_ref()
            .and_then(|k| entry.arrow_schema.index_of(k).ok());
        StreamTable {
            stored_schema: stored_schema(&entry.arrow_schema),
            wal_schema: wal_schema(&entry.arrow_schema),
            entry,
            partitions,
            key_index,
            round_robin: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> i64 {
        self.entry.id
    }

    pub fn schema_name(&self) -> &str {
        &self.entry.schema
    }

    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The user's columns.
    pub fn schema(&self) -> SchemaRef {
        self.entry.arrow_schema.clone()
    }

    /// The user's columns followed by the system columns.
    pub fn stored_schema(&self) -> SchemaRef {
        self.stored_schema.clone()
    }

    /// The user's columns followed by `_key`: how rows are written to the WAL.
    pub fn wal_schema(&self) -> SchemaRef {
        self.wal_schema.clone()
    }

    pub fn options(&self) -> &TableOptions {
        &self.entry.options
    }

    /// The number of partitions now; it may grow later, never shrink.
    pub fn partition_count(&self) -> usize {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn partition(&self, partition: usize) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(partition).cloned()
    }

    pub(crate) fn partition_list(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds empty partitions up to `total` (already recorded in the catalog).
    pub(crate) fn grow_to(&self, total: usize) {
        let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        while partitions.len() < total {
            let id = partitions.len() as u32;
            partitions.push(Arc::new(Partition::new(id, PartitionState::default())));
        }
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot_at(self: &Arc<Self>, visible_lsn: Lsn) -> TableSnapshot {
        TableSnapshot {
            table: self.clone(),
            partitions: self.partition_list().iter().map(|p| p.snapshot(visible_lsn)).collect(),
        }
    }
}

/// A consistent view of a whole table, taken at one acknowledged WAL position.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub table: Arc<StreamTable>,
    pub partitions: Vec<PartitionSnapshot>,
}

impl TableSnapshot {
    pub fn row_count(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| {
                p.segments.iter().map(|s| s.row_count).sum::<i64>()
                    + p.tail.iter().map(|b| b.num_rows() as i64).sum::<i64>()
            })
            .sum()
    }
}
