//! One client connection: length-prefixed frames in, responses out in request order.
//!
//! Requests are answered one at a time, in order, as Kafka brokers do per connection
//! (clients pipeline several and match responses by correlation id). A frame that is too
//! large, an API or version not advertised, or bytes that do not decode close the
//! connection after a log line, which is what a Kafka broker does; the server goes on.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::{admin, fetch, groups, idempotence, offsets, produce, versions, Broker};

/// Largest request accepted by default: Kafka's `socket.request.max.bytes` (100 MiB).
pub const MAX_FRAME_BYTES_DEFAULT: usize = 100 * 1024 * 1024;

pub(crate) async fn serve(broker: Arc<Broker>, socket: TcpStream, peer: SocketAddr, mut stop: tokio::sync::watch::Receiver<bool>) {
    let (mut reader, mut writer) = socket.into_split();
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => return,
            frame = read_frame(&mut reader, broker.config.max_frame_bytes) => frame,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                warn!(%peer, error = %e, "Kafka connection closed");
                return;
            }
        };
        match handle(&broker, frame).await {
            Ok(Some(response)) => {
                let mut out = BytesMut::with_capacity(4 + response.len());
                out.put_u32(response.len() as u32);
                out.extend_from_slice(&response);
                if writer.write_all(&out).await.is_err() {
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

/// Decodes one request, runs it, encodes the response (`None`: the client wants none).
async fn handle(broker: &Broker, mut frame: Bytes) -> anyhow::Result<Option<Bytes>> {
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
            return encode_response(correlation_id, key, 0, &response).map(Some);
        }
        bail!("{key:?} version {version} is not supported (see ApiVersions)");
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version)).context("request header")?;
    debug!(api = ?key, version, client = header.client_id.as_ref().map(|c| c.as_str()), "Kafka request");
    macro_rules! call {
        ($request:ty, $handler:path) => {{
            let request = <$request>::decode(&mut frame, version).with_context(|| format!("{key:?} v{version} request"))?;
            let response = $handler(broker, request, version).await;
            encode_response(correlation_id, key, version, &response).map(Some)
        }};
    }
    match key {
        ApiKey::ApiVersions => encode_response(correlation_id, key, version, &admin::api_versions()).map(Some),
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut frame, version).context("Produce request")?;
            match produce::handle(broker, request, version).await {
                Some(response) => encode_response(correlation_id, key, version, &response).map(Some),
                None => Ok(None),
            }
        }
        ApiKey::Fetch => call!(FetchRequest, fetch::handle),
        ApiKey::ListOffsets => call!(ListOffsetsRequest, offsets::list_offsets),
        ApiKey::Metadata => call!(MetadataRequest, admin::metadata),
        ApiKey::CreateTopics => call!(CreateTopicsRequest, admin::create_topics),
        ApiKey::DeleteTopics => call!(DeleteTopicsRequest, admin::delete_topics),
        ApiKey::OffsetCommit => call!(OffsetCommitRequest, offsets::offset_commit),
        ApiKey::OffsetFetch => call!(OffsetFetchRequest, offsets::offset_fetch),
        ApiKey::FindCoordinator => call!(FindCoordinatorRequest, groups::find_coordinator),
        ApiKey::JoinGroup => call!(JoinGroupRequest, groups::join_group),
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

fn encode_response<R: Encodable>(correlation_id: i32, key: ApiKey, version: i16, body: &R) -> anyhow::Result<Bytes> {
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, key.response_header_version(version))?;
    body.encode(&mut out, version).with_context(|| format!("{key:?} v{version} response"))?;
    Ok(out.freeze())
}
