//! How a maintainer gets back to where its last committed step left off, after a start:
//! the positions (progress table), the event time, the groups of an aggregating view (its
//! state table), the current rows of a change-log view (its own log), and what it holds
//! in memory — join sides, kept rows, key-compacted sources' latest rows, a windowed
//! view's rows per key — read again from the sources up to those positions. Over sources
//! with watermarks the committed steps are replayed in order, so rows dropped as late
//! are dropped again.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};

use super::aggregate::{AggregatePlan, AggregateResult};
use super::event_time::{EventTime, EVENT_TIME_TABLE};
use super::inputs::{self, Chunk, SourceKind};
use super::result::CurrentRows;
use super::rows::{LatestByKey, LatestChange};
use super::sources::latest_by_key;
use super::{ensure_progress_table, query, Maintainer, ViewPlan, CHUNK_ROWS, PROGRESS_SCHEMA, PROGRESS_TABLE};
use crate::error::{Error, Result};
use crate::session::Engine;

impl Maintainer {
    /// Each key-compacted source's latest rows up to the recovered positions.
    pub(super) async fn recover_latest(&self, engine: &Arc<Engine>) -> Result<()> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clear();
        for input in (0..self.inputs.len()).filter(|i| inputs::kind(self.inputs.source(*i)) == SourceKind::LatestByKey) {
            let mut from = None;
            self.ensure_latest(input)?;
            while let Some((batches, next)) = self.applied_chunk(engine, input, from).await? {
                let (_, _, change) = self.signed(input, &batches)?;
                self.install_latest(input, change);
                from = Some(next);
            }
        }
        Ok(())
    }

    /// During a replay at start: a key-compacted input's latest rows as replayed so far.
    pub(super) fn replayed(&self, input: usize, latest: &mut Option<LatestByKey>, change: Option<LatestChange>) -> Result<()> {
        if let Some(change) = change {
            if latest.is_none() {
                *latest = Some(latest_by_key(self.inputs.source(input))?);
            }
            latest.as_mut().expect("set above").install(change);
        }
        Ok(())
    }

    /// A view with window functions: each key's source rows read again up to the recovered
    /// positions, and its result rows as recovered from the view's change log.
    pub(super) async fn recover_keyed(&self, engine: &Arc<Engine>, plan: &ViewPlan) -> Result<()> {
        let ViewPlan::Keyed(plan) = plan else { return Ok(()) };
        let mut source_rows = Vec::new();
        if self.event_time.is_some() {
            // Without the rows that were late.
            self.replay_steps(engine, |_, rows, _| {
                source_rows.extend(rows);
                Ok(())
            })
            .await?;
        } else {
            for input in 0..self.inputs.len() {
                let mut from = None;
                while let Some((batches, next)) = self.applied_chunk(engine, input, from).await? {
                    source_rows.extend(batches);
                    from = Some(next);
                }
            }
        }
        let watermark = self.event_time().and_then(|t| t.watermark_us());
        let open = {
            let mut guard = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
            let keyed = guard.as_mut().ok_or_else(|| Error::Internal("a windowed view without its keyed rows".into()))?;
            keyed.recover_rows(&source_rows)?;
            if let Some(rows) = &self.rows {
                // The result rows are the view's current rows.
                keyed.recover_results(&[rows.snapshot()?])?;
            }
            if let Some(watermark) = watermark {
                keyed.close_recovered(watermark)?;
            }
            if self.rows.is_none() { keyed.all_rows() } else { Vec::new() }
        };
        if self.rows.is_none() {
            // EMIT ON WINDOW CLOSE: closed sessions were emitted; the open ones' result
            // rows are pending, worked out again from their rows.
            let applied = self.applied_for(0)?;
            let chunk = Chunk { sources: self.inputs.sources(), source: 0, batches: &open, applied: &applied };
            let pending = self.produce(engine, plan, &chunk).await?;
            let mut guard = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_mut().ok_or_else(|| Error::Internal("a windowed view without its keyed rows".into()))?.recover_results(&pending)?;
        }
        Ok(())
    }

    /// A view of rows over a change log: its current rows, folded from its own change
    /// log (written in the same appends as its progress).
    pub(super) async fn recover_rows(&self, engine: &Arc<Engine>) -> Result<()> {
        let Some(rows) = &self.rows else { return Ok(()) };
        let streams = engine.streams();
        let mut log = Vec::new();
        for partition in 0..self.view.partition_count() as u32 {
            let bounds = streams.partition_bounds(&self.view, partition)?;
            let mut from = bounds.start_offset;
            while from < bounds.high_watermark {
                let read = streams.read_partition(&self.view, partition, from, CHUNK_ROWS).await?;
                if read.next_offset <= from {
                    break;
                }
                log.extend(read.batches);
                from = read.next_offset;
            }
        }
        rows.recover(&log)?;
        rows.set_recovery(Ok(()));
        Ok(())
    }

    /// Where the last committed step left off, from the progress table.
    pub(super) async fn recover_progress(&self, engine: &Arc<Engine>) -> Result<()> {
        let sql = format!(
            "SELECT partition, max(next_offset) FROM {PROGRESS_SCHEMA}.{PROGRESS_TABLE} WHERE view_id = {} GROUP BY partition",
            self.view.id()
        );
        let batches = query(engine, &sql).await?;
        if let Some(time) = &self.event_time {
            ensure_progress_table(engine.streams()).await?;
            let sql = format!(
                "SELECT partition, max_event_us, late_rows, watermark_us FROM {PROGRESS_SCHEMA}.{EVENT_TIME_TABLE} WHERE view_id = {} ORDER BY _offset",
                self.view.id()
            );
            let recorded = query(engine, &sql).await?;
            time.lock().unwrap_or_else(|p| p.into_inner()).recover(&recorded, |code| self.inputs.input_of(code))?;
        }
        let mut positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        for batch in batches {
            let codes = batch.column(0).as_primitive::<arrow::datatypes::Int32Type>();
            let offsets = batch.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..batch.num_rows() {
                if let Some(input) = self.inputs.input_of(codes.value(i)) {
                    positions[input] = offsets.value(i);
                }
            }
        }
        Ok(())
    }

    /// A joining view's applied rows: each input's rows up to its recovered position.
    pub(super) async fn recover_applied(&self, engine: &Arc<Engine>) -> Result<()> {
        if self.applied.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Ok(());
        }
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(vec![Vec::new(); self.inputs.sources().len()]);
        self.applied_current.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if self.event_time.is_some() {
            return self.replay_applied(engine).await;
        }
        for input in 0..self.inputs.len() {
            let (mut from, mut latest) = (None, None);
            while let Some((batches, next)) = self.applied_chunk(engine, input, from).await? {
                let (added, removed, change) = self.signed_after(input, &batches, latest.as_ref())?;
                self.replayed(input, &mut latest, change)?;
                let update = self.prepare_applied(input, &added, &removed)?;
                self.install_applied(input, update);
                from = Some(next);
            }
        }
        Ok(())
    }

    /// [`Self::recover_applied`] over sources with watermarks: the committed steps replayed
    /// ([`Self::replay_steps`]), so the rows dropped as late are dropped again and an
    /// interval join lets go of what it had let go.
    pub(super) async fn replay_applied(&self, engine: &Arc<Engine>) -> Result<()> {
        self.replay_steps(engine, |input, rows, watermark| {
            let update = self.prepare_applied(input, &rows, &[])?;
            self.install_applied(input, update);
            self.let_go(watermark);
            Ok(())
        })
        .await
    }

    /// The committed steps again, in order (the progress rows and the event-time rows each
    /// step appended together), each step's source rows judged with the event time
    /// recorded before it: `apply(input, rows not late, watermark after the step)`.
    pub(super) async fn replay_steps(&self, engine: &Arc<Engine>, mut apply: impl FnMut(usize, Vec<RecordBatch>, Option<i64>) -> Result<()>) -> Result<()> {
        let id = self.view.id();
        // Checkpoint markers (negative codes) are not steps.
        let steps = query(engine, &format!("SELECT partition, next_offset FROM {PROGRESS_SCHEMA}.{PROGRESS_TABLE} WHERE view_id = {id} AND partition >= 0 ORDER BY _offset")).await?;
        let recorded = query(engine, &format!("SELECT partition, max_event_us, late_rows, watermark_us FROM {PROGRESS_SCHEMA}.{EVENT_TIME_TABLE} WHERE view_id = {id} ORDER BY _offset")).await?;
        let steps: Vec<(i32, i64)> = steps
            .iter()
            .flat_map(|b| {
                let codes = b.column(0).as_primitive::<arrow::datatypes::Int32Type>().clone();
                let next = b.column(1).as_primitive::<arrow::datatypes::Int64Type>().clone();
                (0..b.num_rows()).map(move |i| (codes.value(i), next.value(i)))
            })
            .collect();
        let records: Vec<RecordBatch> = recorded.iter().flat_map(|b| (0..b.num_rows()).map(|i| b.slice(i, 1))).collect();
        if steps.len() != records.len() {
            return Err(Error::Internal(format!(
                "materialized view {}: {} steps recorded but {} event times; cannot replay them",
                self.view.name(),
                steps.len(),
                records.len()
            )));
        }
        let watermarks = (0..self.inputs.len()).map(|i| self.inputs.source(i).options().watermark.clone()).collect();
        let mut time = EventTime::new(watermarks)
            .ok_or_else(|| Error::Internal("replaying a view without watermarks".into()))?
            .of_sources((0..self.inputs.len()).map(|i| self.inputs.source_index(i)).collect());
        let mut at: Vec<Option<i64>> = vec![None; self.inputs.len()];
        let until = self.positions();
        for ((code, next), record) in steps.into_iter().zip(records) {
            let Some(input) = self.inputs.input_of(code) else { continue };
            let (source, partition) = (self.inputs.source(input), self.inputs.partition(input));
            let start = engine.streams().partition_bounds(source, partition)?.start_offset;
            let mut from = at[input].unwrap_or(start).max(start);
            let next = next.min(until[input]);
            let mut batches = Vec::new();
            while from < next {
                let read = engine.streams().read_partition(source, partition, from, (next - from).min(CHUNK_ROWS as i64) as usize).await?;
                if read.next_offset <= from {
                    break;
                }
                batches.extend(read.batches);
                from = read.next_offset;
            }
            // Which rows were late depends only on the event time before the step.
            let judged = time.judge(source.name(), input, &batches, |_| true)?;
            time.recover(&[record], |code| self.inputs.input_of(code))?;
            apply(input, judged.batches, time.watermark_us())?;
            at[input] = Some(next);
        }
        Ok(())
    }

    /// The next chunk of rows this view applied from `input` (from its first row when
    /// `from` is None, up to the recovered position), and where the one after begins.
    pub(super) async fn applied_chunk(&self, engine: &Arc<Engine>, input: usize, from: Option<i64>) -> Result<Option<(Vec<RecordBatch>, i64)>> {
        let (source, partition) = (self.inputs.source(input), self.inputs.partition(input));
        let from = match from {
            Some(from) => from,
            None => engine.streams().partition_bounds(source, partition)?.start_offset,
        };
        let until = self.positions()[input];
        if from >= until {
            return Ok(None);
        }
        let read = engine.streams().read_partition(source, partition, from, (until - from).min(CHUNK_ROWS as i64) as usize).await?;
        Ok((read.next_offset > from).then_some((read.batches, read.next_offset)))
    }

    /// A view over a change log: each group's input rows, read again from every source up
    /// to the recovered position (no source of such a view has a watermark). They are
    /// the rows below the aggregation over the sources' rows now: for a join, the join of
    /// what each side has applied (recovered first); else each chunk's rows in turn.
    pub(super) async fn recover_kept(&self, engine: &Arc<Engine>, planned: &AggregatePlan, result: &AggregateResult) -> Result<()> {
        if self.applied.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            let applied = self.applied_for(usize::MAX)?;
            let chunk = Chunk { sources: self.inputs.sources(), source: 0, batches: &applied[0], applied: &applied };
            let nothing = Chunk { batches: &[], ..chunk };
            return result.recover_kept(engine, planned, &chunk, &nothing).await;
        }
        for input in 0..self.inputs.len() {
            let (mut from, mut latest) = (None, None);
            while let Some((batches, next)) = self.applied_chunk(engine, input, from).await? {
                let (added, removed, change) = self.signed_after(input, &batches, latest.as_ref())?;
                self.replayed(input, &mut latest, change)?;
                let chunk = |batches| Chunk { sources: self.inputs.sources(), source: self.inputs.source_index(input), batches, applied: &[] };
                result.recover_kept(engine, planned, &chunk(&added), &chunk(&removed)).await?;
                from = Some(next);
            }
        }
        Ok(())
    }

    /// An aggregating view's groups as the last committed step left them.
    pub(super) async fn recover_groups(&self, engine: &Arc<Engine>, plan: &ViewPlan) -> Result<()> {
        let (ViewPlan::Aggregate(planned), Some((result, states))) = (plan, &self.aggregate) else { return Ok(()) };
        let columns: Vec<String> = states.schema().fields().iter().map(|f| format!("\"{}\"", f.name())).collect();
        // From the latest checkpoint on, the table holds every group's state.
        let from = self.checkpointed_from(engine).await?;
        let sql = format!("SELECT {} FROM {PROGRESS_SCHEMA}.\"{}\" WHERE _offset >= {from} ORDER BY _offset", columns.join(", "), states.name());
        // Windows the watermark has passed were emitted (in the step that moved it) and dropped.
        let closed_before = self.event_time().and_then(|t| t.watermark_us()).filter(|_| self.emit_on_window_close);
        let stored = query(engine, &sql).await?;
        self.state_rows_written.store(stored.iter().map(RecordBatch::num_rows).sum(), std::sync::atomic::Ordering::Release);
        result.recover(planned, &stored, closed_before)?;
        if planned.keeps_rows() {
            self.recover_kept(engine, planned, result).await?;
        }
        if !planned.has_keys() && result.is_empty() {
            // Without GROUP BY the result is one row even before any source row (count 0,
            // sum NULL), as the batch query says; stored before SELECT may read the view.
            let chunk = Chunk { sources: self.inputs.sources(), source: 0, batches: &[], applied: &[] };
            let step = match planned.keeps_rows() {
                true => result.step_signed(engine, planned, &chunk, &chunk).await?,
                false => result.step(engine, planned, &chunk, None).await?,
            };
            engine.streams().append(self.step_writes(&step)?).await?;
            result.apply(step);
        }
        result.set_recovery(Ok(()));
        Ok(())
    }
}
