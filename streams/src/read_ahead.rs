//! Decoded rows of recently read segment spans, so that a reader moving through a segment
//! in small steps (a Kafka consumer fetching 1 MB at a time, a subscription, a view
//! catching up) decodes each part of it once instead of reopening the file and
//! re-decoding the pages before its position on every step.
//!
//! A read that misses decodes [`READ_AHEAD_ROWS`] from its position and keeps them; the
//! next sequential reads are slices of those. Segments never change once written, so
//! an entry is valid as long as it exists; entries leave oldest first when the cache
//! would exceed its byte budget.

use std::collections::VecDeque;
use std::sync::Mutex;

use arrow::array::RecordBatch;

/// Rows decoded from a segment when a read misses: eight 8192-row Kafka fetches' worth.
pub(crate) const READ_AHEAD_ROWS: usize = 64 * 1024;
/// Decoded Arrow bytes per stored (compressed Parquet) byte, roughly, for sizing a span
/// before decoding it.
pub(crate) const DECODED_PER_STORED_BYTE: usize = 3;
/// Decoded bytes kept for all partitions together.
pub(crate) const READ_AHEAD_CACHE_BYTES: usize = 64 * 1024 * 1024;

struct Span {
    segment: String,
    first_offset: i64,
    rows: usize,
    bytes: usize,
    batches: Vec<RecordBatch>,
}

pub(crate) struct ReadAhead {
    spans: Mutex<VecDeque<Span>>,
    max_bytes: usize,
}

impl ReadAhead {
    pub(crate) fn new(max_bytes: usize) -> Self {
        ReadAhead { spans: Mutex::new(VecDeque::new()), max_bytes }
    }

    /// Up to `max_rows` rows of `segment` from offset `from`, if a kept span holds `from`.
    pub(crate) fn get(&self, segment: &str, from: i64, max_rows: usize) -> Option<Vec<RecordBatch>> {
        let spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        let span = spans
            .iter()
            .find(|s| s.segment == segment && s.first_offset <= from && from < s.first_offset + s.rows as i64)?;
        Some(slice(&span.batches, (from - span.first_offset) as usize, max_rows))
    }

    /// Whether a span of `bytes` decoded bytes would be kept: a quarter of the budget at
    /// most, so very wide rows do not evict everyone else (their reads decode only what
    /// they return).
    pub(crate) fn would_keep(&self, bytes: usize) -> bool {
        bytes <= self.max_bytes / 4
    }

    /// Keeps `batches`, the rows of `segment` from `first_offset` on.
    pub(crate) fn insert(&self, segment: &str, first_offset: i64, batches: &[RecordBatch]) {
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 || !self.would_keep(bytes) {
            return;
        }
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        spans.retain(|s| !(s.segment == segment && s.first_offset == first_offset));
        let mut total: usize = spans.iter().map(|s| s.bytes).sum::<usize>() + bytes;
        while total > self.max_bytes {
            let Some(oldest) = spans.pop_front() else { break };
            total -= oldest.bytes;
        }
        spans.push_back(Span { segment: segment.to_string(), first_offset, rows, bytes, batches: batches.to_vec() });
    }
}

/// Rows `skip ..` of `batches`, at most `max_rows` (zero-copy slices).
pub(crate) fn slice(batches: &[RecordBatch], mut skip: usize, max_rows: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut left = max_rows;
    for batch in batches {
        if left == 0 {
            break;
        }
        if skip >= batch.num_rows() {
            skip -= batch.num_rows();
            continue;
        }
        let len = (batch.num_rows() - skip).min(left);
        out.push(batch.slice(skip, len));
        left -= len;
        skip = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn rows(from: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("o", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(from..from + n))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    #[test]
    fn sequential_reads_are_slices_of_the_kept_span() {
        let cache = ReadAhead::new(1 << 20);
        cache.insert("a", 100, &[rows(100, 5), rows(105, 5)]);
        assert_eq!(values(&cache.get("a", 103, 4).unwrap()), [103, 104, 105, 106]);
        assert_eq!(values(&cache.get("a", 107, 100).unwrap()), [107, 108, 109]);
        assert!(cache.get("a", 110, 1).is_none(), "past the span");
        assert!(cache.get("a", 99, 1).is_none(), "before the span");
        assert!(cache.get("b", 103, 1).is_none(), "another segment");
    }

    #[test]
    fn oldest_spans_leave_first_within_the_budget() {
        let one = rows(0, 1000);
        let budget = one.get_array_memory_size() * 4 + 100;
        let cache = ReadAhead::new(budget);
        for (i, segment) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            cache.insert(segment, 0, &[rows(i as i64 * 1000, 1000)]);
        }
        assert!(cache.get("a", 0, 1).is_none(), "evicted");
        assert_eq!(values(&cache.get("e", 0, 1).unwrap()), [4000]);
        assert_eq!(values(&cache.get("b", 999, 5).unwrap()), [1999]);
    }
}
