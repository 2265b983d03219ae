//! CancelRequest: a client opens a second connection with (pid, secret key) to stop the
//! statement running on its first one.
//!
//! pgwire's own cancel handle only covers the planning phase of a statement (its
//! `do_query`); rows are produced later, while pgwire streams them. So each connection
//! also has a cancel generation: result streams stop with SQLSTATE 57014 as soon as it
//! changes, which drops the DataFusion plan and frees what it held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ConnectionManager;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use streamhouse_executor::Error;
use tokio::sync::watch;

type Key = (i32, Bytes);

/// Every live connection's cancel signal, by (pid, secret key).
#[derive(Default)]
pub struct CancelRegistry {
    signals: Mutex<HashMap<Key, watch::Sender<u64>>>,
}

impl CancelRegistry {
    /// Registers a connection; the returned guard unregisters it when the connection ends.
    pub fn register(self: &Arc<Self>, pid: i32, secret: &SecretKey) -> (CancelSignal, Registration) {
        let (tx, rx) = watch::channel(0);
        let key = (pid, secret.to_bytes());
        self.signals.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), tx);
        (CancelSignal(rx), Registration { registry: self.clone(), key })
    }

    fn cancel(&self, pid: i32, secret: &SecretKey) {
        let signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = signals.get(&(pid, secret.to_bytes())) {
            tx.send_modify(|generation| *generation += 1);
        }
    }
}

pub struct Registration {
    registry: Arc<CancelRegistry>,
    key: Key,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.signals.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// A connection's view of its cancel signal.
#[derive(Clone)]
pub struct CancelSignal(watch::Receiver<u64>);

impl CancelSignal {
    /// Wraps a result stream so that a cancel arriving from now on ends it with 57014.
    pub fn guard(&self, stream: SendableRecordBatchStream) -> impl Stream<Item = Result<arrow::record_batch::RecordBatch, Error>> + Send {
        let mut signal = self.0.clone();
        signal.mark_unchanged();
        futures::stream::unfold((stream, signal, false), |(mut rows, mut signal, done)| async move {
            if done {
                return None;
            }
            tokio::select! {
                biased;
                changed = signal.changed() => match changed {
                    Ok(()) => Some((Err(Error::Canceled), (rows, signal, true))),
                    // The connection is gone; nobody is reading.
                    Err(_) => None,
                },
                item = rows.next() => item.map(|batch| (batch.map_err(Error::from), (rows, signal, false))),
            }
        })
    }
}

/// Handles CancelRequest on whichever connection it arrives: both the planning phase
/// (pgwire's manager) and the row stream (our registry) are interrupted.
pub struct Canceller {
    pub manager: Arc<ConnectionManager>,
    pub registry: Arc<CancelRegistry>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.registry.cancel(request.pid, &request.secret_key);
        self.manager.cancel(request.pid, &request.secret_key).await;
    }
}
