//! gRPC ingest: programs that already speak gRPC append rows to stream tables without a
//! SQL driver, and learn where each row went (partition and offset) once it is durable.
//!
//! The service (`proto/streamhouse/ingest/v1/ingest.proto`) has a unary `Produce` and a
//! client-streaming `ProduceStream`. Rows come as JSON lines or an Arrow IPC stream; each
//! request is appended all or nothing, with the same durability acknowledgement as
//! INSERT. The tonic service is written out here the way tonic-build would generate it,
//! over the hand-derived messages of [`proto`].

pub mod proto;
mod rows;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use streamhouse_executor::Engine;
use tokio::net::TcpListener;
use tonic::codegen::{http, Body, StdError};
use tonic::server::{ClientStreamingService, Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use proto::{PartitionOffsets, ProduceRequest, ProduceResponse, ProduceStreamResponse};

/// Largest request message accepted (rows are decoded whole before they are appended).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Appends one request's rows; answers once they are durable.
async fn produce(engine: &Arc<Engine>, request: ProduceRequest) -> Result<ProduceResponse, Status> {
    // Decoding up to a 64 MiB message is CPU work: off the async workers.
    let decoder = engine.clone();
    let decoded = tokio::task::spawn_blocking(move || rows::decode(&decoder, request))
        .await
        .map_err(|e| Status::internal(format!("decoding failed: {e}")))??;
    let written = engine.append_rows(&decoded.table, &decoded.columns, decoded.batches).await.map_err(|e| rows::sql_status(&e))?;
    Ok(ProduceResponse {
        rows: written.iter().map(|w| w.rows).sum(),
        partitions: written.iter().map(|w| PartitionOffsets { partition: w.partition, base_offset: w.base_offset, rows: w.rows }).collect(),
    })
}

/// The Ingest service as a tower service routing on the method path.
#[derive(Clone)]
pub struct IngestService {
    engine: Arc<Engine>,
}

impl NamedService for IngestService {
    const NAME: &'static str = proto::SERVICE_NAME;
}

struct Unary(Arc<Engine>);

impl UnaryService<ProduceRequest> for Unary {
    type Response = ProduceResponse;
    type Future = BoxFuture<Result<Response<ProduceResponse>, Status>>;

    fn call(&mut self, request: Request<ProduceRequest>) -> Self::Future {
        let engine = self.0.clone();
        Box::pin(async move { produce(&engine, request.into_inner()).await.map(Response::new) })
    }
}

struct ClientStreaming(Arc<Engine>);

impl ClientStreamingService<ProduceRequest> for ClientStreaming {
    type Response = ProduceStreamResponse;
    type Future = BoxFuture<Result<Response<ProduceStreamResponse>, Status>>;

    fn call(&mut self, request: Request<Streaming<ProduceRequest>>) -> Self::Future {
        let engine = self.0.clone();
        Box::pin(async move {
            let mut requests = request.into_inner();
            let mut answer = ProduceStreamResponse::default();
            while let Some(request) = requests.next().await {
                let done = produce(&engine, request?).await.map_err(|e| {
                    Status::new(e.code(), format!("request {} of the stream: {}", answer.requests.len() + 1, e.message()))
                })?;
                answer.rows += done.rows;
                answer.requests.push(done);
            }
            Ok(Response::new(answer))
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for IngestService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let engine = self.engine.clone();
        let grpc = || Grpc::new(ProstCodec::<ProduceResponse, ProduceRequest>::default()).max_decoding_message_size(MAX_REQUEST_BYTES);
        match request.uri().path().strip_prefix('/').and_then(|p| p.strip_prefix(proto::SERVICE_NAME)).and_then(|p| p.strip_prefix('/')) {
            Some("Produce") => Box::pin(async move { Ok(grpc().unary(Unary(engine), request).await) }),
            Some("ProduceStream") => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<ProduceStreamResponse, ProduceRequest>::default())
                    .max_decoding_message_size(MAX_REQUEST_BYTES);
                Ok(grpc.client_streaming(ClientStreaming(engine), request).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method in streamhouse.ingest.v1.Ingest").into_http()) }),
        }
    }
}

/// The gRPC ingest listener.
pub struct GrpcServer {
    engine: Arc<Engine>,
}

impl GrpcServer {
    pub fn new(engine: Arc<Engine>) -> GrpcServer {
        GrpcServer { engine }
    }

    /// Serves on `listener` until `stop` turns true.
    pub async fn serve(self, listener: TcpListener, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), String> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(IngestService { engine: self.engine })
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| format!("gRPC server: {e}"))
    }
}
