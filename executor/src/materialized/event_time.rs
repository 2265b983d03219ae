//! Event time as one materialized view sees its sources: the latest event time applied
//! from each input (a partition of a source table), the watermark they imply, and the
//! rows dropped as late.
//!
//! A source table with `WATERMARK FOR ts AS ts - INTERVAL 'd'` promises that no row
//! arrives more than `d` behind the event times seen so far. The view's watermark is the
//! smallest, over the inputs with a watermark that hold rows, of (latest `ts` applied −
//! that table's `d`), and it never goes back (a partition that starts late does not
//! reopen closed windows). It is unknown until every such input has been read once, and
//! until every source table with a watermark has had a row (a join's slower side would
//! otherwise find its first rows late); empty partitions of a started table do not hold it.
//! Inputs of a source without a watermark are never late and do not hold it back. Rows are judged
//! one by one in their input's order: a row is late when its `ts` is behind the view's
//! watermark as it was before the step, or more than the delay behind an earlier row of
//! the same input (so a one-partition source's late rows do not depend on how its rows
//! were cut into steps). Late rows are counted per input and dropped for every view over
//! the table, so that a window whose end the watermark has passed is final. A row
//! without a `ts` cannot be placed in event time: it is counted as late too (kept, it
//! would fall in no window and hold a group no watermark ever closes).
//!
//! The per-partition event times, late counts and the watermark are appended to
//! [`EVENT_TIME_TABLE`] in the same WAL record as the step's rows and progress, and read
//! back on restart: a view never judges a row twice differently.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use streamhouse_streams::Watermark;

use crate::error::{Error, Result};

/// Where views record their event time (in [`super::PROGRESS_SCHEMA`]).
pub const EVENT_TIME_TABLE: &str = "mv_event_time";

pub(crate) fn event_time_schema() -> Schema {
    Schema::new(vec![
        Field::new("view_id", DataType::Int64, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("max_event_us", DataType::Int64, true),
        Field::new("late_rows", DataType::Int64, false),
        Field::new("watermark_us", DataType::Int64, true),
    ])
}

/// One view's event-time bookkeeping over its inputs.
#[derive(Debug, Clone)]
pub(crate) struct EventTime {
    inputs: Vec<InputTime>,
    watermark_us: Option<i64>,
    /// The source table of each input: a table none of whose partitions has had a row
    /// keeps the watermark unknown (a join's other side has not started yet).
    sources: Vec<usize>,
}

#[derive(Debug, Clone)]
struct InputTime {
    /// The source's watermark (`None`: the source has none, nothing is judged).
    watermark: Option<Watermark>,
    /// The latest event time applied (µs since the epoch).
    max_us: Option<i64>,
    /// Rows dropped as late.
    late_rows: i64,
}

/// What one chunk does to the event time, applied once the step is committed.
pub(crate) struct Judged {
    /// The chunk without its late rows.
    pub batches: Vec<RecordBatch>,
    /// The event time after the chunk.
    pub after: EventTime,
}

impl EventTime {
    /// Bookkeeping for inputs whose sources have these watermarks; `None` when none has one.
    pub(crate) fn new(watermarks: Vec<Option<Watermark>>) -> Option<EventTime> {
        watermarks.iter().any(Option::is_some).then(|| EventTime {
            sources: vec![0; watermarks.len()],
            inputs: watermarks.into_iter().map(|watermark| InputTime { watermark, max_us: None, late_rows: 0 }).collect(),
            watermark_us: None,
        })
    }

    /// Says which source table each input reads (all one table otherwise).
    pub(crate) fn of_sources(mut self, sources: Vec<usize>) -> EventTime {
        self.sources = sources;
        self
    }

    pub(crate) fn watermark_us(&self) -> Option<i64> {
        self.watermark_us
    }

    pub(crate) fn late_rows(&self) -> i64 {
        self.inputs.iter().map(|i| i.late_rows).sum()
    }

    /// Drops the late rows of `chunk` (rows of input `input`, a partition of `source`) and
    /// says what the event time is after it. `holds_rows(i)`: whether input `i` has rows
    /// the view has not read yet.
    pub(crate) fn judge(&self, source: &str, input: usize, chunk: &[RecordBatch], holds_rows: impl Fn(usize) -> bool) -> Result<Judged> {
        let Some(watermark) = &self.inputs[input].watermark else {
            return Ok(Judged { batches: chunk.to_vec(), after: self.clone() });
        };
        let mut after = self.clone();
        let mut batches = Vec::with_capacity(chunk.len());
        // Row by row, in the input's order: a row is late when it is behind the view's
        // watermark before the chunk, or more than the delay behind an earlier row of its
        // own input. So which rows are late does not depend on where chunks are cut.
        let mut latest = self.inputs[input].max_us;
        for batch in chunk {
            let column = batch
                .schema()
                .index_of(&watermark.column)
                .map_err(|_| Error::UndefinedColumn(format!("{} (the watermark column of {source})", watermark.column)))?;
            let times = micros(batch.column(column))?;
            let times = times.as_primitive::<TimestampMicrosecondType>();
            let on_time: BooleanArray = times
                .iter()
                .map(|t| {
                    // No event time: cannot be judged on time.
                    let Some(t) = t else { return Some(false) };
                    let behind_own = latest.map(|l| l.saturating_sub(watermark.delay_us));
                    let threshold = match (self.watermark_us, behind_own) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    let late = threshold.is_some_and(|threshold| t < threshold);
                    if !late {
                        latest = Some(latest.map_or(t, |l| l.max(t)));
                    }
                    Some(!late)
                })
                .collect();
            let late = on_time.false_count();
            if late == 0 {
                batches.push(batch.clone());
            } else {
                after.inputs[input].late_rows += late as i64;
                batches.push(filter_record_batch(batch, &on_time)?);
            }
        }
        after.inputs[input].max_us = latest;
        // The smallest (latest time − delay) among the inputs that hold rows; unknown while
        // one of them has not been read, or while a source table has had no row at all
        // (its first rows could be far behind the others': a join's slower side).
        let started = |source: usize| after.inputs.iter().zip(&after.sources).any(|(input, s)| *s == source && input.max_us.is_some());
        let waiting = after.inputs.iter().zip(&after.sources).any(|(input, s)| input.watermark.is_some() && !started(*s));
        if waiting {
            return Ok(Judged { batches, after: after.keep_watermark(None) });
        }
        let mut lowest: Option<i64> = None;
        for (i, input) in after.inputs.iter().enumerate() {
            let Some(watermark) = &input.watermark else { continue };
            match input.max_us {
                Some(max) => {
                    let implied = max.saturating_sub(watermark.delay_us);
                    lowest = Some(lowest.map_or(implied, |l| l.min(implied)));
                }
                None if holds_rows(i) => return Ok(Judged { batches, after: after.keep_watermark(None) }),
                None => {}
            }
        }
        Ok(Judged { batches, after: after.keep_watermark(lowest) })
    }

    /// The watermark only moves forward.
    fn keep_watermark(mut self, implied: Option<i64>) -> EventTime {
        self.watermark_us = match (self.watermark_us, implied) {
            (Some(now), Some(new)) => Some(now.max(new)),
            (now, new) => now.or(new),
        };
        self
    }

    /// The row recording input `input`'s event time after a step; `code` names the input
    /// in the progress tables.
    pub(crate) fn record(&self, view_id: i64, input: usize, code: i32) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::new(event_time_schema()),
            vec![
                Arc::new(Int64Array::from(vec![view_id])),
                Arc::new(Int32Array::from(vec![code])),
                Arc::new(Int64Array::from(vec![self.inputs[input].max_us])),
                Arc::new(Int64Array::from(vec![self.inputs[input].late_rows])),
                Arc::new(Int64Array::from(vec![self.watermark_us])),
            ],
        )?)
    }

    /// Loads recorded rows (`partition, max_event_us, late_rows, watermark_us`, in the
    /// order they were written; `input_of` maps the recorded code to an input): the last
    /// row of each input wins.
    pub(crate) fn recover(&mut self, recorded: &[RecordBatch], input_of: impl Fn(i32) -> Option<usize>) -> Result<()> {
        for batch in recorded {
            let codes = batch.column(0).as_primitive::<arrow::datatypes::Int32Type>();
            let max = batch.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            let late = batch.column(2).as_primitive::<arrow::datatypes::Int64Type>();
            let watermark = batch.column(3).as_primitive::<arrow::datatypes::Int64Type>();
            for row in 0..batch.num_rows() {
                let Some(input) = input_of(codes.value(row)).and_then(|i| self.inputs.get_mut(i)) else { continue };
                input.max_us = max.is_valid(row).then(|| max.value(row));
                input.late_rows = late.value(row);
                if watermark.is_valid(row) {
                    self.watermark_us = Some(self.watermark_us.map_or(watermark.value(row), |w| w.max(watermark.value(row))));
                }
            }
        }
        Ok(())
    }
}

/// A timestamp column as microseconds since the epoch (UTC).
pub(crate) fn micros(column: &dyn Array) -> Result<Arc<dyn Array>> {
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, None) => Ok(arrow::array::make_array(column.to_data())),
        // The values are UTC already: only the type changes.
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            Ok(Arc::new(column.as_primitive::<TimestampMicrosecondType>().clone().with_timezone_opt(None::<String>)))
        }
        DataType::Timestamp(_, _) => Ok(cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?),
        other => Err(Error::DatatypeMismatch(format!("an event time must be a timestamp, not {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;

    fn chunk(times: &[Option<i64>]) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true)]));
        vec![RecordBatch::try_new(schema, vec![Arc::new(TimestampMicrosecondArray::from(times.to_vec()))]).unwrap()]
    }

    fn rows(judged: &Judged) -> usize {
        judged.batches.iter().map(|b| b.num_rows()).sum()
    }

    #[test]
    fn rows_behind_the_watermark_before_the_chunk_are_dropped_and_counted() {
        let source = "t";
        let time = EventTime::new(vec![Some(Watermark { column: "ts".into(), delay_us: 10 })]).unwrap();
        let first = time.judge(source, 0, &chunk(&[Some(50), Some(100), Some(91)]), |_| false).unwrap();
        assert_eq!(rows(&first), 3, "no watermark yet, and nothing more than 10 behind an earlier row");
        assert_eq!(first.after.watermark_us(), Some(90));
        let second = first.after.judge(source, 0, &chunk(&[Some(89), Some(90), Some(95), None]), |_| false).unwrap();
        assert_eq!(rows(&second), 2);
        assert_eq!(second.after.late_rows(), 2, "89 is behind the watermark; NULL has no event time");
        assert_eq!(second.after.watermark_us(), Some(90), "95 - 10 < 90: the watermark does not go back");
    }

    #[test]
    fn lateness_does_not_depend_on_where_chunks_are_cut() {
        let time = EventTime::new(vec![Some(Watermark { column: "ts".into(), delay_us: 10 })]).unwrap();
        let rows_in = [Some(100), Some(95), Some(80), Some(120), Some(105), Some(111)];
        let whole = time.judge("t", 0, &chunk(&rows_in), |_| false).unwrap();
        assert_eq!(whole.after.late_rows(), 2, "80 is more than 10 behind 100, 105 more than 10 behind 120");
        for cut in 1..rows_in.len() {
            let first = time.judge("t", 0, &chunk(&rows_in[..cut]), |_| false).unwrap();
            let second = first.after.judge("t", 0, &chunk(&rows_in[cut..]), |_| false).unwrap();
            assert_eq!(second.after.late_rows(), 2, "cut at {cut}");
            assert_eq!(rows(&first) + rows(&second), rows(&whole));
        }
    }

    #[test]
    fn the_watermark_waits_for_every_partition_holding_rows_and_never_goes_back() {
        let source = "t";
        let time = EventTime::new(vec![Some(Watermark { column: "ts".into(), delay_us: 0 }); 2]).unwrap();
        let p0 = time.judge(source, 0, &chunk(&[Some(100)]), |p| p == 1).unwrap();
        assert_eq!(p0.after.watermark_us(), None, "partition 1 holds unread rows");
        let idle = time.judge(source, 0, &chunk(&[Some(100)]), |_| false).unwrap();
        assert_eq!(idle.after.watermark_us(), Some(100), "an empty partition does not hold the watermark");
        let p1 = p0.after.judge(source, 1, &chunk(&[Some(40)]), |_| false).unwrap();
        assert_eq!(p1.after.watermark_us(), Some(40));
        let later = idle.after.judge(source, 1, &chunk(&[Some(40)]), |_| false).unwrap();
        assert_eq!(rows(&later), 0, "40 is behind 100");
        assert_eq!(later.after.watermark_us(), Some(100), "a partition that starts late does not move it back");
    }

    #[test]
    fn recorded_rows_restore_the_event_time() {
        let source = "t";
        let watermarks = vec![Some(Watermark { column: "ts".into(), delay_us: 5 }); 2];
        let time = EventTime::new(watermarks.clone()).unwrap();
        let step = time.judge(source, 1, &chunk(&[Some(20)]), |_| false).unwrap();
        let step = step.after.judge(source, 1, &chunk(&[Some(1)]), |_| false).unwrap();
        let recorded = step.after.record(7, 1, 1025).unwrap();
        let mut recovered = EventTime::new(watermarks).unwrap();
        let columns = recorded.project(&[1, 2, 3, 4]).unwrap();
        recovered.recover(&[columns], |code| (code == 1025).then_some(1)).unwrap();
        assert_eq!(recovered.watermark_us(), Some(15));
        assert_eq!(recovered.late_rows(), 1);
        assert_eq!(recovered.inputs.iter().map(|i| i.max_us).collect::<Vec<_>>(), vec![None, Some(20)]);
    }

    #[test]
    fn a_table_without_rows_yet_keeps_the_watermark_unknown() {
        // Inputs 0 and 1: partitions of table 0; input 2: table 1 (a join's other side).
        let time = EventTime::new(vec![Some(Watermark { column: "ts".into(), delay_us: 0 }); 3]).unwrap().of_sources(vec![0, 0, 1]);
        let ahead = time.judge("a", 0, &chunk(&[Some(100)]), |_| false).unwrap();
        assert_eq!(ahead.after.watermark_us(), None, "table 1 has had no row");
        let other = ahead.after.judge("b", 2, &chunk(&[Some(10)]), |_| false).unwrap();
        assert_eq!(rows(&other), 1, "its first rows are not late");
        assert_eq!(other.after.watermark_us(), Some(10), "partition 1 of table 0 holds none: it does not count");
    }

    #[test]
    fn inputs_without_a_watermark_are_never_late_and_do_not_hold_it() {
        let time = EventTime::new(vec![None, Some(Watermark { column: "ts".into(), delay_us: 0 })]).unwrap();
        let step = time.judge("t", 1, &chunk(&[Some(50)]), |_| true).unwrap();
        assert_eq!(step.after.watermark_us(), Some(50), "input 0 has no watermark: it does not count");
        let other = step.after.judge("u", 0, &chunk(&[Some(1)]), |_| true).unwrap();
        assert_eq!(rows(&other), 1);
        assert!(EventTime::new(vec![None, None]).is_none());
    }
}
