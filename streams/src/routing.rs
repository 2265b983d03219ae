//! Routing rows to partitions: by a hash of the key column, or round-robin without a key.
//!
//! The hash is Kafka's default partitioner (murmur2 of the key bytes, made positive,
//! modulo the partition count), so a Kafka producer and an SQL INSERT with the same key
//! land in the same partition.

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::error::Result;

/// Which rows go to which partition, and the key text of each row.
pub struct Routing {
    /// `rows[p]` lists the row indices bound for partition `p`, in input order.
    pub rows: Vec<Vec<u32>>,
    /// The key of each row as text, when the table has a key column.
    pub keys: Option<StringArray>,
}

/// Routes by the key column when there is one, else round-robin starting at `rr_start`.
pub fn route(key: Option<&ArrayRef>, num_rows: usize, partitions: u32, rr_start: u64) -> Result<Routing> {
    let n = partitions.max(1) as usize;
    let mut rows = vec![Vec::new(); n];
    let keys = match key {
        Some(array) => {
            let text = cast(array, &DataType::Utf8)?;
            let text = text
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8 yields a StringArray")
                .clone();
            for (i, rows_of) in (0..num_rows).map(|i| (i, partition_of_key(&text, i, n))) {
                rows[rows_of].push(i as u32);
            }
            Some(text)
        }
        None => {
            for i in 0..num_rows {
                rows[((rr_start + i as u64) % n as u64) as usize].push(i as u32);
            }
            None
        }
    };
    Ok(Routing { rows, keys })
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
        let home = r.rows.iter().position(|rows| rows.contains(&0)).unwrap();
        assert!(r.rows[home].contains(&2) && r.rows[home].contains(&4));
        let rr = route(None, 8, 4, 1).unwrap();
        assert_eq!(rr.rows, vec![vec![3, 7], vec![0, 4], vec![1, 5], vec![2, 6]]);
    }
}
