//! Offsets: ListOffsets (earliest, latest, by time) and the consumer-group positions of
//! OffsetCommit / OffsetFetch, which live in the catalog (`sh_consumer_offsets`).

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use streamhouse_catalog::ConsumerOffset;
use tracing::warn;

use crate::groups::CommitCheck;
use crate::topics::{self, lookup};
use crate::Broker;

/// Kafka's `offset.metadata.max.bytes`: longer commit metadata is refused.
const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub async fn list_offsets(broker: &Broker, request: ListOffsetsRequest, _version: i16) -> ListOffsetsResponse {
    let streams = broker.streams();
    let mut topics_out = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let table = lookup(broker, topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let mut out = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_timestamp(-1);
            let bounds = table
                .as_ref()
                .filter(|t| topics::has_partition(t, p.partition_index))
                .and_then(|t| streams.partition_bounds(t, p.partition_index as u32).ok().map(|b| (t, b)));
            match bounds {
                None => {
                    out.error_code = ResponseError::UnknownTopicOrPartition.code();
                    out.offset = -1;
                }
                Some((_, b)) if p.timestamp == LATEST => out.offset = b.high_watermark,
                Some((_, b)) if p.timestamp == EARLIEST => out.offset = b.start_offset,
                Some((_, _)) if p.timestamp < 0 => {
                    out.error_code = ResponseError::UnsupportedVersion.code();
                    out.offset = -1;
                }
                Some((table, b)) => {
                    // The first row ingested at or after the time; none: -1, as Kafka answers.
                    match streams.offset_at_time(table, p.partition_index as u32, p.timestamp.saturating_mul(1000)).await {
                        Ok(offset) if offset < b.high_watermark => {
                            out.offset = offset;
                            out.timestamp = p.timestamp;
                        }
                        Ok(_) => out.offset = -1,
                        Err(e) => {
                            warn!(error = %e, "ListOffsets by time failed");
                            out.error_code = ResponseError::KafkaStorageError.code();
                            out.offset = -1;
                        }
                    }
                }
            }
            partitions.push(out);
        }
        topics_out.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    ListOffsetsResponse::default().with_topics(topics_out)
}

/// A partition of an OffsetCommit: its index, and why it is refused (`None`: stored).
type PartitionCommit = (i32, Option<ResponseError>);

pub async fn offset_commit(broker: &Broker, request: OffsetCommitRequest, _version: i16) -> OffsetCommitResponse {
    let group = request.group_id.0.as_str().to_string();
    let check = broker.groups.check_commit(&group, request.member_id.as_str(), request.generation_id_or_member_epoch);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut to_store = Vec::new();
    let mut outcomes: Vec<(TopicName, Vec<PartitionCommit>)> = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let table = lookup(broker, topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let refused = match (&check, &table) {
                (CommitCheck::Refused(code), _) => Some(*code),
                (CommitCheck::Allowed, _) if p.committed_metadata.as_ref().is_some_and(|m| m.len() > MAX_OFFSET_METADATA_BYTES) => {
                    Some(ResponseError::OffsetMetadataTooLarge)
                }
                (CommitCheck::Allowed, Some(t)) if topics::has_partition(t, p.partition_index) => {
                    to_store.push(ConsumerOffset {
                        group_id: group.clone(),
                        table_id: t.id(),
                        partition: p.partition_index,
                        next_offset: p.committed_offset,
                        metadata: p.committed_metadata.as_ref().map(|m| m.as_str().to_string()),
                        committed_at_ms: now_ms,
                    });
                    None
                }
                (CommitCheck::Allowed, _) => Some(ResponseError::UnknownTopicOrPartition),
            };
            partitions.push((p.partition_index, refused));
        }
        outcomes.push((topic.name, partitions));
    }
    let store_error = match broker.streams().catalog().commit_consumer_offsets(&to_store).await {
        Ok(()) => 0,
        Err(e) => {
            warn!(group, error = %e, "OffsetCommit failed");
            ResponseError::CoordinatorNotAvailable.code()
        }
    };
    let topics_out = outcomes
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, refused)| {
                    let code = refused.map_or(store_error, |e| e.code());
                    OffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics_out)
}

pub async fn offset_fetch(broker: &Broker, request: OffsetFetchRequest, _version: i16) -> OffsetFetchResponse {
    let group = request.group_id.0.as_str();
    let stored = match broker.streams().catalog().consumer_offsets(Some(group)).await {
        Ok(s) => s,
        Err(e) => {
            warn!(group, error = %e, "OffsetFetch failed");
            return OffsetFetchResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code());
        }
    };
    let position = |table_id: i64, partition: i32| {
        let found = stored.iter().find(|o| o.table_id == table_id && o.partition == partition);
        OffsetFetchResponsePartition::default()
            .with_partition_index(partition)
            .with_committed_offset(found.map_or(-1, |o| o.next_offset))
            .with_committed_leader_epoch(-1)
            .with_metadata(Some(StrBytes::from_string(found.and_then(|o| o.metadata.clone()).unwrap_or_default())))
    };
    let topics_out = match request.topics {
        Some(wanted) => wanted
            .into_iter()
            .map(|t| {
                let table = lookup(broker, t.name.0.as_str());
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|&p| match &table {
                        Some(table) => position(table.id(), p),
                        // Kafka answers an unknown topic with "no position" rather than an error.
                        None => position(-1, p),
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect(),
        None => topics::all(broker)
            .iter()
            .filter(|t| stored.iter().any(|o| o.table_id == t.id()))
            .map(|t| {
                let partitions = stored.iter().filter(|o| o.table_id == t.id()).map(|o| position(t.id(), o.partition)).collect();
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topics::topic_name(t))))
                    .with_partitions(partitions)
            })
            .collect(),
    };
    OffsetFetchResponse::default().with_topics(topics_out)
}
