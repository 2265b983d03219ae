//! Reading one partition in offset order from a position: what subscriptions (and later
//! Kafka fetches) need, as opposed to a snapshot scan, which reads a whole table in any order.
//!
//! A read returns at most a bounded number of rows, so a slow reader costs memory for one
//! chunk at a time whatever its backlog: older rows are read back from their Parquet
//! segments (only the row groups and pages past the position), newer ones from the
//! in-memory tail. Only acknowledged rows are returned.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use streamhouse_catalog::SegmentEntry;

use crate::columns::TIMESTAMP_COLUMN;
use crate::engine::Streams;
use crate::error::{Error, Result};
use crate::read_ahead::{slice, DECODED_PER_STORED_BYTE, READ_AHEAD_ROWS};
use crate::table::StreamTable;

/// Times a read is retried when its segment was deleted under it.
const SEGMENT_GONE_RETRIES: usize = 3;
/// Rows per batch when reading a segment back.
const SEGMENT_READ_BATCH_ROWS: usize = 8192;

/// What [`Streams::read_partition`] found.
#[derive(Debug)]
pub struct PartitionRead {
    /// Rows in the stored layout, in offset order (possibly none).
    pub batches: Vec<RecordBatch>,
    /// The offset to read from next: one past the last row returned, or the position
    /// moved forward past rows that retention removed.
    pub next_offset: i64,
}

/// Where one partition's readable rows begin and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionBounds {
    /// The oldest offset still stored (older ones were removed by retention).
    pub start_offset: i64,
    /// One past the newest acknowledged offset.
    pub high_watermark: i64,
}

/// Where the rows at and after an offset are, decided under the partition lock.
enum Source {
    Segment(SegmentEntry),
    Tail(Vec<RecordBatch>),
    Nothing,
}

impl Streams {
    /// The readable offset range of one partition now.
    pub fn partition_bounds(&self, table: &StreamTable, partition: u32) -> Result<PartitionBounds> {
        let p = table.partition(partition as usize).ok_or_else(|| no_partition(table, partition))?;
        let snapshot = p.snapshot(self.visible_lsn());
        Ok(PartitionBounds { start_offset: snapshot.start_offset, high_watermark: snapshot.high_watermark })
    }

    /// Up to `max_rows` acknowledged rows of one partition from offset `from` on. A
    /// position older than retention kept moves to the oldest stored row, as a Kafka
    /// consumer resets to the earliest offset.
    pub async fn read_partition(
        &self,
        table: &Arc<StreamTable>,
        partition: u32,
        from: i64,
        max_rows: usize,
    ) -> Result<PartitionRead> {
        let mut attempt = 0;
        loop {
            match self.read_partition_once(table, partition, from, max_rows).await {
                // Retention deleted the segment between choosing it and reading it: the
                // partition's start has moved on; read again from there.
                Err(e) if segment_gone(&e) && attempt < SEGMENT_GONE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn read_partition_once(
        &self,
        table: &Arc<StreamTable>,
        partition: u32,
        from: i64,
        max_rows: usize,
    ) -> Result<PartitionRead> {
        if table.is_dropped() {
            return Err(Error::TableNotFound(format!("{}.{}", table.schema_name(), table.name())));
        }
        let p = table.partition(partition as usize).ok_or_else(|| no_partition(table, partition))?;
        let visible = self.visible_lsn();
        let (from, source) = {
            let state = p.read();
            let from = from.max(state.start_offset);
            let in_tail = state.tail.front().is_some_and(|t| t.base_offset <= from)
                || state.segments.last().is_none_or(|s| s.end_offset <= from);
            let source = if in_tail {
                let batches: Vec<RecordBatch> = state
                    .tail
                    .iter()
                    .take_while(|t| t.lsn <= visible)
                    .filter(|t| t.end_offset() > from)
                    .scan(0usize, |taken, t| {
                        (*taken < max_rows).then(|| {
                            let skip = (from - t.base_offset).max(0) as usize;
                            let len = (t.batch.num_rows() - skip).min(max_rows - *taken);
                            *taken += len;
                            t.batch.slice(skip, len)
                        })
                    })
                    .collect();
                if batches.is_empty() { Source::Nothing } else { Source::Tail(batches) }
            } else {
                // Segments are in offset order and contiguous: the first ending after `from`.
                let segment = state.segments.iter().find(|s| s.end_offset > from).cloned();
                segment.map_or(Source::Nothing, Source::Segment)
            };
            (from, source)
        };
        let batches = match source {
            Source::Nothing => Vec::new(),
            Source::Tail(batches) => batches,
            Source::Segment(segment) => self.read_segment_ahead(&segment, from, max_rows).await?,
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(PartitionRead { batches, next_offset: from + rows as i64 })
    }

    /// The offset of the first row of a partition ingested at or after `timestamp_us`
    /// (microseconds since the epoch), or its high watermark when there is none yet.
    pub async fn offset_at_time(&self, table: &Arc<StreamTable>, partition: u32, timestamp_us: i64) -> Result<i64> {
        let p = table.partition(partition as usize).ok_or_else(|| no_partition(table, partition))?;
        let snapshot = p.snapshot(self.visible_lsn());
        let timestamp_ms = timestamp_us.div_euclid(1000);
        for segment in snapshot.segments.iter().filter(|s| s.max_timestamp_ms >= timestamp_ms) {
            let batches = self.read_segment(segment, segment.base_offset, usize::MAX).await?;
            let mut offset = segment.base_offset;
            for batch in &batches {
                if let Some(i) = first_at_or_after(batch, timestamp_us) {
                    return Ok(offset + i as i64);
                }
                offset += batch.num_rows() as i64;
            }
        }
        for batch in &snapshot.tail {
            if let Some(i) = first_at_or_after(batch, timestamp_us) {
                let base = batch.column_by_name(crate::columns::OFFSET_COLUMN).map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().value(0));
                return Ok(base.unwrap_or(snapshot.high_watermark) + i as i64);
            }
        }
        Ok(snapshot.high_watermark)
    }

    /// [`Self::read_segment`] through the read-ahead cache: a miss decodes a span of
    /// [`READ_AHEAD_ROWS`] and keeps it for the reads that follow.
    async fn read_segment_ahead(&self, segment: &SegmentEntry, from: i64, max_rows: usize) -> Result<Vec<RecordBatch>> {
        if let Some(batches) = self.read_ahead.get(&segment.path, from, max_rows) {
            return Ok(batches);
        }
        let stored_row_bytes = (segment.size_bytes.max(0) as usize).div_ceil(segment.row_count.max(1) as usize);
        let span_rows = max_rows.max(READ_AHEAD_ROWS);
        if !self.read_ahead.would_keep(span_rows.saturating_mul(stored_row_bytes * DECODED_PER_STORED_BYTE)) {
            return self.read_segment(segment, from, max_rows).await; // too wide to keep: no read-ahead
        }
        let span = self.read_segment(segment, from, span_rows).await?;
        self.read_ahead.insert(&segment.path, from, &span);
        Ok(slice(&span, 0, max_rows))
    }

    /// Rows of one segment from offset `from` on, at most `max_rows`: only the pages past
    /// the position are decoded.
    async fn read_segment(&self, segment: &SegmentEntry, from: i64, max_rows: usize) -> Result<Vec<RecordBatch>> {
        let reader = SegmentFile {
            store: self.store.clone(),
            path: Path::from(segment.path.as_str()),
            size: segment.size_bytes as u64,
        };
        let skip = (from - segment.base_offset).max(0) as usize;
        // The offset index lets the offset skip whole pages instead of decoding them.
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options)
            .await?
            .with_batch_size(SEGMENT_READ_BATCH_ROWS)
            .with_offset(skip);
        if max_rows != usize::MAX {
            builder = builder.with_limit(max_rows);
        }
        Ok(builder.build()?.try_collect().await?)
    }
}

/// A segment file read through the object store; its size is known from the catalog, so
/// the footer is read with one ranged request.
struct SegmentFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl AsyncFileReader for SegmentFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e))) }
            .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(|e| ParquetError::External(Box::new(e))) }
            .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata =
                ParquetMetaDataReader::new().with_arrow_reader_options(options).load_and_finish(self, size).await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// The index of the first row whose `_timestamp` is at or after `timestamp_us`.
fn first_at_or_after(batch: &RecordBatch, timestamp_us: i64) -> Option<usize> {
    let column = batch.column_by_name(TIMESTAMP_COLUMN)?;
    let times = column.as_primitive::<TimestampMicrosecondType>();
    (0..times.len()).find(|&i| times.is_valid(i) && times.value(i) >= timestamp_us)
}

/// A segment object that no longer exists (retention removed it).
fn segment_gone(e: &Error) -> bool {
    let not_found = |inner: &(dyn std::error::Error + Send + Sync + 'static)| {
        inner.downcast_ref::<object_store::Error>().is_some_and(|e| matches!(e, object_store::Error::NotFound { .. }))
    };
    match e {
        Error::ObjectStore(object_store::Error::NotFound { .. }) => true,
        Error::Parquet(ParquetError::External(inner)) => not_found(inner.as_ref()),
        _ => false,
    }
}

fn no_partition(table: &StreamTable, partition: u32) -> Error {
    Error::Config(format!("table {} has no partition {partition}", table.name()))
}
