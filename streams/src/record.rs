//! The payload of one WAL record: the rows one append adds to one or more partitions.
//!
//! A record is the unit of atomicity: a multi-row INSERT, a COPY batch or a transaction's
//! writes become one record, so after a crash either all of it is replayed or none.
//! Layout (little endian): `MAGIC u32, entry_count u32`, then per entry
//! `table_id i64, partition u32, base_offset i64, ipc_len u32, ipc bytes` where the bytes
//! are an Arrow IPC stream holding the stored rows (user + system columns).

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

const MAGIC: u32 = 0x5348_5231; // "SHR1"

/// The rows appended to one partition by one record.
#[derive(Debug, Clone)]
pub struct RecordEntry {
    pub table_id: i64,
    pub partition: u32,
    pub base_offset: i64,
    pub batch: RecordBatch,
}

pub fn encode(entries: &[RecordEntry]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + entries.iter().map(|e| e.batch.get_array_memory_size()).sum::<usize>());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.table_id.to_le_bytes());
        out.extend_from_slice(&e.partition.to_le_bytes());
        out.extend_from_slice(&e.base_offset.to_le_bytes());
        let len_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        let start = out.len();
        {
            let mut w = StreamWriter::try_new(&mut out, &e.batch.schema())?;
            w.write(&e.batch)?;
            w.finish()?;
        }
        let len = (out.len() - start) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<Vec<RecordEntry>> {
    let mut r = Reader { bytes, at: 0 };
    if r.u32()? != MAGIC {
        return Err(Error::CorruptRecord("bad record magic".into()));
    }
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let table_id = r.i64()?;
        let partition = r.u32()?;
        let base_offset = r.i64()?;
        let len = r.u32()? as usize;
        let ipc = r.take(len)?;
        let mut reader = StreamReader::try_new(Cursor::new(ipc), None)?;
        let batch = reader
            .next()
            .ok_or_else(|| Error::CorruptRecord("entry without rows".into()))??;
        entries.push(RecordEntry { table_id, partition, base_offset, batch });
    }
    Ok(entries)
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
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            ],
        )
        .unwrap();
        let entries = vec![
            RecordEntry { table_id: 7, partition: 1, base_offset: 10, batch: batch.clone() },
            RecordEntry { table_id: 8, partition: 0, base_offset: 0, batch: batch.slice(1, 2) },
        ];
        let decoded = decode(&encode(&entries).unwrap()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].table_id, 7);
        assert_eq!(decoded[0].base_offset, 10);
        assert_eq!(decoded[0].batch, batch);
        assert_eq!(decoded[1].batch, batch.slice(1, 2));
        assert!(decode(&[1, 2, 3]).is_err());
    }
}
