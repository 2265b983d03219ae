//! Interval joins: how long a joining view keeps each side's rows.
//!
//! A view joining two stream tables keeps every row it applied of each side, because a
//! row arriving later on the other side may match it. When the join's condition bounds
//! the other side's watermark column by this side's row —
//! `c.ts BETWEEN i.ts AND i.ts + INTERVAL '10 minutes'` says `c.ts <= i.ts + 10 min` —
//! and that side has a watermark, a row can only be matched by rows not yet late:
//! every row applied from now on has `c.ts >= W`, the view's watermark (rows behind it are
//! dropped as late, see [`super::event_time`]). So an `i` row with `i.ts + 10 min < W`
//! can never match again and is let go ([`Retention::keep`]). Rows that never match
//! again are the only ones dropped: the view still equals the batch join of the rows that
//! were not late.
//!
//! Bounds are read from the join's `ON` condition and from the filters right above it:
//! conjuncts `x op y` (`<`, `<=`, `>`, `>=`, or `BETWEEN`) where each side is a column of
//! one of the two tables, plus or minus a constant interval. Only joins of exactly two
//! tables are bounded: with three, a row may still be matched through the third.

use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use streamhouse_streams::StreamTable;

use super::event_time::micros;
use super::inputs::{source_column, stream_table_of};
use crate::error::Result;

/// How long each source's applied rows may still be matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Retention {
    /// Per source (the view's source order): `None` keeps every row.
    bounds: Vec<Option<Bound>>,
}

/// A row is kept while `row[column] + slack_us >= watermark`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bound {
    pub column: String,
    pub slack_us: i64,
}

impl Retention {
    /// What the view's plan says about its two sources (`sources` in the view's order).
    pub(crate) fn of(plan: &LogicalPlan, sources: &[Arc<StreamTable>]) -> Retention {
        let mut retention = Retention { bounds: vec![None; sources.len()] };
        if sources.len() != 2 {
            return retention;
        }
        let mut joins = Vec::new();
        let mut conditions: Vec<Expr> = Vec::new();
        let _ = plan.apply(|node| {
            match node {
                LogicalPlan::Join(join) => {
                    joins.push(node.clone());
                    conditions.extend(join.filter.iter().cloned());
                }
                // Only a WHERE right above the join speaks of the join's columns: higher up,
                // a name may mean another scope's column.
                LogicalPlan::Filter(filter) if filters_join(&filter.input) => conditions.push(filter.predicate.clone()),
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        let [LogicalPlan::Join(join)] = &joins[..] else { return retention };
        // Each side's one source table, and how its columns are spelled at the join.
        let side = |plan: &LogicalPlan| -> Option<usize> {
            let mut found = None;
            let _ = plan.apply(|node| {
                if let LogicalPlan::TableScan(scan) = node {
                    let table = stream_table_of(scan);
                    found = table.and_then(|t| sources.iter().position(|s| s.id() == t.id()));
                }
                Ok(TreeNodeRecursion::Continue)
            });
            found
        };
        let (Some(left), Some(right)) = (side(&join.left), side(&join.right)) else { return retention };
        if left == right {
            return retention;
        }
        let resolve = |column: &Column| -> Option<(usize, String)> {
            let (source, input) = if join.left.schema().has_column(column) {
                (left, &join.left)
            } else if join.right.schema().has_column(column) {
                (right, &join.right)
            } else {
                return None;
            };
            source_column(input, column).map(|name| (source, name))
        };
        let mut inequalities = Vec::new();
        for condition in &conditions {
            for conjunct in split_conjunction(condition) {
                inequalities.extend(at_most(conjunct));
            }
        }
        for (smaller, larger) in inequalities {
            // smaller.column + smaller.offset <= larger.column + larger.offset
            let (Some((s_source, s_column)), Some((l_source, l_column))) = (resolve(&smaller.column), resolve(&larger.column)) else { continue };
            if s_source == l_source {
                continue;
            }
            // A future row of `s_source` has its watermark column >= W: it can match a
            // `l_source` row only while that row's column + slack >= W.
            let Some(watermark) = sources[s_source].options().watermark.as_ref() else { continue };
            if watermark.column != s_column {
                continue;
            }
            let slack_us = larger.offset_us.saturating_sub(smaller.offset_us);
            // Of several bounds on one column, the tightest; the first column found otherwise.
            let bound = &mut retention.bounds[l_source];
            match bound {
                None => *bound = Some(Bound { column: l_column, slack_us }),
                Some(b) if b.column == l_column => b.slack_us = b.slack_us.min(slack_us),
                Some(_) => {}
            }
        }
        retention
    }

    /// Whether any source's rows are ever let go.
    pub(crate) fn bounds_any(&self) -> bool {
        self.bounds.iter().any(Option::is_some)
    }

    pub(crate) fn bound(&self, source: usize) -> Option<&Bound> {
        self.bounds.get(source).and_then(Option::as_ref)
    }

    /// `rows` of `source` without those no row at or after `watermark_us` can match.
    pub(crate) fn keep(&self, source: usize, rows: &[RecordBatch], watermark_us: i64) -> Result<Vec<RecordBatch>> {
        let Some(bound) = self.bound(source) else { return Ok(rows.to_vec()) };
        let mut kept = Vec::with_capacity(rows.len());
        for batch in rows {
            let Ok(index) = batch.schema().index_of(&bound.column) else {
                kept.push(batch.clone());
                continue;
            };
            let times = micros(batch.column(index))?;
            let times = times.as_primitive::<TimestampMicrosecondType>();
            // A row without a time matches no inequality: it is never matched again.
            let still: BooleanArray = times.iter().map(|t| Some(t.is_some_and(|t| t.saturating_add(bound.slack_us) >= watermark_us))).collect();
            match still.false_count() {
                0 => kept.push(batch.clone()),
                n if n == batch.num_rows() => {}
                _ => kept.push(filter_record_batch(batch, &still)?),
            }
        }
        Ok(kept)
    }
}

/// Whether `plan` is a join, under nothing but filters.
fn filters_join(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Join(_) => true,
        LogicalPlan::Filter(filter) => filters_join(&filter.input),
        _ => false,
    }
}

/// A column plus a constant, in microseconds.
#[derive(Debug, Clone)]
struct Term {
    column: Column,
    offset_us: i64,
}

/// The inequalities `a <= b` a conjunct states between two column terms (`BETWEEN` states two).
fn at_most(expr: &Expr) -> Vec<(Term, Term)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (Some(l), Some(r)) = (term(left), term(right)) else { return vec![] };
            match op {
                Operator::Lt | Operator::LtEq => vec![(l, r)],
                Operator::Gt | Operator::GtEq => vec![(r, l)],
                _ => vec![],
            }
        }
        Expr::Between(between) if !between.negated => {
            let Some(x) = term(&between.expr) else { return vec![] };
            let mut out = Vec::new();
            if let Some(low) = term(&between.low) {
                out.push((low, x.clone()));
            }
            if let Some(high) = term(&between.high) {
                out.push((x, high));
            }
            out
        }
        _ => vec![],
    }
}

/// `col`, `col + interval`, `col - interval`, `interval + col` (casts of the column kept).
fn term(expr: &Expr) -> Option<Term> {
    match expr {
        Expr::Column(column) => Some(Term { column: column.clone(), offset_us: 0 }),
        Expr::Cast(cast) => term(&cast.expr),
        Expr::TryCast(cast) => term(&cast.expr),
        Expr::Alias(alias) => term(&alias.expr),
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus, right }) => match (term(left), interval_us(right), term(right), interval_us(left)) {
            (Some(t), Some(d), _, _) | (_, _, Some(t), Some(d)) => Some(Term { offset_us: t.offset_us.saturating_add(d), ..t }),
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Minus, right }) => {
            let (t, d) = (term(left)?, interval_us(right)?);
            Some(Term { offset_us: t.offset_us.saturating_sub(d), ..t })
        }
        _ => None,
    }
}

/// A constant interval without months (their length varies), in microseconds.
pub(super) fn interval_us(expr: &Expr) -> Option<i64> {
    let value = match expr {
        Expr::Literal(value, _) => value,
        Expr::Cast(cast) => return interval_us(&cast.expr),
        _ => return None,
    };
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => Some(v.days as i64 * 86_400_000_000 + v.nanoseconds / 1_000),
        ScalarValue::IntervalDayTime(Some(v)) => Some(v.days as i64 * 86_400_000_000 + v.milliseconds as i64 * 1_000),
        ScalarValue::DurationSecond(Some(s)) => Some(s.saturating_mul(1_000_000)),
        ScalarValue::DurationMillisecond(Some(ms)) => Some(ms.saturating_mul(1_000)),
        ScalarValue::DurationMicrosecond(Some(us)) => Some(*us),
        ScalarValue::DurationNanosecond(Some(ns)) => Some(ns / 1_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::logical_expr::{col, lit};
    use datafusion::scalar::ScalarValue;

    fn minutes(n: i64) -> Expr {
        lit(ScalarValue::new_interval_mdn(0, 0, n * 60_000_000_000))
    }

    fn pairs(expr: &Expr) -> Vec<(String, i64, String, i64)> {
        at_most(expr).into_iter().map(|(a, b)| (a.column.flat_name(), a.offset_us, b.column.flat_name(), b.offset_us)).collect()
    }

    #[test]
    fn inequalities_between_columns_and_intervals_are_read() {
        let between = col("c.ts").between(col("i.ts"), col("i.ts") + minutes(10));
        assert_eq!(pairs(&between), vec![("i.ts".into(), 0, "c.ts".into(), 0), ("c.ts".into(), 0, "i.ts".into(), 600_000_000)]);
        assert_eq!(pairs(&col("a.t").gt(col("b.t") - minutes(1))), vec![("b.t".into(), -60_000_000, "a.t".into(), 0)]);
        // Months have no fixed length; equalities and other shapes bound nothing.
        assert!(pairs(&col("a.t").lt(col("b.t") + lit(ScalarValue::new_interval_mdn(1, 0, 0)))).is_empty());
        assert!(pairs(&col("a.t").eq(col("b.t"))).is_empty());
        assert!(pairs(&col("a.t").not_between(col("b.t"), col("b.t"))).is_empty());
    }

    #[test]
    fn rows_no_admitted_row_can_match_are_let_go() {
        let retention = Retention { bounds: vec![Some(Bound { column: "ts".into(), slack_us: 10 }), None] };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4])), Arc::new(TimestampMicrosecondArray::from(vec![Some(80), Some(90), None, Some(200)]))],
        )
        .unwrap();
        let kept = retention.keep(0, std::slice::from_ref(&batch), 100).unwrap();
        let ids: Vec<i64> = kept.iter().flat_map(|b| b.column(0).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec()).collect();
        assert_eq!(ids, vec![2, 4], "80 + 10 < 100 goes, 90 + 10 = 100 stays, no time goes");
        assert_eq!(retention.keep(1, std::slice::from_ref(&batch), 100).unwrap()[0].num_rows(), 4, "an unbounded side keeps all");
    }
}
