//! Fetch: rows from an offset on, as one Kafka record batch per partition, with a long
//! poll (wait up to `max_wait_ms` until `min_bytes` are ready).
//!
//! Only acknowledged rows are ever returned, and there are no transactions, so
//! read-committed and read-uncommitted consumers see the same thing and the last stable
//! offset is the high watermark. Fetch sessions (KIP-227) are not kept: the response's
//! session id 0 tells clients to send full requests.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
use kafka_protocol::ResponseError;
use streamhouse_streams::StreamTable;
use tracing::warn;

use crate::records::to_records;
use crate::topics::{self, lookup};
use crate::Broker;

/// Longest long poll honoured, whatever the client asks (Kafka clients ask ≤ 500 ms).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Rows read per partition per fetch, at most; the byte limits usually stop earlier.
const MAX_ROWS_PER_PARTITION: usize = 8192;
/// Assumed bytes per row when turning a byte limit into a row count to read.
const MIN_ROW_BYTES: usize = 16;

pub async fn handle(broker: &Broker, request: FetchRequest, _version: i16) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut changes = broker.streams().subscribe_changes();
    loop {
        changes.mark_seen();
        let (response, bytes, any_error) = fetch_once(broker, &request).await;
        // min_bytes 0 answers at once, as Kafka does; otherwise wait for data or the deadline.
        if bytes >= min_bytes || any_error || Instant::now() >= deadline {
            return response;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, changes.changed()).await {
            Ok(true) => {}
            // The deadline passed, or the engine is shutting down.
            Ok(false) | Err(_) => return fetch_once(broker, &request).await.0,
        }
    }
}

/// One pass over the requested partitions: the response, its record bytes, whether any
/// partition answered with an error (which ends the long poll).
async fn fetch_once(broker: &Broker, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut budget = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics_out = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.topic.0.as_str();
        let table = lookup(broker, name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            // The default has empty (not null) records and aborted transactions, as clients
            // (kafka-python) expect; a read replaces the records only when it found some.
            let mut data = PartitionData::default().with_partition_index(p.partition);
            let result = match &table {
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(table) => {
                    let first = total == 0;
                    read(broker, table, p.partition, p.fetch_offset, (p.partition_max_bytes.max(0) as usize).min(budget), first).await
                }
            };
            match result {
                Ok(read) => {
                    data.high_watermark = read.high_watermark;
                    data.last_stable_offset = read.high_watermark;
                    data.log_start_offset = read.start_offset;
                    let len = read.records.as_ref().map_or(0, |r| r.len());
                    total += len;
                    budget = budget.saturating_sub(len);
                    if read.records.is_some() {
                        data.records = read.records;
                    }
                }
                Err(code) => {
                    any_error = true;
                    data.error_code = code.code();
                    data.high_watermark = -1;
                    data.last_stable_offset = -1;
                    data.log_start_offset = -1;
                }
            }
            partitions.push(data);
        }
        topics_out.push(FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions));
    }
    (FetchResponse::default().with_session_id(0).with_responses(topics_out), total, any_error)
}

struct Read {
    records: Option<Bytes>,
    high_watermark: i64,
    start_offset: i64,
}

/// Rows of one partition from `offset` on, encoded, within `max_bytes` — except that the
/// first non-empty partition of a response always gets at least one record, so a record
/// larger than the limits still makes progress (Kafka does the same).
async fn read(
    broker: &Broker,
    table: &std::sync::Arc<StreamTable>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    first: bool,
) -> Result<Read, ResponseError> {
    let streams = broker.streams();
    if !topics::has_partition(table, partition) {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let bounds = streams.partition_bounds(table, partition as u32).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let mut out = Read { records: None, high_watermark: bounds.high_watermark, start_offset: bounds.start_offset };
    if offset < bounds.start_offset || offset > bounds.high_watermark {
        return Err(ResponseError::OffsetOutOfRange);
    }
    if offset == bounds.high_watermark || (max_bytes == 0 && !first) {
        return Ok(out);
    }
    let max_rows = (max_bytes / MIN_ROW_BYTES).clamp(1, MAX_ROWS_PER_PARTITION);
    let read = match streams.read_partition(table, partition as u32, offset, max_rows).await {
        Ok(r) => r,
        Err(e) => {
            warn!(topic = %topics::topic_name(table), partition, error = %e, "Kafka fetch failed");
            return Err(ResponseError::KafkaStorageError);
        }
    };
    let kind = topics::kind(table);
    let user_columns = table.schema().fields().len();
    let mut records = Vec::new();
    let mut size = 0usize;
    for batch in &read.batches {
        let mut batch_records = to_records(kind, user_columns, batch).map_err(|_| ResponseError::KafkaStorageError)?;
        // How many fit; records are large structs, so they are kept in place, not moved one by one.
        let mut fit = 0;
        for record in &batch_records {
            let approx = record.key.as_ref().map_or(0, |k| k.len()) + record.value.as_ref().map_or(0, |v| v.len()) + 24;
            if size + approx > max_bytes && !(records.is_empty() && fit == 0 && first) {
                break;
            }
            size += approx;
            fit += 1;
        }
        let full = fit < batch_records.len();
        batch_records.truncate(fit);
        if records.is_empty() {
            records = batch_records;
        } else {
            records.append(&mut batch_records);
        }
        if full {
            break;
        }
    }
    if records.is_empty() {
        return Ok(out);
    }
    let mut encoded = BytesMut::with_capacity(size + 64);
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut encoded, records.iter(), &options).map_err(|_| ResponseError::KafkaStorageError)?;
    out.records = Some(encoded.freeze());
    Ok(out)
}
