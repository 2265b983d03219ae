//! Multisets of rows, for views that read another view's change log without aggregating
//! it (filters, projections, joins, UNION ALL): rows leave such a view as well as join
//! it, so its table is a change log too (`insert` / `delete`), and `SELECT` reads its
//! current rows from memory ([`RowsResult`]). A joining view also keeps the current rows
//! of each change-log source this way, to join new rows with.
//!
//! A step of such a view runs its plan twice over the chunk: over the rows the source
//! added and over those it removed (a filter, projection or join of a difference is the
//! difference of the results); what both produce cancels out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, RecordBatch, RecordBatchOptions, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use streamhouse_streams::StreamTable;

use super::result::{result_columns, CurrentRows, Readiness};
use super::CHANGE_COLUMN;
use crate::error::{Error, Result};

/// A row as `RowConverter` bytes.
type EncodedRow = Vec<u8>;

/// Rows with how many times each is there.
pub(crate) struct Multiset {
    schema: SchemaRef,
    converter: RowConverter,
    counts: HashMap<EncodedRow, u64>,
}

/// A checked change to a [`Multiset`], to install once committed.
pub(crate) struct MultisetChange {
    added: Vec<EncodedRow>,
    removed: Vec<EncodedRow>,
}

impl Multiset {
    pub(crate) fn new(schema: SchemaRef) -> Result<Multiset> {
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(Multiset { converter: RowConverter::new(fields)?, schema, counts: HashMap::new() })
    }

    /// Each row's bytes (the key of its count).
    fn encode(&self, batches: &[RecordBatch]) -> Result<Vec<EncodedRow>> {
        let mut encoded = Vec::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let columns = batch
                .columns()
                .iter()
                .zip(self.schema.fields())
                .map(|(c, f)| Ok(if c.data_type() == f.data_type() { c.clone() } else { arrow::compute::cast(c, f.data_type())? }))
                .collect::<Result<Vec<_>>>()?;
            encoded.extend(self.converter.convert_columns(&columns)?.iter().map(|r| r.as_ref().to_vec()));
        }
        Ok(encoded)
    }

    pub(crate) fn add(&mut self, batches: &[RecordBatch]) -> Result<()> {
        let change = self.change(batches, &[], "adding rows")?;
        self.install(change);
        Ok(())
    }

    /// Takes the rows out; a row that is not there is an error (a change log removing
    /// what it never added), and then nothing is taken.
    pub(crate) fn remove(&mut self, batches: &[RecordBatch], what: &str) -> Result<()> {
        let change = self.change(&[], batches, what)?;
        self.install(change);
        Ok(())
    }

    /// Adding `added` and taking out `removed`, checked (each removed row is there, or
    /// is added by the same change) but not yet done: [`Self::install`] cannot fail, so
    /// it can follow a committed append.
    pub(crate) fn change(&self, added: &[RecordBatch], removed: &[RecordBatch], what: &str) -> Result<MultisetChange> {
        let (added, removed) = (self.encode(added)?, self.encode(removed)?);
        let mut net: HashMap<&[u8], i64> = HashMap::new();
        for row in &added {
            *net.entry(row.as_slice()).or_insert(0) += 1;
        }
        for row in &removed {
            *net.entry(row.as_slice()).or_insert(0) -= 1;
        }
        if net.iter().any(|(row, n)| *n < 0 && self.counts.get(*row).copied().unwrap_or(0) < n.unsigned_abs()) {
            return Err(Error::Internal(format!("{what} removes a row it does not hold")));
        }
        Ok(MultisetChange { added, removed })
    }

    pub(crate) fn install(&mut self, change: MultisetChange) {
        for row in change.added {
            *self.counts.entry(row).or_insert(0) += 1;
        }
        for row in change.removed {
            if let Some(count) = self.counts.get_mut(&row) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&row);
                }
            }
        }
    }

    /// The rows, each as many times as it is there.
    pub(crate) fn batch(&self) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let rows = self.counts.iter().flat_map(|(row, n)| std::iter::repeat_n(parser.parse(row), *n as usize));
        let columns = self.converter.convert_rows(rows)?;
        let count = self.counts.values().sum::<u64>() as usize;
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(count)))?)
    }

    /// `added` minus `removed`, row by row: the rows to insert and the rows to delete
    /// (a row in both is in neither).
    fn net(&self, added: &[RecordBatch], removed: &[RecordBatch]) -> Result<(Vec<EncodedRow>, Vec<EncodedRow>)> {
        let mut net: HashMap<EncodedRow, i64> = HashMap::new();
        let mut order = Vec::new();
        for (rows, sign) in [(self.encode(added)?, 1), (self.encode(removed)?, -1)] {
            for row in rows {
                let n = net.entry(row.clone()).or_insert_with(|| {
                    order.push(row);
                    0
                });
                *n += sign;
            }
        }
        let (mut inserts, mut deletes) = (Vec::new(), Vec::new());
        for row in order {
            let n = net[&row];
            let into = if n > 0 { &mut inserts } else { &mut deletes };
            into.extend(std::iter::repeat_n(row, n.unsigned_abs() as usize));
        }
        Ok((inserts, deletes))
    }

    fn decode(&self, rows: &[EncodedRow]) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let columns = self.converter.convert_rows(rows.iter().map(|r| parser.parse(r)))?;
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows.len())))?)
    }
}

/// The latest row per key of one partition of a key-compacted table, as a view has read
/// it: what a new row of the key replaces.
pub(crate) struct LatestByKey {
    codec: Multiset,
    /// Which column holds the key, and its values as bytes.
    key_column: usize,
    keys: RowConverter,
    rows: HashMap<EncodedRow, EncodedRow>,
}

/// The keys a chunk of a key-compacted table set, to install once committed.
pub(crate) struct LatestChange(HashMap<EncodedRow, EncodedRow>);

impl LatestByKey {
    /// For rows in `layout` (the table's stored columns, as scanned) keyed by `key_column`.
    pub(crate) fn new(layout: SchemaRef, key_column: usize) -> Result<LatestByKey> {
        let keys = RowConverter::new(vec![SortField::new(layout.field(key_column).data_type().clone())])?;
        Ok(LatestByKey { codec: Multiset::new(layout)?, key_column, keys, rows: HashMap::new() })
    }

    /// A chunk of the table (in offset order) as rows added and rows removed: each row
    /// with a key removes that key's previous row (read before, or earlier in the chunk).
    pub(crate) fn signed(&self, batches: &[RecordBatch]) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>, LatestChange)> {
        let mut set: HashMap<EncodedRow, EncodedRow> = HashMap::new();
        let mut replaced = Vec::new();
        let key_type = self.codec.schema.field(self.key_column).data_type().clone();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let rows = self.codec.encode(std::slice::from_ref(batch))?;
            let column = batch.column(self.key_column);
            let column = if column.data_type() == &key_type { column.clone() } else { arrow::compute::cast(column, &key_type)? };
            let keys = self.keys.convert_columns(std::slice::from_ref(&column))?;
            for (i, row) in rows.into_iter().enumerate() {
                if column.is_null(i) {
                    continue;
                }
                let key = keys.row(i).as_ref().to_vec();
                if let Some(previous) = set.get(&key).or_else(|| self.rows.get(&key)) {
                    replaced.push(previous.clone());
                }
                set.insert(key, row);
            }
        }
        let removed = if replaced.is_empty() { Vec::new() } else { vec![self.codec.decode(&replaced)?] };
        Ok((batches.to_vec(), removed, LatestChange(set)))
    }

    pub(crate) fn install(&mut self, change: LatestChange) {
        self.rows.extend(change.0);
    }
}

/// The current rows of a view of rows over a change log, shared by its maintainer
/// (writes) and `SELECT` (reads).
pub(crate) struct RowsResult {
    view: Arc<StreamTable>,
    rows: RwLock<Multiset>,
    readiness: Readiness,
}

/// A step's changes to such a view, computed before the append and applied after it.
pub(crate) struct RowsStep {
    /// The change-log rows (stored layout), if any.
    pub changes: Option<RecordBatch>,
    rows: MultisetChange,
}

impl RowsResult {
    pub(crate) fn new(view: Arc<StreamTable>) -> Result<Arc<RowsResult>> {
        let rows = Multiset::new(result_columns(&view))?;
        Ok(Arc::new(RowsResult { view, rows: RwLock::new(rows), readiness: Readiness::default() }))
    }

    /// The change log for a step that `added` and `removed` these rows (result columns).
    pub(crate) fn step(&self, added: &[RecordBatch], removed: &[RecordBatch]) -> Result<RowsStep> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        let (inserts, deletes) = rows.net(added, removed)?;
        let (inserts, deletes) = (rows.decode(&inserts)?, rows.decode(&deletes)?);
        // Checked before the append: after it, the view could not take the rows out.
        let change = rows.change(std::slice::from_ref(&inserts), std::slice::from_ref(&deletes), &format!("a step of materialized view {}", self.view.name()))?;
        drop(rows);
        let changes = change_log_rows(&self.view, &[(&inserts, "insert"), (&deletes, "delete")])?;
        Ok(RowsStep { changes, rows: change })
    }

    /// Makes a committed step visible to `SELECT`.
    pub(crate) fn apply(&self, step: RowsStep) {
        self.rows.write().unwrap_or_else(|p| p.into_inner()).install(step.rows);
    }

    /// Folds the view's own change log (stored layout, in order): its rows at the last
    /// committed step.
    pub(crate) fn recover(&self, log: &[RecordBatch]) -> Result<()> {
        let (added, removed) = super::inputs::signed_rows(&self.view, log)?;
        let mut rows = Multiset::new(result_columns(&self.view))?;
        rows.add(&added)?;
        rows.remove(&removed, &format!("the change log of materialized view {}", self.view.name()))?;
        *self.rows.write().unwrap_or_else(|p| p.into_inner()) = rows;
        Ok(())
    }

    pub(crate) fn set_recovery(&self, outcome: std::result::Result<(), String>) {
        self.readiness.set(outcome);
    }
}

impl CurrentRows for RowsResult {
    fn view(&self) -> &Arc<StreamTable> {
        &self.view
    }

    fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn snapshot(&self) -> Result<RecordBatch> {
        self.rows.read().unwrap_or_else(|p| p.into_inner()).batch()
    }
}

impl std::fmt::Debug for RowsResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowsResult").field("view", &self.view.name()).finish_non_exhaustive()
    }
}

/// Change-log rows in the view table's stored layout: each batch's rows (result columns)
/// with its `_change`.
fn change_log_rows(view: &StreamTable, parts: &[(&RecordBatch, &str)]) -> Result<Option<RecordBatch>> {
    let columns = result_columns(view);
    let mut fields: Vec<_> = columns.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(CHANGE_COLUMN, DataType::Utf8, false)));
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::new();
    for (rows, change) in parts.iter().filter(|(rows, _)| rows.num_rows() > 0) {
        let mut arrays = rows.columns().to_vec();
        arrays.push(Arc::new(StringArray::from(vec![*change; rows.num_rows()])));
        batches.push(RecordBatch::try_new(schema.clone(), arrays)?);
    }
    if batches.is_empty() {
        return Ok(None);
    }
    let batch = arrow::compute::concat_batches(&schema, &batches)?;
    let all: Vec<usize> = (0..batch.num_columns()).collect();
    Ok(crate::dml::widen_to_table(view, &all, vec![batch])?.pop())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn rows(values: &[(i64, &str)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true), Field::new("s", DataType::Utf8, true)]));
        let n = Int64Array::from(values.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        let s = StringArray::from(values.iter().map(|(_, s)| *s).collect::<Vec<_>>());
        RecordBatch::try_new(schema, vec![Arc::new(n), Arc::new(s)]).unwrap()
    }

    fn sorted(batch: &RecordBatch) -> Vec<(i64, String)> {
        let n = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let s = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let mut out: Vec<_> = (0..batch.num_rows()).map(|i| (n.value(i), s.value(i).to_string())).collect();
        out.sort();
        out
    }

    #[test]
    fn a_multiset_counts_duplicates_and_refuses_to_remove_what_it_does_not_hold() {
        let mut set = Multiset::new(rows(&[]).schema()).unwrap();
        set.add(&[rows(&[(1, "a"), (1, "a"), (2, "b")])]).unwrap();
        set.remove(&[rows(&[(1, "a")])], "test").unwrap();
        assert_eq!(sorted(&set.batch().unwrap()), vec![(1, "a".into()), (2, "b".into())]);
        // (2, b) twice is more than it holds: an error, and nothing is taken.
        assert!(set.remove(&[rows(&[(2, "b"), (2, "b")])], "test").is_err());
        assert!(set.remove(&[rows(&[(3, "c")])], "test").is_err());
        assert_eq!(sorted(&set.batch().unwrap()), vec![(1, "a".into()), (2, "b".into())]);
    }

    #[test]
    fn added_and_removed_rows_cancel_and_the_rest_are_inserts_and_deletes() {
        let mut set = Multiset::new(rows(&[]).schema()).unwrap();
        set.add(&[rows(&[(1, "a"), (2, "b")])]).unwrap();
        let (inserts, deletes) = set.net(&[rows(&[(1, "a"), (3, "c"), (3, "c")])], &[rows(&[(1, "a"), (2, "b")])]).unwrap();
        assert_eq!(sorted(&set.decode(&inserts).unwrap()), vec![(3, "c".into()), (3, "c".into())]);
        assert_eq!(sorted(&set.decode(&deletes).unwrap()), vec![(2, "b".into())]);
    }
}
