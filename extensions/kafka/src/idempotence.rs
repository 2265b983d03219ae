//! Idempotent producers (InitProducerId and sequence checks in Produce): a producer
//! retrying a batch whose acknowledgement it lost gets the original offsets back instead
//! of writing the records twice, and a gap in sequence numbers is refused.
//!
//! Per (producer id, table, partition) the last [`CACHED_BATCHES`] batches are
//! remembered, as Kafka does (a producer keeps at most 5 requests in flight). The state
//! lives in memory: after a restart a producer's next batch is taken as it comes (its
//! sequence is trusted), so a retry of a batch acknowledged just before a crash can be
//! written twice — the remaining gap against Kafka, which snapshots producer state.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::Broker;

/// Batches remembered per producer and partition (Kafka's in-flight maximum).
pub const CACHED_BATCHES: usize = 5;

/// The producer fields of the batches of one partition in one Produce request.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpan {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    pub records: i32,
}

impl BatchSpan {
    fn last_sequence(&self) -> i32 {
        self.first_sequence.wrapping_add(self.records.saturating_sub(1))
    }
}

/// What to do with a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it.
    Append,
    /// Already written at this base offset: answer with it, write nothing.
    Duplicate(i64),
    Refuse(ResponseError),
}

#[derive(Default)]
struct PartitionState {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of the latest batches, oldest first.
    batches: VecDeque<(i32, i32, i64)>,
}

pub struct Producers {
    next_id: Mutex<i64>,
    state: Mutex<HashMap<(i64, i64, i32), PartitionState>>,
    /// Held from the check of a request's idempotent batches until they are remembered
    /// (offsets assigned), so two copies of one batch cannot both pass the check.
    pub sequencing: tokio::sync::Mutex<()>,
}

impl Producers {
    pub fn new() -> Producers {
        // Ids from the clock in microseconds: a restarted server never hands out an id an
        // earlier run gave, without storing a counter.
        let start = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_micros() as i64);
        Producers { next_id: Mutex::new(start), state: Mutex::new(HashMap::new()), sequencing: tokio::sync::Mutex::new(()) }
    }

    fn allocate(&self) -> i64 {
        let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = *next;
        *next += 1;
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64, i32), PartitionState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a batch of `table`'s `partition` against what the producer sent before.
    pub fn check(&self, table_id: i64, partition: i32, span: &BatchSpan) -> Verdict {
        let state = self.lock();
        let Some(known) = state.get(&(span.producer_id, table_id, partition)) else {
            // Unknown here (new, or from before a restart): taken as it comes.
            return Verdict::Append;
        };
        if span.epoch < known.epoch {
            return Verdict::Refuse(ResponseError::InvalidProducerEpoch);
        }
        if span.epoch > known.epoch {
            return if span.first_sequence == 0 { Verdict::Append } else { Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber) };
        }
        if let Some((_, _, base)) = known
            .batches
            .iter()
            .find(|(first, last, _)| *first == span.first_sequence && *last == span.last_sequence())
        {
            return Verdict::Duplicate(*base);
        }
        let expected = known.batches.back().map_or(0, |(_, last, _)| last.wrapping_add(1));
        if span.first_sequence == expected {
            Verdict::Append
        } else {
            Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber)
        }
    }

    /// Forgets a batch whose write failed after it was remembered.
    pub fn forget(&self, table_id: i64, partition: i32, span: &BatchSpan) {
        let mut state = self.lock();
        if let Some(entry) = state.get_mut(&(span.producer_id, table_id, partition)) {
            entry.batches.retain(|(first, last, _)| !(*first == span.first_sequence && *last == span.last_sequence()));
        }
    }

    /// Remembers a batch that was written at `base_offset`.
    pub fn record(&self, table_id: i64, partition: i32, span: &BatchSpan, base_offset: i64) {
        let mut state = self.lock();
        let entry = state.entry((span.producer_id, table_id, partition)).or_default();
        if span.epoch != entry.epoch {
            entry.epoch = span.epoch;
            entry.batches.clear();
        }
        entry.batches.push_back((span.first_sequence, span.last_sequence(), base_offset));
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }
}

pub async fn init_producer_id(broker: &Broker, request: InitProducerIdRequest, _version: i16) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        // Transactions are not implemented (and not advertised).
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        // KIP-360: a producer that hit an error bumps its epoch and keeps its id.
        let epoch = request.producer_epoch.checked_add(1);
        return match epoch {
            Some(epoch) => InitProducerIdResponse::default().with_producer_id(request.producer_id).with_producer_epoch(epoch),
            None => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(broker.producers.allocate()))
                .with_producer_epoch(0),
        };
    }
    InitProducerIdResponse::default().with_producer_id(ProducerId(broker.producers.allocate())).with_producer_epoch(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(first: i32, records: i32, epoch: i16) -> BatchSpan {
        BatchSpan { producer_id: 7, epoch, first_sequence: first, records }
    }

    #[test]
    fn retries_are_recognised_and_gaps_refused() {
        let p = Producers::new();
        assert_eq!(p.check(1, 0, &span(0, 10, 0)), Verdict::Append);
        p.record(1, 0, &span(0, 10, 0), 100);
        assert_eq!(p.check(1, 0, &span(0, 10, 0)), Verdict::Duplicate(100), "a retry gets the first offsets");
        assert_eq!(p.check(1, 0, &span(10, 5, 0)), Verdict::Append);
        assert_eq!(p.check(1, 0, &span(12, 5, 0)), Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(p.check(1, 1, &span(12, 5, 0)), Verdict::Append, "partitions are independent");
        p.record(1, 0, &span(10, 5, 1), 110);
        assert_eq!(p.check(1, 0, &span(15, 1, 0)), Verdict::Refuse(ResponseError::InvalidProducerEpoch));
        for i in 0..6 {
            p.record(1, 0, &span(15 + i, 1, 1), 115 + i as i64);
        }
        assert_eq!(
            p.check(1, 0, &span(10, 5, 1)),
            Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber),
            "only the last 5 batches are remembered"
        );
    }
}
