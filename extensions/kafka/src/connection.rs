//! One client connection: length-prefixed frames in, responses out in request order.
//!
//! Requests are decoded and applied one at a time, in order, and answered in order, as
//! Kafka brokers do per connection (clients pipeline several and match responses by
//! correlation id); a Produce's wait for the disk overlaps with the next requests. A frame that is too
//! large, an API or version not advertised, or bytes that do not decode close the
//! connection after a log line, which is what a Kafka broker does; the server goes on.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::{admin, fetch, groups, idempotence, offsets, produce, versions, Broker};

/// Largest request accepted by default: Kafka's `socket.request.max.bytes` (100 MiB).
pub const MAX_FRAME_BYTES_DEFAULT: usize = 100 * 1024 * 1024;

/// Responses queued behind the one being written, at most: a client pipelining more
/// requests than this waits (TCP back-pressure) until earlier responses have left.
const MAX_IN_FLIGHT: usize = 64;

/// A response still to be sent, in request order: produced by a request's durable
/// acknowledgement (Produce) or already complete (everything else).
type ResponseFuture = Pin<Box<dyn Future<Output = anyhow::Result<Option<Bytes>>> + Send>>;

pub(crate) async fn serve(broker: Arc<Broker>, socket: TcpStream, peer: SocketAddr, mut stop: tokio::sync::watch::Receiver<bool>) {
    let (mut reader, mut writer) = socket.into_split();
    // Requests are decoded and applied in order here; their responses are awaited and
    // written in the same order by the writer task, so a produce waiting for the disk
    // does not stop the next request from being queued.
    let (queue, mut responses) = mpsc::channel::<ResponseFuture>(MAX_IN_FLIGHT);
    let writer_task = tokio::spawn(async move {
        while let Some(response) = responses.recv().await {
            match response.await {
                Ok(Some(frame)) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(%peer, error = format!("{e:#}"), "Kafka request refused; closing the connection");
                    return;
                }
            }
        }
    });
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = read_frame(&mut reader, broker.config.max_frame_bytes) => frame,
        };
        // After an error nothing more is read: the rest of the stream cannot be trusted
        // to be frames. Earlier responses are still written, then the connection closes.
        let (response, last): (ResponseFuture, bool) = match frame {
            Ok(Some(frame)) => match dispatch(&broker, frame).await {
                Ok(response) => (response, false),
                Err(e) => (Box::pin(std::future::ready(Err(e))), true),
            },
            Ok(None) => break,
            Err(e) => (Box::pin(std::future::ready(Err(e))), true),
        };
        if queue.send(response).await.is_err() || last {
            break;
        }
    }
    drop(queue);
    let _ = writer_task.await;
}

/// The next frame, `None` at a clean end of stream.
async fn read_frame(reader: &mut tokio::net::tcp::OwnedReadHalf, max_bytes: usize) -> anyhow::Result<Option<Bytes>> {
    let len = match reader.read_i32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if len < 0 || len as usize > max_bytes {
        bail!("frame of {len} bytes (the limit is {max_bytes})");
    }
    let mut frame = vec![0u8; len as usize];
    reader.read_exact(&mut frame).await?;
    Ok(Some(frame.into()))
}

fn ready(response: anyhow::Result<Option<Bytes>>) -> anyhow::Result<ResponseFuture> {
    Ok(Box::pin(std::future::ready(response)))
}

/// Decodes one request and runs it; the response (`None`: the client wants none) may
/// still be waiting for a durable acknowledgement. An error closes the connection.
async fn dispatch(broker: &Broker, mut frame: Bytes) -> anyhow::Result<ResponseFuture> {
    if frame.len() < 8 {
        bail!("frame of {} bytes is shorter than a request header", frame.len());
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(api_key).map_err(|_| anyhow!("unknown API key {api_key}"))?;
    if !versions::is_supported(key, version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: a client that tries a newer ApiVersions gets the v0 error response
            // with our ranges, and retries with a version we speak.
            let mut response = admin::api_versions();
            response.error_code = ResponseError::UnsupportedVersion.code();
            return ready(encode_response(correlation_id, key, 0, &response).map(Some));
        }
        bail!("{key:?} version {version} is not supported (see ApiVersions)");
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version)).context("request header")?;
    debug!(api = ?key, version, client = header.client_id.as_ref().map(|c| c.as_str()), "Kafka request");
    macro_rules! call {
        ($request:ty, $handler:path) => {{
            let request = <$request>::decode(&mut frame, version).with_context(|| format!("{key:?} v{version} request"))?;
            let response = $handler(broker, request, version).await;
            ready(encode_response(correlation_id, key, version, &response).map(Some))
        }};
    }
    match key {
        ApiKey::ApiVersions => ready(encode_response(correlation_id, key, version, &admin::api_versions()).map(Some)),
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut frame, version).context("Produce request")?;
            let pending = produce::start(broker, request, version).await;
            Ok(Box::pin(async move {
                match pending.await {
                    Some(response) => encode_response(correlation_id, key, version, &response).map(Some),
                    None => Ok(None),
                }
            }))
        }
        ApiKey::Fetch => call!(FetchRequest, fetch::handle),
        ApiKey::ListOffsets => call!(ListOffsetsRequest, offsets::list_offsets),
        ApiKey::Metadata => call!(MetadataRequest, admin::metadata),
        ApiKey::CreateTopics => call!(CreateTopicsRequest, admin::create_topics),
        ApiKey::DeleteTopics => call!(DeleteTopicsRequest, admin::delete_topics),
        ApiKey::CreatePartitions => call!(CreatePartitionsRequest, admin::create_partitions),
        ApiKey::OffsetCommit => call!(OffsetCommitRequest, offsets::offset_commit),
        ApiKey::OffsetFetch => call!(OffsetFetchRequest, offsets::offset_fetch),
        ApiKey::FindCoordinator => call!(FindCoordinatorRequest, groups::find_coordinator),
        ApiKey::JoinGroup => {
            let request = JoinGroupRequest::decode(&mut frame, version).context("JoinGroup request")?;
            let client_id = header.client_id.as_ref().map_or("", |c| c.as_str());
            let response = groups::join_group(broker, request, version, client_id).await;
            ready(encode_response(correlation_id, key, version, &response).map(Some))
        }
        ApiKey::SyncGroup => call!(SyncGroupRequest, groups::sync_group),
        ApiKey::Heartbeat => call!(HeartbeatRequest, groups::heartbeat),
        ApiKey::LeaveGroup => call!(LeaveGroupRequest, groups::leave_group),
        ApiKey::ListGroups => call!(ListGroupsRequest, groups::list_groups),
        ApiKey::DescribeGroups => call!(DescribeGroupsRequest, groups::describe_groups),
        ApiKey::DescribeConfigs => call!(DescribeConfigsRequest, admin::describe_configs),
        ApiKey::InitProducerId => call!(InitProducerIdRequest, idempotence::init_producer_id),
        other => bail!("{other:?} is advertised but has no handler"),
    }
}

/// The whole response frame: length, header, body. Sized before encoding, so a large
/// Fetch response is written into its buffer once, never regrown and copied.
fn encode_response<R: Encodable>(correlation_id: i32, key: ApiKey, version: i16, body: &R) -> anyhow::Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    let context = || format!("{key:?} v{version} response");
    let len = header.compute_size(header_version)? + body.compute_size(version).with_context(context)?;
    let mut out = BytesMut::with_capacity(4 + len);
    out.put_u32(len as u32);
    header.encode(&mut out, header_version)?;
    body.encode(&mut out, version).with_context(context)?;
    anyhow::ensure!(out.len() == 4 + len, "{} encoded to {} bytes, not the {len} computed", context(), out.len() - 4);
    Ok(out.freeze())
}
