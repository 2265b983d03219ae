//! Aggregating materialized views, maintained incrementally: each chunk of source rows
//! updates only the groups it touches, and nothing is recomputed from the whole source.
//!
//! The view's query is split at its one `Aggregate`: below it, filters and projections of
//! the source (run over each chunk); above it, projections and a HAVING filter (run over
//! the touched groups). Each step:
//!
//! 1. runs DataFusion's *partial* aggregation over the chunk: one row of intermediate
//!    state per touched group (the same states DataFusion exchanges between the phases of
//!    a parallel aggregation, so every aggregate it knows, user aggregates included, is
//!    maintainable);
//! 2. merges them into the groups' stored states with the aggregates' own
//!    `GroupsAccumulator::merge_batch`, and evaluates the new values;
//! 3. compares each touched group's visible row before and after, and appends the
//!    differences to the view's table as a change log (`_change` = `insert`, `delete`,
//!    `update_before`, `update_after`), the new states to the view's state table, and the
//!    source position to the progress table: one append, one WAL record.
//!
//! After a crash the state table is folded (last state per group wins) and maintenance
//! resumes from the recorded position, so no row is lost or counted twice. `SELECT` reads
//! the current rows from memory ([`AggregateResult`]); `SUBSCRIBE` reads the change log.
//!
//! `EMIT ON WINDOW CLOSE` (the view groups by `window_end`): a window's group changes
//! nothing visible while it is open; in the step whose watermark reaches its end, its
//! final row is appended as an `insert` and the group leaves memory. Its change log is
//! then the whole result, which is what `SELECT` reads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use arrow::array::{new_empty_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{concat_batches, interleave, prep_null_mask_filter, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::context::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{EmitTo, Expr, GroupsAccumulator, LogicalPlan};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::ExecutionPlan;
use streamhouse_streams::StreamTable;

use super::groups::{GroupUpdate, Groups};
use super::inputs::{over_chunk, Chunk};
use super::result::{result_columns, CurrentRows, Readiness};
use crate::error::{Error, Result};
use crate::session::Engine;

/// The view table's last column: what a change-log row does to the view's result.
pub const CHANGE_COLUMN: &str = "_change";
/// Names of state tables (in [`super::PROGRESS_SCHEMA`]), followed by a unique number;
/// the view's `MaterializedView.state_table_id` says which is its.
pub const STATE_TABLE_PREFIX: &str = "mv_state_";
/// The optimizer rule that turns `count(DISTINCT x)` into two aggregations, which would
/// hide the one aggregate maintenance merges (the accumulator keeps the distinct set).
const TWO_PHASE_DISTINCT_RULE: &str = "single_distinct_aggregation_to_group_by";
/// The physical rule that answers `count(*)` from a table's statistics without
/// aggregating: a chunk's exact row count would replace the states maintenance merges.
const STATISTICS_RULE: &str = "aggregate_statistics";
/// Aggregates whose result depends on the order of their rows unless given ORDER BY.
const ORDER_SENSITIVE: [&str; 6] = ["first_value", "last_value", "array_agg", "string_agg", "nth_value", "array_agg_distinct"];
/// The state table column of a view over a change log saying a group lost its last row
/// (recovery leaves it out).
const REMOVED_COLUMN: &str = "removed";

/// The plan a view's query is split into.
pub(crate) struct AggregatePlan {
    /// The `Aggregate` node with its input, over the real source table.
    aggregate: LogicalPlan,
    /// What runs over the aggregate's rows, bottom-up.
    upper: Vec<Upper>,
    /// Group-by columns, first in the partial rows and in the aggregate's rows.
    key_count: usize,
    /// The aggregates, as DataFusion planned them; their states follow the keys.
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Which columns of a partial row hold each aggregate's state.
    state_columns: Vec<Range<usize>>,
    /// Keys then states, as the partial aggregation produces them.
    partial_schema: SchemaRef,
    /// Keys then values: the `Aggregate` node's output.
    aggregate_schema: SchemaRef,
    keys: Option<RowConverter>,
    /// `EMIT ON WINDOW CLOSE`: which key is `window_end`.
    window_end_key: Option<usize>,
    /// Set when a source is a change log ([`super::inputs::is_change_log`]): rows leave
    /// groups as well as join them, so each group's input rows are kept and a touched
    /// group's states are recomputed from them.
    kept: Option<KeptRowsPlan>,
}

/// How a view over a change log keeps its groups' input rows.
struct KeptRowsPlan {
    /// The group keys, over the rows below the aggregation.
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// The rows below the aggregation, as bytes (one multiset per group).
    rows: RowConverter,
    /// The partial aggregation, to run over a group's kept rows.
    partial: Arc<dyn ExecutionPlan>,
}

/// A step of the `upper` part.
enum Upper {
    Project { exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef },
    Filter(Arc<dyn PhysicalExpr>),
}

/// Whether a view's plan is an aggregation maintained here: one `Aggregate`, with only
/// projections, filters and aliases above it.
pub(crate) fn aggregate_node(plan: &LogicalPlan) -> Option<&LogicalPlan> {
    match plan {
        LogicalPlan::Aggregate(_) => Some(plan),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            aggregate_node(plan.inputs().first()?)
        }
        _ => None,
    }
}

/// The state the view's query is planned with.
pub(crate) fn planning_state(engine: &Engine) -> SessionState {
    let state = engine.base_state();
    let rules = state.optimizers().iter().filter(|r| r.name() != TWO_PHASE_DISTINCT_RULE).cloned().collect();
    let physical = state.physical_optimizers().iter().filter(|r| r.name() != STATISTICS_RULE).cloned().collect();
    // One partition: a chunk's rows reach each aggregate in arrival order (zscore's
    // "latest" value, moving_avg's window), not split and merged in any order.
    let config = state.config().clone().with_target_partitions(1);
    SessionStateBuilder::new_from_existing(state).with_config(config).with_optimizer_rules(rules).with_physical_optimizer_rules(physical).build()
}

impl AggregatePlan {
    /// Splits `plan` (whose shape [`aggregate_node`] accepted) and plans its aggregates.
    pub(crate) async fn new(engine: &Engine, plan: &LogicalPlan, sources: &[Arc<StreamTable>], emit_on_window_close: bool) -> Result<AggregatePlan> {
        let state = planning_state(engine);
        let mut upper = Vec::new();
        let mut node = plan;
        while !matches!(node, LogicalPlan::Aggregate(_)) {
            let input = node.inputs()[0];
            match node {
                LogicalPlan::Projection(p) => upper.push(Upper::Project {
                    exprs: p.expr.iter().map(|e| state.create_physical_expr(e.clone(), input.schema())).collect::<datafusion::error::Result<_>>()?,
                    schema: Arc::new(p.schema.as_arrow().clone()),
                }),
                LogicalPlan::Filter(f) => upper.push(Upper::Filter(state.create_physical_expr(f.predicate.clone(), input.schema())?)),
                _ => {}
            }
            node = input;
        }
        upper.reverse();
        let LogicalPlan::Aggregate(aggregate) = node else { unreachable!("the loop stops at the aggregate") };
        if aggregate.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
            return Err(Error::not_supported(
                "materialized views cannot maintain GROUPING SETS, CUBE or ROLLUP incrementally yet",
                "create one materialized view per grouping",
            ));
        }
        let mut planned = AggregatePlan {
            aggregate: node.clone(),
            upper,
            key_count: aggregate.group_expr.len(),
            aggregates: vec![],
            state_columns: vec![],
            partial_schema: Arc::new(Schema::empty()),
            aggregate_schema: Arc::new(aggregate.schema.as_arrow().clone()),
            keys: None,
            window_end_key: None,
            kept: None,
        };
        if emit_on_window_close {
            let keys = &planned.aggregate_schema.fields()[..planned.key_count];
            let at = keys.iter().position(|f| f.name() == "window_end" && matches!(f.data_type(), DataType::Timestamp(..)));
            planned.window_end_key = Some(at.ok_or_else(|| {
                Error::InvalidObjectDefinition(
                    "EMIT ON WINDOW CLOSE needs window_end among the GROUP BY keys (of TUMBLE or HOP), to know when each group is final".into(),
                )
            })?);
        }
        let partial = planned.partial_exec(&state, &Chunk { sources, source: 0, batches: &[], applied: &[] }).await?;
        if partial.group_expr().expr().len() != planned.key_count || partial.aggr_expr().len() != aggregate.aggr_expr.len() {
            return Err(Error::not_supported(
                "materialized views cannot maintain this aggregation incrementally: DataFusion plans other group keys or aggregates than the query names (duplicate or constant GROUP BY keys?)",
                "group by each key once, without constants, or use a VIEW (computed at each query)",
            ));
        }
        for expr in partial.aggr_expr() {
            let function = expr.fun().name();
            if crate::streaming_functions::LATEST_BY_ARRIVAL.contains(&function) && !expr.order_bys().is_empty() {
                return Err(Error::not_supported(
                    format!("materialized views cannot maintain {function}(… ORDER BY …): in a view the latest value is the latest to arrive"),
                    format!("write {function} without ORDER BY in the view"),
                ));
            }
        }
        let mut at = planned.key_count;
        for expr in partial.aggr_expr() {
            let width = expr.state_fields()?.len();
            planned.state_columns.push(at..at + width);
            at += width;
        }
        planned.aggregates = partial.aggr_expr().to_vec();
        // Arguments checked when an accumulator is made (moving_avg's n…): refused now,
        // not at every step.
        for expr in &planned.aggregates {
            expr.create_accumulator()?;
        }
        planned.partial_schema = partial.schema();
        if planned.key_count > 0 {
            let fields = planned.partial_schema.fields()[..planned.key_count].iter().map(|f| SortField::new(f.data_type().clone())).collect();
            planned.keys = Some(RowConverter::new(fields)?);
        }
        if sources.iter().any(|s| super::inputs::is_change_log(s)) {
            // A group's states are recomputed from its kept rows, in no particular order.
            for expr in &planned.aggregates {
                let function = expr.fun().name();
                let hint = if crate::streaming_functions::LATEST_BY_ARRIVAL.contains(&function) {
                    format!("compute {function} in the view that is read")
                } else if ORDER_SENSITIVE.contains(&function) && expr.order_bys().is_empty() {
                    format!("give {function} an ORDER BY")
                } else {
                    continue;
                };
                return Err(Error::not_supported(
                    format!("materialized views cannot maintain {function}() over a view whose rows change: its rows have no arrival order"),
                    hint,
                ));
            }
            let fields = partial.input().schema().fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
            planned.kept = Some(KeptRowsPlan {
                group_exprs: partial.group_expr().expr().iter().map(|(e, _)| e.clone()).collect(),
                rows: RowConverter::new(fields)?,
                partial: partial.clone(),
            });
        }
        Ok(planned)
    }

    /// The state table's columns: the keys (`g0`, …) and the aggregates' states (`s0`, …);
    /// for a view over a change log also [`REMOVED_COLUMN`], set where a group lost its
    /// last row.
    pub(crate) fn state_table_columns(&self) -> Schema {
        let fields = self.partial_schema.fields().iter().enumerate().map(|(i, f)| {
            let name = if i < self.key_count { format!("g{i}") } else { format!("s{}", i - self.key_count) };
            Field::new(name, crate::create_as::storable_type(f.data_type()), true)
        });
        let mut fields: Vec<Field> = fields.collect();
        if self.keeps_rows() {
            fields.push(Field::new(REMOVED_COLUMN, DataType::Boolean, true));
        }
        Schema::new(fields)
    }

    /// Whether a source is a change log (see [`KeptRowsPlan`]): steps go through
    /// [`AggregateResult::step_signed`].
    pub(crate) fn keeps_rows(&self) -> bool {
        self.kept.is_some()
    }

    /// The rows below the aggregation for `chunk`, with each row's group key.
    async fn input_rows(&self, engine: &Engine, chunk: &Chunk<'_>) -> Result<(RecordBatch, Vec<Vec<u8>>)> {
        let kept = self.kept.as_ref().ok_or_else(|| Error::Internal("input rows of a view that keeps none".into()))?;
        let state = planning_state(engine);
        let input = self.partial_exec(&state, chunk).await?.input().clone();
        let batches = datafusion::physical_plan::collect(input.clone(), state.task_ctx()).await?;
        let batch = concat_batches(&input.schema(), &batches)?;
        let keys = kept.group_exprs.iter().map(|e| e.evaluate(&batch)?.into_array(batch.num_rows())).collect::<datafusion::error::Result<Vec<_>>>()?;
        let keys = self.key_bytes(&keys, batch.num_rows())?;
        Ok((batch, keys))
    }

    /// A step's state rows with [`REMOVED_COLUMN`]: false for them, and one more row
    /// (key, no states) marked true per group that lost its last row.
    fn with_removed_flags(&self, states: &RecordBatch, emptied: &[&Vec<u8>]) -> Result<RecordBatch> {
        let mut fields: Vec<_> = states.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(REMOVED_COLUMN, DataType::Boolean, true)));
        let schema = Arc::new(Schema::new(fields));
        let mut columns = states.columns().to_vec();
        columns.push(Arc::new(BooleanArray::from(vec![false; states.num_rows()])));
        let kept = RecordBatch::try_new(schema.clone(), columns)?;
        let Some(converter) = self.keys.as_ref().filter(|_| !emptied.is_empty()) else { return Ok(kept) };
        let parser = converter.parser();
        let mut columns = converter.convert_rows(emptied.iter().map(|key| parser.parse(key)))?;
        for field in &schema.fields()[self.key_count..schema.fields().len() - 1] {
            columns.push(arrow::array::new_null_array(field.data_type(), emptied.len()));
        }
        columns.push(Arc::new(BooleanArray::from(vec![true; emptied.len()])));
        let removed = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(concat_batches(&schema, [&kept, &removed])?)
    }

    /// DataFusion's partial aggregation over the kept rows of some groups: their
    /// complete states (one row per group with rows; one row, the empty aggregates',
    /// without GROUP BY).
    async fn recomputed_states(&self, engine: &Engine, groups: &[&KeptGroup]) -> Result<RecordBatch> {
        let kept = self.kept.as_ref().ok_or_else(|| Error::Internal("states from kept rows of a view that keeps none".into()))?;
        let state = planning_state(engine);
        let schema = kept.partial.children()[0].schema();
        let parser = kept.rows.parser();
        let rows = groups.iter().flat_map(|g| g.iter().flat_map(|(row, n)| std::iter::repeat_n(parser.parse(row), *n as usize)));
        let columns = kept.rows.convert_rows(rows)?;
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &arrow::array::RecordBatchOptions::new().with_row_count(Some(groups.iter().map(|g| g.values().sum::<u64>() as usize).sum())))?;
        let input = MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
        let recompute = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        let exec = kept.partial.clone().replace_children(vec![input], recompute)?;
        let batches = datafusion::physical_plan::collect(exec, state.task_ctx()).await?;
        Ok(concat_batches(&self.partial_schema, &batches)?)
    }

    /// DataFusion's partial aggregation of the aggregate's input over `chunk`.
    async fn partial_exec(&self, state: &SessionState, chunk: &Chunk<'_>) -> Result<Arc<AggregateExec>> {
        let over_chunk = over_chunk(&self.aggregate, chunk)?;
        let physical = state.create_physical_plan(&over_chunk).await?;
        partial_of(&physical).ok_or_else(|| Error::Internal("the aggregate's physical plan has no aggregation".into()))
    }

    /// One row of intermediate state per group touched by `chunk` (a group may repeat).
    async fn partial_rows(&self, engine: &Engine, chunk: &Chunk<'_>) -> Result<RecordBatch> {
        let state = planning_state(engine);
        let exec: Arc<dyn ExecutionPlan> = self.partial_exec(&state, chunk).await?;
        let batches = datafusion::physical_plan::collect(exec, state.task_ctx()).await?;
        Ok(concat_batches(&self.partial_schema, &batches)?)
    }

    /// The partial rows' schema with every column nullable: states may be NULL where
    /// DataFusion's partial schema says they are not (a SUM of nothing yet).
    fn nullable_partial_schema(&self) -> SchemaRef {
        let fields: Vec<_> = self.partial_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        Arc::new(Schema::new(fields))
    }

    /// Whether the query has a GROUP BY.
    pub(crate) fn has_keys(&self) -> bool {
        self.key_count > 0
    }

    fn key_bytes(&self, keys: &[ArrayRef], rows: usize) -> Result<Vec<Vec<u8>>> {
        match &self.keys {
            None => Ok(vec![Vec::new(); rows]),
            Some(converter) => {
                let converted = converter.convert_columns(keys)?;
                Ok(converted.iter().map(|r| r.as_ref().to_vec()).collect())
            }
        }
    }

    /// The key columns of groups from their key bytes (what [`Self::key_bytes`] made).
    fn key_columns(&self, keys: &[&[u8]]) -> Result<Vec<ArrayRef>> {
        match &self.keys {
            None => Ok(Vec::new()),
            Some(converter) => {
                let parser = converter.parser();
                Ok(converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?)
            }
        }
    }

    /// For an `EMIT ON WINDOW CLOSE` view, each group's window end (µs since the epoch).
    fn window_ends(&self, keys: &[ArrayRef]) -> Result<Option<Vec<Option<i64>>>> {
        let Some(at) = self.window_end_key else { return Ok(None) };
        let ends = super::event_time::micros(keys[at].as_ref())?;
        Ok(Some(ends.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().iter().collect()))
    }

    fn accumulator(&self, aggregate: usize) -> Result<Box<dyn GroupsAccumulator>> {
        let expr = self.aggregates[aggregate].clone();
        if expr.groups_accumulator_supported() {
            return Ok(expr.create_groups_accumulator()?);
        }
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || expr.create_accumulator())))
    }

    /// The view's rows for groups with these keys and states (one per group), and which
    /// of them pass the HAVING filter. Columns are cast to the view's column types.
    fn visible_rows(&self, keys: &[ArrayRef], states: &[ArrayRef], view_columns: &Schema) -> Result<(Vec<ArrayRef>, BooleanArray)> {
        let groups = keys.first().or(states.first()).map(|a| a.len()).unwrap_or(0);
        if groups == 0 {
            // Some accumulators cannot emit zero groups (the adapter builds arrays from values).
            let empty = view_columns.fields().iter().map(|f| new_empty_array(f.data_type())).collect();
            return Ok((empty, BooleanArray::from(Vec::<bool>::new())));
        }
        let indices: Vec<usize> = (0..groups).collect();
        let mut columns = keys.to_vec();
        for (aggregate, range) in self.state_columns.iter().enumerate() {
            let mut accumulator = self.accumulator(aggregate)?;
            accumulator.merge_batch(&states[range.start - self.key_count..range.end - self.key_count], &indices, groups)?;
            columns.push(accumulator.evaluate(EmitTo::All)?);
        }
        let mut batch = RecordBatch::try_new(self.aggregate_schema.clone(), columns)?;
        let mut visible = BooleanArray::from(vec![true; groups]);
        for step in &self.upper {
            match step {
                Upper::Filter(predicate) => {
                    let mask = predicate.evaluate(&batch)?.into_array(groups)?;
                    let mask = mask.as_boolean();
                    // NULL is not true: a HAVING that yields NULL hides the group.
                    let mask = if mask.null_count() > 0 { prep_null_mask_filter(mask) } else { mask.clone() };
                    visible = arrow::compute::and(&visible, &mask)?;
                }
                Upper::Project { exprs, schema } => {
                    let columns = exprs.iter().map(|e| e.evaluate(&batch)?.into_array(groups)).collect::<datafusion::error::Result<Vec<_>>>()?;
                    batch = RecordBatch::try_new(schema.clone(), columns)?;
                }
            }
        }
        let columns = batch
            .columns()
            .iter()
            .zip(view_columns.fields().iter())
            .map(|(column, field)| crate::cast::to_column_type(column, field))
            .collect::<Result<Vec<_>>>()?;
        Ok((columns, visible))
    }
}

/// The partial aggregation inside a physical plan: the plan's own when DataFusion split
/// it in two phases, or one made from its single-phase aggregation.
fn partial_of(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<AggregateExec>> {
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        return match aggregate.mode() {
            AggregateMode::Partial => Some(Arc::new(aggregate.clone())),
            AggregateMode::Single | AggregateMode::SinglePartitioned => AggregateExec::try_new(
                AggregateMode::Partial,
                aggregate.group_expr().clone(),
                aggregate.aggr_expr().to_vec(),
                aggregate.filter_expr().to_vec(),
                aggregate.input().clone(),
                aggregate.input_schema(),
            )
            .ok()
            .map(Arc::new),
            AggregateMode::Final | AggregateMode::FinalPartitioned | AggregateMode::PartialReduce => aggregate.input().children().into_iter().find_map(partial_of).or_else(|| partial_of(aggregate.input())),
        };
    }
    plan.children().into_iter().find_map(partial_of)
}

/// What one step changes, computed before the append and applied after it succeeds.
pub(crate) struct Step {
    /// The view's change-log rows (view columns then `_change`).
    pub changes: Option<RecordBatch>,
    /// The touched groups' keys and new states (state table columns).
    pub states: RecordBatch,
    updates: Vec<GroupUpdate>,
    /// Groups whose window closed (emitted), or that lost their last row: dropped from memory.
    closed: Vec<Vec<u8>>,
    /// Views over a change log: the touched groups' kept rows (None: none left).
    kept: Vec<(Vec<u8>, Option<KeptGroup>)>,
}

/// A group's kept input rows (row bytes → how many times).
type KeptGroup = HashMap<Vec<u8>, u64>;

/// The one group's key in a view without GROUP BY.
static EMPTY_KEY: Vec<u8> = Vec::new();

fn install_kept(kept: &mut HashMap<Vec<u8>, KeptGroup>, update: Vec<(Vec<u8>, Option<KeptGroup>)>) {
    for (key, rows) in update {
        match rows {
            Some(rows) => kept.insert(key, rows),
            None => kept.remove(&key),
        };
    }
}

/// How a step's partial rows meet the groups' stored states.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Rows joined the groups: their states merge into the stored ones.
    WithStored,
    /// The states were recomputed from each group's kept rows: they replace the stored ones.
    Replace,
}

/// A view's current result, shared by its maintainer (writes) and `SELECT` (reads).
pub(crate) struct AggregateResult {
    view: Arc<StreamTable>,
    groups: RwLock<Groups>,
    /// Views over a change log: each group's input rows (see [`KeptRowsPlan`]).
    kept: std::sync::Mutex<HashMap<Vec<u8>, KeptGroup>>,
    readiness: Readiness,
}

impl AggregateResult {
    pub(crate) fn new(view: Arc<StreamTable>) -> Arc<AggregateResult> {
        Arc::new(AggregateResult { view, groups: RwLock::default(), kept: Default::default(), readiness: Readiness::default() })
    }

    /// The view's columns (its table's, without `_change`).
    fn columns(&self) -> SchemaRef {
        result_columns(&self.view)
    }

    fn groups(&self) -> std::sync::RwLockReadGuard<'_, Groups> {
        self.groups.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether there is nothing yet (a view without GROUP BY then shows its one row of
    /// empty aggregates, as the batch query does).
    pub(crate) fn is_empty(&self) -> bool {
        self.groups().slots.is_empty()
    }

    pub(crate) fn set_recovery(&self, outcome: std::result::Result<(), String>) {
        self.readiness.set(outcome);
    }

    /// How many groups the view holds.
    pub(crate) fn group_count(&self) -> usize {
        self.groups().keys.len()
    }

    /// Every group's state row, in the layout a step writes them: a checkpoint, after
    /// which the state table's older rows are no longer needed.
    pub(crate) fn all_states(&self, plan: &AggregatePlan) -> Result<RecordBatch> {
        let schema = plan.nullable_partial_schema();
        let groups = self.groups();
        if groups.keys.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        let keys: Vec<&[u8]> = groups.keys.iter().map(Vec::as_slice).collect();
        let mut columns = plan.key_columns(&keys)?;
        for (c, field) in schema.fields().iter().enumerate().skip(plan.key_count) {
            let values = ScalarValue::iter_to_array(groups.states.iter().map(|states| states[c - plan.key_count].clone()))?;
            columns.push(arrow::compute::cast(&values, field.data_type())?);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// Loads the groups' last states (rows of the state table, in offset order).
    /// Groups whose window ends at or before `closed_before` were emitted and are left out.
    pub(crate) fn recover(&self, plan: &AggregatePlan, stored: &[RecordBatch], closed_before: Option<i64>) -> Result<()> {
        // Kept rows are read again after this (a recovery may be a retry).
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut latest: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
        let mut batches = Vec::with_capacity(stored.len());
        for batch in stored {
            let columns = batch
                .columns()
                .iter()
                .zip(plan.partial_schema.fields().iter())
                // Strictly: a value that does not convert back is an error, not a NULL.
                .map(|(c, f)| Ok(arrow::compute::cast_with_options(c, f.data_type(), &arrow::compute::CastOptions { safe: false, ..Default::default() })?))
                .collect::<Result<Vec<_>>>()?;
            let keys = plan.key_bytes(&columns[..plan.key_count], batch.num_rows())?;
            // Closed windows were emitted: their states are history, not loaded.
            let ends = plan.window_ends(&columns[..plan.key_count])?;
            // A group of a view over a change log that lost its last row is gone.
            let removed = batch.column_by_name(REMOVED_COLUMN).filter(|_| plan.keeps_rows()).map(|c| c.as_boolean().clone());
            for (row, key) in keys.into_iter().enumerate() {
                let end = ends.as_ref().and_then(|ends| ends[row]);
                if end.zip(closed_before).is_some_and(|(end, watermark)| end <= watermark) {
                    continue;
                }
                if removed.as_ref().is_some_and(|r| r.is_valid(row) && r.value(row)) {
                    latest.remove(&key);
                    continue;
                }
                latest.insert(key, (batches.len(), row));
            }
            batches.push(columns);
        }
        let mut order: Vec<(Vec<u8>, (usize, usize))> = latest.into_iter().collect();
        order.sort_by_key(|(_, at)| *at);
        let at: Vec<(usize, usize)> = order.iter().map(|(_, at)| *at).collect();
        let columns = (0..plan.partial_schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = batches.iter().map(|b| b[c].as_ref()).collect();
                if arrays.is_empty() {
                    return Ok(new_empty_array(plan.partial_schema.field(c).data_type()));
                }
                Ok(interleave(&arrays, &at)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let (rows, visible) = plan.visible_rows(&columns[..plan.key_count], &columns[plan.key_count..], &self.columns())?;
        let window_ends = plan.window_ends(&columns[..plan.key_count])?;
        let mut groups = Groups::default();
        for (i, (key, _)) in order.into_iter().enumerate() {
            let window_end = window_ends.as_ref().and_then(|ends| ends.get(i).copied().flatten());
            if window_end.zip(closed_before).is_some_and(|(end, watermark)| end <= watermark) {
                continue;
            }
            let row = if visible.value(i) { Some(row_of(&rows, i)?) } else { None };
            groups.upsert(GroupUpdate { key, states: row_of(&columns[plan.key_count..], i)?, row, window_end });
        }
        *self.groups.write().unwrap_or_else(|p| p.into_inner()) = groups;
        Ok(())
    }

    /// The changes `chunk` makes to the view, not yet applied. For an
    /// `EMIT ON WINDOW CLOSE` view, the windows ending at or before `watermark` close.
    pub(crate) async fn step(
        &self,
        engine: &Engine,
        plan: &AggregatePlan,
        chunk: &Chunk<'_>,
        watermark: Option<i64>,
    ) -> Result<Step> {
        let partial = plan.partial_rows(engine, chunk).await?;
        self.diff(plan, &partial, Merge::WithStored, watermark)
    }

    /// The changes of a step of a view over a change log, not yet applied: `added` rows
    /// join their groups' kept rows and `removed` rows leave them; each touched group's
    /// states are recomputed from what it keeps, and a group left without rows is
    /// deleted (and marked removed in the state table).
    pub(crate) async fn step_signed(&self, engine: &Engine, plan: &AggregatePlan, added: &Chunk<'_>, removed: &Chunk<'_>) -> Result<Step> {
        let changed = self.kept_after(engine, plan, added, removed).await?;
        let mut touched: Vec<(&Vec<u8>, &KeptGroup)> = changed.iter().filter_map(|(key, rows)| rows.as_ref().map(|r| (key, r))).collect();
        // Without GROUP BY the one group always shows a row (count 0 when it keeps none).
        let empty = KeptGroup::new();
        if !plan.has_keys() && (!changed.is_empty() || self.is_empty()) && touched.is_empty() {
            touched.push((&EMPTY_KEY, &empty));
        }
        let groups: Vec<&KeptGroup> = touched.iter().map(|(_, rows)| *rows).collect();
        let partial = if groups.is_empty() { RecordBatch::new_empty(plan.partial_schema.clone()) } else { plan.recomputed_states(engine, &groups).await? };
        let mut step = self.diff(plan, &partial, Merge::Replace, None)?;
        let emptied: Vec<&Vec<u8>> = changed.iter().filter(|(_, rows)| rows.is_none() && plan.has_keys()).map(|(key, _)| key).collect();
        let mut removed_rows = Vec::new();
        {
            let groups = self.groups();
            for key in &emptied {
                if let Some(&slot) = groups.slots.get(*key) {
                    if let Some(row) = &groups.rows[slot] {
                        removed_rows.push((row.clone(), "delete"));
                    }
                }
                step.closed.push((*key).clone());
            }
        }
        if !removed_rows.is_empty() {
            let mut batches: Vec<RecordBatch> = step.changes.take().into_iter().collect();
            batches.push(change_batch(&self.view, &self.columns(), removed_rows)?);
            step.changes = Some(concat_batches(&batches[0].schema(), &batches)?);
        }
        step.states = plan.with_removed_flags(&step.states, &emptied)?;
        step.kept = changed;
        Ok(step)
    }

    /// Touched groups' kept rows after `added` and `removed` (None: the group has none left).
    async fn kept_after(&self, engine: &Engine, plan: &AggregatePlan, added: &Chunk<'_>, removed: &Chunk<'_>) -> Result<Vec<(Vec<u8>, Option<KeptGroup>)>> {
        let converter = &plan.kept.as_ref().ok_or_else(|| Error::Internal("a view over a change log without kept rows".into()))?.rows;
        let mut signed = Vec::new();
        for (chunk, sign) in [(added, 1i64), (removed, -1i64)] {
            if chunk.batches.iter().any(|b| b.num_rows() > 0) {
                let (rows, keys) = plan.input_rows(engine, chunk).await?;
                signed.push((converter.convert_columns(rows.columns())?, keys, sign));
            }
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let mut touched: HashMap<Vec<u8>, KeptGroup> = HashMap::new();
        for (rows, keys, sign) in signed {
            for (row, key) in rows.iter().zip(keys) {
                let group = touched.entry(key).or_insert_with_key(|key| kept.get(key).cloned().unwrap_or_default());
                let count = group.entry(row.as_ref().to_vec()).or_insert(0);
                match (sign, *count) {
                    (1, _) => *count += 1,
                    (_, 0) => return Err(Error::Internal(format!("the change log of a source of {} deletes a row it never inserted", self.view.name()))),
                    _ => *count -= 1,
                }
                if *count == 0 {
                    group.remove(row.as_ref());
                }
            }
        }
        Ok(touched.into_iter().map(|(key, rows)| (key, (!rows.is_empty()).then_some(rows))).collect())
    }

    /// Installs kept rows read again at start (the groups' states come from the state table).
    pub(crate) async fn recover_kept(&self, engine: &Engine, plan: &AggregatePlan, added: &Chunk<'_>, removed: &Chunk<'_>) -> Result<()> {
        let update = self.kept_after(engine, plan, added, removed).await?;
        install_kept(&mut self.kept.lock().unwrap_or_else(|p| p.into_inner()), update);
        Ok(())
    }

    /// The changes of touched groups given their partial rows: merged into the stored
    /// states (rows joined the groups), or replacing them (states recomputed).
    fn diff(&self, plan: &AggregatePlan, partial: &RecordBatch, merge: Merge, watermark: Option<i64>) -> Result<Step> {
        let keys = plan.key_bytes(&partial.columns()[..plan.key_count], partial.num_rows())?;
        // Touched groups in order of first appearance; each partial row's group.
        let mut touched: Vec<usize> = Vec::new();
        let mut touched_at: HashMap<&[u8], usize> = HashMap::new();
        let mut group_of_row = Vec::with_capacity(keys.len());
        for (row, key) in keys.iter().enumerate() {
            let next = touched.len();
            let group = *touched_at.entry(key.as_slice()).or_insert(next);
            if group == next {
                touched.push(row);
            }
            group_of_row.push(group);
        }
        let count = touched.len();
        let state_schema = plan.nullable_partial_schema();
        let mut changes: Vec<(Vec<ScalarValue>, &str)> = Vec::new();
        let mut closed = Vec::new();
        if let (Some(_), Some(watermark)) = (plan.window_end_key, watermark) {
            // Open windows the chunk did not touch may close too.
            let groups = self.groups();
            for slot in groups.closed(watermark) {
                if touched_at.contains_key(groups.keys[slot].as_slice()) {
                    continue;
                }
                if let Some(row) = &groups.rows[slot] {
                    changes.push((row.clone(), "insert"));
                }
                closed.push(groups.keys[slot].clone());
            }
        }
        if count == 0 {
            // Every row of the chunk was filtered out below the aggregation.
            let changes = if changes.is_empty() { None } else { Some(change_batch(&self.view, &self.columns(), changes)?) };
            return Ok(Step { changes, states: RecordBatch::new_empty(state_schema), updates: vec![], closed, kept: vec![] });
        }
        let first_rows = arrow::array::UInt32Array::from(touched.iter().map(|r| *r as u32).collect::<Vec<_>>());
        let key_columns = partial.columns()[..plan.key_count].iter().map(|c| take(c.as_ref(), &first_rows, None)).collect::<std::result::Result<Vec<_>, _>>()?;
        let (states, old_rows) = {
            let groups = self.groups();
            let existing: Vec<(usize, usize)> =
                touched.iter().enumerate().filter_map(|(g, row)| groups.slots.get(&keys[*row]).map(|slot| (g, *slot))).collect();
            let existing_groups: Vec<usize> = existing.iter().map(|(g, _)| *g).collect();
            let mut states = Vec::new();
            for (aggregate, range) in plan.state_columns.iter().enumerate() {
                let mut accumulator = plan.accumulator(aggregate)?;
                if !existing.is_empty() && merge == Merge::WithStored {
                    let old = range
                        .clone()
                        .map(|c| {
                            let values = existing.iter().map(|(_, slot)| groups.states[*slot][c - plan.key_count].clone());
                            Ok(ScalarValue::iter_to_array(values)?)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    accumulator.merge_batch(&old, &existing_groups, count)?;
                }
                accumulator.merge_batch(&partial.columns()[range.clone()], &group_of_row, count)?;
                states.extend(accumulator.state(EmitTo::All)?);
            }
            let mut old_rows = vec![None; count];
            for (g, slot) in existing {
                old_rows[g] = groups.rows[slot].clone();
            }
            (states, old_rows)
        };
        let view_columns = self.columns();
        let (rows, visible) = plan.visible_rows(&key_columns, &states, &view_columns)?;
        let window_ends = plan.window_ends(&key_columns)?;
        let mut updates = Vec::with_capacity(count);
        for (g, old) in old_rows.into_iter().enumerate() {
            let new = if visible.value(g) { Some(row_of(&rows, g)?) } else { None };
            if let Some(ends) = &window_ends {
                // Held while the window is open; emitted once, final, when it closes.
                let window_end = ends[g];
                if window_end.zip(watermark).is_some_and(|(end, watermark)| end <= watermark) {
                    if let Some(row) = new {
                        changes.push((row, "insert"));
                    }
                    closed.push(keys[touched[g]].clone());
                    continue;
                }
                updates.push(GroupUpdate { key: keys[touched[g]].clone(), states: row_of(&states, g)?, row: new, window_end });
                continue;
            }
            match (&old, &new) {
                (None, Some(n)) => changes.push((n.clone(), "insert")),
                (Some(o), None) => changes.push((o.clone(), "delete")),
                (Some(o), Some(n)) if o != n => {
                    changes.push((o.clone(), "update_before"));
                    changes.push((n.clone(), "update_after"));
                }
                _ => {}
            }
            updates.push(GroupUpdate { key: keys[touched[g]].clone(), states: row_of(&states, g)?, row: new, window_end: None });
        }
        let changes = if changes.is_empty() { None } else { Some(change_batch(&self.view, &view_columns, changes)?) };
        let mut stored = key_columns;
        stored.extend(states);
        Ok(Step { changes, states: RecordBatch::try_new(state_schema, stored)?, updates, closed, kept: vec![] })
    }

    /// Makes a committed step's changes visible to `SELECT`.
    pub(crate) fn apply(&self, step: Step) {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        for update in step.updates {
            groups.upsert(update);
        }
        for key in &step.closed {
            groups.remove(key);
        }
        install_kept(&mut self.kept.lock().unwrap_or_else(|p| p.into_inner()), step.kept);
    }
}

/// Row `i` of `columns` as values, owning their data (a list value would otherwise keep
/// the whole step's array alive).
fn row_of(columns: &[ArrayRef], i: usize) -> Result<Vec<ScalarValue>> {
    columns.iter().map(|c| Ok(ScalarValue::try_from_array(c, i)?.compacted())).collect()
}

fn change_batch(view: &StreamTable, columns: &Schema, rows: Vec<(Vec<ScalarValue>, &str)>) -> Result<RecordBatch> {
    let mut arrays = columns
        .fields()
        .iter()
        .enumerate()
        .map(|(c, _)| Ok(ScalarValue::iter_to_array(rows.iter().map(|(r, _)| r[c].clone()))?))
        .collect::<Result<Vec<ArrayRef>>>()?;
    arrays.push(Arc::new(StringArray::from(rows.iter().map(|(_, change)| *change).collect::<Vec<_>>())));
    let mut fields: Vec<_> = columns.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(CHANGE_COLUMN, DataType::Utf8, false)));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    let all: Vec<usize> = (0..batch.num_columns()).collect();
    let mut widened = crate::dml::widen_to_table(view, &all, vec![batch])?;
    Ok(widened.pop().expect("one batch in, one out"))
}

impl CurrentRows for AggregateResult {
    fn view(&self) -> &Arc<StreamTable> {
        &self.view
    }

    fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        let schema = self.columns();
        let groups = self.groups();
        let rows: Vec<&Vec<ScalarValue>> = groups.rows.iter().flatten().collect();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, field)| {
                if rows.is_empty() {
                    return Ok(new_empty_array(field.data_type()));
                }
                Ok(ScalarValue::iter_to_array(rows.iter().map(|r| r[c].clone()))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

impl std::fmt::Debug for AggregateResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateResult").field("view", &self.view.name()).finish_non_exhaustive()
    }
}
