//! The HTTP listener: today the Confluent-compatible schema registry's REST API at its
//! root (where Kafka serializers expect it), the place for later HTTP endpoints.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::warn;

/// Serves until `stop` turns true, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, registry: Arc<streamhouse_registry::Registry>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let app = streamhouse_registry::http::router(registry);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
        warn!(error = %e, "HTTP listener failed");
    }
}
