//! SQL cursors of one session: `DECLARE name CURSOR FOR query | SUBSCRIBE …`, `FETCH`,
//! `CLOSE`. A cursor holds its query's running stream, so a FETCH reads only as many rows
//! as it returns (plus the rest of the batch they came in).
//!
//! A cursor over a subscription is *endless*: FETCH then waits for rows instead of
//! reporting the end. Without a timeout it waits for at least one row and returns what
//! is ready (up to the count); `WITH (timeout = …)` bounds the wait and may return none.
//! As in PostgreSQL, cursors live until CLOSE or the end of the transaction that
//! declared them, unless declared `WITH HOLD`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{FutureExt, StreamExt};

use crate::error::{Error, Result};
use crate::statement::Fetch;

/// Open cursors per session: each may hold a reader task and a batch of rows.
pub const MAX_OPEN_CURSORS: usize = 256;

#[derive(Default)]
pub(crate) struct Cursors {
    /// Each cursor is only ever reached through `&mut self` (`Mutex::get_mut`, no
    /// locking); the mutex makes a session shareable between threads, which the
    /// streams inside (Send, not Sync) would otherwise prevent.
    open: HashMap<String, Mutex<Cursor>>,
}

struct Cursor {
    rows: SendableRecordBatchStream,
    /// Rows of the last batch that the previous FETCH did not return.
    held: Option<RecordBatch>,
    /// Survives the end of the transaction (`WITH HOLD`).
    hold: bool,
    /// Declared inside the transaction block still open: a ROLLBACK removes it even WITH
    /// HOLD (it may read the block's uncommitted rows), as in PostgreSQL.
    in_open_block: bool,
    /// A subscription: FETCH waits for rows rather than ending.
    endless: bool,
}

impl Cursors {
    pub fn declare(&mut self, name: &str, rows: SendableRecordBatchStream, hold: bool, endless: bool, in_open_block: bool) -> Result<()> {
        if self.open.contains_key(name) {
            return Err(Error::DuplicateCursor(name.to_string()));
        }
        if self.open.len() >= MAX_OPEN_CURSORS {
            return Err(Error::InvalidParameter(format!(
                "{MAX_OPEN_CURSORS} cursors are open in this session; CLOSE some first"
            )));
        }
        self.open.insert(name.to_string(), Mutex::new(Cursor { rows, held: None, hold, endless, in_open_block }));
        Ok(())
    }

    /// The columns a FETCH from this cursor returns.
    pub fn schema(&mut self, name: &str) -> Result<SchemaRef> {
        Ok(self.cursor(name)?.rows.schema())
    }

    /// The next rows of a cursor (see the module docs for how long it waits).
    pub async fn fetch(&mut self, fetch: &Fetch) -> Result<Vec<RecordBatch>> {
        let cursor = self.cursor(&fetch.cursor)?;
        let wanted = fetch.count.unwrap_or(u64::MAX);
        let deadline = fetch.timeout.and_then(|t| Instant::now().checked_add(t));
        let mut out = Vec::new();
        let mut got = 0u64;
        while got < wanted {
            let batch = match cursor.held.take() {
                Some(batch) => batch,
                None => {
                    let next = if let Some(deadline) = deadline.filter(|_| cursor.endless) {
                        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), cursor.rows.next()).await {
                            Ok(next) => next,
                            Err(_) => break,
                        }
                    } else if cursor.endless && got > 0 {
                        // Rows are in hand: return them rather than wait for more.
                        match cursor.rows.next().now_or_never() {
                            Some(next) => next,
                            None => break,
                        }
                    } else {
                        cursor.rows.next().await
                    };
                    match next {
                        None => break,
                        Some(Err(e)) => return Err(e.into()),
                        Some(Ok(batch)) => batch,
                    }
                }
            };
            let take = (batch.num_rows() as u64).min(wanted - got) as usize;
            if take < batch.num_rows() {
                cursor.held = Some(batch.slice(take, batch.num_rows() - take));
            }
            got += take as u64;
            out.push(batch.slice(0, take));
        }
        Ok(out)
    }

    /// `CLOSE name`, or `CLOSE ALL` with `None`.
    pub fn close(&mut self, name: Option<&str>) -> Result<()> {
        match name {
            None => self.open.clear(),
            Some(name) => {
                self.open.remove(name).ok_or_else(|| Error::UndefinedCursor(name.to_string()))?;
            }
        }
        Ok(())
    }

    /// COMMIT or ROLLBACK: cursors not declared WITH HOLD close; a ROLLBACK also removes
    /// the held cursors the block declared.
    pub fn end_transaction(&mut self, committed: bool) {
        self.open.retain(|_, c| c.get_mut().map(|c| c.hold && (committed || !c.in_open_block)).unwrap_or(false));
        for cursor in self.open.values_mut() {
            if let Ok(cursor) = cursor.get_mut() {
                cursor.in_open_block = false;
            }
        }
    }

    fn cursor(&mut self, name: &str) -> Result<&mut Cursor> {
        let cursor = self.open.get_mut(name).ok_or_else(|| Error::UndefinedCursor(name.to_string()))?;
        Ok(cursor.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
