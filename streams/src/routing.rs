//! Routing rows to partitions: by a hash of the key column, or round-robin without a key.
//!
//! The hash is Kafka's default partitioner (murmur2 of the key bytes, made positive,
//! modulo the partition count), so a Kafka producer and an SQL INSERT with the same key
//! land in the same partition.

use arrow::array::{Array, ArrayRef, StringArray, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::DataType;

use crate::error::Result;

/// The rows of one append bound for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionRows {
    /// A contiguous run of the input (round-robin): taken without copying.
    Range { start: usize, len: usize },
    /// Scattered rows (hashed keys), in input order.
    Indices(Vec<u32>),
}

impl PartitionRows {
    pub fn len(&self) -> usize {
        match self {
            PartitionRows::Range { len, .. } => *len,
            PartitionRows::Indices(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// These rows of `array`.
    pub fn cut(&self, array: &ArrayRef) -> Result<ArrayRef> {
        Ok(match self {
            PartitionRows::Range { start, len } => array.slice(*start, *len),
            PartitionRows::Indices(rows) => take(array.as_ref(), &UInt32Array::from(rows.clone()), None)?,
        })
    }
}

/// Which rows go to which partition, and the key text of each row.
pub struct Routing {
    /// `rows[p]`: the rows bound for partition `p`.
    pub rows: Vec<PartitionRows>,
    /// The key of each row as text, when the table has a key column.
    pub keys: Option<ArrayRef>,
    /// How many partitions the round-robin cursor advanced (0 when routed by key).
    pub round_robin_steps: u64,
}

/// Without a key, rows go to partitions in contiguous runs of at least this many rows (or
/// all of them, when fewer): small appends stay whole, like Kafka's sticky partitioner,
/// and no partition gets slivers that the tail would have to merge again.
pub const MIN_ROUND_ROBIN_RUN: usize = 8192;

/// Routes by the key column when there is one. Without a key, the rows are cut into up to
/// `partitions` contiguous runs of near-equal length (at least [`MIN_ROUND_ROBIN_RUN`]
/// rows), the first going to partition `rr_start % partitions`: consecutive appends rotate
/// over the partitions, and a large batch spreads evenly without copying its columns.
pub fn route(key: Option<&ArrayRef>, num_rows: usize, partitions: u32, rr_start: u64) -> Result<Routing> {
    let n = partitions.max(1) as usize;
    match key {
        Some(array) => {
            let text = cast(array, &DataType::Utf8)?;
            let strings = text
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8 yields a StringArray");
            let mut rows = vec![Vec::new(); n];
            for i in 0..num_rows {
                rows[partition_of_key(strings, i, n)].push(i as u32);
            }
            let rows = rows.into_iter().map(PartitionRows::Indices).collect();
            Ok(Routing { rows, keys: Some(text), round_robin_steps: 0 })
        }
        None => {
            let runs = n.min((num_rows / MIN_ROUND_ROBIN_RUN).max(1)).min(num_rows);
            let mut rows = vec![PartitionRows::Range { start: 0, len: 0 }; n];
            let mut start = 0;
            for run in 0..runs {
                // The first `num_rows % runs` runs take one row more.
                let len = num_rows / runs + usize::from(run < num_rows % runs);
                rows[((rr_start + run as u64) % n as u64) as usize] = PartitionRows::Range { start, len };
                start += len;
            }
            Ok(Routing { rows, keys: None, round_robin_steps: runs as u64 })
        }
    }
}

fn partition_of_key(keys: &StringArray, row: usize, partitions: usize) -> usize {
    if keys.is_null(row) {
        // Kafka sends null keys round-robin; a deterministic home keeps SQL simple.
        return 0;
    }
    (to_positive(murmur2(keys.value(row).as_bytes())) as usize) % partitions
}

fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn same_key_same_partition_and_round_robin_spreads() {
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a", "c", "a"]));
        let r = route(Some(&keys), 5, 4, 0).unwrap();
        let holds = |rows: &PartitionRows, i: u32| matches!(rows, PartitionRows::Indices(r) if r.contains(&i));
        let home = r.rows.iter().position(|rows| holds(rows, 0)).unwrap();
        assert!(holds(&r.rows[home], 2) && holds(&r.rows[home], 4));
        assert_eq!(r.rows.iter().map(PartitionRows::len).sum::<usize>(), 5);

        let range = |start, len| PartitionRows::Range { start, len };
        let run = MIN_ROUND_ROBIN_RUN;
        let big = route(None, 3 * run + 1, 4, 1).unwrap();
        assert_eq!(big.rows, vec![range(0, 0), range(0, run + 1), range(run + 1, run), range(2 * run + 1, run)]);
        assert_eq!(big.round_robin_steps, 3);
        let huge = route(None, 10 * run, 4, 3).unwrap();
        assert!(huge.rows.iter().all(|r| r.len() == 10 * run / 4));
        // Small appends stay whole and rotate.
        let small = route(None, 10, 4, 6).unwrap();
        assert_eq!(small.rows[2], range(0, 10));
        assert_eq!(small.round_robin_steps, 1);
        assert!(route(None, 0, 4, 0).unwrap().rows.iter().all(PartitionRows::is_empty));
    }
}
