//! The groups of an aggregating view in memory ([`super::aggregate::AggregateResult`]):
//! per group its key bytes, its aggregates' states, its visible row and, for `EMIT ON
//! WINDOW CLOSE`, its window's end; slots are kept dense (a removed group's slot takes
//! the last group).

use std::collections::HashMap;

use datafusion::common::ScalarValue;

/// The groups of one view: their states and the row each shows (if any).
#[derive(Default)]
pub(super) struct Groups {
    pub(super) slots: HashMap<Vec<u8>, usize>,
    /// Per group, its key bytes (the slot map's key).
    pub(super) keys: Vec<Vec<u8>>,
    /// Per group, the states of all aggregates, in partial-row order.
    pub(super) states: Vec<Vec<ScalarValue>>,
    /// Per group, its row of the view (None: filtered out by HAVING).
    pub(super) rows: Vec<Option<Vec<ScalarValue>>>,
    /// Per group of an `EMIT ON WINDOW CLOSE` view: its window's end (µs since the epoch).
    pub(super) window_ends: Vec<Option<i64>>,
}

impl Groups {
    pub(super) fn upsert(&mut self, update: GroupUpdate) {
        let GroupUpdate { key, states, row, window_end } = update;
        match self.slots.get(&key) {
            Some(&slot) => {
                self.states[slot] = states;
                self.rows[slot] = row;
            }
            None => {
                self.slots.insert(key.clone(), self.keys.len());
                self.keys.push(key);
                self.states.push(states);
                self.rows.push(row);
                self.window_ends.push(window_end);
            }
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) {
        let Some(slot) = self.slots.remove(key) else { return };
        self.keys.swap_remove(slot);
        self.states.swap_remove(slot);
        self.rows.swap_remove(slot);
        self.window_ends.swap_remove(slot);
        if let Some(moved) = self.keys.get(slot) {
            self.slots.insert(moved.clone(), slot);
        }
    }

    /// The groups whose window ends at or before `watermark`.
    pub(super) fn closed(&self, watermark: i64) -> impl Iterator<Item = usize> + '_ {
        self.window_ends.iter().enumerate().filter(move |(_, end)| end.is_some_and(|e| e <= watermark)).map(|(slot, _)| slot)
    }
}

/// A touched group after a step: its key bytes, new states and visible row.
pub(super) struct GroupUpdate {
    pub(super) key: Vec<u8>,
    pub(super) states: Vec<ScalarValue>,
    pub(super) row: Option<Vec<ScalarValue>>,
    pub(super) window_end: Option<i64>,
}
