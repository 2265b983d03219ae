//! [`Streams`]: the storage engine's entry point — open and recover, create and drop
//! tables, append atomically, take snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::Schema;
use object_store::ObjectStore;
use streamhouse_catalog::{Catalog, TableEntry, TableOptions, ViewEntry};
use streamhouse_wal::{Lsn, Pending, Wal, WalConfig};
use tokio::sync::{Mutex, Notify};
use tracing::{info, warn};

use crate::columns::stored_batch;
use crate::config::StreamsConfig;
use crate::error::{Error, Result};
use crate::partition::{Partition, PartitionState, TailBatch};
use crate::read_ahead::{ReadAhead, READ_AHEAD_CACHE_BYTES};
use crate::record;
use crate::routing::route;
use crate::store::OpenedStore;
use crate::table::{StreamTable, TableSnapshot};

/// Rows for one table, in the table's user schema (the caller has already cast them).
pub struct TableWrite {
    pub table: Arc<StreamTable>,
    pub batches: Vec<RecordBatch>,
}

/// Rows for one chosen partition of a table (see [`Streams::append_to_partitions`]).
pub struct PartitionAppend {
    pub table: Arc<StreamTable>,
    pub partition: u32,
    /// In the table's user schema.
    pub rows: RecordBatch,
    /// `_key` of each row (Utf8), or none.
    pub keys: Option<arrow::array::ArrayRef>,
}

/// An append queued in the WAL (see [`Streams::begin_append_to_partitions`]).
pub struct AppendInFlight {
    rows: u64,
    /// The first offset of each write, in order.
    pub base_offsets: Vec<i64>,
    ack: Ack,
}

/// The acknowledgement an [`AppendInFlight`] waits for.
enum Ack {
    Pending(Pending),
    /// Nothing had to be written: the position visible then.
    Nothing(Lsn),
}

impl AppendInFlight {
    /// Waits until the rows are durable (per the durability mode) and visible.
    pub async fn durable(self) -> Result<AppendReceipt> {
        let lsn = match self.ack {
            Ack::Pending(pending) => pending.acked().await?,
            Ack::Nothing(visible) => visible,
        };
        Ok(AppendReceipt { rows: self.rows, lsn })
    }
}

/// What an acknowledged append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    pub rows: u64,
    pub lsn: Lsn,
}

/// Where an append put some of one table's rows: `rows` rows from `base_offset` on in
/// `partition` (see [`Streams::append_reporting_offsets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenRange {
    pub table_id: i64,
    pub partition: u32,
    pub base_offset: i64,
    pub rows: u64,
}

#[derive(Default)]
struct Tables {
    by_name: HashMap<(String, String), Arc<StreamTable>>,
    by_id: HashMap<i64, Arc<StreamTable>>,
}

pub struct Streams {
    pub(crate) catalog: Catalog,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) opened_store: OpenedStore,
    pub(crate) wal: Wal,
    pub(crate) config: StreamsConfig,
    tables: RwLock<Tables>,
    /// Schema names, cached so DataFusion's synchronous catalog calls can list them.
    schemas: RwLock<std::collections::BTreeSet<String>>,
    /// Views by (schema, name); the catalog holds them durably.
    views: RwLock<std::collections::BTreeMap<(String, String), ViewEntry>>,
    /// Serializes offset assignment and WAL enqueue, so that offsets, LSNs and tail order agree.
    append_lock: Mutex<()>,
    /// Everything replayed at start-up is visible even before new appends are acknowledged.
    recovered_lsn: Lsn,
    pub(crate) tail_bytes: AtomicUsize,
    /// Signalled by the flusher whenever tails shrink; appends waiting for memory re-check.
    pub(crate) memory_freed: Notify,
    /// Wakes the flusher early (memory pressure, shutdown).
    pub(crate) flush_wanted: Notify,
    /// Bumped after rows reach a tail and when a table is dropped (see [`Changes`]).
    changed: tokio::sync::watch::Sender<u64>,
    /// One flush pass at a time (the background flusher, shutdown, `flush()`): two passes
    /// over one partition would write the same segment twice and pop each other's rows.
    pub(crate) flush_lock: Mutex<()>,
    /// Decoded segment spans for readers moving through a segment in steps.
    pub(crate) read_ahead: ReadAhead,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("catalog", &self.catalog.backend()).finish_non_exhaustive()
    }
}

impl Streams {
    /// Loads the catalog, replays the WAL past what segments already hold, and starts the
    /// background flusher.
    pub async fn open(
        catalog: Catalog,
        opened_store: OpenedStore,
        wal_config: WalConfig,
        config: StreamsConfig,
    ) -> Result<Arc<Streams>> {
        let mut tables = Tables::default();
        for entry in catalog.list_tables().await? {
            let table = Arc::new(load_table(&catalog, entry).await?);
            tables.insert(table);
        }
        let schemas = catalog.list_schemas().await?.into_iter().collect();
        let views = catalog.list_views().await?.into_iter().map(|v| ((v.schema.clone(), v.name.clone()), v)).collect();
        let started = Instant::now();
        let mut replayed_records = 0u64;
        let mut replayed_rows = 0u64;
        let mut tail_bytes = 0usize;
        let wal = Wal::open(wal_config, |lsn, payload| {
            replayed_records += 1;
            let wal_schema_of = |id: i64| tables.by_id.get(&id).map(|t| t.wal_schema());
            let record = record::decode(payload, wal_schema_of).map_err(|e| streamhouse_wal::Error::Replay(e.to_string()))?;
            for e in record.entries {
                let Some(table) = tables.by_id.get(&e.table_id) else { continue };
                let Some(partition) = table.partition(e.partition as usize) else { continue };
                let mut state = partition.write();
                let committed = state.segments.last().map(|s| s.end_offset).unwrap_or(state.start_offset);
                let end = e.base_offset + e.batch.num_rows() as i64;
                if end <= committed.max(state.next_offset) {
                    continue; // already in a segment (or replayed twice)
                }
                let stored = stored_batch(&table.stored_schema(), &e.batch, e.partition, e.base_offset, record.timestamp_us)
                    .map_err(|err| streamhouse_wal::Error::Replay(err.to_string()))?;
                let skip = (committed.max(state.next_offset) - e.base_offset).max(0) as usize;
                let batch = stored.slice(skip, stored.num_rows() - skip);
                let bytes = batch.get_array_memory_size();
                replayed_rows += batch.num_rows() as u64;
                tail_bytes += bytes;
                state.tail_bytes += bytes;
                state.next_offset = end;
                state.tail.push_back(TailBatch {
                    lsn,
                    first_lsn: lsn,
                    base_offset: e.base_offset + skip as i64,
                    batch,
                    appended_at: Instant::now(),
                });
            }
            Ok(())
        })?;
        let recovered_lsn = wal.next_lsn().saturating_sub(1);
        info!(
            records = replayed_records,
            rows = replayed_rows,
            ms = started.elapsed().as_millis() as u64,
            "write-ahead log replayed"
        );
        let streams = Arc::new(Streams {
            catalog,
            store: opened_store.store.clone(),
            opened_store,
            wal,
            config,
            tables: RwLock::new(tables),
            schemas: RwLock::new(schemas),
            views: RwLock::new(views),
            append_lock: Mutex::new(()),
            read_ahead: ReadAhead::new(READ_AHEAD_CACHE_BYTES),
            recovered_lsn,
            tail_bytes: AtomicUsize::new(tail_bytes),
            memory_freed: Notify::new(),
            flush_wanted: Notify::new(),
            flush_lock: Mutex::new(()),
            changed: tokio::sync::watch::Sender::new(0),
        });
        crate::flush::spawn_flusher(Arc::downgrade(&streams));
        Ok(streams)
    }

    /// The object store segments live in (DataFusion reads them through it).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn schema_names(&self) -> Vec<String> {
        self.schemas.read().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    pub fn schema_exists(&self, name: &str) -> bool {
        self.schemas.read().unwrap_or_else(|p| p.into_inner()).contains(name)
    }

    pub async fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<bool> {
        let created = self.catalog.create_schema(name, if_not_exists).await?;
        self.schemas.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string());
        Ok(created)
    }

    pub async fn drop_schema(&self, name: &str, if_exists: bool) -> Result<bool> {
        let dropped = self.catalog.drop_schema(name, if_exists).await?;
        self.schemas.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        Ok(dropped)
    }

    /// Creates or (with `or_replace`) redefines a view. The caller has checked the SQL.
    pub async fn create_view(&self, schema: &str, name: &str, definition: &str, or_replace: bool) -> Result<()> {
        let entry = self.catalog.create_view(schema, name, definition, or_replace).await?;
        self.views.write().unwrap_or_else(|p| p.into_inner()).insert((schema.to_string(), name.to_string()), entry);
        Ok(())
    }

    pub async fn drop_view(&self, schema: &str, name: &str) -> Result<bool> {
        let dropped = self.catalog.drop_view(schema, name).await?;
        self.views.write().unwrap_or_else(|p| p.into_inner()).remove(&(schema.to_string(), name.to_string()));
        Ok(dropped)
    }

    pub fn view(&self, schema: &str, name: &str) -> Option<ViewEntry> {
        self.views.read().unwrap_or_else(|p| p.into_inner()).get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// Views of one schema, by name.
    pub fn views_in(&self, schema: &str) -> Vec<ViewEntry> {
        let views = self.views.read().unwrap_or_else(|p| p.into_inner());
        views.values().filter(|v| v.schema == schema).cloned().collect()
    }

    /// Tables of one schema, by name.
    pub fn tables_in(&self, schema: &str) -> Vec<Arc<StreamTable>> {
        let mut v: Vec<_> = self.read_tables().by_name.values().filter(|t| t.schema_name() == schema).cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<StreamTable>> {
        self.read_tables().by_name.get(&(schema.to_string(), name.to_string())).cloned()
    }

    pub fn table_by_id(&self, id: i64) -> Option<Arc<StreamTable>> {
        self.read_tables().by_id.get(&id).cloned()
    }

    pub fn tables(&self) -> Vec<Arc<StreamTable>> {
        let mut v: Vec<_> = self.read_tables().by_id.values().cloned().collect();
        v.sort_by_key(|t| t.id());
        v
    }

    pub async fn create_table(
        &self,
        schema: &str,
        name: &str,
        user_schema: &Schema,
        options: &TableOptions,
        if_not_exists: bool,
    ) -> Result<bool> {
        if let Some(key) = &options.key {
            user_schema
                .index_of(key)
                .map_err(|_| Error::Config(format!("key column \"{key}\" is not a column of the table")))?;
        }
        match self.catalog.create_table(schema, name, user_schema, options, if_not_exists).await? {
            None => Ok(false),
            Some(entry) => {
                // A new table's partitions are empty: built here rather than read back,
                // since a pooled SQLite connection may still see the catalog from
                // before the create (a table loaded without partitions panicked on
                // its first write).
                let partitions = (0..entry.options.partitions).map(|p| Partition::new(p, PartitionState::default())).collect();
                self.write_tables().insert(Arc::new(StreamTable::new(entry, partitions)));
                Ok(true)
            }
        }
    }

    /// Drops the table and deletes its segment files. Rows of it still in the WAL are
    /// skipped on replay because their table id no longer exists (ids are never reused).
    pub async fn drop_table(&self, schema: &str, name: &str) -> Result<bool> {
        let _appends = self.append_lock.lock().await;
        let Some(entry) = self.catalog.drop_table(schema, name).await? else {
            return Ok(false);
        };
        let removed = self.write_tables().remove(entry.id);
        if let Some(table) = removed {
            table.dropped.store(true, Ordering::Release);
            self.changed.send_modify(|n| *n += 1);
            let freed: usize = table.partition_list().iter().map(|p| std::mem::take(&mut *p.write()).tail_bytes).sum();
            self.tail_bytes.fetch_sub(freed, Ordering::AcqRel);
            self.memory_freed.notify_waiters();
        }
        crate::flush::delete_table_files(self.store.as_ref(), entry.id).await;
        Ok(true)
    }

    /// Grows a table to `total` partitions (Kafka's CreatePartitions). The catalog records
    /// them first, so a crash afterwards finds them at start; then they appear in the live
    /// table, and readers that follow every partition (subscriptions, view maintainers) are
    /// woken to notice. Rows already written stay where they are: keyed routing changes for
    /// new rows, as in Kafka.
    pub async fn add_partitions(&self, schema: &str, name: &str, total: u32) -> Result<Arc<StreamTable>> {
        let entry = self.catalog.add_partitions(schema, name, total).await?;
        let table = self.table_by_id(entry.id).ok_or_else(|| Error::TableNotFound(format!("{schema}.{name}")))?;
        table.grow_to(total as usize);
        self.changed.send_modify(|n| *n += 1);
        Ok(table)
    }

    /// The highest WAL position whose rows readers may see.
    pub fn visible_lsn(&self) -> Lsn {
        self.wal.acked_lsn().max(self.recovered_lsn)
    }

    /// Wakes a reader when rows may have become visible or a table went away.
    pub fn subscribe_changes(&self) -> Changes {
        Changes { acked: self.wal.subscribe_acked(), changed: self.changed.subscribe() }
    }

    pub fn snapshot(&self, table: &Arc<StreamTable>) -> TableSnapshot {
        table.snapshot_at(self.visible_lsn())
    }

    /// Appends rows to one or more tables as one WAL record: after the returned future
    /// resolves the rows are durable (per the durability mode) and visible, all together.
    /// Nothing is visible if it fails.
    pub async fn append(&self, writes: Vec<TableWrite>) -> Result<AppendReceipt> {
        Ok(self.append_reporting_offsets(writes).await?.0)
    }

    /// [`Streams::append`], also telling where the rows went: one range per table and
    /// partition written, in the order written.
    pub async fn append_reporting_offsets(&self, writes: Vec<TableWrite>) -> Result<(AppendReceipt, Vec<WrittenRange>)> {
        // A transaction may write one table several times: its rows must get offsets in
        // one run, so the writes are grouped by table first (in first-write order).
        let mut grouped: Vec<(Arc<StreamTable>, Vec<RecordBatch>)> = Vec::with_capacity(writes.len());
        for w in writes {
            match grouped.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &w.table)) {
                Some((_, batches)) => batches.extend(w.batches),
                None => grouped.push((w.table, w.batches)),
            }
        }
        let mut prepared: Vec<(Arc<StreamTable>, RecordBatch)> = Vec::new();
        let mut rows = 0u64;
        for (table, batches) in grouped {
            for batch in prepare(&table, batches)? {
                if batch.num_rows() > 0 {
                    rows += batch.num_rows() as u64;
                    prepared.push((table.clone(), batch));
                }
            }
        }
        if prepared.is_empty() {
            return Ok((AppendReceipt { rows: 0, lsn: self.visible_lsn() }, Vec::new()));
        }
        self.wait_for_memory().await;
        // Outside the append lock: route the rows and encode them for the WAL. Only the
        // offsets and the timestamp are left to fill in under the lock.
        let mut record = record::RecordBuilder::new(prepared.iter().map(|(_, b)| b.get_array_memory_size()).sum());
        let mut parts: Vec<PartitionWrite> = Vec::new();
        for (table, batch) in &prepared {
            let key = table.key_index.map(|i| batch.column(i).clone());
            let partitions = table.partition_count() as u32;
            let rr_start = table.round_robin.load(Ordering::Relaxed);
            let routing = route(key.as_ref(), batch.num_rows(), partitions, rr_start)?;
            table.round_robin.fetch_add(routing.round_robin_steps, Ordering::Relaxed);
            for (p, rows) in routing.rows.iter().enumerate() {
                if rows.is_empty() {
                    continue;
                }
                let mut columns = batch.columns().iter().map(|c| rows.cut(c)).collect::<Result<Vec<_>>>()?;
                columns.push(match &routing.keys {
                    Some(keys) => rows.cut(keys)?,
                    None => arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, rows.len()),
                });
                let wal_rows = RecordBatch::try_new(table.wal_schema(), columns)?;
                let entry = record.add(table.id(), p as u32, &wal_rows)?;
                let state = table.partition(p).expect("routed to an existing partition; partitions only grow");
                parts.push(PartitionWrite { table: table.clone(), partition: p, state, entry, wal_rows });
            }
        }
        let (pending, base_offsets) = self.enqueue(record, &parts).await?;
        // One range per table and partition: the batches of one partition got adjacent
        // offsets (assigned together under the append lock), so they merge.
        let mut ranges: Vec<WrittenRange> = Vec::new();
        for (w, base_offset) in parts.iter().zip(base_offsets) {
            let (table_id, partition, rows) = (w.table.id(), w.partition as u32, w.wal_rows.num_rows() as u64);
            match ranges.iter_mut().find(|r| r.table_id == table_id && r.partition == partition) {
                Some(r) if r.base_offset + r.rows as i64 == base_offset => r.rows += rows,
                Some(_) => return Err(Error::Config("rows of one partition were not given adjacent offsets".into())),
                None => ranges.push(WrittenRange { table_id, partition, base_offset, rows }),
            }
        }
        Ok((AppendReceipt { rows, lsn: pending.acked().await? }, ranges))
    }

    /// Starts an append of rows to partitions the caller chose (the Kafka produce path:
    /// the client picked them), as one WAL record: when this returns, the rows have their
    /// offsets and are queued in the WAL, in call order; [`AppendInFlight::durable`] waits
    /// for the acknowledgement, after which they are durable and visible as with
    /// [`Streams::append`]. Splitting the two lets a connection queue its next request
    /// while the previous one waits for the disk, so one fsync covers both.
    /// `keys` fills `_key` (text, or null).
    pub async fn begin_append_to_partitions(&self, writes: Vec<PartitionAppend>) -> Result<AppendInFlight> {
        let mut rows = 0u64;
        let mut record = record::RecordBuilder::new(writes.iter().map(|w| w.rows.get_array_memory_size()).sum());
        let mut parts: Vec<PartitionWrite> = Vec::with_capacity(writes.len());
        for w in writes {
            let partition = w.partition as usize;
            let Some(state) = w.table.partition(partition) else {
                return Err(Error::Config(format!(
                    "table {} has {} partitions; there is no partition {partition}",
                    w.table.name(),
                    w.table.partition_count()
                )));
            };
            let batch = prepare(&w.table, vec![w.rows])?.pop().expect("one batch in, one out");
            let n = batch.num_rows();
            rows += n as u64;
            let mut columns = batch.columns().to_vec();
            columns.push(match w.keys {
                Some(keys) if keys.len() == n && keys.data_type() == &arrow::datatypes::DataType::Utf8 => keys,
                Some(_) => return Err(Error::Config("partition keys must be one text value per row".into())),
                None => arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, n),
            });
            let wal_rows = RecordBatch::try_new(w.table.wal_schema(), columns)?;
            let entry = record.add(w.table.id(), partition as u32, &wal_rows)?;
            parts.push(PartitionWrite { table: w.table, partition, state, entry, wal_rows });
        }
        if rows == 0 {
            let base_offsets = parts.iter().map(|w| self.next_offset(w)).collect();
            return Ok(AppendInFlight { rows: 0, base_offsets, ack: Ack::Nothing(self.visible_lsn()) });
        }
        self.wait_for_memory().await;
        let (pending, base_offsets) = self.enqueue(record, &parts).await?;
        Ok(AppendInFlight { rows, base_offsets, ack: Ack::Pending(pending) })
    }

    fn next_offset(&self, w: &PartitionWrite) -> i64 {
        w.state.read().next_offset
    }

    /// The part of an append under the append lock: offsets, the WAL record, the tails.
    /// Returns the WAL's pending acknowledgement and each part's base offset.
    async fn enqueue(&self, mut record: record::RecordBuilder, parts: &[PartitionWrite]) -> Result<(Pending, Vec<i64>)> {
        let enqueued = {
            let _appends = self.append_lock.lock().await;
            if let Some(dropped) = parts.iter().find(|w| w.table.is_dropped()) {
                let table = &dropped.table;
                return Err(Error::TableNotFound(format!("{}.{}", table.schema_name(), table.name())));
            }
            let now_us = now_micros();
            // A partition may get several entries (one per input batch): their offsets follow
            // one another.
            let mut next_offsets: HashMap<(i64, usize), i64> = HashMap::new();
            let mut tail = Vec::with_capacity(parts.len());
            for w in parts {
                let next = next_offsets.entry((w.table.id(), w.partition)).or_insert_with(|| self.next_offset(w));
                let base_offset = *next;
                *next += w.wal_rows.num_rows() as i64;
                record.set_base_offset(w.entry, base_offset);
                let stored = stored_batch(&w.table.stored_schema(), &w.wal_rows, w.partition as u32, base_offset, now_us)?;
                tail.push((base_offset, stored));
            }
            let pending = self.wal.enqueue(record.finish(now_us)).await?;
            let mut added = 0;
            let mut base_offsets = Vec::with_capacity(parts.len());
            for (w, (base_offset, batch)) in parts.iter().zip(tail) {
                let mut state = w.state.write();
                let bytes = batch.get_array_memory_size();
                added += bytes;
                state.tail_bytes += bytes;
                state.next_offset = base_offset + batch.num_rows() as i64;
                base_offsets.push(base_offset);
                state.tail.push_back(TailBatch {
                    lsn: pending.lsn,
                    first_lsn: pending.lsn,
                    base_offset,
                    batch,
                    appended_at: Instant::now(),
                });
            }
            self.tail_bytes.fetch_add(added, Ordering::AcqRel);
            // The WAL may acknowledge the record before the rows reach the tail: a reader
            // woken by that ack could miss them, so the push wakes readers too.
            self.changed.send_modify(|n| *n += 1);
            (pending, base_offsets)
        };
        Ok(enqueued)
    }

    /// Back-pressure: while the tails hold more than their limit, wait for the flusher.
    async fn wait_for_memory(&self) {
        while self.tail_bytes.load(Ordering::Acquire) > self.config.max_tail_bytes {
            let freed = self.memory_freed.notified();
            self.flush_wanted.notify_one();
            if self.tail_bytes.load(Ordering::Acquire) <= self.config.max_tail_bytes {
                break;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), freed).await;
        }
    }

    /// Flushes every tail to segments and closes the WAL (graceful shutdown).
    pub async fn shutdown(&self) -> Result<()> {
        let _appends = self.append_lock.lock().await;
        if let Err(e) = crate::flush::flush_all(self).await {
            warn!(error = %e, "flush at shutdown failed; the WAL still holds the rows");
        }
        self.wal.close().await?;
        Ok(())
    }

    /// Bytes held by all tails now.
    pub fn tail_bytes(&self) -> usize {
        self.tail_bytes.load(Ordering::Acquire)
    }

    /// Closes the WAL without flushing tails: what a crash leaves behind, minus the crash.
    #[doc(hidden)]
    pub async fn wal_close_for_tests(&self) {
        let _ = self.wal.close().await;
    }

    /// Flushes every tail now (tests and `CHECKPOINT`).
    pub async fn flush(&self) -> Result<()> {
        crate::flush::flush_all(self).await
    }

    /// The lowest LSN still needed: the oldest tail row not yet in a segment.
    pub(crate) fn oldest_needed_lsn(&self) -> Lsn {
        let tables = self.read_tables();
        tables
            .by_id
            .values()
            .flat_map(|t| t.partition_list())
            .filter_map(|p| p.read().tail.front().map(|b| b.first_lsn))
            .min()
            .unwrap_or_else(|| self.wal.next_lsn())
    }

    fn read_tables(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_tables(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Tables {
    fn insert(&mut self, table: Arc<StreamTable>) {
        self.by_name.insert((table.schema_name().to_string(), table.name().to_string()), table.clone());
        self.by_id.insert(table.id(), table);
    }

    fn remove(&mut self, id: i64) -> Option<Arc<StreamTable>> {
        let table = self.by_id.remove(&id)?;
        self.by_name.remove(&(table.schema_name().to_string(), table.name().to_string()));
        Some(table)
    }
}

async fn load_table(catalog: &Catalog, entry: TableEntry) -> Result<StreamTable> {
    let segments = catalog.segments(entry.id).await?;
    let mut partitions = Vec::new();
    for p in catalog.partitions(entry.id).await? {
        let segs: Vec<_> = segments.iter().filter(|s| s.partition == p.partition).cloned().collect();
        let state = PartitionState {
            next_offset: p.committed_offset.max(p.start_offset),
            start_offset: p.start_offset,
            segments: segs,
            ..Default::default()
        };
        partitions.push(Partition::new(p.partition as u32, state));
    }
    Ok(StreamTable::new(entry, partitions))
}

/// Checks the batches against the table's columns and joins them into one.
/// Checks the rows against the table's columns and gives them the table's schema.
fn prepare(table: &StreamTable, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let schema = table.schema();
    for b in &batches {
        if b.num_columns() != schema.fields().len() {
            return Err(Error::SchemaMismatch(format!(
                "table {} has {} columns, the rows have {}",
                table.name(),
                schema.fields().len(),
                b.num_columns()
            )));
        }
        for (field, column) in schema.fields().iter().zip(b.columns()) {
            if field.data_type() != column.data_type() {
                return Err(Error::SchemaMismatch(format!(
                    "column \"{}\" is {} but the rows have {}",
                    field.name(),
                    field.data_type(),
                    column.data_type()
                )));
            }
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(Error::NullViolation(field.name().clone()));
            }
        }
    }
    Ok(batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<_, _>>()?)
}

/// A reader's wake-up: rows become visible when their WAL record is acknowledged *and*
/// they are in the tail, in either order, so both events wake it (and drops do).
pub struct Changes {
    acked: tokio::sync::watch::Receiver<Lsn>,
    changed: tokio::sync::watch::Receiver<u64>,
}

impl Changes {
    /// Marks everything so far as seen; call before reading.
    pub fn mark_seen(&mut self) {
        self.acked.borrow_and_update();
        self.changed.borrow_and_update();
    }

    /// Waits for the next change after [`Self::mark_seen`]. False when the engine is gone.
    pub async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.acked.changed() => r.is_ok(),
            r = self.changed.changed() => r.is_ok(),
        }
    }
}

/// One partition's share of an append, encoded and waiting for its offsets.
struct PartitionWrite {
    table: Arc<StreamTable>,
    partition: usize,
    state: Arc<Partition>,
    /// Its entry in the WAL record.
    entry: usize,
    wal_rows: RecordBatch,
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
