//! One partition of a stream table: its committed segments and its in-memory tail.
//!
//! The tail holds appended rows, in offset order, tagged with the LSN of the WAL record
//! that carries them. A row becomes visible once its LSN is acknowledged by the WAL; it
//! leaves the tail only after the segment holding it is committed in the catalog, and both
//! changes happen under one lock, so a reader never sees a row twice or not at all.

use std::collections::VecDeque;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use streamhouse_catalog::SegmentEntry;
use streamhouse_wal::Lsn;

/// Rows of one WAL record for one partition (or of several consecutive ones, once the
/// flusher has merged small batches).
#[derive(Debug, Clone)]
pub struct TailBatch {
    /// The last WAL record these rows came from: they are visible once it is acknowledged.
    pub lsn: Lsn,
    /// The first WAL record these rows came from: the WAL must keep it until they are in a segment.
    pub first_lsn: Lsn,
    pub base_offset: i64,
    pub batch: RecordBatch,
    pub appended_at: Instant,
}

impl TailBatch {
    pub fn end_offset(&self) -> i64 {
        self.base_offset + self.batch.num_rows() as i64
    }
}

#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    /// Committed segments in offset order.
    pub segments: Vec<SegmentEntry>,
    pub tail: VecDeque<TailBatch>,
    pub tail_bytes: usize,
    /// The offset the next appended row gets.
    pub next_offset: i64,
    /// Offsets below this were removed by retention.
    pub start_offset: i64,
}

#[derive(Debug)]
pub(crate) struct Partition {
    pub id: u32,
    state: RwLock<PartitionState>,
}

impl Partition {
    pub fn new(id: u32, state: PartitionState) -> Self {
        Partition { id, state: RwLock::new(state) }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, PartitionState> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, PartitionState> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a reader sees when the WAL has acknowledged everything up to `visible_lsn`.
    pub fn snapshot(&self, visible_lsn: Lsn) -> PartitionSnapshot {
        let state = self.read();
        let tail: Vec<RecordBatch> = state
            .tail
            .iter()
            .take_while(|t| t.lsn <= visible_lsn)
            .map(|t| t.batch.clone())
            .collect();
        let high_watermark = state
            .tail
            .iter()
            .take_while(|t| t.lsn <= visible_lsn)
            .last()
            .map(TailBatch::end_offset)
            .or_else(|| state.segments.last().map(|s| s.end_offset))
            .unwrap_or(state.start_offset);
        PartitionSnapshot {
            partition: self.id,
            segments: state.segments.clone(),
            tail,
            start_offset: state.start_offset,
            high_watermark,
        }
    }
}

/// A consistent view of one partition.
#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    pub partition: u32,
    pub segments: Vec<SegmentEntry>,
    /// Visible tail rows (stored layout), in offset order.
    pub tail: Vec<RecordBatch>,
    pub start_offset: i64,
    /// One past the last visible offset.
    pub high_watermark: i64,
}
