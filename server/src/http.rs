//! The HTTP listener: the Confluent-compatible schema registry's REST API at its root
//! (where Kafka serializers expect it) and `POST /v1/ask` ([`crate::http_ask`]).

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::warn;

/// Serves until `stop` turns true, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<streamhouse_registry::Registry>,
    engine: Arc<streamhouse_executor::Engine>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = streamhouse_registry::http::router(registry).merge(crate::http_ask::router(engine));
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
        warn!(error = %e, "HTTP listener failed");
    }
}
