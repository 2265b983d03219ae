//! Checkpoints of an aggregating view's groups, so that a restart reads a bounded part of
//! its state table.
//!
//! Each step appends the new states of the groups it touched to the view's state table,
//! and recovery folds that table (last state per group wins). Without more, the table
//! grows with every step and so does the time to start. Once the state rows written since
//! the last checkpoint reach twice the number of groups (at least
//! [`CHECKPOINT_MIN_STATE_ROWS`]), the maintainer appends every group's current state
//! again, in pieces, and then a marker: a progress row with partition code
//! [`CHECKPOINT_CODE`] whose offset is where the state table stood before the first
//! piece. From that offset on the table holds a state row for every group, so recovery
//! folds only the rows from the latest marker, and the segments before it are deleted.
//! A crash before the marker leaves the previous one in force (its rows are still there:
//! nothing is deleted before the new marker is committed). The cost is amortized: a
//! checkpoint writes as many rows as there are groups, after at least twice as many.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Array, Int64Array, RecordBatch};
use streamhouse_streams::TableWrite;
use tracing::{debug, warn};

use super::aggregate::AggregatePlan;
use super::{progress_schema, query, Maintainer, PROGRESS_SCHEMA, PROGRESS_TABLE};
use crate::error::{Error, Result};
use crate::session::Engine;

/// The partition code of progress rows that mark a checkpoint (source inputs' codes are
/// never negative).
pub(crate) const CHECKPOINT_CODE: i32 = -1;
/// State rows written since the last checkpoint before a view with few groups takes one.
const CHECKPOINT_MIN_STATE_ROWS: usize = 100_000;
/// Groups' states per append of a checkpoint (one WAL record each).
const CHECKPOINT_PIECE_ROWS: usize = 65_536;

impl Maintainer {
    /// Takes a checkpoint of an aggregating view's groups when enough state rows were
    /// written since the last one.
    pub(super) async fn checkpoint_if_due(&self, engine: &Arc<Engine>, plan: &AggregatePlan) -> Result<()> {
        let Some((result, states)) = &self.aggregate else { return Ok(()) };
        let written = self.state_rows_written.load(Ordering::Acquire);
        if written < CHECKPOINT_MIN_STATE_ROWS.max(2 * result.group_count()) || states.partition_count() != 1 {
            return Ok(());
        }
        let streams = engine.streams();
        let from = streams.partition_bounds(states, 0)?.high_watermark;
        let all = result.all_states(plan)?;
        let columns: Vec<usize> = (0..all.num_columns()).collect();
        let progress_table = streams
            .table(PROGRESS_SCHEMA, PROGRESS_TABLE)
            .ok_or_else(|| Error::Internal(format!("{PROGRESS_SCHEMA}.{PROGRESS_TABLE} is missing")))?;
        let marker = RecordBatch::try_new(
            Arc::new(progress_schema()),
            vec![Arc::new(Int64Array::from(vec![self.view.id()])), Arc::new(Int32Array::from(vec![CHECKPOINT_CODE])), Arc::new(Int64Array::from(vec![from]))],
        )?;
        let pieces = all.num_rows().div_ceil(CHECKPOINT_PIECE_ROWS).max(1);
        for piece in 0..pieces {
            let at = piece * CHECKPOINT_PIECE_ROWS;
            let rows = all.slice(at, CHECKPOINT_PIECE_ROWS.min(all.num_rows() - at));
            let mut writes = Vec::new();
            if rows.num_rows() > 0 {
                writes.push(TableWrite { table: states.clone(), batches: crate::dml::widen_to_table(states, &columns, vec![rows])? });
            }
            if piece + 1 == pieces {
                writes.push(TableWrite { table: progress_table.clone(), batches: vec![marker.clone()] });
            }
            streams.append(writes).await?;
        }
        self.state_rows_written.store(all.num_rows(), Ordering::Release);
        debug!(view = self.view.name(), groups = all.num_rows(), from, "checkpoint of the view's groups");
        // Only whole stored segments go; rows still in memory go with a later checkpoint.
        if let Err(e) = streams.trim_before(states, 0, from).await {
            warn!(view = self.view.name(), error = %e, "state rows before a checkpoint were not deleted");
        }
        Ok(())
    }

    /// Where the view's state table holds every group's state from: its latest
    /// checkpoint's offset (0 before any).
    pub(super) async fn checkpointed_from(&self, engine: &Arc<Engine>) -> Result<i64> {
        let sql = format!(
            "SELECT max(next_offset) FROM {PROGRESS_SCHEMA}.{PROGRESS_TABLE} WHERE view_id = {} AND partition = {CHECKPOINT_CODE}",
            self.view.id()
        );
        let batches = query(engine, &sql).await?;
        let at = batches.iter().find(|b| b.num_rows() > 0).map(|b| b.column(0).as_primitive::<arrow::datatypes::Int64Type>()).filter(|c| c.is_valid(0)).map(|c| c.value(0));
        Ok(at.unwrap_or(0))
    }
}
