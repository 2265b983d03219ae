//! When a SESSION window is over. A view of SESSION windows over a table with a
//! watermark lets go of a session's rows once the watermark has passed the session's
//! end; with `EMIT ON WINDOW CLOSE` it emits the session's rows then, once and final.
//!
//! Rows behind the view's watermark `W` are dropped as late, so every row applied from
//! now on has `ts >= W`. A session ends `gap` after its last row, and a row joins it only
//! when it comes less than `gap` after one of its rows: a session that ends at or before
//! `W` can gain no row, and neither can the sessions of its key before it. They are
//! closed.
//!
//! A key's result rows are the view's plan run over the key's rows ([`super::keyed`]).
//! When that plan decomposes by session — its only window functions are the SESSION
//! rewrite's, every aggregation above them groups by `window_start` or `window_end`, and
//! the result shows one of them — a key's result rows for its closed sessions are those
//! whose `window_start` is at or before the last closed row (or whose `window_end` is at
//! or before that row + gap), and running the plan over the other rows gives the rest.
//! Anything else (a `row_number()`, a count of sessions per key) depends on every row of
//! the key, and keeps them all.

use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Column;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use streamhouse_streams::StreamTable;

use super::event_time::micros;
use super::aggregate::CHANGE_COLUMN;
use super::inputs::{as_column, source_column};
use super::interval::interval_us;
use crate::error::Result;

/// The columns the SESSION rewrite (`crate::windows`) adds start with this.
const REWRITE_PREFIX: &str = "__sh_";

/// How a view's SESSION windows close (see the module's comment).
#[derive(Debug)]
pub(crate) struct SessionClosing {
    /// The source's time column: the SESSION's and the watermark's.
    time_column: String,
    gap_us: i64,
    /// The result column that tells a result row's session.
    bound_column: String,
    bound: Bound,
}

/// Which end of its session a result column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Start,
    End,
}

/// What the watermark closed of one key's sessions.
#[derive(Debug, Default)]
pub(crate) struct Closed {
    /// The key's rows and result rows split, when some session closed.
    pub split: Option<Split>,
    /// When the first open session ends (`None`: no session is open).
    pub next_close_us: Option<i64>,
}

/// One key's rows and result rows, split by the watermark.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// The rows of the sessions still open.
    pub open_rows: Vec<RecordBatch>,
    /// The result rows of those sessions.
    pub open_results: Vec<RecordBatch>,
    /// The result rows of the sessions the watermark closed: final.
    pub closed_results: Vec<RecordBatch>,
}

impl SessionClosing {
    /// How `plan`'s sessions close over `source`, or why they do not (a sentence).
    pub(crate) fn of(plan: &LogicalPlan, source: &StreamTable) -> std::result::Result<SessionClosing, String> {
        let watermark = source.options().watermark.as_ref().ok_or_else(|| format!("{} has no watermark", source.name()))?;
        let mut times = Vec::new();
        let mut gaps = Vec::new();
        let mut foreign = None;
        let _ = plan.apply(|node| {
            match node {
                LogicalPlan::Projection(projection) => {
                    // Where the rewrite names the time column (`ts AS __sh_ts`).
                    for expr in &projection.expr {
                        if let Expr::Alias(alias) = expr {
                            if alias.name == "__sh_ts" {
                                times.push(as_column(&alias.expr).and_then(|c| source_column(&projection.input, &c)));
                            }
                        }
                    }
                }
                LogicalPlan::Window(window) => {
                    for expr in &window.window_expr {
                        if !expr.to_string().contains(REWRITE_PREFIX) {
                            foreign = Some(expr.to_string());
                        }
                        let _ = expr.apply(|e| {
                            if let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Lt, right }) = e {
                                if left.to_string().contains("__sh_prev") {
                                    gaps.push(interval_us(right));
                                }
                            }
                            Ok(TreeNodeRecursion::Continue)
                        });
                    }
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if let Some(expr) = foreign {
            return Err(format!("the window function {expr} depends on every row of its partition, not on one session's"));
        }
        let ([Some(time_column)], [Some(gap_us)]) = (times.as_slice(), gaps.as_slice()) else {
            return Err("it needs exactly one SESSION window, over a column of the table and with a gap of days, hours, minutes or seconds".into());
        };
        if *time_column != watermark.column {
            return Err(format!("the SESSION window is over {time_column}, but the watermark of {} is on {}", source.name(), watermark.column));
        }
        decomposes_by_session(plan)?;
        let (bound_column, bound) = plan
            .schema()
            .fields()
            .iter()
            .find_map(|f| session_bound(plan, &Column::new_unqualified(f.name())).map(|b| (f.name().clone(), b)))
            .ok_or("its result shows neither window_start nor window_end")?;
        Ok(SessionClosing { time_column: time_column.clone(), gap_us: *gap_us, bound_column, bound })
    }

    /// The earliest a session holding one of `rows` can end: their first time + gap.
    pub(crate) fn earliest_end(&self, rows: &[RecordBatch]) -> Result<Option<i64>> {
        let mut earliest: Option<i64> = None;
        for batch in rows.iter().filter(|b| b.num_rows() > 0) {
            let column = micros(batch.column(batch.schema().index_of(&self.time_column)?))?;
            if let Some(min) = arrow::compute::min(column.as_primitive::<TimestampMicrosecondType>()) {
                earliest = Some(earliest.map_or(min, |e| e.min(min)));
            }
        }
        Ok(earliest.map(|t| t.saturating_add(self.gap_us)))
    }

    /// `rows` (one key's, source layout) and `results` (its result rows) split into the
    /// sessions the watermark has closed and the others.
    pub(crate) fn close(&self, rows: &[RecordBatch], results: &[RecordBatch], watermark_us: i64) -> Result<Closed> {
        let mut times = Vec::new();
        for batch in rows {
            let column = micros(batch.column(batch.schema().index_of(&self.time_column)?))?;
            times.extend(column.as_primitive::<TimestampMicrosecondType>().iter().flatten());
        }
        times.sort_unstable();
        let (last_closed, next_close_us) = self.last_closed(&times, watermark_us);
        let Some(last_closed) = last_closed else { return Ok(Closed { split: None, next_close_us }) };
        let split = if next_close_us.is_none() {
            // Every session is closed (the common case once a key goes quiet).
            Split { open_rows: Vec::new(), open_results: Vec::new(), closed_results: results.to_vec() }
        } else {
            let closes = match self.bound {
                Bound::Start => last_closed,
                Bound::End => last_closed.saturating_add(self.gap_us),
            };
            let (closed_results, open_results) = partition(results, &self.bound_column, |t| t <= closes)?;
            Split { open_rows: partition(rows, &self.time_column, |t| t > last_closed)?.0, open_results, closed_results }
        };
        Ok(Closed { split: Some(split), next_close_us })
    }

    /// Over one key's sorted times: its last row in a closed session, and when the first
    /// open session ends.
    fn last_closed(&self, times: &[i64], watermark_us: i64) -> (Option<i64>, Option<i64>) {
        let mut last_closed = None;
        let mut first = 0;
        while first < times.len() {
            let mut last = first;
            while last + 1 < times.len() && times[last + 1] - times[last] < self.gap_us {
                last += 1;
            }
            let end = times[last].saturating_add(self.gap_us);
            if end > watermark_us {
                return (last_closed, Some(end));
            }
            last_closed = Some(times[last]);
            first = last + 1;
        }
        (last_closed, None)
    }
}

/// The rows of `batches` whose timestamp `column` passes `test`, and the others (a row
/// without a time fails).
fn partition(batches: &[RecordBatch], column: &str, test: impl Fn(i64) -> bool) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
    let (mut passing, mut failing) = (Vec::with_capacity(batches.len()), Vec::new());
    for batch in batches {
        let times = micros(batch.column(batch.schema().index_of(column)?))?;
        let passes: BooleanArray = times.as_primitive::<TimestampMicrosecondType>().iter().map(|t| Some(t.is_some_and(&test))).collect();
        match passes.true_count() {
            0 => failing.push(batch.clone()),
            n if n == batch.num_rows() => passing.push(batch.clone()),
            _ => {
                passing.push(filter_record_batch(batch, &passes)?);
                failing.push(filter_record_batch(batch, &arrow::compute::not(&passes)?)?);
            }
        }
    }
    Ok((passing, failing))
}

/// Whether everything above the SESSION's window functions keeps sessions apart: rows,
/// filters, and aggregations grouped by a session's bound.
fn decomposes_by_session(plan: &LogicalPlan) -> std::result::Result<(), String> {
    match plan {
        LogicalPlan::Window(_) => Ok(()),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => decomposes_by_session(plan.inputs()[0]),
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => decomposes_by_session(&sort.input),
        LogicalPlan::Aggregate(aggregate) => {
            let per_session = aggregate.group_expr.iter().filter_map(as_column).any(|c| session_bound(&aggregate.input, &c).is_some());
            if !per_session {
                return Err("an aggregation above the SESSION window does not group by window_start or window_end".into());
            }
            decomposes_by_session(&aggregate.input)
        }
        other => Err(format!("{} above the SESSION window mixes sessions", other.display().to_string().split(':').next().unwrap_or("an operator"))),
    }
}

/// Whether `column` of `plan` is the SESSION's `window_start` or `window_end`, followed
/// through projections, aliases, filters and groupings.
fn session_bound(plan: &LogicalPlan, column: &Column) -> Option<Bound> {
    let index = plan.schema().index_of_column_by_name(column.relation.as_ref(), &column.name)?;
    match plan {
        LogicalPlan::SubqueryAlias(alias) => session_bound(&alias.input, &Column::new_unqualified(&column.name)),
        LogicalPlan::Filter(filter) => session_bound(&filter.input, column),
        LogicalPlan::Sort(sort) => session_bound(&sort.input, column),
        LogicalPlan::Window(window) => (index < window.input.schema().fields().len()).then(|| session_bound(&window.input, column)).flatten(),
        LogicalPlan::Projection(projection) => {
            let expr = &projection.expr[index];
            let made_here = |name| projection.schema.field(index).name() == name && expr.to_string().contains("__sh_ts");
            if made_here("window_start") {
                Some(Bound::Start)
            } else if made_here("window_end") {
                Some(Bound::End)
            } else {
                as_column(expr).and_then(|inner| session_bound(&projection.input, &inner))
            }
        }
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.get(index).and_then(as_column).and_then(|inner| session_bound(&aggregate.input, &inner)),
        _ => None,
    }
}

/// The closed sessions' result rows as a view's change-log inserts (result columns).
pub(crate) fn as_inserts(view: &StreamTable, closed: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(closed.len());
    for batch in closed.iter().filter(|b| b.num_rows() > 0) {
        let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(arrow::datatypes::Field::new(CHANGE_COLUMN, arrow::datatypes::DataType::Utf8, false)));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrow::array::StringArray::from(vec!["insert"; batch.num_rows()])));
        out.push(RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)?);
    }
    let all: Vec<usize> = (0..view.schema().fields().len()).collect();
    crate::dml::widen_to_table(view, &all, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closing(bound: Bound) -> SessionClosing {
        SessionClosing { time_column: "ts".into(), gap_us: 10, bound_column: "b".into(), bound }
    }

    #[test]
    fn a_session_closes_when_the_watermark_reaches_its_end() {
        let c = closing(Bound::Start);
        // Sessions {0, 5}, {20}, {40, 49}: they end at 15, 30 and 59.
        let times = [0, 5, 20, 40, 49];
        assert_eq!(c.last_closed(&times, 14), (None, Some(15)));
        assert_eq!(c.last_closed(&times, 15), (Some(5), Some(30)));
        assert_eq!(c.last_closed(&times, 58), (Some(20), Some(59)));
        assert_eq!(c.last_closed(&times, 59), (Some(49), None));
        // Rows exactly `gap` apart are two sessions (the rewrite's `ts - prev < gap`).
        assert_eq!(c.last_closed(&[0, 10], 10), (Some(0), Some(20)));
    }

    fn times(column: &str, values: &[i64]) -> RecordBatch {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            column,
            arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            true,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(arrow::array::TimestampMicrosecondArray::from(values.to_vec()))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(0).as_primitive::<TimestampMicrosecondType>().values().to_vec()).collect()
    }

    #[test]
    fn closed_sessions_rows_and_result_rows_are_split_off() {
        let c = closing(Bound::End);
        // Sessions {0, 5} (ends 15) and {20} (ends 30); result rows are their window_end.
        let rows = [times("ts", &[20, 0, 5])];
        let results = [times("b", &[30, 15])];
        let closed = c.close(&rows, &results, 29).unwrap();
        assert_eq!(closed.next_close_us, Some(30));
        let split = closed.split.unwrap();
        assert_eq!(values(&split.open_rows), vec![20]);
        assert_eq!(values(&split.open_results), vec![30]);
        assert_eq!(values(&split.closed_results), vec![15]);
        // Nothing closes before the first session's end.
        let closed = c.close(&rows, &results, 14).unwrap();
        assert_eq!((closed.split.is_none(), closed.next_close_us), (true, Some(15)));
    }
}
