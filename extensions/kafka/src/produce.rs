//! Produce: record batches in, one durable append out.
//!
//! Every partition's records are checked and decoded first (CRC, compression, the
//! table's columns); the partitions that passed are then appended together as one WAL
//! record, so one fsync covers the whole request. A partition whose batch is refused
//! gets an error code and none of its records are written; the others are unaffected.
//! With `acks=1` or `acks=all` the response leaves after the durable acknowledgement (a
//! single node: both mean the same); with `acks=0` no response is sent at all. The wait for
//! the acknowledgement is returned to the connection rather than awaited here, so the
//! connection reads and queues the client's next request meanwhile and one fsync covers
//! several requests (see `connection.rs`).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use kafka_protocol::ResponseError;
use streamhouse_streams::PartitionAppend;
use tracing::warn;

use crate::idempotence::{BatchSpan, Verdict};
use crate::records::{to_rows, RecordError, SchemaLookup};
use crate::topics::{self, lookup_or_create};
use crate::Broker;

/// Records one partition of one request may declare: a guard against a forged count
/// making the decoder reserve memory for billions of records.
pub const MAX_RECORDS_PER_PARTITION: i32 = 1_000_000;

/// One partition of the request, with its outcome once known.
struct Slot {
    topic: usize,
    partition: i32,
    outcome: Result<i64, Refusal>,
}

struct Refusal {
    code: ResponseError,
    message: String,
    record: Option<usize>,
    /// The refusal names a schema id not loaded yet (see `decode_with_schemas`).
    missing_schema: Option<u32>,
}

impl Refusal {
    fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into(), record: None, missing_schema: None }
    }
}

/// What is left of a Produce once its rows are queued: the wait for durability, then the
/// response (`None` for `acks=0`). Owns everything, so the connection can hold it while it
/// reads the next request.
pub type PendingResponse = Pin<Box<dyn Future<Output = Option<ProduceResponse>> + Send>>;

/// Decodes a Produce and queues its rows in the WAL, in request order; the returned
/// future finishes it.
pub async fn start(broker: &Broker, request: ProduceRequest, _version: i16) -> PendingResponse {
    let acks = request.acks;
    let mut names = Vec::new();
    let mut slots: Vec<Slot> = Vec::new();
    // Decoded partitions, before the idempotence check: (slot, table id, rows, span).
    let mut decoded: Vec<(usize, i64, PartitionAppend, Option<BatchSpan>)> = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.as_str().to_string();
        let table = lookup_or_create(broker, &name, true).await;
        names.push(topic.name.clone());
        for data in topic.partition_data {
            let slot = slots.len();
            let outcome = match &table {
                Err((code, message)) => Err(Refusal::new(*code, message.clone())),
                Ok(table) => match decode_with_schemas(broker, table, data.index, data.records).await {
                    Ok(Some((append, span))) => {
                        decoded.push((slot, table.id(), append, span));
                        Ok(-1)
                    }
                    Ok(None) => Ok(broker.streams().partition_bounds(table, data.index as u32).map(|b| b.high_watermark).unwrap_or(0)),
                    Err(refusal) => Err(refusal),
                },
            };
            slots.push(Slot { topic: t, partition: data.index, outcome });
        }
    }
    // Idempotent batches are checked and remembered in one step with the offsets being
    // assigned, so a retry arriving on another connection meanwhile is seen as a duplicate.
    let _sequencing = match decoded.iter().any(|d| d.3.is_some()) {
        true => Some(broker.producers.sequencing.lock().await),
        false => None,
    };
    let mut appends: Vec<(usize, PartitionAppend)> = Vec::new();
    let mut spans: Vec<(usize, i64, i32, BatchSpan)> = Vec::new();
    for (slot, table_id, append, span) in decoded {
        let partition = append.partition as i32;
        match span.map(|s| (s, broker.producers.check(table_id, partition, &s))) {
            Some((_, Verdict::Duplicate(base))) => slots[slot].outcome = Ok(base),
            Some((_, Verdict::Refuse(code))) => {
                slots[slot].outcome =
                    Err(Refusal::new(code, "the producer's sequence number or epoch does not follow its last batch"))
            }
            Some((s, Verdict::Append)) => {
                spans.push((slot, table_id, partition, s));
                appends.push((slot, append));
            }
            None => appends.push((slot, append)),
        }
    }
    let (indices, writes): (Vec<usize>, Vec<PartitionAppend>) = appends.into_iter().unzip();
    let mut in_flight = None;
    if !writes.is_empty() {
        match broker.streams().begin_append_to_partitions(writes).await {
            Ok(queued) => {
                for (slot, base) in indices.iter().zip(&queued.base_offsets) {
                    slots[*slot].outcome = Ok(*base);
                }
                for (slot, table_id, partition, span) in &spans {
                    if let Ok(base) = slots[*slot].outcome {
                        broker.producers.record(*table_id, *partition, span, base);
                    }
                }
                in_flight = Some(queued);
            }
            Err(e) => refuse(&mut slots, &indices, &e),
        }
    }
    drop(_sequencing);
    let producers = broker.producers.clone();
    Box::pin(async move {
        if let Some(queued) = in_flight {
            if let Err(e) = queued.durable().await {
                // Not durable: a retry of these batches must be written again.
                for (_, table_id, partition, span) in &spans {
                    producers.forget(*table_id, *partition, span);
                }
                refuse(&mut slots, &indices, &e);
            }
        }
        (acks != 0).then(|| response(names, slots))
    })
}

/// Marks the appended partitions as failed.
fn refuse(slots: &mut [Slot], appended: &[usize], e: &streamhouse_streams::Error) {
    warn!(error = %e, "Kafka produce failed");
    let code = if e.is_record_too_large() { ResponseError::MessageTooLarge } else { ResponseError::KafkaStorageError };
    for slot in appended {
        slots[*slot].outcome = Err(Refusal::new(code, e.to_string()));
    }
}

fn response(names: Vec<TopicName>, slots: Vec<Slot>) -> ProduceResponse {
    let mut responses: Vec<TopicProduceResponse> = names
        .into_iter()
        .map(|name| TopicProduceResponse::default().with_name(name))
        .collect();
    for slot in slots {
        let mut p = PartitionProduceResponse::default().with_index(slot.partition).with_log_append_time_ms(-1);
        match slot.outcome {
            Ok(base) => p.base_offset = base,
            Err(r) => {
                p.error_code = r.code.code();
                p.base_offset = -1;
                p.error_message = Some(StrBytes::from_string(r.message.clone()));
                if let Some(i) = r.record {
                    p.record_errors = vec![BatchIndexAndErrorMessage::default()
                        .with_batch_index(i as i32)
                        .with_batch_index_error_message(Some(StrBytes::from_string(r.message)))];
                }
            }
        }
        responses[slot.topic].partition_responses.push(p);
    }
    ProduceResponse::default().with_responses(responses)
}

/// The rows of one partition's record batches, ready to append (`None`: no records),
/// with the producer's sequence span when the producer is idempotent.
/// Distinct registered schemas one partition's records may name that are loaded from the
/// catalog before the batch is refused.
const MAX_SCHEMAS_LOADED_PER_PARTITION: usize = 8;

/// [`decode`], loading from the catalog each registered schema this process has not seen
/// yet (registered through another node) and decoding again.
async fn decode_with_schemas(
    broker: &Broker,
    table: &std::sync::Arc<streamhouse_streams::StreamTable>,
    partition: i32,
    records: Option<Bytes>,
) -> Result<Option<(PartitionAppend, Option<BatchSpan>)>, Refusal> {
    let lookup = |id: u32| broker.registry.cached(id);
    let mut loaded = 0;
    loop {
        match decode(table, partition, records.clone(), &lookup) {
            Err(refusal @ Refusal { missing_schema: Some(_), .. }) if loaded == MAX_SCHEMAS_LOADED_PER_PARTITION => return Err(refusal),
            Err(refusal @ Refusal { missing_schema: Some(id), .. }) => match broker.registry.schema(i64::from(id)).await {
                Ok(_) => loaded += 1,
                Err(streamhouse_registry::RegistryError::SchemaNotFound(_)) => return Err(refusal),
                // The catalog failed, not the record: a retriable error.
                Err(e) => return Err(Refusal::new(ResponseError::KafkaStorageError, format!("schema {id}: {e}"))),
            },
            outcome => return outcome,
        }
    }
}

fn decode(
    table: &std::sync::Arc<streamhouse_streams::StreamTable>,
    partition: i32,
    records: Option<Bytes>,
    schemas: SchemaLookup,
) -> Result<Option<(PartitionAppend, Option<BatchSpan>)>, Refusal> {
    if !topics::has_partition(table, partition) {
        return Err(Refusal::new(
            ResponseError::UnknownTopicOrPartition,
            format!("topic {} has {} partitions; there is no partition {partition}", topics::topic_name(table), table.partition_count()),
        ));
    }
    if table.options().materialized.is_some() {
        return Err(Refusal::new(
            ResponseError::PolicyViolation,
            format!("{} is a materialized view: only its maintenance writes it", topics::topic_name(table)),
        ));
    }
    let Some(mut bytes) = records else { return Ok(None) };
    let (records, span) = decode_batches(&mut bytes)?;
    if records.is_empty() {
        return Ok(None);
    }
    let (rows, keys) = to_rows(topics::kind(table), &table.schema(), &records, schemas).map_err(|e: RecordError| Refusal {
        code: ResponseError::InvalidRecord,
        message: e.message,
        record: e.index,
        missing_schema: e.unknown_schema,
    })?;
    Ok(Some((PartitionAppend { table: table.clone(), partition: partition as u32, rows, keys }, span)))
}

/// Every record of the batches, checked (CRC, sizes) and decompressed, and the
/// producer's sequence span when it is idempotent.
fn decode_batches(bytes: &mut Bytes) -> Result<(Vec<Record>, Option<BatchSpan>), Refusal> {
    let corrupt = |e: anyhow::Error| Refusal::new(ResponseError::CorruptMessage, format!("record batch does not decode: {e:#}"));
    let infos = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).map_err(corrupt)?;
    let declared = infos.iter().try_fold(0i32, |sum, i| if i.record_count < 0 { None } else { sum.checked_add(i.record_count) });
    match declared {
        Some(n) if n <= MAX_RECORDS_PER_PARTITION => {}
        _ => {
            return Err(Refusal::new(
                ResponseError::CorruptMessage,
                format!("the batches declare more than {MAX_RECORDS_PER_PARTITION} records for one partition"),
            ))
        }
    }
    if infos.iter().any(|i| i.transactional || i.control) {
        return Err(Refusal::new(ResponseError::UnsupportedForMessageFormat, "transactional batches are not supported"));
    }
    let span = match infos.first() {
        Some(first) if first.producer_id >= 0 => {
            if infos.iter().any(|i| i.producer_id != first.producer_id || i.producer_epoch != first.producer_epoch) {
                return Err(Refusal::new(ResponseError::InvalidRecord, "batches of one partition from different producers"));
            }
            Some(BatchSpan {
                producer_id: first.producer_id,
                epoch: first.producer_epoch,
                first_sequence: first.base_sequence,
                records: declared.unwrap_or(0),
            })
        }
        _ => None,
    };
    let records = crate::decompress::decode_batches(bytes, crate::decompress::MAX_DECOMPRESSED_BYTES).map_err(corrupt)?;
    Ok((records, span))
}
