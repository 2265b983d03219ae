//! The public handle: [`Wal`] and [`Pending`].
//!
//! Appending tasks talk to the writer thread only through a bounded queue. LSNs are assigned
//! and the record queued under one short lock, after a queue slot has been reserved, so the
//! queue order is the LSN order and the writer never has to reorder anything.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::WalConfig;
use crate::error::IoContext;
use crate::files::{FileSet, InitialFiles, LOCK_FILE_NAME};
use crate::writer::{self, Append, Request, Shared, WriterParts};
use crate::{recovery, Error, Lsn, Payload};

/// The write-ahead log of this node. Cheap to clone; all clones share one log.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Request>,
    append: Mutex<AppendState>,
    shared: Arc<Shared>,
    acked: watch::Receiver<Lsn>,
    finished: watch::Receiver<bool>,
    files: Arc<FileSet>,
    max_record_bytes: usize,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct AppendState {
    next_lsn: Lsn,
    closed: bool,
}

/// An append that is queued and has its LSN, but may not be acknowledged yet.
#[must_use = "an append is only durable once `acked()` returns Ok"]
#[derive(Debug)]
pub struct Pending {
    pub lsn: Lsn,
    acked: oneshot::Receiver<Result<Lsn, Error>>,
}

impl Pending {
    /// Waits until the record is acknowledged (see `Wal::enqueue` for what that means).
    pub async fn acked(self) -> Result<Lsn, Error> {
        self.acked.await.unwrap_or_else(|_| {
            Err(Error::Poisoned(
                "the WAL writer stopped before acknowledging".to_string(),
            ))
        })
    }
}

/// Counters since `open`, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records acknowledged.
    pub records: u64,
    /// Groups written (one write, and in fsync mode one fdatasync, each).
    pub groups: u64,
    /// fdatasync calls on log files (groups, intervals, rotations, close).
    pub syncs: u64,
    /// Bytes of framed records written.
    pub bytes: u64,
    /// Switches to a new file.
    pub rotations: u64,
}

impl Wal {
    /// Opens the log in `config.dir` (created if needed): takes the directory lock, replays
    /// every valid record in LSN order through `replay(lsn, payload)`, wipes a torn tail,
    /// starts writing in a fresh file and starts the writer thread. Records already in
    /// segments are replayed too (until released); the caller filters them. Blocking: call
    /// it at startup or from `spawn_blocking` (in a fresh directory it also preallocates the
    /// first file, `file_size` bytes of zeros).
    pub fn open(
        config: WalConfig,
        mut replay: impl FnMut(Lsn, &[u8]) -> Result<(), Error>,
    ) -> Result<Wal, Error> {
        config.validate()?;
        fs::create_dir_all(&config.dir)
            .context(|| format!("create WAL directory {}", config.dir.display()))?;
        let lock_file = lock_dir(&config.dir)?;

        let recovered = recovery::recover(&config.dir, &mut replay)?;
        tracing::info!(
            dir = %config.dir.display(),
            files = recovered.sealed.len(),
            records = recovered.records,
            next_lsn = recovered.next_lsn,
            wiped_bytes = recovered.wiped_bytes,
            "WAL recovered"
        );
        let next_lsn = recovered.next_lsn;
        let files = Arc::new(FileSet::new(
            config.dir.clone(),
            config.file_size,
            config.spare_files,
            InitialFiles {
                sealed: recovered.sealed,
                spares: recovered.spares,
                next_spare_id: recovered.next_spare_id,
                current_first_lsn: next_lsn,
            },
        ));
        for path in &recovered.unused {
            files.recycle_or_delete(path)?;
        }
        // Never append to a file recovery has read: a fresh file gets everything from here.
        let current = files.activate(recovered.next_seq, next_lsn, 0)?;
        if let Err(e) = files.release_empty_tail() {
            tracing::warn!(error = %e, "releasing empty WAL files after recovery failed");
        }

        let preparer = {
            let files = Arc::clone(&files);
            std::thread::Builder::new()
                .name("wal-prepare".to_string())
                .spawn(move || files.run_preparer())
                .context(|| "start the WAL preparer thread".to_string())?
        };
        let (tx, rx) = mpsc::channel(config.queue_depth);
        // Everything replayed is durable, hence acknowledged.
        let (acked_tx, acked) = watch::channel(next_lsn - 1);
        let (finished_tx, finished) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let writer = writer::spawn(WriterParts {
            rx,
            durability: config.durability,
            files: Arc::clone(&files),
            shared: Arc::clone(&shared),
            current,
            next_seq: recovered.next_seq + 1,
            acked: acked_tx,
            finished: finished_tx,
            lock_file,
            preparer,
        })
        .inspect_err(|_| files.shutdown())
        .context(|| "start the WAL writer thread".to_string())?;

        Ok(Wal {
            inner: Arc::new(Inner {
                tx,
                append: Mutex::new(AppendState {
                    next_lsn,
                    closed: false,
                }),
                shared,
                acked,
                finished,
                files,
                max_record_bytes: config.max_record_bytes,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Assigns the next LSN and queues the record, waiting only for queue space
    /// (back-pressure). Records are written in LSN order. The returned [`Pending`] resolves
    /// when the record is acknowledged: in fsync mode after an fdatasync covering it, in
    /// interval and none modes once it is written to the file.
    pub async fn enqueue(&self, payload: impl Into<Payload>) -> Result<Pending, Error> {
        let payload = payload.into();
        let inner = &*self.inner;
        if payload.len() > inner.max_record_bytes {
            return Err(Error::RecordTooLarge {
                size: payload.len(),
                max: inner.max_record_bytes,
            });
        }
        if let Some(poisoned) = inner.shared.poisoned() {
            return Err(poisoned);
        }
        let payload_crc = payload.crc();
        let permit = inner.tx.reserve().await.map_err(|_| inner.stopped())?;
        let (ack, acked) = oneshot::channel();
        let mut state = inner.lock_append();
        if let Some(poisoned) = inner.shared.poisoned() {
            return Err(poisoned);
        }
        if state.closed {
            return Err(Error::Closed);
        }
        let lsn = state.next_lsn;
        state.next_lsn += 1;
        permit.send(Request::Append(Append {
            lsn,
            payload,
            payload_crc,
            ack,
        }));
        drop(state);
        Ok(Pending { lsn, acked })
    }

    /// [`Wal::enqueue`] and wait for the acknowledgement.
    pub async fn append(&self, payload: impl Into<Payload>) -> Result<Lsn, Error> {
        self.enqueue(payload).await?.acked().await
    }

    /// Highest acknowledged LSN; every record up to it is acknowledged. It is updated before
    /// the individual `Pending`s resolve, so it already covers an append that has returned.
    pub fn acked_lsn(&self) -> Lsn {
        *self.inner.acked.borrow()
    }

    /// Follows [`Wal::acked_lsn`], so readers can wait for new data.
    pub fn subscribe_acked(&self) -> watch::Receiver<Lsn> {
        self.inner.acked.clone()
    }

    /// Declares records with LSN below `lsn` no longer needed (they are in segments). Whole
    /// files whose records are all below it are recycled as spares (up to `spare_files`) or
    /// deleted; the file being written is never touched. Does a little blocking file-system
    /// work (renames, unlinks, one directory fsync). Failures are logged, not returned: the
    /// files simply stay and are replayed (and filtered) once more after a restart.
    pub fn release_before(&self, lsn: Lsn) {
        match self.inner.files.release_before(lsn) {
            Ok(0) => {}
            Ok(files) => tracing::debug!(files, lsn, "WAL files released"),
            Err(e) => tracing::warn!(error = %e, lsn, "releasing WAL files failed"),
        }
    }

    /// The LSN the next append will get.
    pub fn next_lsn(&self) -> Lsn {
        self.inner.lock_append().next_lsn
    }

    /// Counters since `open`.
    pub fn stats(&self) -> WalStats {
        let c = &self.inner.shared.counters;
        WalStats {
            records: c.records.load(Ordering::Relaxed),
            groups: c.groups.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting appends, writes and fdatasyncs everything already queued,
    /// acknowledges it and stops the writer thread (releasing the directory lock).
    /// Idempotent. Fails with `Poisoned` if the log was poisoned.
    pub async fn close(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        // The close request takes a queue slot like an append, so it lands behind every
        // append queued before `closed` was set and ahead of none after.
        if let Ok(permit) = inner.tx.reserve().await {
            let mut state = inner.lock_append();
            if !state.closed {
                state.closed = true;
                permit.send(Request::Close);
            }
        }
        let mut finished = inner.finished.clone();
        // An error means the writer is gone without saying so (it panicked): also finished.
        let _ = finished.wait_for(|done| *done).await;
        let writer = inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            // The thread has signalled its end (or died), so this join does not wait.
            if writer.join().is_err() {
                return Err(Error::Poisoned(
                    "the WAL writer thread panicked".to_string(),
                ));
            }
        }
        match inner.shared.poisoned() {
            Some(poisoned) => Err(poisoned),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
impl Wal {
    pub(crate) fn inner_shared(&self) -> &Shared {
        &self.inner.shared
    }
}

impl Inner {
    fn lock_append(&self) -> MutexGuard<'_, AppendState> {
        // Only plain field updates happen under this lock; it is consistent after a panic.
        self.append.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error for an append that finds the writer gone.
    fn stopped(&self) -> Error {
        self.shared.poisoned().unwrap_or(Error::Closed)
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("next_lsn", &self.next_lsn())
            .field("acked_lsn", &self.acked_lsn())
            .field("stats", &self.stats())
            .finish()
    }
}

/// One log per directory: a second `open` (another process, or this one before `close`)
/// would interleave records and break the LSN chain.
fn lock_dir(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .context(|| format!("open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "WAL directory {} is in use by another open log",
                dir.display()
            ),
        ))),
        Err(TryLockError::Error(e)) => Err(Error::Io(io::Error::new(
            e.kind(),
            format!("lock {}: {e}", path.display()),
        ))),
    }
}
