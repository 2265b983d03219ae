//! The background flusher: turns tails into Parquet segments, truncates the WAL behind
//! them, and enforces retention.
//!
//! A flush writes the segment object first, then commits it in the catalog (which also
//! advances the partition's committed offset), then drops the flushed rows from the tail.
//! A crash between the steps leaves at worst an orphan object that no catalog row names;
//! the rows are still in the WAL and are replayed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::AsArray;
use arrow::compute::concat_batches;
use arrow::datatypes::TimestampMicrosecondType;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use streamhouse_catalog::SegmentEntry;
use tracing::{debug, warn};

use crate::columns::TIMESTAMP_COLUMN;
use crate::engine::Streams;
use crate::error::Result;
use crate::partition::TailBatch;
use crate::table::StreamTable;

/// How often the flusher looks at the tails when nothing wakes it.
const FLUSH_POLL: Duration = Duration::from_millis(100);
/// A tail with more visible batches than this gets them merged into one: one-row INSERTs
/// would otherwise leave thousands of tiny batches for every scan and flush to walk.
const TAIL_COMPACT_BATCHES: usize = 64;
/// A tail batch with at least this many rows is left as it is by compaction, so rows are
/// copied about once instead of on every compaction pass (which was quadratic).
const COMPACTED_BATCH_ROWS: usize = 8192;
/// A column chunk falls back from dictionary to plain encoding once its dictionary exceeds
/// this: low-cardinality columns (regions, status codes) fit well within it, while unique
/// ids and payloads stop paying for interning early (it was ~8% of COPY CPU at 1 MiB).
const DICTIONARY_PAGE_BYTES: usize = 128 * 1024;
/// Rows per Parquet row group: big enough for good scans, small enough for pruning.
const ROW_GROUP_ROWS: usize = 256 * 1024;

pub(crate) fn spawn_flusher(streams: Weak<Streams>) {
    tokio::spawn(async move {
        let mut last_retention = Instant::now();
        loop {
            let Some(s) = streams.upgrade() else { return };
            if let Err(e) = flush_due(&s).await {
                warn!(error = %e, "flush failed; will retry");
            }
            if last_retention.elapsed() >= s.config.retention_interval {
                last_retention = Instant::now();
                if let Err(e) = enforce_retention(&s).await {
                    warn!(error = %e, "retention failed; will retry");
                }
            }
            // Holding the engine for one poll at most; it is dropped between polls.
            let _ = tokio::time::timeout(FLUSH_POLL, s.flush_wanted.notified()).await;
        }
    });
}

/// Path of a segment object, relative to the store root.
pub(crate) fn segment_path(table_id: i64, partition: u32, base_offset: i64) -> Path {
    Path::from(format!("tables/{table_id}/{partition}/{base_offset:020}.parquet"))
}

async fn flush_due(s: &Streams) -> Result<()> {
    let _one_pass = s.flush_lock.lock().await;
    let under_pressure = s.tail_bytes.load(Ordering::Acquire) > s.config.max_tail_bytes / 2;
    for table in s.tables() {
        for (p, partition) in table.partition_list().iter().enumerate() {
            let due = {
                let state = partition.read();
                match state.tail.front() {
                    None => false,
                    Some(oldest) => {
                        under_pressure
                            || state.tail_bytes >= s.config.segment_target_bytes
                            || oldest.appended_at.elapsed() >= s.config.flush_interval
                    }
                }
            };
            if due {
                flush_partition(s, &table, p).await?;
            } else {
                compact_tail(s, &table, p).await?;
            }
        }
    }
    s.wal.release_before(s.oldest_needed_lsn());
    Ok(())
}

pub(crate) async fn flush_all(s: &Streams) -> Result<()> {
    let _one_pass = s.flush_lock.lock().await;
    for table in s.tables() {
        for p in 0..table.partition_count() {
            flush_partition(s, &table, p).await?;
        }
    }
    s.wal.release_before(s.oldest_needed_lsn());
    Ok(())
}

/// Writes the visible prefix of one partition's tail as a segment and commits it.
async fn flush_partition(s: &Streams, table: &Arc<StreamTable>, p: usize) -> Result<()> {
    let visible = s.visible_lsn();
    let Some(partition) = table.partition(p) else { return Ok(()) };
    let (count, batches) = {
        let state = partition.read();
        let flushable: Vec<_> = state.tail.iter().take_while(|t| t.lsn <= visible).collect();
        (flushable.len(), flushable.iter().map(|t| t.batch.clone()).collect::<Vec<_>>())
    };
    if count == 0 {
        return Ok(());
    }
    // Merging and encoding take a CPU for a while: off the async workers serving clients.
    let schema = table.stored_schema();
    let (batch, bytes) = run_blocking(move || -> Result<_> {
        let batch = concat_batches(&schema, &batches)?;
        let bytes = encode_parquet(&batch)?;
        Ok((batch, bytes))
    })
    .await??;
    let offsets = batch.column(table.schema().fields().len() + 1).as_primitive::<arrow::datatypes::Int64Type>();
    let base_offset = offsets.value(0);
    let end_offset = offsets.value(offsets.len() - 1) + 1;
    let times = batch
        .column_by_name(TIMESTAMP_COLUMN)
        .expect("stored schema has _timestamp")
        .as_primitive::<TimestampMicrosecondType>();
    let (min_ts, max_ts) = (
        arrow::compute::min(times).unwrap_or(0) / 1000,
        arrow::compute::max(times).unwrap_or(0) / 1000,
    );
    let path = segment_path(table.id(), p as u32, base_offset);
    let size = bytes.len() as i64;
    s.store.put(&path, PutPayload::from(bytes)).await?;
    let sync_path = path.to_string();
    let opened = s.opened_store.clone();
    run_blocking(move || opened.sync(&sync_path)).await??;
    let segment = SegmentEntry {
        table_id: table.id(),
        partition: p as i32,
        base_offset,
        end_offset,
        row_count: batch.num_rows() as i64,
        min_timestamp_ms: min_ts,
        max_timestamp_ms: max_ts,
        size_bytes: size,
        path: path.to_string(),
        created_at_ms: now_ms(),
    };
    if table.is_dropped() {
        return Ok(());
    }
    s.catalog.commit_segment(&segment).await?;
    let freed = {
        let mut state = partition.write();
        let mut freed = 0;
        for _ in 0..count {
            if let Some(t) = state.tail.pop_front() {
                freed += t.batch.get_array_memory_size();
            }
        }
        state.tail_bytes -= freed;
        state.segments.push(segment);
        freed
    };
    s.tail_bytes.fetch_sub(freed, Ordering::AcqRel);
    s.memory_freed.notify_waiters();
    debug!(table = table.name(), partition = p, base_offset, end_offset, size, "segment committed");
    Ok(())
}

/// Merges the visible prefix of a tail into one batch. Only a flush pass (one at a time,
/// under `flush_lock`) removes tail entries from the front and appends only add at the back, so the prefix read under the
/// read lock is still there when it is replaced under the write lock.
async fn compact_tail(s: &Streams, table: &Arc<StreamTable>, p: usize) -> Result<()> {
    let visible = s.visible_lsn();
    let Some(partition) = table.partition(p) else { return Ok(()) };
    // The visible run of small batches after the leading large ones.
    let (skip, run): (usize, Vec<TailBatch>) = {
        let state = partition.read();
        if state.tail.len() <= TAIL_COMPACT_BATCHES {
            return Ok(());
        }
        let visible_batches = state.tail.iter().take_while(|t| t.lsn <= visible);
        let skip = visible_batches.clone().take_while(|t| t.batch.num_rows() >= COMPACTED_BATCH_ROWS).count();
        (skip, visible_batches.skip(skip).cloned().collect())
    };
    if run.len() <= 1 {
        return Ok(());
    }
    let batches: Vec<_> = run.iter().map(|t| t.batch.clone()).collect();
    let old_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let schema = table.stored_schema();
    let merged = TailBatch {
        lsn: run.last().expect("non-empty").lsn,
        first_lsn: run.iter().map(|t| t.first_lsn).min().expect("non-empty"),
        base_offset: run[0].base_offset,
        batch: run_blocking(move || concat_batches(&schema, &batches)).await??,
        appended_at: run[0].appended_at,
    };
    let new_bytes = merged.batch.get_array_memory_size();
    {
        // Only the flusher removes or replaces tail batches, so the run is still in place,
        // unless the table was dropped meanwhile (its tail emptied).
        let mut state = partition.write();
        if table.is_dropped() || state.tail.len() < skip + run.len() {
            return Ok(());
        }
        state.tail.drain(skip..skip + run.len());
        state.tail.insert(skip, merged);
        state.tail_bytes = state.tail_bytes + new_bytes - old_bytes;
    }
    s.tail_bytes.fetch_add(new_bytes, Ordering::AcqRel);
    s.tail_bytes.fetch_sub(old_bytes, Ordering::AcqRel);
    Ok(())
}

/// Runs CPU-heavy or blocking work on tokio's blocking pool.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| std::io::Error::other(e.to_string()).into())
}

fn encode_parquet(batch: &arrow::record_batch::RecordBatch) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2);
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

/// Deletes whole segments older than the table's retention age, or beyond its size limit.
async fn enforce_retention(s: &Streams) -> Result<()> {
    let now = now_ms();
    for table in s.tables() {
        let opts = table.options();
        if opts.retention_ms.is_none() && opts.retention_bytes.is_none() {
            continue;
        }
        for (p, partition) in table.partition_list().iter().enumerate() {
            let up_to = {
                let state = partition.read();
                let mut up_to = None;
                let mut total: i64 = state.segments.iter().map(|seg| seg.size_bytes).sum();
                for seg in &state.segments {
                    let too_old = opts.retention_ms.is_some_and(|r| seg.max_timestamp_ms < now - r);
                    let too_big = opts.retention_bytes.is_some_and(|r| total > r);
                    if !(too_old || too_big) {
                        break;
                    }
                    total -= seg.size_bytes;
                    up_to = Some(seg.end_offset);
                }
                up_to
            };
            if let Some(up_to) = up_to {
                delete_segments_up_to(s, &table, p, up_to).await?;
            }
        }
    }
    Ok(())
}

impl Streams {
    /// Deletes the stored segments of `partition` that hold only rows before `offset`
    /// (its rows from `offset` on stay, and so do rows not yet in a segment): a writer
    /// that no longer needs its older rows — a materialized view's state table after a
    /// checkpoint — lets them go.
    pub async fn trim_before(&self, table: &Arc<StreamTable>, partition: usize, offset: i64) -> Result<()> {
        let up_to = {
            let Some(state) = table.partition(partition) else { return Ok(()) };
            let state = state.read();
            state.segments.iter().map(|seg| seg.end_offset).filter(|end| *end <= offset).max()
        };
        match up_to {
            Some(up_to) => delete_segments_up_to(self, table, partition, up_to).await,
            None => Ok(()),
        }
    }
}

/// Deletes partition `p`'s segments ending at or before `up_to`, from the catalog, from
/// memory and from the object store; the partition then starts at `up_to`.
async fn delete_segments_up_to(s: &Streams, table: &StreamTable, p: usize, up_to: i64) -> Result<()> {
    let deleted = s.catalog.delete_segments_before(table.id(), p as i32, up_to).await?;
    if let Some(partition) = table.partition(p) {
        let mut state = partition.write();
        state.segments.retain(|seg| seg.end_offset > up_to);
        state.start_offset = state.start_offset.max(up_to);
    }
    for seg in deleted {
        if let Err(e) = s.store.delete(&Path::from(seg.path.as_str())).await {
            warn!(error = %e, path = seg.path, "could not delete a segment");
        }
    }
    Ok(())
}

pub(crate) async fn delete_table_files(store: &dyn ObjectStore, table_id: i64) {
    let prefix = Path::from(format!("tables/{table_id}"));
    let listed: std::result::Result<Vec<_>, _> = store.list(Some(&prefix)).try_collect().await;
    match listed {
        Ok(objects) => {
            for o in objects {
                if let Err(e) = store.delete(&o.location).await {
                    warn!(error = %e, path = %o.location, "could not delete a dropped table's segment");
                }
            }
        }
        Err(e) => warn!(error = %e, table_id, "could not list a dropped table's segments"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
