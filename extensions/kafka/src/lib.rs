//! Kafka protocol front end (`--kafka-addr`, default 127.0.0.1:9092).
//!
//! Teams keep their Kafka producers and consumers and point them here: every Kafka topic
//! is a stream table of the `public` schema, so what a producer writes is at once
//! queryable with SQL, subscribable and usable in materialized views, and rows written
//! with SQL are consumable with Kafka clients. The wire format is the `kafka-protocol`
//! crate's; this crate maps requests onto [`Streams`] (appends to the partition the
//! client chose, reads by offset) and keeps consumer groups.
//!
//! Two kinds of topic (see [`topics`]): a *raw* topic (`key`, `value`, `headers`,
//! `timestamp`; what a Kafka client creates) stores records as they are, a *typed* table
//! (created in SQL) takes JSON values and decodes them into its columns.

mod admin;
mod connection;
mod decompress;
mod fetch;
mod groups;
mod idempotence;
mod offsets;
mod produce;
mod records;
mod topics;
mod versions;

use std::net::SocketAddr;
use std::sync::Arc;

use streamhouse_executor::Engine;
use streamhouse_registry::Registry;
use streamhouse_streams::Streams;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use connection::MAX_FRAME_BYTES_DEFAULT;
pub use topics::raw_topic_schema;

/// Settings of the Kafka listener.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Create a raw topic when a client produces to or asks metadata for one that does
    /// not exist (Kafka's `auto.create.topics.enable`, on by default there too).
    pub auto_create_topics: bool,
    /// Partitions of an automatically created topic (Kafka's `num.partitions`).
    pub default_partitions: u32,
    /// Requests larger than this close the connection (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// The address given to clients in Metadata; the bound address when `None`.
    pub advertised_addr: Option<SocketAddr>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            auto_create_topics: true,
            default_partitions: 1,
            max_frame_bytes: MAX_FRAME_BYTES_DEFAULT,
            advertised_addr: None,
        }
    }
}

/// What every request handler reaches: the engine, the settings, the group coordinator.
pub(crate) struct Broker {
    pub engine: Arc<Engine>,
    pub config: KafkaConfig,
    /// Where clients are told to connect (this one node is every partition's leader).
    pub advertised: SocketAddr,
    pub groups: groups::Coordinator,
    pub producers: Arc<idempotence::Producers>,
    /// Schemas of Confluent-framed (Avro, JSON Schema) values written to typed tables.
    pub registry: Arc<Registry>,
}

/// A protocol string from text.
pub(crate) fn text(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

impl Broker {
    pub fn streams(&self) -> &Arc<Streams> {
        self.engine.streams()
    }
}

/// The Kafka listener.
pub struct KafkaServer {
    engine: Arc<Engine>,
    config: KafkaConfig,
    registry: Arc<Registry>,
}

impl KafkaServer {
    pub fn new(engine: Arc<Engine>, config: KafkaConfig, registry: Arc<Registry>) -> KafkaServer {
        KafkaServer { engine, config, registry }
    }

    /// Accepts connections until `stop` turns true; each connection runs on its own task.
    pub async fn serve(self, listener: TcpListener, mut stop: tokio::sync::watch::Receiver<bool>) {
        let bound = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "Kafka listener has no address");
                return;
            }
        };
        let advertised = self.config.advertised_addr.unwrap_or(bound);
        let broker = Arc::new(Broker {
            groups: groups::Coordinator::new(self.engine.streams().clone()),
            producers: Arc::new(idempotence::Producers::new()),
            engine: self.engine,
            config: self.config,
            registry: self.registry,
            advertised,
        });
        let expiry = tokio::spawn(groups::expire_members(broker.clone()));
        info!(%bound, %advertised, "Kafka listener ready");
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        tokio::spawn(connection::serve(broker.clone(), socket, peer, stop.clone()));
                    }
                    Err(e) => warn!(error = %e, "Kafka accept failed"),
                },
            }
        }
        expiry.abort();
    }
}
