//! The payload of one WAL record: the rows one append adds to one or more partitions.
//!
//! A record is the unit of atomicity: a multi-row INSERT, a COPY batch or a transaction's
//! writes become one record, so after a crash either all of it is replayed or none.
//!
//! Layout (little endian): `MAGIC u32, timestamp_us i64, entry_count u32`, then per entry
//! `table_id i64, partition u32, base_offset i64, message_len u32, message, body_len u32,
//! body`, where message + body are one Arrow IPC record-batch message without its schema:
//! the reader knows each table's schema from the catalog, and encoding the schema into
//! every single-row INSERT cost more than the row. The rows are in the *WAL layout*
//! ([`crate::columns::wal_schema`]: the user's columns and `_key`); `_partition`,
//! `_offset` and `_timestamp` follow from the entry header and the record's timestamp.
//!
//! A record is built in two steps so that the expensive part runs outside the append lock:
//! [`RecordBuilder::add`] encodes rows, then, under the lock, the base offsets and the
//! timestamp are patched in ([`RecordBuilder::set_base_offset`], [`RecordBuilder::finish`]).

use std::collections::HashMap;

use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::read_record_batch;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow::ipc::root_as_message;
use arrow::record_batch::RecordBatch;

use streamhouse_wal::Payload;

use crate::error::{Error, Result};

const MAGIC: u32 = 0x5348_5232; // "SHR2"
const TIMESTAMP_AT: usize = 4;
const HEADER_LEN: usize = 16;

/// Rows of one partition read back from a record, in the WAL layout.
#[derive(Debug, Clone)]
pub struct RecordEntry {
    pub table_id: i64,
    pub partition: u32,
    pub base_offset: i64,
    pub batch: RecordBatch,
}

/// A decoded record.
#[derive(Debug)]
pub struct Record {
    pub timestamp_us: i64,
    pub entries: Vec<RecordEntry>,
}

/// IPC bodies at least this large become payload parts of their own instead of being
/// copied into the record's buffer (see [`Payload`]).
const SEPARATE_BODY_BYTES: usize = 64 * 1024;

/// Encodes a record entry by entry; see the module documentation.
pub struct RecordBuilder {
    /// Finished parts of the payload; `out` continues after them.
    parts: Vec<Vec<u8>>,
    out: Vec<u8>,
    /// Where each entry's base offset is: (index of the part, byte position in it).
    base_offset_at: Vec<(usize, usize)>,
}

impl RecordBuilder {
    /// `capacity`: the expected size of the rows (sizes the buffer for small records).
    pub fn new(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(HEADER_LEN + capacity.min(SEPARATE_BODY_BYTES));
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        RecordBuilder { parts: Vec::new(), out, base_offset_at: Vec::new() }
    }

    /// Adds one partition's rows (WAL layout); returns the entry's index.
    pub fn add(&mut self, table_id: i64, partition: u32, batch: &RecordBatch) -> Result<usize> {
        let (dictionaries, encoded) = IpcDataGenerator::default().encode(
            batch,
            &mut DictionaryTracker::new(false),
            &IpcWriteOptions::default(),
            &mut IpcWriteContext::default(),
        )?;
        if !dictionaries.is_empty() {
            return Err(Error::SchemaMismatch("dictionary-encoded columns cannot be stored".into()));
        }
        self.out.extend_from_slice(&table_id.to_le_bytes());
        self.out.extend_from_slice(&partition.to_le_bytes());
        self.base_offset_at.push((self.parts.len(), self.out.len()));
        self.out.extend_from_slice(&0i64.to_le_bytes());
        self.out.extend_from_slice(&(encoded.ipc_message.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&encoded.ipc_message);
        self.out.extend_from_slice(&(encoded.arrow_data.len() as u32).to_le_bytes());
        if encoded.arrow_data.len() >= SEPARATE_BODY_BYTES {
            self.parts.push(std::mem::take(&mut self.out));
            self.parts.push(encoded.arrow_data);
        } else {
            self.out.extend_from_slice(&encoded.arrow_data);
        }
        Ok(self.base_offset_at.len() - 1)
    }

    pub fn set_base_offset(&mut self, entry: usize, base_offset: i64) {
        let (part, at) = self.base_offset_at[entry];
        let bytes = if part == self.parts.len() { &mut self.out } else { &mut self.parts[part] };
        bytes[at..at + 8].copy_from_slice(&base_offset.to_le_bytes());
    }

    pub fn finish(mut self, timestamp_us: i64) -> Payload {
        let count = self.base_offset_at.len() as u32;
        self.parts.push(self.out);
        let header = &mut self.parts[0];
        header[TIMESTAMP_AT..TIMESTAMP_AT + 8].copy_from_slice(&timestamp_us.to_le_bytes());
        header[12..16].copy_from_slice(&count.to_le_bytes());
        let mut payload = Payload::new();
        for part in self.parts {
            payload.push(part);
        }
        payload
    }
}

/// Decodes a record. `wal_schema_of` gives the WAL layout of a table; entries of tables it
/// does not know (dropped since) are skipped.
pub fn decode(bytes: &[u8], wal_schema_of: impl Fn(i64) -> Option<SchemaRef>) -> Result<Record> {
    let mut r = Reader { bytes, at: 0 };
    if r.u32()? != MAGIC {
        return Err(Error::CorruptRecord("bad record magic".into()));
    }
    let timestamp_us = r.i64()?;
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let table_id = r.i64()?;
        let partition = r.u32()?;
        let base_offset = r.i64()?;
        let message_len = r.u32()? as usize;
        let message = r.take(message_len)?;
        let body_len = r.u32()? as usize;
        let body = r.take(body_len)?;
        let Some(schema) = wal_schema_of(table_id) else { continue };
        let batch = decode_batch(message, body, schema)?;
        entries.push(RecordEntry { table_id, partition, base_offset, batch });
    }
    Ok(Record { timestamp_us, entries })
}

fn decode_batch(message: &[u8], body: &[u8], schema: SchemaRef) -> Result<RecordBatch> {
    let corrupt = |what: &str| Error::CorruptRecord(format!("entry rows: {what}"));
    let message = root_as_message(message).map_err(|e| corrupt(&e.to_string()))?;
    let header = message.header_as_record_batch().ok_or_else(|| corrupt("not a record batch"))?;
    let batch = read_record_batch(&Buffer::from(body), header, schema, &HashMap::new(), None, &message.version())
        .map_err(|e| corrupt(&e.to_string()))?;
    Ok(batch)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| Error::CorruptRecord("record shorter than its header says".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn round_trip() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            ],
        )
        .unwrap();
        let mut builder = RecordBuilder::new(0);
        let first = builder.add(7, 1, &batch).unwrap();
        let second = builder.add(8, 0, &batch.slice(1, 2)).unwrap();
        let third = builder.add(9, 0, &batch).unwrap();
        builder.set_base_offset(first, 10);
        builder.set_base_offset(second, 20);
        builder.set_base_offset(third, 30);
        let bytes = builder.finish(1234).to_vec();
        // Table 9 has been dropped: its entry is skipped.
        let schema_of = |id: i64| (id != 9).then(|| schema.clone());
        let record = decode(&bytes, schema_of).unwrap();
        assert_eq!(record.timestamp_us, 1234);
        assert_eq!(record.entries.len(), 2);
        assert_eq!((record.entries[0].table_id, record.entries[0].partition), (7, 1));
        assert_eq!(record.entries[0].base_offset, 10);
        assert_eq!(record.entries[0].batch, batch);
        assert_eq!(record.entries[1].base_offset, 20);
        assert_eq!(record.entries[1].batch, batch.slice(1, 2));
        assert!(decode(&[1, 2, 3], schema_of).is_err());
        assert!(decode(&bytes[..bytes.len() - 3], schema_of).is_err());
    }

    #[test]
    fn large_bodies_become_separate_parts_and_decode_the_same() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let big = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(0..20_000))]).unwrap();
        let small = big.slice(5, 3);
        let mut builder = RecordBuilder::new(1 << 20);
        let entries = [builder.add(1, 0, &small).unwrap(), builder.add(1, 1, &big).unwrap(), builder.add(1, 2, &small).unwrap()];
        for (i, entry) in entries.into_iter().enumerate() {
            builder.set_base_offset(entry, 100 * i as i64);
        }
        let payload = builder.finish(99);
        assert_eq!(payload.parts().len(), 3, "header and small entry, the big body, the last small entry");
        let record = decode(&payload.to_vec(), |_| Some(schema.clone())).unwrap();
        assert_eq!(record.timestamp_us, 99);
        let got: Vec<(u32, i64, RecordBatch)> = record.entries.into_iter().map(|e| (e.partition, e.base_offset, e.batch)).collect();
        assert_eq!(got, vec![(0, 0, small.clone()), (1, 100, big), (2, 200, small)]);
    }
}
