//! Cluster and topic administration: ApiVersions, Metadata, CreateTopics, DeleteTopics,
//! DescribeConfigs.
//!
//! This server is a one-node cluster: node 0 at the advertised address leads every
//! partition, and is its only replica.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use streamhouse_streams::{StreamTable, MAX_PARTITIONS};

use crate::topics::{self, BROKER_ID};
use crate::{text, versions, Broker};

/// Reported as the cluster id in Metadata.
const CLUSTER_ID: &str = "streamhouse";

pub fn api_versions() -> ApiVersionsResponse {
    let api_keys = versions::SUPPORTED
        .iter()
        .map(|(key, lo, hi)| ApiVersion::default().with_api_key(*key as i16).with_min_version(*lo).with_max_version(*hi))
        .collect();
    ApiVersionsResponse::default().with_api_keys(api_keys)
}

fn topic_metadata(table: &StreamTable) -> MetadataResponseTopic {
    let partitions = (0..table.partition_count() as i32)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(BROKER_ID))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(BROKER_ID)])
                .with_isr_nodes(vec![BrokerId(BROKER_ID)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(topics::topic_name(table)))))
        .with_topic_id(topics::topic_id(table))
        .with_partitions(partitions)
}

pub async fn metadata(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let host = broker.advertised.ip().to_string();
    let node = MetadataResponseBroker::default()
        .with_node_id(BrokerId(BROKER_ID))
        .with_host(text(host))
        .with_port(broker.advertised.port() as i32);
    let mut topics_out = Vec::new();
    match request.topics {
        // Version 0 asks for every topic with an empty list; later versions with null.
        None => topics_out.extend(topics::all(broker).iter().map(|t| topic_metadata(t))),
        Some(list) if list.is_empty() && version == 0 => topics_out.extend(topics::all(broker).iter().map(|t| topic_metadata(t))),
        Some(list) => {
            for wanted in list {
                let Some(name) = wanted.name else {
                    topics_out.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(wanted.topic_id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    );
                    continue;
                };
                // Versions before 4 have no flag: auto-creation is implied.
                let allowed = version < 4 || request.allow_auto_topic_creation;
                match topics::lookup_or_create(broker, name.0.as_str(), allowed).await {
                    Ok(table) => topics_out.push(topic_metadata(&table)),
                    Err((code, _)) => topics_out.push(MetadataResponseTopic::default().with_name(Some(name)).with_error_code(code.code())),
                }
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(vec![node])
        .with_cluster_id(Some(text(CLUSTER_ID)))
        .with_controller_id(BrokerId(BROKER_ID))
        .with_topics(topics_out)
}

pub async fn create_topics(broker: &Broker, request: CreateTopicsRequest, _version: i16) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str().to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        let partitions = if topic.num_partitions == -1 { broker.config.default_partitions as i32 } else { topic.num_partitions };
        let outcome = if !topic.assignments.is_empty() {
            Err((ResponseError::InvalidRequest, "manual replica assignments are not supported".to_string()))
        } else if topic.replication_factor != -1 && topic.replication_factor != 1 {
            Err((
                ResponseError::InvalidReplicationFactor,
                format!("replication factor {} is larger than the 1 node of this cluster", topic.replication_factor),
            ))
        } else if partitions <= 0 {
            Err((ResponseError::InvalidPartitions, format!("{partitions} partitions: a topic needs at least one")))
        } else if partitions as u32 > MAX_PARTITIONS {
            Err((ResponseError::InvalidPartitions, format!("a topic has at most {MAX_PARTITIONS} partitions (asked for {partitions})")))
        } else if let Err(m) = topics::validate_name(&name) {
            Err((ResponseError::InvalidTopicException, m))
        } else if topics::lookup(broker, &name).is_some() {
            Err((ResponseError::TopicAlreadyExists, format!("topic \"{name}\" already exists")))
        } else if request.validate_only {
            Ok(())
        } else {
            let configs: Vec<(String, Option<String>)> =
                topic.configs.iter().map(|c| (c.name.as_str().to_string(), c.value.as_ref().map(|v| v.as_str().to_string()))).collect();
            match topics::create_raw(broker, &name, partitions as u32, &configs).await {
                Ok(Some(table)) => {
                    result.topic_id = topics::topic_id(&table);
                    Ok(())
                }
                Ok(None) => Err((ResponseError::TopicAlreadyExists, format!("topic \"{name}\" already exists"))),
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok(()) => {
                result.num_partitions = partitions;
                result.replication_factor = 1;
            }
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(text(message));
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Grows topics to the asked partition count. Partitions are never removed (Kafka's rule),
/// replica assignments do not exist on one node, and a materialized view's output is
/// written by its maintainer only, so those are refused.
pub async fn create_partitions(broker: &Broker, request: CreatePartitionsRequest, _version: i16) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let named = |name: &str| request.topics.iter().filter(|t| t.name.0.as_str() == name).count();
    for topic in &request.topics {
        let name = topic.name.0.as_str().to_string();
        let outcome = match topics::lookup(broker, &name) {
            _ if named(&name) > 1 => Err((ResponseError::InvalidRequest, format!("topic \"{name}\" is named more than once"))),
            None => Err((ResponseError::UnknownTopicOrPartition, format!("topic \"{name}\" does not exist"))),
            Some(_) if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) => {
                Err((ResponseError::InvalidReplicaAssignment, "manual replica assignments are not supported".to_string()))
            }
            Some(table) if table.options().materialized.is_some() => {
                Err((ResponseError::PolicyViolation, format!("\"{name}\" is a materialized view; its partitions follow its definition")))
            }
            Some(table) => {
                let current = table.partition_count() as i32;
                if topic.count <= current {
                    Err((
                        ResponseError::InvalidPartitions,
                        format!("topic \"{name}\" has {current} partitions; the count can only grow (asked for {})", topic.count),
                    ))
                } else if topic.count as u32 > MAX_PARTITIONS {
                    Err((ResponseError::InvalidPartitions, format!("a topic has at most {MAX_PARTITIONS} partitions (asked for {})", topic.count)))
                } else if request.validate_only {
                    Ok(())
                } else {
                    use streamhouse_catalog::Error as CatalogError;
                    use streamhouse_streams::Error as StorageError;
                    match broker.streams().add_partitions(table.schema_name(), table.name(), topic.count as u32).await {
                        Ok(_) => Ok(()),
                        // Dropped meanwhile; a count another request grew past meanwhile.
                        Err(e @ (StorageError::TableNotFound(_) | StorageError::Catalog(CatalogError::TableNotFound(_)))) => {
                            Err((ResponseError::UnknownTopicOrPartition, e.to_string()))
                        }
                        Err(e @ StorageError::Catalog(CatalogError::Invalid(_))) => Err((ResponseError::InvalidPartitions, e.to_string())),
                        Err(e) => Err((ResponseError::KafkaStorageError, e.to_string())),
                    }
                }
            }
        };
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(text(message));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Drops the tables through SQL, so the same rules as `DROP TABLE` apply (a table a
/// materialized view reads cannot go).
pub async fn delete_topics(broker: &Broker, request: DeleteTopicsRequest, _version: i16) -> DeleteTopicsResponse {
    let mut names: Vec<TopicName> = request.topic_names;
    names.extend(request.topics.into_iter().filter_map(|t| t.name));
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let mut result = DeletableTopicResult::default().with_name(Some(name.clone()));
        match topics::lookup(broker, name.0.as_str()) {
            None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
            Some(table) => {
                result.topic_id = topics::topic_id(&table);
                let sql = format!("DROP TABLE {}.{}", quote(table.schema_name()), quote(table.name()));
                let mut session = broker.engine.session();
                let outcome = match session.parse(&sql) {
                    Ok(statements) => match statements.first() {
                        Some(statement) => session.execute(statement, None).await.map(|_| ()),
                        None => Ok(()),
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    result.error_code = ResponseError::PolicyViolation.code();
                    result.error_message = Some(text(e.to_string()));
                }
            }
        }
        results.push(result);
    }
    DeleteTopicsResponse::default().with_responses(results)
}

/// An SQL identifier in double quotes.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources and types (DescribeConfigs v1+ / v3+).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

/// The settings that mean something here, with their real values; everything is read-only.
pub async fn describe_configs(broker: &Broker, request: DescribeConfigsRequest, _version: i16) -> DescribeConfigsResponse {
    use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        // (name, value, source, type)
        let entries: Vec<(&str, String, i8, i8)> = match resource.resource_type {
            RESOURCE_TOPIC => match topics::lookup(broker, resource.resource_name.as_str()) {
                None => {
                    result.error_code = ResponseError::UnknownTopicOrPartition.code();
                    result.error_message = Some(text(format!("topic \"{}\" does not exist", resource.resource_name.as_str())));
                    Vec::new()
                }
                Some(table) => {
                    let options = table.options();
                    let set_or_default = |v: Option<i64>| match v {
                        Some(v) => (v.to_string(), SOURCE_TOPIC),
                        None => ("-1".to_string(), SOURCE_DEFAULT),
                    };
                    let (retention_ms, ms_source) = set_or_default(options.retention_ms);
                    let (retention_bytes, bytes_source) = set_or_default(options.retention_bytes);
                    let timestamp_type = match topics::kind(&table) {
                        topics::TopicKind::Raw => "CreateTime",
                        topics::TopicKind::Typed => "LogAppendTime",
                    };
                    vec![
                        match options.compact {
                            true => ("cleanup.policy", "compact".to_string(), SOURCE_TOPIC, TYPE_STRING),
                            false => ("cleanup.policy", "delete".to_string(), SOURCE_DEFAULT, TYPE_STRING),
                        },
                        ("retention.ms", retention_ms, ms_source, TYPE_LONG),
                        ("retention.bytes", retention_bytes, bytes_source, TYPE_LONG),
                        ("message.timestamp.type", timestamp_type.to_string(), SOURCE_DEFAULT, TYPE_STRING),
                        ("max.message.bytes", broker.config.max_frame_bytes.to_string(), SOURCE_DEFAULT, TYPE_INT),
                        ("min.insync.replicas", "1".to_string(), SOURCE_DEFAULT, TYPE_INT),
                    ]
                }
            },
            RESOURCE_BROKER => vec![
                ("auto.create.topics.enable", broker.config.auto_create_topics.to_string(), SOURCE_STATIC_BROKER, TYPE_BOOLEAN),
                ("num.partitions", broker.config.default_partitions.to_string(), SOURCE_STATIC_BROKER, TYPE_INT),
                ("socket.request.max.bytes", broker.config.max_frame_bytes.to_string(), SOURCE_STATIC_BROKER, TYPE_INT),
                ("default.replication.factor", "1".to_string(), SOURCE_DEFAULT, TYPE_INT),
            ],
            other => {
                result.error_code = ResponseError::InvalidRequest.code();
                result.error_message = Some(text(format!("resource type {other} has no configuration here")));
                Vec::new()
            }
        };
        // No keys (null, or an empty list as some clients send) means every setting.
        let wanted = |name: &str| {
            resource.configuration_keys.as_ref().is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
        };
        result.configs = entries
            .into_iter()
            .filter(|(name, ..)| wanted(name))
            .map(|(name, value, source, config_type)| {
                DescribeConfigsResourceResult::default()
                    .with_name(text(name))
                    .with_value(Some(text(value)))
                    .with_read_only(true)
                    .with_config_source(source)
                    .with_config_type(config_type)
            })
            .collect();
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}
