//! The Arrow Flight SQL front end (`--flight-addr`, default `127.0.0.1:50051`).
//!
//! Data tools (ADBC drivers, pyarrow, polars, BI tools) reach StreamHouse here without
//! row-by-row conversion: query results leave as Arrow record batches, and bulk loads
//! (`CommandStatementIngest`) arrive as Arrow. Every statement goes through the same
//! [`streamhouse_executor::Session`] the Postgres front end uses, so the same SQL gives
//! the same results on both.
//!
//! Flight calls are independent requests: each runs on a fresh session (settings and
//! transactions do not carry over between calls; Flight SQL transactions are not
//! offered). Prepared statements live in a server-wide registry keyed by handle.

mod auth;
mod cancel;
mod ingest;
mod metadata;
mod prepared;
mod results;
mod service;
pub mod status;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use streamhouse_executor::Engine;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use service::StreamHouseFlightSql;

/// Largest gRPC message accepted or sent (one Flight data frame: a record batch).
/// Clients split bigger uploads into several batches; results are sliced to fit.
pub const MAX_FLIGHT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// HTTP/2 flow-control windows: how much a client may send before the server says it has
/// read it. hyper's default (1 MiB) stalls a bulk upload of ~6 MB batches every megabyte.
const STREAM_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 32 * 1024 * 1024;
/// Largest HTTP/2 frame a client may send (h2's default is 16 KiB).
const MAX_FRAME_BYTES: u32 = 1024 * 1024;

/// A PEM certificate chain and its private key; with them Flight serves TLS only.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The Flight SQL service, ready to serve: TLS material is read and checked here, so a
/// bad certificate stops the server at startup rather than leaving a dead port.
pub struct FlightServer {
    router: tonic::transport::server::Router,
}

impl FlightServer {
    pub fn new(engine: Arc<Engine>, tls: Option<TlsFiles>) -> Result<FlightServer, String> {
        let service = FlightServiceServer::new(StreamHouseFlightSql::new(engine))
            .max_decoding_message_size(MAX_FLIGHT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_FLIGHT_MESSAGE_BYTES);
        let mut builder = Server::builder()
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .max_frame_size(MAX_FRAME_BYTES);
        if let Some(tls) = tls {
            let cert = std::fs::read(&tls.cert).map_err(|e| format!("flight_tls_cert {}: {e}", tls.cert.display()))?;
            let key = std::fs::read(&tls.key).map_err(|e| format!("flight_tls_key {}: {e}", tls.key.display()))?;
            // rustls needs one process-wide crypto provider; several are linked in.
            let _ = rustls::crypto::ring::default_provider().install_default();
            builder = builder
                .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
                .map_err(|e| format!("flight TLS: {e}"))?;
        }
        Ok(FlightServer { router: builder.add_service(service) })
    }

    /// Serves on `listener` until `stop` turns true; in-flight calls are cut when the
    /// returned future is dropped.
    pub async fn serve(self, listener: TcpListener, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), String> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        self.router
            .serve_with_incoming_shutdown(incoming, async move {
                while !*stop.borrow() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await
            .map_err(|e| format!("flight server: {e}"))
    }
}
