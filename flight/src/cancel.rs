//! Cancelling a query: `CancelFlightInfo` (and Flight SQL's older `CancelQuery`).
//!
//! Every statement ticket carries a query id next to its SQL, so the FlightInfo a client
//! holds names one execution. A running DoGet registers its id; cancelling it ends the
//! stream with CANCELLED and drops the plan (a subscription's reader task with it). A
//! query cancelled before its DoGet starts is remembered, so the DoGet is refused; one
//! that already finished is not cancellable. Both memories are bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use arrow_flight::{CancelStatus, FlightInfo, Ticket};
use futures::StreamExt;
use tokio::sync::watch;
use tonic::Status;

use crate::results::FlightDataStream;

/// Ended or cancelled query ids remembered, to answer a late cancel correctly.
const REMEMBERED_QUERIES: usize = 4096;

/// A statement ticket: the query id, then the SQL.
pub struct StatementTicket {
    pub id: u64,
    pub sql: String,
}

impl StatementTicket {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.id.to_be_bytes().to_vec();
        out.extend_from_slice(self.sql.as_bytes());
        out
    }

    pub fn decode(handle: &[u8]) -> Result<StatementTicket, Status> {
        let bad = || Status::invalid_argument("malformed statement ticket");
        let (id, sql) = handle.split_at_checked(8).ok_or_else(bad)?;
        let id = u64::from_be_bytes(id.try_into().map_err(|_| bad())?);
        let sql = String::from_utf8(sql.to_vec()).map_err(|_| bad())?;
        Ok(StatementTicket { id, sql })
    }
}

#[derive(Default)]
pub struct Queries {
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: HashMap<u64, watch::Sender<bool>>,
    /// Cancelled before they ran.
    cancelled: HashSet<u64>,
    /// Finished (or cancelled), oldest first.
    ended: VecDeque<u64>,
    ended_set: HashSet<u64>,
}

impl State {
    fn remember_end(&mut self, id: u64) {
        if self.ended_set.insert(id) {
            self.ended.push_back(id);
        }
        while self.ended.len() > REMEMBERED_QUERIES {
            if let Some(old) = self.ended.pop_front() {
                self.ended_set.remove(&old);
                self.cancelled.remove(&old);
            }
        }
    }
}

impl Queries {
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + rand::random::<u32>() as u64 * (1 << 32)
    }

    /// Runs `stream` as query `id` until it ends or is cancelled.
    pub fn track(self: &std::sync::Arc<Self>, id: u64, stream: FlightDataStream) -> Result<FlightDataStream, Status> {
        let cancelled = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.cancelled.contains(&id) {
                return Err(Status::cancelled("the query was cancelled"));
            }
            let (tx, rx) = watch::channel(false);
            state.running.insert(id, tx);
            rx
        };
        let ended = EndGuard { queries: self.clone(), id };
        let stream = futures::stream::unfold((stream, Some(ended)), move |(mut stream, ended)| {
            let mut cancelled = cancelled.clone();
            async move {
                let ended = ended?;
                tokio::select! {
                    biased;
                    // Err: the handle was replaced (a second DoGet of the ticket); not a cancel.
                    Ok(_) = cancelled.wait_for(|c| *c) => Some((Err(Status::cancelled("the query was cancelled")), (stream, None))),
                    item = stream.next() => item.map(|item| (item, (stream, Some(ended)))),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    /// `CancelFlightInfo`: cancels the query named by the FlightInfo's tickets.
    pub fn cancel(&self, info: &FlightInfo, decode: impl Fn(&Ticket) -> Option<u64>) -> CancelStatus {
        let ids: Vec<u64> = info.endpoint.iter().filter_map(|e| e.ticket.as_ref()).filter_map(decode).collect();
        if ids.is_empty() {
            return CancelStatus::NotCancellable;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut status = CancelStatus::NotCancellable;
        for id in ids {
            if let Some(running) = state.running.get(&id) {
                let _ = running.send(true);
                status = CancelStatus::Cancelled;
            } else if !state.ended_set.contains(&id) {
                state.cancelled.insert(id);
                state.remember_end(id);
                status = CancelStatus::Cancelled;
            }
        }
        status
    }
}

/// Unregisters a query when its stream ends or is dropped.
struct EndGuard {
    queries: std::sync::Arc<Queries>,
    id: u64,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let mut state = self.queries.state.lock().unwrap_or_else(|p| p.into_inner());
        state.running.remove(&self.id);
        state.remember_end(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::StatementTicket;

    #[test]
    fn tickets_round_trip_and_garbage_is_refused() {
        let t = StatementTicket { id: 42, sql: "SELECT 1".into() };
        let back = StatementTicket::decode(&t.encode()).unwrap();
        assert_eq!((back.id, back.sql.as_str()), (42, "SELECT 1"));
        assert!(StatementTicket::decode(b"short").is_err());
        assert!(StatementTicket::decode(&[0, 0, 0, 0, 0, 0, 0, 1, 0xff]).is_err());
    }
}
