//! A session's transaction block: writes wait here until COMMIT, savepoints mark points
//! to roll back to, and a failed statement fails the block until ROLLBACK (25P02), as in
//! PostgreSQL. Reads inside a block see the block's own pending writes (the session hands
//! them to its scans, `provider::PendingRows`); no other session sees them before COMMIT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use streamhouse_streams::TableWrite;

use crate::error::{Error, Result};
use crate::output::{Output, TransactionStatus};

#[derive(Default)]
pub struct Transaction {
    state: State,
    writes: Vec<TableWrite>,
    /// Savepoint names with the number of writes pending when each was set.
    savepoints: Vec<(String, usize)>,
    /// Set when a result this block returned ends in an error while it is read (a
    /// division by zero, a statement timeout): rows are read after the statement has
    /// returned, so the block learns of it at its next statement.
    failed_while_read: Arc<AtomicBool>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    Open,
    Failed,
}

/// How a COMMIT ends.
pub enum Ending {
    Commit(Vec<TableWrite>),
    /// COMMIT of a failed block rolls back, and says so in its tag.
    RolledBack,
}

impl Transaction {
    pub fn status(&self) -> TransactionStatus {
        match self.state {
            State::Idle => TransactionStatus::Idle,
            State::Open => TransactionStatus::InBlock,
            State::Failed => TransactionStatus::Failed,
        }
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Fails the block if one of its results ended in an error while it was read.
    pub fn note_read_failures(&mut self) {
        if self.failed_while_read.swap(false, Ordering::Relaxed) {
            self.fail();
        }
    }

    /// Inside a block, makes the rows of `output` report an error they end in.
    pub fn watch(&self, output: Output) -> Output {
        if self.state != State::Open {
            return output;
        }
        let watch = |rows: SendableRecordBatchStream| -> SendableRecordBatchStream {
            let flag = self.failed_while_read.clone();
            let schema = rows.schema();
            let rows = rows.inspect(move |item| {
                if item.is_err() {
                    flag.store(true, Ordering::Relaxed);
                }
            });
            Box::pin(RecordBatchStreamAdapter::new(schema, rows))
        };
        match output {
            Output::Rows(rows) => Output::Rows(watch(rows)),
            Output::CopyOut { rows, format } => Output::CopyOut { rows: watch(rows), format },
            other => other,
        }
    }

    /// A nested BEGIN stays in the block (PostgreSQL warns and does the same).
    pub fn begin(&mut self) {
        if self.state == State::Idle {
            self.state = State::Open;
        }
    }

    /// Marks the block failed after an error; outside a block nothing changes.
    pub fn fail(&mut self) {
        if self.state == State::Open {
            self.state = State::Failed;
        }
    }

    /// Holds `writes` inside a block; outside one, hands them back to be appended now.
    pub fn hold(&mut self, writes: Vec<TableWrite>) -> Result<Option<Vec<TableWrite>>> {
        match self.state {
            State::Idle => Ok(Some(writes)),
            State::Open => {
                self.writes.extend(writes);
                Ok(None)
            }
            State::Failed => Err(Error::TransactionAborted),
        }
    }

    /// The writes held so far, in order (what the block's own reads must see).
    pub fn pending_writes(&self) -> &[TableWrite] {
        &self.writes
    }

    pub fn commit(&mut self) -> Ending {
        let ending = match self.state {
            State::Failed => Ending::RolledBack,
            State::Idle | State::Open => Ending::Commit(std::mem::take(&mut self.writes)),
        };
        *self = Transaction::default();
        ending
    }

    pub fn rollback(&mut self) {
        *self = Transaction::default();
    }

    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.require_block("SAVEPOINT")?;
        if self.state == State::Failed {
            return Err(Error::TransactionAborted);
        }
        self.savepoints.push((name.to_string(), self.writes.len()));
        Ok(())
    }

    pub fn release(&mut self, name: &str) -> Result<()> {
        self.require_block("RELEASE SAVEPOINT")?;
        if self.state == State::Failed {
            return Err(Error::TransactionAborted);
        }
        let at = self.find(name)?;
        self.savepoints.truncate(at);
        Ok(())
    }

    /// Drops the writes made after the savepoint, keeps the savepoint, and revives a failed block.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        self.require_block("ROLLBACK TO SAVEPOINT")?;
        let at = self.find(name)?;
        let (_, pending) = self.savepoints[at];
        self.writes.truncate(pending);
        self.savepoints.truncate(at + 1);
        self.state = State::Open;
        Ok(())
    }

    fn find(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::NoSuchSavepoint(name.to_string()))
    }

    fn require_block(&self, what: &str) -> Result<()> {
        if self.state == State::Idle {
            return Err(Error::NoActiveTransaction(format!("{what} can only be used in transaction blocks")));
        }
        Ok(())
    }
}
