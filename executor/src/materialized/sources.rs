//! A maintainer's bookkeeping of what it applied from each source: a chunk as the rows it
//! adds and removes (change logs, key-compacted tables), the rows a join keeps per source
//! (with what an interval join lets go), and a windowed view's rows per key. Everything a
//! step can fail on is prepared before its append; only infallible installs follow it.

use arrow::array::RecordBatch;
use streamhouse_streams::StreamTable;
use tracing::warn;

use super::inputs::{self, is_change_log, signed_rows, SourceKind};
use super::keyed::KeyedRows;
use super::rows::{self, LatestByKey, LatestChange, Multiset};
use super::Maintainer;
use crate::error::{Error, Result};

impl Maintainer {
    /// A chunk of `input` as the rows it adds and the rows it removes (only a change
    /// log removes any).
    pub(super) fn signed(&self, input: usize, batches: &[RecordBatch]) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>, Option<LatestChange>)> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        self.signed_after(input, batches, latest.get(input).and_then(Option::as_ref))
    }

    /// [`Self::signed`] after the rows `latest` holds (a key-compacted source's latest
    /// rows: the maintainer's, or a replay's own at start).
    pub(super) fn signed_after(&self, input: usize, batches: &[RecordBatch], latest: Option<&LatestByKey>) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>, Option<LatestChange>)> {
        let source = self.inputs.source(input);
        match inputs::kind(source) {
            SourceKind::Table => Ok((batches.to_vec(), Vec::new(), None)),
            SourceKind::ViewChanges => signed_rows(source, batches).map(|(added, removed)| (added, removed, None)),
            SourceKind::LatestByKey => {
                let fresh;
                let latest = match latest {
                    Some(latest) => latest,
                    None => {
                        fresh = latest_by_key(source)?;
                        &fresh
                    }
                };
                let (added, removed, change) = latest.signed(batches)?;
                Ok((added, removed, Some(change)))
            }
        }
    }

    /// A key-compacted input's latest rows exist (empty at first): made before a step's
    /// append, so recording the step after it cannot fail.
    pub(super) fn ensure_latest(&self, input: usize) -> Result<()> {
        let source = self.inputs.source(input);
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.resize_with(self.inputs.len(), || None);
        if inputs::kind(source) == SourceKind::LatestByKey && latest[input].is_none() {
            latest[input] = Some(latest_by_key(source)?);
        }
        Ok(())
    }

    /// Records the keys a committed step of a key-compacted source set.
    pub(super) fn install_latest(&self, input: usize, change: Option<LatestChange>) {
        let Some(change) = change else { return };
        if let Some(Some(latest)) = self.latest.lock().unwrap_or_else(|p| p.into_inner()).get_mut(input) {
            latest.install(change);
        }
    }

    /// What a step of `input` that adds and removes these rows does to a joining view's
    /// applied rows (a change log's: its current rows), checked before the append so
    /// that [`Self::install_applied`] cannot fail after it.
    pub(super) fn prepare_applied(&self, input: usize, added: &[RecordBatch], removed: &[RecordBatch]) -> Result<AppliedUpdate> {
        if self.applied.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Ok(AppliedUpdate::Nothing);
        }
        let (s, source) = (self.inputs.source_index(input), self.inputs.source(input));
        if !is_change_log(source) {
            return Ok(AppliedUpdate::Rows(added.iter().filter(|b| b.num_rows() > 0).cloned().collect()));
        }
        let mut current = self.applied_current.lock().unwrap_or_else(|p| p.into_inner());
        current.resize_with(self.inputs.sources().len(), || None);
        if current[s].is_none() {
            current[s] = Some(Multiset::new(inputs::layout(source))?);
        }
        let change = current[s].as_ref().expect("set above").change(added, removed, &format!("the change log of {}", source.name()))?;
        Ok(AppliedUpdate::Current(change))
    }

    pub(super) fn install_applied(&self, input: usize, update: AppliedUpdate) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let Some(applied) = applied.as_mut() else { return };
        let s = self.inputs.source_index(input);
        match update {
            AppliedUpdate::Nothing => {}
            AppliedUpdate::Rows(rows) => {
                applied[s].extend(rows);
                compact(&mut applied[s]);
            }
            AppliedUpdate::Current(change) => {
                let mut current = self.applied_current.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(rows) = current.get_mut(s).and_then(Option::as_mut) {
                    rows.install(change);
                }
                // Made into a batch when a step of another source joins with it.
                applied[s].clear();
            }
        }
    }

    /// Runs `f` on the keyed rows of a view with window functions.
    pub(super) fn keyed<T>(&self, f: impl FnOnce(&KeyedRows) -> Result<T>) -> Result<T> {
        let keyed = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
        f(keyed.as_ref().ok_or_else(|| Error::Internal("a windowed view without its keyed rows".into()))?)
    }

    /// Drops the applied rows of an interval join that no row at or after `watermark_us`
    /// can match (see [`interval`]). Filtering cannot fail but on a column of the wrong
    /// type, which planning rules out; then the rows are kept.
    pub(super) fn let_go(&self, watermark_us: Option<i64>) {
        let Some(watermark_us) = watermark_us else { return };
        let retention = self.retention.lock().unwrap_or_else(|p| p.into_inner());
        if !retention.bounds_any() {
            return;
        }
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let Some(applied) = applied.as_mut() else { return };
        for (source, rows) in applied.iter_mut().enumerate() {
            match retention.keep(source, rows, watermark_us) {
                Ok(kept) => *rows = kept,
                Err(e) => warn!(view = self.view.name(), error = %e, "a join's rows were not let go"),
            }
        }
    }

    /// How many source rows the view holds in memory: a join's applied rows, a windowed
    /// view's rows per key (`None`: it holds none).
    pub(super) fn held_rows(&self) -> Option<i64> {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let joined = applied.as_ref().map(|sources| sources.iter().flatten().map(|b| b.num_rows() as i64).sum::<i64>());
        let keyed = self.keyed.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(KeyedRows::kept_rows);
        match (joined, keyed) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        }
    }

    /// The rows applied so far per source, for a step of `source` (a change log's current
    /// rows made into one batch if they changed since).
    pub(super) fn applied_for(&self, source: usize) -> Result<Vec<Vec<RecordBatch>>> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let Some(applied) = applied.as_mut() else { return Ok(Vec::new()) };
        let current = self.applied_current.lock().unwrap_or_else(|p| p.into_inner());
        for (s, rows) in current.iter().enumerate() {
            if let (Some(rows), true) = (rows, s != source && applied[s].is_empty()) {
                applied[s] = vec![rows.batch()?];
            }
        }
        Ok(applied.clone())
    }
}

/// The latest rows per key of a key-compacted table, none read yet.
pub(super) fn latest_by_key(table: &StreamTable) -> Result<LatestByKey> {
    let layout = inputs::layout(table);
    let key = layout.index_of(crate::compacted::compaction_key(table))?;
    LatestByKey::new(layout, key)
}

/// Applied rows kept for joins pile up one small batch per step: merged into one when
/// there are this many.
const APPLIED_BATCHES_MAX: usize = 64;

fn compact(rows: &mut Vec<RecordBatch>) {
    if rows.len() > APPLIED_BATCHES_MAX {
        // Merging is an optimisation: batches that do not merge stay as they are.
        if let Ok(merged) = arrow::compute::concat_batches(&rows[0].schema(), rows.iter()) {
            *rows = vec![merged];
        }
    }
}

/// A step's change to a joining view's applied rows (see `Maintainer::prepare_applied`).
pub(super) enum AppliedUpdate {
    Nothing,
    /// Rows of a table, appended.
    Rows(Vec<RecordBatch>),
    /// A change log's current rows, changed.
    Current(rows::MultisetChange),
}
