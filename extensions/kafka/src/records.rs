//! Kafka records ↔ table rows.
//!
//! Raw topics keep each record whole: key, value and headers as bytes, the producer's
//! timestamp. Typed tables take each value as one JSON object (field per column, decoded
//! with the table's types by arrow-json) and give rows back as JSON objects; the record
//! key becomes the row's `_key`. A value in the Confluent wire format (a zero byte, a
//! registered schema's id, then Avro or JSON) is first decoded with that schema. A batch
//! with any record that does not decode is refused whole.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, ListArray, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, Schema, TimestampMicrosecondType};
use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use streamhouse_registry::{framed, ParsedSchema};
use streamhouse_streams::{KEY_COLUMN, OFFSET_COLUMN, TIMESTAMP_COLUMN};

use crate::topics::{header_fields, header_type, TopicKind};

/// Why a produced batch was refused, with the index of the offending record when known.
#[derive(Debug)]
pub struct RecordError {
    pub index: Option<usize>,
    pub message: String,
    /// A framed value named a schema id this process has not loaded (it may exist in the
    /// catalog: the caller loads it and tries again).
    pub unknown_schema: Option<u32>,
}

impl RecordError {
    fn at(index: usize, message: impl Into<String>) -> Self {
        RecordError { index: Some(index), message: message.into(), unknown_schema: None }
    }
    fn batch(message: impl Into<String>) -> Self {
        RecordError { index: None, message: message.into(), unknown_schema: None }
    }
}

/// Finds a registered schema by id among those already loaded.
pub type SchemaLookup<'a> = &'a dyn Fn(u32) -> Option<Arc<ParsedSchema>>;

/// The rows for `records` in the table's schema, and the `_key` of each row.
pub fn to_rows(kind: TopicKind, schema: &Arc<Schema>, records: &[Record], schemas: SchemaLookup) -> Result<(RecordBatch, Option<ArrayRef>), RecordError> {
    match kind {
        TopicKind::Raw => Ok((raw_rows(schema, records)?, None)),
        TopicKind::Typed => typed_rows(schema, records, schemas),
    }
}

fn raw_rows(schema: &Arc<Schema>, records: &[Record]) -> Result<RecordBatch, RecordError> {
    let keys: BinaryArray = records.iter().map(|r| r.key.as_deref()).collect();
    let values: BinaryArray = records.iter().map(|r| r.value.as_deref()).collect();
    let mut names: Vec<&str> = Vec::new();
    let mut header_values: Vec<Option<&[u8]>> = Vec::new();
    let mut offsets = Vec::with_capacity(records.len() + 1);
    offsets.push(0i32);
    for r in records {
        for (name, value) in &r.headers {
            names.push(name.as_str());
            header_values.push(value.as_deref());
        }
        offsets.push(names.len() as i32);
    }
    let entries = StructArray::new(
        header_fields(),
        vec![Arc::new(StringArray::from(names)) as ArrayRef, Arc::new(BinaryArray::from(header_values))],
        None,
    );
    let headers = ListArray::new(
        Arc::new(Field::new("item", header_type(), false)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(entries),
        None,
    );
    let timestamps: TimestampMicrosecondArray = records
        .iter()
        .map(|r| (r.timestamp >= 0).then(|| r.timestamp.saturating_mul(1000)))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone("UTC");
    let columns: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(values), Arc::new(headers), Arc::new(timestamps)];
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| RecordError::batch(e.to_string()))
}

fn typed_rows(schema: &Arc<Schema>, records: &[Record], schemas: SchemaLookup) -> Result<(RecordBatch, Option<ArrayRef>), RecordError> {
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        // One more than the records, so a value holding a second object shows as an extra row.
        .with_batch_size(records.len() + 1)
        .build_decoder()
        .map_err(|e| RecordError::batch(e.to_string()))?;
    for (i, r) in records.iter().enumerate() {
        let value = r.value.as_deref().ok_or_else(|| RecordError::at(i, "a record without a value (tombstone) has no row to write"))?;
        let unframed;
        let value = match framed(value) {
            None => value,
            Some((id, payload)) => {
                let Some(writer) = schemas(id) else {
                    return Err(RecordError { unknown_schema: Some(id), ..RecordError::at(i, format!("schema id {id} is not registered")) });
                };
                unframed = writer.payload_to_json(payload).map_err(|e| RecordError::at(i, format!("value with schema id {id}: {e}")))?;
                &unframed[..]
            }
        };
        decoder.decode(value).map_err(|e| RecordError::at(i, format!("value is not a JSON object of the table's columns: {e}")))?;
        if decoder.has_partial_record() || decoder.len() != i + 1 {
            return Err(RecordError::at(i, "value must be exactly one JSON object"));
        }
    }
    let batch = decoder
        .flush()
        .map_err(|e| RecordError::batch(format!("a value does not fit the table's columns: {e}")))?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    // `_key` is text: a binary key could not be given back as it came, so it is refused.
    let mut keys = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        keys.push(match r.key.as_deref() {
            None => None,
            Some(k) => Some(std::str::from_utf8(k).map_err(|_| RecordError::at(i, "a typed table takes UTF-8 record keys only"))?),
        });
    }
    Ok((batch, Some(Arc::new(StringArray::from(keys)))))
}

/// Kafka records for rows in the stored layout (user columns, then system columns).
pub fn to_records(kind: TopicKind, user_columns: usize, batch: &RecordBatch) -> anyhow::Result<Vec<Record>> {
    let offsets = column(batch, OFFSET_COLUMN)?.as_primitive::<arrow::datatypes::Int64Type>().clone();
    let ingest = column(batch, TIMESTAMP_COLUMN)?.as_primitive::<TimestampMicrosecondType>().clone();
    let n = batch.num_rows();
    let mut records = Vec::with_capacity(n);
    let first_offset = if n > 0 { offsets.value(0) } else { 0 };
    // The encoder starts a new record batch whenever `offset - sequence` changes; a
    // sequence of (offset delta - 1) keeps every row in one batch with no sequence (-1).
    let sequence = |offset: i64| ((offset - first_offset) as i32).wrapping_sub(1);
    match kind {
        TopicKind::Raw => {
            let keys = BinaryColumn::new(batch.column(0).as_binary::<i32>());
            let values = BinaryColumn::new(batch.column(1).as_binary::<i32>());
            let headers = batch.column(2).as_list::<i32>();
            // The header entries of all rows, flat; each row's are a range of them.
            let entries = headers.values().as_struct();
            let header_names = entries.column(0).as_string::<i32>();
            let header_values = BinaryColumn::new(entries.column(1).as_binary::<i32>());
            let header_offsets = headers.value_offsets();
            let timestamps = batch.column(3).as_primitive::<TimestampMicrosecondType>();
            for i in 0..n {
                let mut map = IndexMap::new();
                if headers.is_valid(i) {
                    for j in header_offsets[i] as usize..header_offsets[i + 1] as usize {
                        map.insert(StrBytes::from_string(header_names.value(j).to_string()), header_values.get(j));
                    }
                }
                let timestamp_us = if timestamps.is_valid(i) { timestamps.value(i) } else { ingest.value(i) };
                records.push(record(
                    offsets.value(i),
                    sequence(offsets.value(i)),
                    timestamp_us / 1000,
                    keys.get(i),
                    values.get(i),
                    map,
                ));
            }
        }
        TopicKind::Typed => {
            let user = batch.project(&(0..user_columns).collect::<Vec<_>>())?;
            let values = json_lines(&user)?;
            let keys = column(batch, KEY_COLUMN)?;
            let keys = keys.as_string::<i32>();
            for (i, value) in values.into_iter().enumerate() {
                records.push(record(
                    offsets.value(i),
                    sequence(offsets.value(i)),
                    ingest.value(i) / 1000,
                    keys.is_valid(i).then(|| Bytes::copy_from_slice(keys.value(i).as_bytes())),
                    Some(value),
                    IndexMap::new(),
                ));
            }
        }
    }
    Ok(records)
}

/// A binary column whose values are handed out as `Bytes` sharing the Arrow buffer
/// (no copy per record).
struct BinaryColumn<'a> {
    array: &'a BinaryArray,
    data: Bytes,
}

impl<'a> BinaryColumn<'a> {
    fn new(array: &'a BinaryArray) -> Self {
        BinaryColumn { array, data: Bytes::from_owner(SharedBuffer(array.values().clone())) }
    }

    fn get(&self, i: usize) -> Option<Bytes> {
        let offsets = self.array.value_offsets();
        self.array.is_valid(i).then(|| self.data.slice(offsets[i] as usize..offsets[i + 1] as usize))
    }
}

/// An Arrow buffer as the owner of a `Bytes`.
struct SharedBuffer(arrow::buffer::Buffer);

impl AsRef<[u8]> for SharedBuffer {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

pub(crate) fn record(offset: i64, sequence: i32, timestamp_ms: i64, key: Option<Bytes>, value: Option<Bytes>, headers: IndexMap<StrBytes, Option<Bytes>>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence,
        timestamp: timestamp_ms,
        key,
        value,
        headers,
    }
}

/// One JSON object per row (nulls written out, so every column is present).
fn json_lines(batch: &RecordBatch) -> anyhow::Result<Vec<Bytes>> {
    let mut out = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut out);
        writer.write(batch)?;
        writer.finish()?;
    }
    let all = Bytes::from(out);
    // JSON text escapes newlines inside strings, so each line is one row.
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut start = 0;
    for (i, b) in all.iter().enumerate() {
        if *b == b'\n' {
            rows.push(all.slice(start..i));
            start = i + 1;
        }
    }
    anyhow::ensure!(rows.len() == batch.num_rows(), "JSON writer gave {} lines for {} rows", rows.len(), batch.num_rows());
    Ok(rows)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| anyhow::anyhow!("stored rows lack {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::raw_topic_schema;
    use arrow::datatypes::DataType;

    fn produced(key: Option<&str>, value: Option<&str>, headers: &[(&str, Option<&str>)]) -> Record {
        let headers = headers
            .iter()
            .map(|(k, v)| (StrBytes::from_string(k.to_string()), v.map(|v| Bytes::from(v.to_string()))))
            .collect();
        record(0, -1, 1_700_000_000_123, key.map(|k| Bytes::from(k.to_string())), value.map(|v| Bytes::from(v.to_string())), headers)
    }

    #[test]
    fn raw_rows_keep_everything() {
        let schema = Arc::new(raw_topic_schema());
        let records = vec![produced(Some("k"), Some("v"), &[("a", Some("1")), ("b", None)]), produced(None, None, &[])];
        let (batch, keys) = to_rows(TopicKind::Raw, &schema, &records, &|_| None).unwrap();
        assert!(keys.is_none());
        assert_eq!(batch.num_rows(), 2);
        let headers = batch.column(2).as_list::<i32>();
        assert_eq!(headers.value_length(0), 2, "every header is kept, a null value too");
        assert_eq!(headers.value_length(1), 0);
        assert!(batch.column(0).is_null(1) && batch.column(1).is_null(1));
    }

    #[test]
    fn typed_rows_refuse_a_bad_record_by_index() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
        let ok = vec![produced(Some("1"), Some(r#"{"id": 1, "name": "a"}"#), &[]), produced(None, Some(r#"{"id": 2}"#), &[])];
        let (batch, keys) = to_rows(TopicKind::Typed, &schema, &ok, &|_| None).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(keys.unwrap().as_string::<i32>().value(0), "1");
        let bad = vec![ok[0].clone(), produced(None, Some("not json"), &[])];
        assert_eq!(to_rows(TopicKind::Typed, &schema, &bad, &|_| None).unwrap_err().index, Some(1));
        let two = vec![produced(None, Some(r#"{"id": 1}{"id": 2}"#), &[])];
        assert_eq!(to_rows(TopicKind::Typed, &schema, &two, &|_| None).unwrap_err().index, Some(0));
        let tombstone = vec![produced(None, None, &[])];
        assert_eq!(to_rows(TopicKind::Typed, &schema, &tombstone, &|_| None).unwrap_err().index, Some(0));
    }
}
