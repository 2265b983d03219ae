//! The endless source under a subscription: the table function
//! `streamhouse_subscribe(schema, table, start)`, whose scan follows every partition of a
//! stream table from a start position, in offset order, forever.
//!
//! A reader task per subscription reads one bounded chunk per partition per round
//! ([`Streams::read_partition`]: old rows from segments, new ones from the tail), filters
//! it with the pushed-down WHERE clause and hands it to the client through a channel of
//! [`QUEUED_BATCHES`]. A slow client therefore stalls the reader, not the server's memory;
//! a client that goes away closes the channel and the task ends. With nothing new to read,
//! the task sleeps until the WAL acknowledges another append.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session as DfSession, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DFSchema, DataFusionError, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use streamhouse_streams::{StreamTable, Streams};
use tokio::sync::mpsc;

use crate::provider::{conjunction, scan_schema, to_scan_layout};

/// The table function's name; it is registered only while a SUBSCRIBE is planned.
pub const SUBSCRIBE_FUNCTION: &str = "streamhouse_subscribe";
/// Rows read from one partition per round: with [`QUEUED_BATCHES`], what bounds the
/// memory a subscriber holds, however far behind it is.
const READ_CHUNK_ROWS: usize = 8192;
/// Batches read ahead of the client.
const QUEUED_BATCHES: usize = 2;

/// Where a subscription starts, once resolved against the session (times as microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offsets { default: i64, per_partition: Vec<(u32, i64)> },
    TimestampMicros(i64),
}

impl Start {
    /// The text form passed to the table function.
    pub fn encode(&self) -> String {
        match self {
            Start::Earliest => "earliest".into(),
            Start::Latest => "latest".into(),
            Start::Offsets { default, per_partition } => {
                let pairs: Vec<String> = per_partition.iter().map(|(p, o)| format!("{p}:{o}")).collect();
                format!("offsets {default} {}", pairs.join(","))
            }
            Start::TimestampMicros(us) => format!("timestamp {us}"),
        }
    }

    fn decode(text: &str) -> Option<Start> {
        let mut words = text.split_whitespace();
        match (words.next()?, words.next(), words.next()) {
            ("earliest", None, _) => Some(Start::Earliest),
            ("latest", None, _) => Some(Start::Latest),
            ("timestamp", Some(us), None) => us.parse().ok().map(Start::TimestampMicros),
            ("offsets", Some(default), pairs) => {
                let per_partition = pairs
                    .unwrap_or("")
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (p, o) = pair.split_once(':')?;
                        Some((p.parse().ok()?, o.parse().ok()?))
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Start::Offsets { default: default.parse().ok()?, per_partition })
            }
            _ => None,
        }
    }
}

/// The table function; it needs the storage engine to find tables.
#[derive(Debug)]
pub struct SubscribeFunction {
    streams: Arc<Streams>,
}

impl SubscribeFunction {
    pub fn new(streams: Arc<Streams>) -> Self {
        SubscribeFunction { streams }
    }
}

impl TableFunctionImpl for SubscribeFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let text = |i: usize| -> Option<String> {
            match args.exprs().get(i)? {
                Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => Some(s.clone()),
                _ => None,
            }
        };
        let usage = || DataFusionError::Plan(format!("{SUBSCRIBE_FUNCTION} takes (schema text, table text, start text)"));
        let (schema, name, start) = (text(0).ok_or_else(usage)?, text(1).ok_or_else(usage)?, text(2).ok_or_else(usage)?);
        if args.exprs().len() != 3 {
            return Err(usage());
        }
        let start = Start::decode(&start).ok_or_else(|| DataFusionError::Plan(format!("invalid start position \"{start}\"")))?;
        let table = self.streams.table(&schema, &name).ok_or_else(|| {
            DataFusionError::External(Box::new(crate::error::Error::UndefinedTable(format!("{schema}.{name}"))))
        })?;
        let schema = scan_schema(&table);
        Ok(Arc::new(SubscriptionTable { streams: self.streams.clone(), table, start, schema }))
    }
}

/// A stream table seen as an endless feed from a start position.
#[derive(Debug)]
struct SubscriptionTable {
    streams: Arc<Streams>,
    table: Arc<StreamTable>,
    start: Start,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for SubscriptionTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    /// The reader applies every filter itself, before rows are queued: rows the client
    /// does not want cost no queue space, and no filter operator sits between the feed and
    /// the client holding rows back to fill a batch.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => Some(state.create_physical_expr(expr, &DFSchema::try_from(self.schema.as_ref().clone())?)?),
            None => None,
        };
        let feed = Arc::new(Feed {
            streams: self.streams.clone(),
            table: self.table.clone(),
            start: self.start.clone(),
            schema: self.schema.clone(),
            predicate,
        });
        Ok(Arc::new(StreamingTableExec::try_new(self.schema.clone(), vec![feed], projection, [], true, limit)?))
    }
}

/// One subscription's rows, produced by a reader task when executed.
#[derive(Debug)]
struct Feed {
    streams: Arc<Streams>,
    table: Arc<StreamTable>,
    start: Start,
    schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
}

impl PartitionStream for Feed {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
        let reader = Reader {
            streams: self.streams.clone(),
            table: self.table.clone(),
            schema: self.schema.clone(),
            predicate: self.predicate.clone(),
            tx,
        };
        let start = self.start.clone();
        tokio::spawn(async move {
            if let Err(e) = reader.run(start).await {
                let _ = reader.tx.send(Err(e)).await;
            }
        });
        let rows = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), rows))
    }
}

struct Reader {
    streams: Arc<Streams>,
    table: Arc<StreamTable>,
    schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    tx: mpsc::Sender<datafusion::error::Result<RecordBatch>>,
}

impl Reader {
    /// Reads until the client goes away (Ok) or reading fails (the error goes to the client).
    async fn run(&self, start: Start) -> datafusion::error::Result<()> {
        let mut positions = self.start_positions(&start).await?;
        let mut changes = self.streams.subscribe_changes();
        loop {
            // Marked seen before reading: a change after this point wakes the wait below
            // even if the reads raced with it.
            changes.mark_seen();
            // Partitions added since (Kafka CreatePartitions) hold only rows newer than
            // the start: followed from their beginning.
            positions.resize(positions.len().max(self.table.partition_count()), 0);
            let mut read_any = false;
            for (partition, position) in positions.iter_mut().enumerate() {
                let read = self.streams.read_partition(&self.table, partition as u32, *position, READ_CHUNK_ROWS).await.map_err(storage)?;
                *position = read.next_offset;
                for batch in read.batches {
                    read_any = true;
                    let rows = self.prepare(&batch)?;
                    if rows.num_rows() > 0 && self.tx.send(Ok(rows)).await.is_err() {
                        return Ok(()); // the client went away
                    }
                }
            }
            if !read_any {
                tokio::select! {
                    alive = changes.changed() => if !alive { return Ok(()) },
                    _ = self.tx.closed() => return Ok(()),
                }
            }
        }
    }

    /// The first offset to deliver in each partition.
    async fn start_positions(&self, start: &Start) -> datafusion::error::Result<Vec<i64>> {
        let partitions = self.table.partition_count() as u32;
        let mut positions = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            positions.push(match start {
                Start::Earliest => 0,
                Start::Latest => self.streams.partition_bounds(&self.table, p).map_err(storage)?.high_watermark,
                Start::Offsets { default, per_partition } => {
                    per_partition.iter().find(|(q, _)| *q == p).map(|(_, o)| *o).unwrap_or(*default)
                }
                Start::TimestampMicros(us) => self.streams.offset_at_time(&self.table, p, *us).await.map_err(storage)?,
            });
        }
        Ok(positions)
    }

    /// A stored batch in the scan layout, with the pushed-down filters applied.
    fn prepare(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let batch = to_scan_layout(batch, &self.schema)?;
        let Some(predicate) = &self.predicate else { return Ok(batch) };
        let keep = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        Ok(filter_record_batch(&batch, keep.as_boolean())?)
    }
}

fn storage(e: streamhouse_streams::Error) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::Error::Storage(e)))
}

#[cfg(test)]
mod tests {
    use super::Start;

    #[test]
    fn start_positions_round_trip_through_text() {
        for start in [
            Start::Earliest,
            Start::Latest,
            Start::TimestampMicros(-5),
            Start::Offsets { default: 0, per_partition: vec![] },
            Start::Offsets { default: 7, per_partition: vec![(0, 15), (3, 2)] },
        ] {
            assert_eq!(Start::decode(&start.encode()), Some(start));
        }
        assert_eq!(Start::decode("sideways"), None);
    }
}
