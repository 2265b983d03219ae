//! The per-socket message loop, and the output buffering that makes it answer a pipelined
//! request with one write.
//!
//! pgwire's own `process_socket` flushes the socket after ParseComplete, BindComplete,
//! RowDescription and CommandComplete: an asyncpg `Bind/Execute/Sync` round trip costs the
//! server three `sendto` calls and wakes the client three times. PostgreSQL instead buffers
//! its output and flushes only when it is about to wait for the client (or the buffer is
//! full). [`FlushBeforeRead`] gives pgwire's framing that behaviour: a flush request is
//! deferred until the loop next reads from the socket, unless [`OUTPUT_HIGH_WATER`] bytes
//! are waiting, so long results still stream.
//!
//! An endless result (SUBSCRIBE) cannot wait for the next read: its rows must leave
//! whenever the feed pauses. [`FlushNow`] is the connection handler's way to ask for that
//! one real flush.
//!
//! The loop itself is pgwire's (`process_message` / `process_error` per message), with the
//! SSL negotiation that plain TCP needs: SSLRequest and GSSENCRequest are refused with `N`
//! until TLS is configured.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, DefaultClient, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::messages::response::{GssEncResponse, SslResponse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage};
use pgwire::tokio::server::{process_error, process_message, PgWireMessageServerCodec};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Output bytes held back before a flush request really writes them.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// How long a client has to finish SSL negotiation and startup (as pgwire: one minute).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one client socket until it disconnects, terminates or fails fatally.
/// `flush_now` is shared with the connection's handlers.
pub async fn process<H: PgWireServerHandlers>(socket: TcpStream, handlers: H, flush_now: FlushNow) -> io::Result<()> {
    let peer = socket.peer_addr()?;
    let client = DefaultClient::new(peer, false);
    let mut framed = Framed::new(FlushBeforeRead::new(socket, flush_now), PgWireMessageServerCodec::new(client));

    let startup = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup);
    if !tokio::select! {
        _ = &mut startup => false,
        negotiated = refuse_encryption(&mut framed) => negotiated?,
    } {
        return Ok(());
    }

    let startup_handler = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    loop {
        let awaiting_startup = matches!(
            framed.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let message = if awaiting_startup {
            tokio::select! {
                _ = &mut startup => None,
                message = framed.next() => message,
            }
        } else {
            framed.next().await
        };
        let Some(Ok(message)) = message else { break };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended_protocol = match framed.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let handled = process_message(
            message,
            &mut framed,
            startup_handler.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await;
        if let Err(mut e) = handled {
            errors.on_error(&framed, &mut e);
            process_error(&mut framed, e, extended_protocol).await?;
        }
    }
    // Whatever is still held back (a reply pipelined before Terminate) goes out before close.
    framed.close().await
}

/// Answers SSLRequest / GSSENCRequest with `N` until the client sends its startup packet.
/// False when the client went away first.
async fn refuse_encryption<IO, S>(framed: &mut Framed<IO, PgWireMessageServerCodec<S>>) -> io::Result<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    loop {
        let refusal = match framed.next().await {
            Some(Ok(PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresSsl(_)))) => {
                PgWireBackendMessage::SslResponse(SslResponse::Refuse)
            }
            Some(Ok(PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresGss(_)))) => {
                PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse)
            }
            // The codec has peeked at a startup or cancel packet without consuming it.
            Some(Ok(_)) => {
                framed.set_state(PgWireConnectionState::AwaitingStartup);
                return Ok(true);
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => return Ok(false),
        };
        framed.send(refusal).await?;
    }
}

/// A request, set before flushing the connection's sink, that this flush really write
/// (see the module docs). Cleared once the held-back output has been written.
#[derive(Debug, Clone, Default)]
pub struct FlushNow(Arc<AtomicBool>);

impl FlushNow {
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn done(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A socket whose flushes wait for the next read (see the module docs).
pub struct FlushBeforeRead<IO> {
    inner: IO,
    pending: Vec<u8>,
    /// How much of `pending` has already been written.
    written: usize,
    flush_now: FlushNow,
}

impl<IO: AsyncWrite + Unpin> FlushBeforeRead<IO> {
    pub fn new(inner: IO, flush_now: FlushNow) -> Self {
        FlushBeforeRead { inner, pending: Vec::with_capacity(8 * 1024), written: 0, flush_now }
    }

    fn held_back(&self) -> usize {
        self.pending.len() - self.written
    }

    /// Writes everything held back, then flushes the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for FlushBeforeRead<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.held_back() > 0 {
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FlushBeforeRead<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held_back() >= OUTPUT_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.flush_now.requested() {
            ready!(this.poll_drain(cx))?;
            this.flush_now.done();
        } else if this.held_back() >= OUTPUT_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn flushes_wait_for_the_next_read() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut socket = FlushBeforeRead::new(server, FlushNow::default());
        socket.write_all(b"BindComplete").await.unwrap();
        socket.flush().await.unwrap();
        socket.write_all(b"+ReadyForQuery").await.unwrap();
        socket.flush().await.unwrap();
        let mut got = [0u8; 64];
        let nothing = tokio::time::timeout(Duration::from_millis(50), client.read(&mut got)).await;
        assert!(nothing.is_err(), "output left before the server waited for input");

        client.write_all(b"next").await.unwrap();
        let mut request = [0u8; 4];
        socket.read_exact(&mut request).await.unwrap();
        let n = client.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"BindComplete+ReadyForQuery");
    }

    #[tokio::test]
    async fn large_output_streams_without_a_read() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut socket = FlushBeforeRead::new(server, FlushNow::default());
        let chunk = vec![7u8; 1024];
        for _ in 0..(OUTPUT_HIGH_WATER / chunk.len() + 1) {
            socket.write_all(&chunk).await.unwrap();
            socket.flush().await.unwrap();
        }
        let mut got = vec![0u8; OUTPUT_HIGH_WATER * 2];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got)).await.unwrap().unwrap();
        assert!(n >= OUTPUT_HIGH_WATER, "only {n} bytes streamed");
    }

    #[tokio::test]
    async fn a_requested_flush_writes_at_once() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let flush_now = FlushNow::default();
        let mut socket = FlushBeforeRead::new(server, flush_now.clone());
        socket.write_all(b"DataRow").await.unwrap();
        flush_now.request();
        socket.flush().await.unwrap();
        let mut got = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got)).await.unwrap().unwrap();
        assert_eq!(&got[..n], b"DataRow");
        // The request was for that flush only.
        socket.write_all(b"more").await.unwrap();
        socket.flush().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), client.read(&mut got)).await.is_err());
    }

    #[tokio::test]
    async fn shutdown_writes_what_was_held_back() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut socket = FlushBeforeRead::new(server, FlushNow::default());
        socket.write_all(b"CommandComplete").await.unwrap();
        socket.flush().await.unwrap();
        socket.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"CommandComplete");
    }
}
