//! Sending an endless result (`SUBSCRIBE`, `COPY (SUBSCRIBE …) TO STDOUT`).
//!
//! pgwire sends a response after the handler returns and never flushes in between: fine
//! for a result that ends, fatal for one that never does. A feed is therefore sent here,
//! inside the handler: messages are queued while the feed has more ready, and flushed
//! for real ([`FlushNow`]) whenever it pauses, so each row reaches the client as soon as
//! it commits. The response handed back to pgwire is only the closing command tag, for
//! the day a feed ends (its table dropped; otherwise it ends by an error or the client
//! cancelling).
//!
//! A client that vanishes is noticed when a write to it fails. On a quiet table nothing
//! would be written, so after [`FEED_IDLE_PROBE`] without rows the feed sends a
//! ParameterStatus that repeats a value the client already has (`server_version`):
//! harmless to a live client, a failed write for a gone one, which ends the feed and
//! frees its reader.

use std::fmt::Debug;
use std::time::Duration;

use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use pgwire::api::results::{Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyDone, CopyOutResponse};
use pgwire::messages::data::RowDescription;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use streamhouse_executor::SERVER_VERSION;
use tracing::info;

use super::socket::FlushNow;

/// How long a feed may send nothing before it probes the client.
pub const FEED_IDLE_PROBE: Duration = Duration::from_secs(5);

/// Sends a feed's response (as built by `respond::rows` or `respond::copy_out`) as its
/// rows come. `describe`: send the RowDescription (the simple protocol; the extended one
/// sent it at Describe).
pub async fn send<C>(client: &mut C, response: Response, describe: bool, flush_now: &FlushNow) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match response {
        Response::Query(query) => {
            if describe {
                let fields = query.row_schema.iter().map(Into::into).collect();
                client.feed(PgWireBackendMessage::RowDescription(RowDescription::new(fields))).await?;
            }
            let rows = pump(client, query.data_rows.map(|row| row.map(PgWireBackendMessage::DataRow)), flush_now).await?;
            Ok(Response::Execution(Tag::new("SELECT").with_rows(rows)))
        }
        Response::CopyOut(copy) => {
            let start = CopyOutResponse::new(copy.format, copy.columns as i16, copy.column_formats());
            client.feed(PgWireBackendMessage::CopyOutResponse(start)).await?;
            let data = copy.data_stream.map(|data| data.map(PgWireBackendMessage::CopyData));
            let rows = pump(client, data, flush_now).await?;
            client.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
            Ok(Response::Execution(Tag::new("COPY").with_rows(rows)))
        }
        other => Ok(other),
    }
}

/// Feeds messages to the client, flushing whenever the source has nothing ready.
/// Returns how many were sent.
async fn pump<C, S>(client: &mut C, messages: S, flush_now: &FlushNow) -> PgWireResult<usize>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    S: Stream<Item = PgWireResult<PgWireBackendMessage>> + Send,
{
    let mut messages = std::pin::pin!(messages);
    let mut sent = 0;
    loop {
        let next = match messages.next().now_or_never() {
            Some(next) => next,
            None => {
                flush_now.request();
                client.flush().await?;
                loop {
                    match tokio::time::timeout(FEED_IDLE_PROBE, messages.next()).await {
                        Ok(next) => break next,
                        Err(_idle) => {
                            let probe = ParameterStatus::new("server_version".into(), SERVER_VERSION.into());
                            client.feed(PgWireBackendMessage::ParameterStatus(probe)).await?;
                            flush_now.request();
                            if let Err(e) = client.flush().await {
                                info!(error = ?e, "subscriber gone; feed ended");
                                return Err(e.into());
                            }
                        }
                    }
                }
            }
        };
        match next {
            None => return Ok(sent),
            Some(Ok(message)) => {
                client.feed(message).await?;
                sent += 1;
            }
            Some(Err(e)) => return Err(e),
        }
    }
}
