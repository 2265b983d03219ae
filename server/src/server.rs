//! Startup and graceful shutdown: open the catalog, the object store, the WAL and the
//! engine; bind the listeners (Postgres, Flight SQL, Kafka, HTTP, gRPC ingest); write `DATA_DIR/listeners.json`; on SIGINT/SIGTERM stop
//! accepting, let connections finish for a grace period, flush tails, close the WAL.

use std::time::Duration;

use streamhouse_catalog::Catalog;
use streamhouse_executor::Engine;
use streamhouse_streams::{Streams, StreamsConfig};
use streamhouse_wal::{Durability, WalConfig};
use tokio::net::TcpListener;
use tracing::info;

use crate::config::{Config, DurabilityMode, LogFormat};

/// How long in-flight connections may run after a shutdown signal before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STREAMHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(config: Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| format!("data dir {}: {e}", config.data_dir.display()))?;
    let catalog = Catalog::connect(&config.catalog_url).await.map_err(|e| format!("catalog {}: {e}", config.catalog_url))?;
    let store = streamhouse_streams::store::open(&config.object_store).map_err(|e| e.to_string())?;
    let mut wal_config = WalConfig::new(config.data_dir.join("wal"));
    wal_config.durability = match config.durability {
        DurabilityMode::Fsync => Durability::Fsync,
        DurabilityMode::Interval => Durability::Interval(config.durability_interval),
        DurabilityMode::None => Durability::None,
    };
    wal_config.file_size = config.wal_file_size;
    // A whole COPY is one record; with its system columns and IPC framing it is at most
    // about 1.5× the decoded rows the COPY limit counts.
    wal_config.max_record_bytes = streamhouse_executor::COPY_MAX_BUFFER_BYTES * 2;
    let streams_config = StreamsConfig {
        segment_target_bytes: config.segment_target_bytes,
        max_tail_bytes: config.max_tail_bytes,
        flush_interval: config.flush_interval,
        ..StreamsConfig::default()
    };
    let streams = Streams::open(catalog, store, wal_config, streams_config).await.map_err(|e| e.to_string())?;
    let embedder = match config.embedding_model_dir.clone() {
        None => None,
        Some(dir) => {
            let loaded = tokio::task::spawn_blocking(move || streamhouse_nl::embed::Embedder::load(&dir).map_err(|e| format!("embedding model: {e}")));
            let embedder = loaded.await.map_err(|e| e.to_string())??;
            info!("embedding model loaded: embed() is available");
            Some(std::sync::Arc::new(embedder))
        }
    };
    let engine = Engine::new(streams.clone(), streamhouse_nl::functions(embedder.clone())).map_err(|e| e.to_string())?;
    match (config.ask_model.clone(), config.ask_endpoint.clone()) {
        (Some(path), _) => {
            let loaded = tokio::task::spawn_blocking(move || {
                streamhouse_nl::generate::GenerativeTranslator::load(&path).map_err(|e| format!("ask_model: {e}"))
            });
            engine.set_translator(std::sync::Arc::new(loaded.await.map_err(|e| e.to_string())??));
            info!("ASK answers with the local model in ask_model");
        }
        (None, Some(url)) => {
            let endpoint = streamhouse_nl::generate::EndpointConfig {
                url,
                model: config.ask_endpoint_model.clone().unwrap_or_default(),
                api_key: config.ask_api_key.clone().map(|key| key.0),
            };
            let translator = streamhouse_nl::generate::GenerativeTranslator::remote(endpoint).map_err(|e| format!("ask_endpoint: {e}"))?;
            engine.set_translator(std::sync::Arc::new(translator));
            info!("ASK answers with the model in ask_endpoint_model at ask_endpoint");
        }
        (None, None) => engine.set_translator(std::sync::Arc::new(streamhouse_nl::ask::OfflineTranslator::new(embedder))),
    }

    let pg_listener = TcpListener::bind(config.pg_addr).await.map_err(|e| format!("bind {}: {e}", config.pg_addr))?;
    let pg_addr = pg_listener.local_addr().map_err(|e| e.to_string())?;
    let flight_listener =
        TcpListener::bind(config.flight_addr).await.map_err(|e| format!("bind {}: {e}", config.flight_addr))?;
    let flight_addr = flight_listener.local_addr().map_err(|e| e.to_string())?;
    let tls = match (&config.flight_tls_cert, &config.flight_tls_key) {
        (Some(cert), Some(key)) => Some(streamhouse_flight::TlsFiles { cert: cert.clone(), key: key.clone() }),
        _ => None,
    };
    let flight_server = streamhouse_flight::FlightServer::new(engine.clone(), tls)?;
    let kafka_listener =
        TcpListener::bind(config.kafka_addr).await.map_err(|e| format!("bind {}: {e}", config.kafka_addr))?;
    let kafka_addr = kafka_listener.local_addr().map_err(|e| e.to_string())?;
    let kafka_config = streamhouse_kafka::KafkaConfig {
        auto_create_topics: config.kafka_auto_create_topics,
        default_partitions: config.kafka_default_partitions,
        ..Default::default()
    };
    let registry = streamhouse_registry::Registry::open(streams.catalog().clone()).await.map_err(|e| format!("schema registry: {e}"))?;
    let kafka_server = streamhouse_kafka::KafkaServer::new(engine.clone(), kafka_config, registry.clone());
    let http_listener = TcpListener::bind(config.http_addr).await.map_err(|e| format!("bind {}: {e}", config.http_addr))?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    let grpc_listener = TcpListener::bind(config.grpc_addr).await.map_err(|e| format!("bind {}: {e}", config.grpc_addr))?;
    let grpc_addr = grpc_listener.local_addr().map_err(|e| e.to_string())?;
    write_listeners(
        &config,
        &[("pg", pg_addr), ("flight", flight_addr), ("kafka", kafka_addr), ("http", http_addr), ("grpc", grpc_addr)],
    )?;
    info!(%pg_addr, %flight_addr, %kafka_addr, %http_addr, %grpc_addr, data_dir = %config.data_dir.display(), catalog = streams.catalog().backend(), "StreamHouse is ready: psql -h {} -p {}", pg_addr.ip(), pg_addr.port());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let logged = |what: &'static str, served: Result<(), String>| {
        if let Err(e) = served {
            tracing::error!("{what}: {e}");
        }
    };
    let listeners: Vec<(&str, tokio::task::JoinHandle<()>)> = vec![
        ("Postgres connections", tokio::spawn(crate::pg::serve(pg_listener, engine.clone(), config.max_connections, stop_rx.clone()))),
        ("Flight calls", {
            let served = flight_server.serve(flight_listener, stop_rx.clone());
            tokio::spawn(async move { logged("Flight SQL", served.await) })
        }),
        ("Kafka connections", tokio::spawn(kafka_server.serve(kafka_listener, stop_rx.clone()))),
        ("HTTP requests", tokio::spawn(crate::http::serve(http_listener, registry, engine.clone(), stop_rx.clone()))),
        ("gRPC calls", {
            let served = streamhouse_grpc::GrpcServer::new(engine).serve(grpc_listener, stop_rx);
            tokio::spawn(async move { logged("gRPC ingest", served.await) })
        }),
    ];
    shutdown_signal().await;
    info!("shutting down: no new connections");
    let _ = stop_tx.send(true);
    // Every listener drains in parallel under one deadline; what is still running then is
    // stopped before the tails are flushed and the WAL closed.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE + Duration::from_secs(1);
    for (what, mut handle) in listeners {
        if tokio::time::timeout_at(deadline, &mut handle).await.is_err() {
            info!("{what} did not finish in time; closing them");
            handle.abort();
        }
    }
    streams.shutdown().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(config.data_dir.join("listeners.json"));
    info!("stopped");
    Ok(())
}

/// Scripts and tests read the bound ports from here (useful with port 0).
fn write_listeners(config: &Config, listeners: &[(&str, std::net::SocketAddr)]) -> Result<(), String> {
    let map: serde_json::Map<String, serde_json::Value> =
        listeners.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
    let path = config.data_dir.join("listeners.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&map).expect("json")).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn grace() -> Duration {
    SHUTDOWN_GRACE
}
