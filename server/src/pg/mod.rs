//! The Postgres wire protocol front end (pgwire): the accept loop with its connection
//! limit, and one [`connection::Connection`] per client holding that client's session.

mod cancel;
mod connection;
mod feed;
mod respond;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use pgwire::api::ConnectionManager;
use streamhouse_executor::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use connection::Handlers;

/// Protocol code of an SSLRequest packet.
const SSL_REQUEST_CODE: u32 = 80877103;
/// Largest startup packet read when refusing a connection.
const MAX_STARTUP_PACKET: u32 = 10_000;

pub async fn serve(listener: TcpListener, engine: Arc<Engine>, max_connections: usize, mut stop: watch::Receiver<bool>) {
    let manager = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(cancel::CancelRegistry::default());
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let flush_now = socket::FlushNow::default();
                        let handlers = Handlers::new(engine.clone(), manager.clone(), cancels.clone(), flush_now.clone());
                        tasks.spawn(async move {
                            let _permit = permit;
                            if let Err(e) = socket::process(socket, handlers, flush_now).await {
                                debug!(%peer, error = %e, "connection ended with an error");
                            }
                        });
                    }
                    Err(_) => {
                        tasks.spawn(refuse(socket, max_connections));
                    }
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(crate::server::grace(), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

/// Answers a connection over the limit the way PostgreSQL does: FATAL 53300.
async fn refuse(mut socket: TcpStream, limit: usize) {
    let result: std::io::Result<()> = async {
        loop {
            let len = socket.read_u32().await?;
            if !(8..=MAX_STARTUP_PACKET).contains(&len) {
                return Ok(());
            }
            let mut body = vec![0u8; len as usize - 4];
            socket.read_exact(&mut body).await?;
            if body.len() >= 4 && u32::from_be_bytes([body[0], body[1], body[2], body[3]]) == SSL_REQUEST_CODE {
                socket.write_all(b"N").await?;
                continue;
            }
            break;
        }
        let message = format!("sorry, too many clients already (max_connections = {limit})");
        let mut fields = Vec::new();
        for (tag, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', "53300"), (b'M', message.as_str())] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut packet = vec![b'E'];
        packet.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
        packet.extend_from_slice(&fields);
        socket.write_all(&packet).await?;
        socket.shutdown().await
    }
    .await;
    if let Err(e) = result {
        debug!(error = %e, "refusing an over-limit connection failed");
    }
}
