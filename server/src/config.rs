//! Configuration, layered: built-in defaults → TOML file (`--config`) → `STREAMHOUSE_*`
//! environment variables → command-line flags. Every key is documented once, here.
//! Unknown keys in the file or the environment are errors, so a typo never silently
//! falls back to a default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// Every setting, fully resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the WAL, the SQLite catalog, the default segment folder and listeners.json live.
    pub data_dir: PathBuf,
    /// Postgres wire protocol listener. Port 0 picks a free port (see listeners.json).
    pub pg_addr: SocketAddr,
    /// Arrow Flight SQL listener (gRPC). Port 0 picks a free port (see listeners.json).
    pub flight_addr: SocketAddr,
    /// Kafka protocol listener. Port 0 picks a free port (see listeners.json).
    pub kafka_addr: SocketAddr,
    /// Create a raw topic when a Kafka client produces to or asks for an unknown one.
    pub kafka_auto_create_topics: bool,
    /// HTTP listener: the schema registry's REST API. Port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// gRPC ingest listener (`streamhouse.ingest.v1.Ingest`). Port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Folder with all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors) for
    /// `embed()`; without it `embed()` reports that it has no model.
    pub embedding_model_dir: Option<PathBuf>,
    /// A GGUF model file (Qwen2, Qwen3 or Llama with a byte-level BPE tokenizer): `ASK`
    /// then asks it, shown the linked tables; without it `ASK` uses the offline translator.
    pub ask_model: Option<PathBuf>,
    /// An OpenAI-compatible API (`https://api.openai.com/v1`, a llama.cpp or vLLM server's
    /// `http://host:port/v1`): `ASK` then sends the linked tables and the question to its
    /// `/chat/completions`, asking for `ask_endpoint_model`. Exclusive with `ask_model`.
    pub ask_endpoint: Option<String>,
    pub ask_endpoint_model: Option<String>,
    /// Bearer token for `ask_endpoint`; best set as `STREAMHOUSE_ASK_API_KEY` (there is no
    /// flag, so it never shows in a process list). Never logged.
    pub ask_api_key: Option<Secret>,
    /// Partitions of a topic created automatically or with `num_partitions = -1`.
    pub kafka_default_partitions: u32,
    /// PEM certificate chain and private key: when both are set, Flight serves TLS only.
    pub flight_tls_cert: Option<PathBuf>,
    pub flight_tls_key: Option<PathBuf>,
    /// `sqlite://…` (default: DATA_DIR/catalog.db) or `postgres://…`.
    pub catalog_url: String,
    /// A folder (default: DATA_DIR/segments), `s3://bucket/prefix` or `memory://`.
    pub object_store: String,
    /// `fsync` (ack after fdatasync), `interval` (fdatasync every durability_interval) or `none`.
    pub durability: DurabilityMode,
    pub durability_interval: Duration,
    /// Listening on a non-loopback address must be asked for: there is no authentication yet.
    pub allow_remote: bool,
    /// Concurrent Postgres connections beyond this are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// A partition tail older than this is written to a Parquet segment.
    pub flush_interval: Duration,
    /// A partition tail larger than this is written to a Parquet segment.
    pub segment_target_bytes: usize,
    /// All tails together may hold this much memory before writers wait.
    pub max_tail_bytes: usize,
    /// Size of each preallocated WAL file.
    pub wal_file_size: u64,
}

/// A setting that is never printed: `Debug` shows `<secret>`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    Fsync,
    Interval,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The file layer: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    pg_addr: Option<SocketAddr>,
    flight_addr: Option<SocketAddr>,
    kafka_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    embedding_model_dir: Option<PathBuf>,
    ask_model: Option<PathBuf>,
    ask_endpoint: Option<String>,
    ask_endpoint_model: Option<String>,
    ask_api_key: Option<Secret>,
    kafka_auto_create_topics: Option<bool>,
    kafka_default_partitions: Option<u32>,
    flight_tls_cert: Option<PathBuf>,
    flight_tls_key: Option<PathBuf>,
    catalog_url: Option<String>,
    object_store: Option<String>,
    durability: Option<DurabilityMode>,
    durability_interval_ms: Option<u64>,
    allow_remote: Option<bool>,
    max_connections: Option<usize>,
    log_format: Option<LogFormat>,
    flush_interval_ms: Option<u64>,
    segment_target_bytes: Option<usize>,
    max_tail_bytes: Option<usize>,
    wal_file_size: Option<u64>,
}

/// The flag layer (`streamhouse [serve] --flag …`).
#[derive(Debug, Default, Args)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, global = true)]
    pub pg_addr: Option<SocketAddr>,
    #[arg(long, global = true)]
    pub flight_addr: Option<SocketAddr>,
    #[arg(long, global = true)]
    pub kafka_addr: Option<SocketAddr>,
    #[arg(long, global = true)]
    pub http_addr: Option<SocketAddr>,
    #[arg(long, global = true)]
    pub grpc_addr: Option<SocketAddr>,
    #[arg(long, global = true)]
    pub embedding_model_dir: Option<PathBuf>,
    #[arg(long, global = true)]
    pub ask_model: Option<PathBuf>,
    #[arg(long, global = true)]
    pub ask_endpoint: Option<String>,
    #[arg(long, global = true)]
    pub ask_endpoint_model: Option<String>,
    #[arg(long, global = true)]
    pub kafka_auto_create_topics: Option<bool>,
    #[arg(long, global = true)]
    pub kafka_default_partitions: Option<u32>,
    #[arg(long, global = true)]
    pub flight_tls_cert: Option<PathBuf>,
    #[arg(long, global = true)]
    pub flight_tls_key: Option<PathBuf>,
    #[arg(long, global = true)]
    pub catalog_url: Option<String>,
    #[arg(long, global = true)]
    pub object_store: Option<String>,
    #[arg(long, global = true, value_enum)]
    pub durability: Option<DurabilityMode>,
    #[arg(long, global = true)]
    pub durability_interval_ms: Option<u64>,
    #[arg(long, global = true)]
    pub allow_remote: bool,
    #[arg(long, global = true)]
    pub max_connections: Option<usize>,
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[arg(long, global = true)]
    pub flush_interval_ms: Option<u64>,
    #[arg(long, global = true)]
    pub segment_target_bytes: Option<usize>,
    #[arg(long, global = true)]
    pub max_tail_bytes: Option<usize>,
    #[arg(long, global = true)]
    pub wal_file_size: Option<u64>,
}

pub const ENV_PREFIX: &str = "STREAMHOUSE_";
/// Environment variables with the prefix that are not configuration keys: read elsewhere
/// by the server (S3 endpoint, log filter) or by this repository's scripts and tests.
const ENV_NOT_CONFIG: [&str; 6] =
    ["STREAMHOUSE_S3_ENDPOINT", "STREAMHOUSE_LOG", "STREAMHOUSE_BIN", "STREAMHOUSE_VENV", "STREAMHOUSE_TEST_PG_URL", "STREAMHOUSE_TEST_EMBEDDING_MODEL"];

impl Config {
    pub fn load(flags: &Flags) -> Result<Config, String> {
        let mut layer = FileConfig::default();
        if let Some(path) = &flags.config {
            let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
            layer = toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        }
        layer.merge(from_env()?);
        layer.merge(FileConfig {
            data_dir: flags.data_dir.clone(),
            pg_addr: flags.pg_addr,
            flight_addr: flags.flight_addr,
            kafka_addr: flags.kafka_addr,
            http_addr: flags.http_addr,
            grpc_addr: flags.grpc_addr,
            embedding_model_dir: flags.embedding_model_dir.clone(),
            ask_model: flags.ask_model.clone(),
            ask_endpoint: flags.ask_endpoint.clone(),
            ask_endpoint_model: flags.ask_endpoint_model.clone(),
            ask_api_key: None,
            kafka_auto_create_topics: flags.kafka_auto_create_topics,
            kafka_default_partitions: flags.kafka_default_partitions,
            flight_tls_cert: flags.flight_tls_cert.clone(),
            flight_tls_key: flags.flight_tls_key.clone(),
            catalog_url: flags.catalog_url.clone(),
            object_store: flags.object_store.clone(),
            durability: flags.durability,
            durability_interval_ms: flags.durability_interval_ms,
            allow_remote: flags.allow_remote.then_some(true),
            max_connections: flags.max_connections,
            log_format: flags.log_format,
            flush_interval_ms: flags.flush_interval_ms,
            segment_target_bytes: flags.segment_target_bytes,
            max_tail_bytes: flags.max_tail_bytes,
            wal_file_size: flags.wal_file_size,
        });
        let data_dir = layer.data_dir.unwrap_or_else(|| PathBuf::from("./streamhouse-data"));
        let config = Config {
            pg_addr: layer.pg_addr.unwrap_or_else(|| "127.0.0.1:5433".parse().expect("valid default")),
            flight_addr: layer.flight_addr.unwrap_or_else(|| "127.0.0.1:50051".parse().expect("valid default")),
            kafka_addr: layer.kafka_addr.unwrap_or_else(|| "127.0.0.1:9092".parse().expect("valid default")),
            http_addr: layer.http_addr.unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default")),
            grpc_addr: layer.grpc_addr.unwrap_or_else(|| "127.0.0.1:50052".parse().expect("valid default")),
            embedding_model_dir: layer.embedding_model_dir,
            ask_model: layer.ask_model,
            ask_endpoint: layer.ask_endpoint,
            ask_endpoint_model: layer.ask_endpoint_model,
            ask_api_key: layer.ask_api_key,
            kafka_auto_create_topics: layer.kafka_auto_create_topics.unwrap_or(true),
            kafka_default_partitions: layer.kafka_default_partitions.unwrap_or(1),
            flight_tls_cert: layer.flight_tls_cert,
            flight_tls_key: layer.flight_tls_key,
            catalog_url: layer
                .catalog_url
                .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("catalog.db").display())),
            object_store: layer.object_store.unwrap_or_else(|| data_dir.join("segments").display().to_string()),
            durability: layer.durability.unwrap_or(DurabilityMode::Fsync),
            durability_interval: Duration::from_millis(layer.durability_interval_ms.unwrap_or(10)),
            allow_remote: layer.allow_remote.unwrap_or(false),
            max_connections: layer.max_connections.unwrap_or(512),
            log_format: layer.log_format.unwrap_or(LogFormat::Text),
            flush_interval: Duration::from_millis(layer.flush_interval_ms.unwrap_or(30_000)),
            segment_target_bytes: layer.segment_target_bytes.unwrap_or(streamhouse_streams::SEGMENT_TARGET_BYTES_DEFAULT),
            max_tail_bytes: layer.max_tail_bytes.unwrap_or(streamhouse_streams::MAX_TAIL_BYTES_DEFAULT),
            wal_file_size: layer.wal_file_size.unwrap_or(streamhouse_wal::WAL_FILE_SIZE_DEFAULT),
            data_dir,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        for addr in [self.pg_addr, self.flight_addr, self.kafka_addr, self.http_addr, self.grpc_addr] {
            if !self.allow_remote && !addr.ip().is_loopback() {
                return Err(format!(
                    "refusing to listen on {addr} (not loopback) without authentication; pass --allow-remote to do it anyway"
                ));
            }
        }
        if self.flight_tls_cert.is_some() != self.flight_tls_key.is_some() {
            return Err("flight_tls_cert and flight_tls_key must be set together".into());
        }
        if self.ask_model.is_some() && self.ask_endpoint.is_some() {
            return Err("ask_model and ask_endpoint are two ways to answer ASK: set one".into());
        }
        if self.ask_endpoint.is_some() != self.ask_endpoint_model.is_some() {
            return Err("ask_endpoint and ask_endpoint_model must be set together (the address, and the model to ask there)".into());
        }
        if self.ask_api_key.is_some() && self.ask_endpoint.is_none() {
            return Err("ask_api_key is set but ask_endpoint is not".into());
        }
        if self.kafka_default_partitions == 0 {
            return Err("kafka_default_partitions must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(())
    }
}

impl FileConfig {
    /// Values set in `other` win.
    fn merge(&mut self, other: FileConfig) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            data_dir, pg_addr, flight_addr, kafka_addr, http_addr, grpc_addr, embedding_model_dir, ask_model, ask_endpoint, ask_endpoint_model, ask_api_key, kafka_auto_create_topics, kafka_default_partitions, flight_tls_cert, flight_tls_key, catalog_url, object_store, durability, durability_interval_ms, allow_remote,
            max_connections, log_format, flush_interval_ms, segment_target_bytes, max_tail_bytes, wal_file_size
        );
    }
}

/// `STREAMHOUSE_PG_ADDR=…` etc., read through the same TOML parser so types agree.
fn from_env() -> Result<FileConfig, String> {
    let mut table = toml::Table::new();
    for (name, value) in std::env::vars() {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else { continue };
        if ENV_NOT_CONFIG.contains(&name.as_str()) {
            continue;
        }
        let key = key.to_lowercase();
        let parsed = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => match value.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(value),
            },
        };
        table.insert(key, parsed);
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| format!("environment ({ENV_PREFIX}*): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("sh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "pg_addr = \"127.0.0.1:6000\"\ndurability = \"none\"\n").unwrap();
        let flags = Flags { config: Some(file.clone()), durability: Some(DurabilityMode::Interval), ..Default::default() };
        let c = Config::load(&flags).unwrap();
        assert_eq!(c.pg_addr.port(), 6000);
        assert_eq!(c.durability, DurabilityMode::Interval, "flags override the file");
        std::fs::write(&file, "pg_adr = \"127.0.0.1:6000\"\n").unwrap();
        assert!(Config::load(&flags).unwrap_err().contains("unknown field"));
        std::fs::write(&file, "ask_endpoint = \"http://127.0.0.1:9/v1\"\nask_endpoint_model = \"m\"\nask_api_key = \"sk-hidden\"\n").unwrap();
        let c = Config::load(&Flags { config: Some(file.clone()), ..Default::default() }).unwrap();
        assert!(!format!("{c:?}").contains("sk-hidden"), "the key is never printed");
        std::fs::write(&file, "ask_endpoint = \"http://127.0.0.1:9/v1\"\n").unwrap();
        assert!(Config::load(&Flags { config: Some(file.clone()), ..Default::default() }).unwrap_err().contains("together"));
        let remote = Flags { pg_addr: Some("0.0.0.0:5433".parse().unwrap()), ..Default::default() };
        assert!(Config::load(&remote).unwrap_err().contains("--allow-remote"));
    }
}
