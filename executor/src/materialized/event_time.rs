//! Event time as one materialized view sees its source: the latest event time applied
//! from each source partition, the watermark they imply, and the rows dropped as late.
//!
//! A source table with `WATERMARK FOR ts AS ts - INTERVAL 'd'` promises that no row
//! arrives more than `d` behind the event times seen so far. The view's watermark is the
//! smallest, over the source partitions that hold rows, of (latest `ts` applied − `d`), and
//! it never goes back (a partition that starts late does not reopen closed windows). It
//! is unknown until every partition holding rows has been read once. A step judges its
//! chunk against the watermark as it was before the chunk: rows with `ts` behind it are
//! late — counted per partition and dropped for every view over the table, so that a
//! window whose end the watermark has passed is final. Rows without a `ts` are kept.
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

/// One view's event-time bookkeeping over its source.
#[derive(Debug, Clone)]
pub(crate) struct EventTime {
    /// The event-time column's name in the source.
    column: String,
    delay_us: i64,
    /// Per source partition: the latest event time applied (µs since the epoch).
    max_us: Vec<Option<i64>>,
    /// Per source partition: rows dropped as late.
    late_rows: Vec<i64>,
    watermark_us: Option<i64>,
}

/// What one chunk does to the event time, applied once the step is committed.
pub(crate) struct Judged {
    /// The chunk without its late rows.
    pub batches: Vec<RecordBatch>,
    /// The event time after the chunk.
    pub after: EventTime,
}

impl EventTime {
    pub(crate) fn new(watermark: &Watermark, partitions: usize) -> EventTime {
        EventTime {
            column: watermark.column.clone(),
            delay_us: watermark.delay_us,
            max_us: vec![None; partitions],
            late_rows: vec![0; partitions],
            watermark_us: None,
        }
    }

    pub(crate) fn watermark_us(&self) -> Option<i64> {
        self.watermark_us
    }

    pub(crate) fn late_rows(&self) -> i64 {
        self.late_rows.iter().sum()
    }

    /// Drops the late rows of `chunk` (rows of source partition `partition`) and says
    /// what the event time is after it. `holds_rows(p)`: whether partition `p` has rows
    /// the view has not read yet.
    pub(crate) fn judge(&self, source: &str, partition: usize, chunk: &[RecordBatch], holds_rows: impl Fn(usize) -> bool) -> Result<Judged> {
        let mut after = self.clone();
        let mut batches = Vec::with_capacity(chunk.len());
        for batch in chunk {
            let column = batch
                .schema()
                .index_of(&self.column)
                .map_err(|_| Error::UndefinedColumn(format!("{} (the watermark column of {source})", self.column)))?;
            let times = micros(batch.column(column))?;
            let times = times.as_primitive::<TimestampMicrosecondType>();
            if let Some(max) = arrow::compute::max(times) {
                let seen = &mut after.max_us[partition];
                *seen = Some(seen.map_or(max, |s| s.max(max)));
            }
            let Some(watermark) = self.watermark_us else {
                batches.push(batch.clone());
                continue;
            };
            // NULL is not behind the watermark: kept.
            let on_time: BooleanArray = times.iter().map(|t| Some(t.is_none_or(|t| t >= watermark))).collect();
            let late = on_time.false_count();
            if late == 0 {
                batches.push(batch.clone());
            } else {
                after.late_rows[partition] += late as i64;
                batches.push(filter_record_batch(batch, &on_time)?);
            }
        }
        // The smallest latest time among the partitions that hold rows; unknown while one
        // of them has not been read.
        let mut lowest: Option<i64> = None;
        for (p, max) in after.max_us.iter().enumerate() {
            match max {
                Some(max) => lowest = Some(lowest.map_or(*max, |l| l.min(*max))),
                None if holds_rows(p) => return Ok(Judged { batches, after: after.keep_watermark(None) }),
                None => {}
            }
        }
        let implied = lowest.map(|l| l.saturating_sub(self.delay_us));
        Ok(Judged { batches, after: after.keep_watermark(implied) })
    }

    /// The watermark only moves forward.
    fn keep_watermark(mut self, implied: Option<i64>) -> EventTime {
        self.watermark_us = match (self.watermark_us, implied) {
            (Some(now), Some(new)) => Some(now.max(new)),
            (now, new) => now.or(new),
        };
        self
    }

    /// The row recording partition `partition`'s event time after a step.
    pub(crate) fn record(&self, view_id: i64, partition: usize) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::new(event_time_schema()),
            vec![
                Arc::new(Int64Array::from(vec![view_id])),
                Arc::new(Int32Array::from(vec![partition as i32])),
                Arc::new(Int64Array::from(vec![self.max_us[partition]])),
                Arc::new(Int64Array::from(vec![self.late_rows[partition]])),
                Arc::new(Int64Array::from(vec![self.watermark_us])),
            ],
        )?)
    }

    /// Loads recorded rows (`partition, max_event_us, late_rows, watermark_us`, in the
    /// order they were written): the last row of each partition wins.
    pub(crate) fn recover(&mut self, recorded: &[RecordBatch]) -> Result<()> {
        for batch in recorded {
            let partitions = batch.column(0).as_primitive::<arrow::datatypes::Int32Type>();
            let max = batch.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            let late = batch.column(2).as_primitive::<arrow::datatypes::Int64Type>();
            let watermark = batch.column(3).as_primitive::<arrow::datatypes::Int64Type>();
            for row in 0..batch.num_rows() {
                let p = partitions.value(row) as usize;
                if p >= self.max_us.len() {
                    continue;
                }
                self.max_us[p] = max.is_valid(row).then(|| max.value(row));
                self.late_rows[p] = late.value(row);
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
        let time = EventTime::new(&Watermark { column: "ts".into(), delay_us: 10 }, 1);
        let first = time.judge(source, 0, &chunk(&[Some(100), Some(50), None]), |_| false).unwrap();
        assert_eq!(rows(&first), 3, "no watermark yet: nothing is late");
        assert_eq!(first.after.watermark_us(), Some(90));
        let second = first.after.judge(source, 0, &chunk(&[Some(89), Some(90), Some(95), None]), |_| false).unwrap();
        assert_eq!(rows(&second), 3);
        assert_eq!(second.after.late_rows(), 1);
        assert_eq!(second.after.watermark_us(), Some(90), "95 - 10 < 90: the watermark does not go back");
    }

    #[test]
    fn the_watermark_waits_for_every_partition_holding_rows_and_never_goes_back() {
        let source = "t";
        let time = EventTime::new(&Watermark { column: "ts".into(), delay_us: 0 }, 2);
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
        let time = EventTime::new(&Watermark { column: "ts".into(), delay_us: 5 }, 2);
        let step = time.judge(source, 1, &chunk(&[Some(20)]), |_| false).unwrap();
        let step = step.after.judge(source, 1, &chunk(&[Some(1)]), |_| false).unwrap();
        let recorded = step.after.record(7, 1).unwrap();
        let mut recovered = EventTime::new(&Watermark { column: "ts".into(), delay_us: 5 }, 2);
        let columns = recorded.project(&[1, 2, 3, 4]).unwrap();
        recovered.recover(&[columns]).unwrap();
        assert_eq!(recovered.watermark_us(), Some(15));
        assert_eq!(recovered.late_rows(), 1);
        assert_eq!(recovered.max_us, vec![None, Some(20)]);
    }
}
