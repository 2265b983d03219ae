//! What a materialized view reads: its source stream tables (one, or several under
//! UNION ALL), each partition of each being one *input* the maintainer follows with its
//! own position.
//!
//! Inputs are recorded in the progress tables by a code,
//! `source index × MAX_PARTITIONS + partition`: for a view of one table that is the
//! partition number, as it always was.
//!
//! A step applies a chunk of one input: the view's plan runs with the scans of that
//! input's table reading the chunk and the scans of the other tables reading what the
//! view has applied of them so far — nothing for a UNION ALL (which then yields exactly
//! the rows the chunk contributes), every earlier row for a join (each pair of rows is
//! then produced once, in the step of whichever of the two came later).

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{provider_as_source, source_as_provider, MemTable};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan};
use streamhouse_streams::{StreamTable, Streams, MAX_PARTITIONS};

use crate::error::Result;
use crate::provider::{scan_schema, to_scan_layout, StreamTableProvider};

pub(crate) struct Inputs {
    sources: Vec<Arc<StreamTable>>,
    /// Per input: its source's index and the partition.
    inputs: Vec<(usize, u32)>,
}

impl Inputs {
    pub(crate) fn new(sources: Vec<Arc<StreamTable>>) -> Inputs {
        let inputs = sources.iter().enumerate().flat_map(|(s, table)| (0..table.partition_count() as u32).map(move |p| (s, p))).collect();
        Inputs { sources, inputs }
    }

    pub(crate) fn len(&self) -> usize {
        self.inputs.len()
    }

    pub(crate) fn sources(&self) -> &[Arc<StreamTable>] {
        &self.sources
    }

    pub(crate) fn source_index(&self, input: usize) -> usize {
        self.inputs[input].0
    }

    pub(crate) fn source(&self, input: usize) -> &Arc<StreamTable> {
        &self.sources[self.inputs[input].0]
    }

    pub(crate) fn partition(&self, input: usize) -> u32 {
        self.inputs[input].1
    }

    /// How the progress tables name an input.
    pub(crate) fn code(&self, input: usize) -> i32 {
        let (s, p) = self.inputs[input];
        (s as u32 * MAX_PARTITIONS + p) as i32
    }

    pub(crate) fn input_of(&self, code: i32) -> Option<usize> {
        let code = u32::try_from(code).ok()?;
        self.inputs.iter().position(|&(s, p)| s as u32 * MAX_PARTITIONS + p == code)
    }

    /// Each input's next offset to be written (what backfill waits for, what lag counts to).
    pub(crate) fn high_watermarks(&self, streams: &Streams) -> Result<Vec<i64>> {
        let mut highs = Vec::with_capacity(self.inputs.len());
        for input in 0..self.inputs.len() {
            highs.push(streams.partition_bounds(self.source(input), self.partition(input))?.high_watermark);
        }
        Ok(highs)
    }

    /// A source gained partitions (Kafka CreatePartitions) since these inputs were listed.
    pub(crate) fn outdated(&self) -> bool {
        self.sources.iter().map(|s| s.partition_count()).sum::<usize>() != self.inputs.len()
    }

    pub(crate) fn any_dropped(&self) -> bool {
        self.sources.iter().any(|s| s.is_dropped())
    }
}

/// Rows of one of a view's sources (stored layout), to run the view's plan over.
pub(crate) struct Chunk<'a> {
    pub sources: &'a [Arc<StreamTable>],
    /// Which source the rows are of.
    pub source: usize,
    pub batches: &'a [RecordBatch],
    /// Per source, the rows applied so far (views with joins; empty otherwise).
    pub applied: &'a [Vec<RecordBatch>],
}

/// `plan` over `chunk`: its scans of the chunk's source read the chunk, its scans of the
/// view's other sources what the view applied of them so far.
pub(crate) fn over_chunk(plan: &LogicalPlan, chunk: &Chunk) -> Result<LogicalPlan> {
    let mut replacements = Vec::with_capacity(chunk.sources.len());
    for (s, source) in chunk.sources.iter().enumerate() {
        // A view's change log comes split by sign, as the view's result columns.
        let scan = layout(source);
        let rows: &[RecordBatch] = match s == chunk.source {
            true => chunk.batches,
            false => chunk.applied.get(s).map(Vec::as_slice).unwrap_or(&[]),
        };
        let batches = rows.iter().map(|b| to_scan_layout(b, &scan)).collect::<datafusion::error::Result<Vec<_>>>()?;
        replacements.push((source.id(), provider_as_source(Arc::new(MemTable::try_new(scan, vec![batches])?))));
    }
    Ok(plan
        .clone()
        .transform_up(|node| match node {
            LogicalPlan::TableScan(mut scan) => {
                let table = stream_table_of(&scan).map(|t| t.id());
                match replacements.iter().find(|(id, _)| Some(*id) == table) {
                    Some((_, rows)) => {
                        scan.source = rows.clone();
                        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                    }
                    None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                }
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// The stream table a scan reads: a table, or the change log of a view whose `SELECT`
/// reads its current rows from memory.
pub(crate) fn stream_table_of(scan: &datafusion::logical_expr::TableScan) -> Option<Arc<StreamTable>> {
    let provider = source_as_provider(&scan.source).ok()?;
    if let Some(result) = provider.downcast_ref::<super::CurrentRowsProvider>() {
        return Some(result.view().clone());
    }
    if let Some(latest) = provider.downcast_ref::<crate::compacted::CompactedTableProvider>() {
        return Some(latest.table().clone());
    }
    // A view's raw change log (its result not served: no maintainer) is not its rows; an
    // EMIT ON WINDOW CLOSE view's log only inserts, so it reads as a table.
    provider.downcast_ref::<StreamTableProvider>().map(|p| p.table().clone()).filter(|t| !is_change_log(t))
}

/// How a view reads one of its sources.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// Rows are only ever added.
    Table,
    /// A view whose rows change: its change log, as its result columns (an `EMIT ON
    /// WINDOW CLOSE` view only ever inserts final rows: it reads as a table).
    ViewChanges,
    /// A key-compacted table: a row with a key replaces that key's previous row.
    LatestByKey,
}

pub(crate) fn kind(table: &StreamTable) -> SourceKind {
    if table.options().compact {
        SourceKind::LatestByKey
    } else if super::is_change_log_view(table) && !table.options().materialized.as_ref().is_some_and(|m| m.emit_on_window_close) {
        SourceKind::ViewChanges
    } else {
        SourceKind::Table
    }
}

/// Whether `table`'s rows are removed as well as added, for a view reading it.
pub(crate) fn is_change_log(table: &StreamTable) -> bool {
    kind(table) != SourceKind::Table
}

/// The columns a view's plan reads of `table` (what chunks of it are turned into).
pub(crate) fn layout(table: &StreamTable) -> arrow::datatypes::SchemaRef {
    match kind(table) {
        SourceKind::ViewChanges => super::result::result_columns(table),
        SourceKind::Table | SourceKind::LatestByKey => scan_schema(table),
    }
}

/// Change-log rows (stored layout) as the view's result columns: those the log adds and
/// those it removes.
pub(crate) fn signed_rows(view: &StreamTable, batches: &[RecordBatch]) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
    let width = super::result::result_columns(view).fields().len();
    let change = view.schema().index_of(super::CHANGE_COLUMN)?;
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for batch in batches {
        let changes = batch.column(change).as_string::<i32>();
        let adds: arrow::array::BooleanArray = changes.iter().map(|c| Some(matches!(c, Some("insert" | "update_after")))).collect();
        let layout = Arc::new(arrow::datatypes::Schema::new(batch.schema().fields()[..width].to_vec()));
        let result = RecordBatch::try_new(layout, batch.columns()[..width].to_vec())?;
        added.push(arrow::compute::filter_record_batch(&result, &adds)?);
        removed.push(arrow::compute::filter_record_batch(&result, &arrow::compute::not(&adds)?)?);
    }
    Ok((added, removed))
}

/// A column, or an alias of one.
pub(super) fn as_column(expr: &Expr) -> Option<Column> {
    match expr {
        Expr::Column(c) => Some(c.clone()),
        Expr::Alias(a) => as_column(&a.expr),
        _ => None,
    }
}

/// The source table's column that `column` (as spelled above `plan`) is, when `plan`
/// passes it through unchanged: scans, aliases, filters, projections, window functions
/// and groupings that name it (interval bounds and window partitions are read this way).
pub(super) fn source_column(plan: &LogicalPlan, column: &Column) -> Option<String> {
    let index = plan.schema().index_of_column_by_name(column.relation.as_ref(), &column.name)?;
    match plan {
        LogicalPlan::TableScan(_) => Some(column.name.clone()),
        LogicalPlan::SubqueryAlias(alias) => source_column(&alias.input, &Column::new_unqualified(&column.name)),
        LogicalPlan::Filter(filter) => source_column(&filter.input, column),
        // Window functions add columns after their input's.
        LogicalPlan::Window(window) => (index < window.input.schema().fields().len()).then(|| source_column(&window.input, column)).flatten(),
        LogicalPlan::Projection(projection) => as_column(&projection.expr[index]).and_then(|inner| source_column(&projection.input, &inner)),
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.get(index).and_then(as_column).and_then(|inner| source_column(&aggregate.input, &inner)),
        _ => None,
    }
}
