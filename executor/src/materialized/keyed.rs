//! Views whose window functions are partitioned by key: `SESSION(t, ts, gap)` windows
//! (sessions per key) and any `OVER (PARTITION BY k …)` over one table.
//!
//! A window function's value for a row depends on the other rows of its partition, so a
//! new row can change rows emitted long ago (a late row joins two sessions into one).
//! But it changes nothing outside its key: when every window function of the plan is
//! partitioned by the same columns `K` of the source, the rows of the result for a key
//! are a function of that key's source rows alone. So a step recomputes the keys its
//! chunk touches — the plan run over those keys' source rows only — and replaces their
//! result rows: the old ones are deleted, the new ones inserted (the view's table is a
//! change log, read through [`super::rows::RowsResult`]). Keys the chunk does not touch
//! cost nothing.
//!
//! The maintainer keeps each key's source rows and result rows ([`KeyedRows`]); at start
//! it reads them back from the source and from its own result. Refused (0A000): window
//! functions over several tables, without a common `PARTITION BY` of source columns (a
//! global session would recompute everything each step), or a result without the key
//! columns (its rows could not be told apart by key).

use std::collections::HashMap;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{OwnedRow, Row, RowConverter, SortField};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan};

use super::inputs::{as_column, source_column};
use super::sessions::SessionClosing;
use crate::error::{Error, Result};

/// Whether the plan computes window functions (then only [`KeyedRows`] can maintain it).
pub(crate) fn has_window_functions(plan: &LogicalPlan) -> bool {
    plan.exists(|node| Ok(matches!(node, LogicalPlan::Window(_)))).unwrap_or(false)
}

/// The source columns every window function of `plan` is partitioned by, checked to be
/// columns of the result too (by name). `source_schema` is the one source table's.
pub(crate) fn partition_keys(plan: &LogicalPlan) -> Result<Vec<String>> {
    let refuse = |why: String| Error::not_supported(why, "partition the window by a column of the table (SESSION windows: GROUP BY that column), or use a VIEW");
    let mut keys: Option<Vec<String>> = None;
    let mut failure = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::Window(window) = node {
            for expr in &window.window_expr {
                let Expr::WindowFunction(function) = expr.clone().unalias_nested().data else {
                    failure = Some(format!("materialized views cannot maintain the window expression {expr} yet"));
                    return Ok(TreeNodeRecursion::Stop);
                };
                let mut own: Vec<String> =
                    function.params.partition_by.iter().filter_map(|p| as_column(p).and_then(|c| source_column(&window.input, &c))).collect();
                own.sort();
                own.dedup();
                match &keys {
                    None => keys = Some(own),
                    // The session rewrite partitions by (k) and by (k, session): the
                    // columns of the source must be the same.
                    Some(seen) if *seen == own => {}
                    Some(seen) => {
                        failure = Some(format!(
                            "materialized views cannot maintain window functions partitioned by different columns ({} and {}) yet",
                            seen.join(", "),
                            own.join(", ")
                        ));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Some(why) = failure {
        return Err(refuse(why));
    }
    let keys = keys.unwrap_or_default();
    if keys.is_empty() {
        return Err(refuse(
            "materialized views cannot maintain window functions without PARTITION BY columns of the table (or a SESSION window without GROUP BY keys): each new row would recompute every row".into(),
        ));
    }
    for key in &keys {
        let shown = plan.schema().index_of_column_by_name(None, key).is_some_and(|_| source_column(plan, &Column::new_unqualified(key)).as_deref() == Some(key.as_str()));
        if !shown {
            return Err(refuse(format!(
                "a materialized view with window functions partitioned by {key} must show {key} as a column of its result"
            )));
        }
    }
    Ok(keys)
}

/// A key's source rows are gathered into one batch when they span more batches.
const BATCHES_PER_KEY: usize = 8;

/// Each key's source rows and result rows, as the committed steps left them.
pub(crate) struct KeyedRows {
    keys: Vec<String>,
    converter: RowConverter,
    rows: HashMap<OwnedRow, Vec<RecordBatch>>,
    results: HashMap<OwnedRow, Vec<RecordBatch>>,
    /// How SESSION windows close, when they can ([`SessionClosing`]): then closed
    /// sessions' rows are let go, and a key without open sessions is forgotten.
    closing: Option<SessionClosing>,
    /// The earliest each key's first open session can end (a lower bound: the key is
    /// looked at again once the watermark reaches it; a key not here, at the next
    /// [`KeyedRows::close`]).
    next_close: HashMap<OwnedRow, i64>,
}

/// One step's recomputation, made before the append and installed after it.
pub(crate) struct KeyedChange {
    /// The touched keys' source rows, the chunk's included: what the plan runs over.
    pub input: Vec<RecordBatch>,
    /// The touched keys' result rows before the step: what the step deletes.
    pub old_results: Vec<RecordBatch>,
    rows: HashMap<OwnedRow, Vec<RecordBatch>>,
    results: HashMap<OwnedRow, Vec<RecordBatch>>,
    /// The result rows of the sessions this step closes (final).
    pub closed: Vec<RecordBatch>,
    /// The earliest a session holding one of the chunk's rows can end.
    earliest_added_end: Option<i64>,
    next_close: HashMap<OwnedRow, Option<i64>>,
}

impl KeyedRows {
    /// For the source columns `keys` of these types; `closing`, when the view's SESSION
    /// windows close with the watermark.
    pub(crate) fn new(keys: Vec<String>, types: Vec<DataType>, closing: Option<SessionClosing>) -> Result<KeyedRows> {
        let converter = RowConverter::new(types.into_iter().map(SortField::new).collect())?;
        Ok(KeyedRows { keys, converter, rows: HashMap::new(), results: HashMap::new(), closing, next_close: HashMap::new() })
    }

    /// `batches` split by key (the key columns found by name). Each batch is reordered
    /// once, keys together, and each key gets a slice of it.
    fn split(&self, batches: &[RecordBatch]) -> Result<HashMap<OwnedRow, Vec<RecordBatch>>> {
        let mut split: HashMap<OwnedRow, Vec<RecordBatch>> = HashMap::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let columns: Vec<ArrayRef> = self
                .keys
                .iter()
                .map(|k| batch.schema().index_of(k).map(|i| batch.column(i).clone()).map_err(|_| Error::Internal(format!("key column {k} is missing"))))
                .collect::<Result<_>>()?;
            let rows = self.converter.convert_columns(&columns)?;
            let mut groups: HashMap<Row<'_>, usize> = HashMap::new();
            let mut members: Vec<Vec<u32>> = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let group = *groups.entry(row).or_insert_with(|| {
                    members.push(Vec::new());
                    members.len() - 1
                });
                members[group].push(i as u32);
            }
            let order: Vec<u32> = members.iter().flatten().copied().collect();
            let reordered = take_record_batch(batch, &UInt32Array::from(order))?;
            let mut keys: Vec<Option<OwnedRow>> = vec![None; members.len()];
            for (row, group) in groups {
                keys[group] = Some(row.owned());
            }
            let mut at = 0;
            for (key, rows) in keys.into_iter().zip(&members) {
                let key = key.ok_or_else(|| Error::Internal("a group without its key".into()))?;
                split.entry(key).or_default().push(reordered.slice(at, rows.len()));
                at += rows.len();
            }
        }
        Ok(split)
    }

    /// The keys `chunk` touches, with their source rows so far and the chunk's.
    pub(crate) fn prepare(&self, chunk: &[RecordBatch]) -> Result<KeyedChange> {
        let mut rows = self.split(chunk)?;
        let (mut input, mut old_results) = (Vec::new(), Vec::new());
        for (key, added) in rows.iter_mut() {
            let mut all = self.rows.get(key).cloned().unwrap_or_default();
            all.append(added);
            // A key's rows are slices of the chunks they came in; gathered into one batch
            // now and then, so a key does not keep many chunks alive.
            if all.len() > BATCHES_PER_KEY {
                all = vec![concat_batches(&all[0].schema(), all.iter())?];
            }
            input.extend(all.iter().cloned());
            *added = all;
            old_results.extend(self.results.get(key).cloned().unwrap_or_default());
        }
        // The plan reads one batch (many tiny ones cost it more than one copy).
        if input.len() > 1 {
            input = vec![concat_batches(&input[0].schema(), input.iter())?];
        }
        let earliest_added_end = match &self.closing {
            Some(closing) => closing.earliest_end(chunk)?,
            None => None,
        };
        Ok(KeyedChange { input, old_results, rows, results: HashMap::new(), closed: Vec::new(), earliest_added_end, next_close: HashMap::new() })
    }

    /// `change` with the plan's rows for its keys (`produced`, split by key).
    pub(crate) fn with_results(&self, mut change: KeyedChange, produced: &[RecordBatch]) -> Result<KeyedChange> {
        let mut results = self.split(produced)?;
        // A key whose rows now produce nothing keeps no result rows.
        for key in change.rows.keys() {
            results.entry(key.clone()).or_default();
        }
        change.results = results;
        Ok(change)
    }

    /// Adds to `change` the sessions closed at `watermark_us` (nothing without a
    /// [`SessionClosing`]): of the keys it touches, and of the others whose first open
    /// session ends by then. Their rows and result rows are split; the closed result rows
    /// go to `change.closed`.
    pub(crate) fn close(&self, change: &mut KeyedChange, watermark_us: i64) -> Result<()> {
        let Some(closing) = &self.closing else { return Ok(()) };
        let mut due: Vec<OwnedRow> = change.rows.keys().cloned().collect();
        due.extend(
            self.rows
                .keys()
                .filter(|key| !change.rows.contains_key(*key) && self.next_close.get(*key).is_none_or(|at| *at <= watermark_us))
                .cloned(),
        );
        for key in due {
            if change.rows.contains_key(&key) {
                // A touched key's first open session ends no earlier than before or than
                // a session of the chunk's rows: when that is still ahead, nothing closes.
                let ends_after = self.next_close.get(&key).zip(change.earliest_added_end).map(|(before, added)| (*before).min(added));
                if let Some(at) = ends_after.filter(|at| *at > watermark_us) {
                    change.next_close.insert(key, Some(at));
                    continue;
                }
            }
            let rows = change.rows.get(&key).or_else(|| self.rows.get(&key)).map(Vec::as_slice).unwrap_or_default();
            let results = change.results.get(&key).or_else(|| self.results.get(&key)).map(Vec::as_slice).unwrap_or_default();
            let closed = closing.close(rows, results, watermark_us)?;
            change.next_close.insert(key.clone(), closed.next_close_us);
            if let Some(split) = closed.split {
                change.closed.extend(split.closed_results);
                change.rows.insert(key.clone(), split.open_rows);
                change.results.insert(key, split.open_results);
            }
        }
        Ok(())
    }

    /// Records a committed step. A key left without rows is forgotten.
    pub(crate) fn install(&mut self, change: KeyedChange) {
        for (key, rows) in change.rows {
            if rows.iter().all(|b| b.num_rows() == 0) {
                self.rows.remove(&key);
                self.next_close.remove(&key);
            } else {
                self.rows.insert(key, rows);
            }
        }
        for (key, results) in change.results {
            if results.is_empty() {
                self.results.remove(&key);
            } else {
                self.results.insert(key, results);
            }
        }
        for (key, at) in change.next_close {
            match at {
                Some(at) if self.rows.contains_key(&key) => {
                    self.next_close.insert(key, at);
                }
                _ => {
                    self.next_close.remove(&key);
                }
            }
        }
    }

    /// At start, once rows and results are back: lets go of the sessions closed by the
    /// recovered watermark.
    pub(crate) fn close_recovered(&mut self, watermark_us: i64) -> Result<()> {
        let mut change = KeyedChange {
            input: Vec::new(),
            old_results: Vec::new(),
            rows: HashMap::new(),
            results: HashMap::new(),
            closed: Vec::new(),
            earliest_added_end: None,
            next_close: HashMap::new(),
        };
        self.close(&mut change, watermark_us)?;
        self.install(change);
        Ok(())
    }

    /// Every key's source rows (at start: to work out the pending result rows of an
    /// `EMIT ON WINDOW CLOSE` view, which are not in its table).
    pub(crate) fn all_rows(&self) -> Vec<RecordBatch> {
        self.rows.values().flatten().cloned().collect()
    }

    /// At start: source rows read again, in order.
    pub(crate) fn recover_rows(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for (key, mut added) in self.split(batches)? {
            self.rows.entry(key).or_default().append(&mut added);
        }
        Ok(())
    }

    /// At start: the view's current result rows.
    pub(crate) fn recover_results(&mut self, current: &[RecordBatch]) -> Result<()> {
        self.results = self.split(current)?;
        Ok(())
    }

    /// How many source rows are kept.
    pub(crate) fn kept_rows(&self) -> i64 {
        self.rows.values().flatten().map(|b| b.num_rows() as i64).sum()
    }
}

/// The types of `keys` in `schema`.
pub(crate) fn key_types(schema: &SchemaRef, keys: &[String]) -> Result<Vec<DataType>> {
    keys.iter().map(|k| Ok(schema.field_with_name(k).map_err(|_| Error::UndefinedColumn(k.clone()))?.data_type().clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{Field, Int64Type, Schema};

    fn batch(keys: &[i64], values: &[i64]) -> RecordBatch {
        let schema = std::sync::Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![std::sync::Arc::new(Int64Array::from(keys.to_vec())), std::sync::Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        let mut out: Vec<i64> = batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect();
        out.sort();
        out
    }

    #[test]
    fn a_step_reads_and_replaces_only_the_keys_it_touches() {
        let mut keyed = KeyedRows::new(vec!["k".into()], vec![DataType::Int64], None).unwrap();
        let first = keyed.prepare(&[batch(&[1, 2, 1], &[10, 20, 11])]).unwrap();
        assert_eq!(values(&first.input), vec![10, 11, 20]);
        assert!(first.old_results.is_empty());
        // Results: one row per key (the key's sum, say).
        let first = keyed.with_results(first, &[batch(&[1, 2], &[21, 20])]).unwrap();
        keyed.install(first);
        // Key 1 again: its old rows and the new one are read; key 2 is left alone.
        let second = keyed.prepare(&[batch(&[1], &[12])]).unwrap();
        assert_eq!(values(&second.input), vec![10, 11, 12]);
        assert_eq!(values(&second.old_results), vec![21]);
        // The key now produces nothing: its result rows go.
        let second = keyed.with_results(second, &[]).unwrap();
        keyed.install(second);
        assert_eq!(values(&keyed.prepare(&[batch(&[1], &[13])]).unwrap().old_results), Vec::<i64>::new());
        assert_eq!(values(&keyed.prepare(&[batch(&[2], &[21])]).unwrap().old_results), vec![20]);
        assert_eq!(keyed.kept_rows(), 4);
    }
}
