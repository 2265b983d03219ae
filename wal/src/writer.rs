//! The writer thread: group commit.
//!
//! One dedicated OS thread owns the file being written. It blocks for the first queued
//! append, then drains whatever else arrived meanwhile (up to `GROUP_MAX_RECORDS` /
//! `GROUP_MAX_BYTES`), writes the whole group with one positioned write (large payload
//! parts straight from their buffers, `DIRECT_WRITE_MIN_BYTES`), issues ONE
//! fdatasync for it (fsync mode), then acknowledges every record of the group and publishes
//! the new acknowledged LSN. The more appenders wait, the bigger the next group, so the cost
//! of an fdatasync is shared instead of serialising appends behind it.
//!
//! A blocking thread rather than a tokio task because fdatasync blocks for milliseconds and
//! must not stall a runtime worker; its only contact with async code is the bounded queue
//! in, oneshot acknowledgements and a watch channel out.
//!
//! Failure is fail-stop: once a write or fdatasync fails the log is poisoned, the failed
//! group and everything after it get `Error::Poisoned`, and nothing is ever acknowledged
//! again (after a failed fdatasync the kernel may have dropped the dirty pages, so a later
//! successful one would prove nothing).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Durability, DIRECT_WRITE_MIN_BYTES, GROUP_MAX_BYTES, GROUP_MAX_RECORDS};
use crate::error::IoContext;
use crate::files::{ActiveFile, FileSet};
use crate::format::RecordHeader;
use crate::{Error, Lsn, Payload};

/// What the handle sends to the writer thread.
pub(crate) enum Request {
    Append(Append),
    /// Write and sync everything queued before, then stop.
    Close,
}

pub(crate) struct Append {
    pub lsn: Lsn,
    pub payload: Payload,
    /// Checksum of the payload, computed by the appending task (see `format`).
    pub payload_crc: u32,
    pub ack: oneshot::Sender<Result<Lsn, Error>>,
}

/// Counters exposed through `Wal::stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub groups: AtomicU64,
    pub syncs: AtomicU64,
    pub bytes: AtomicU64,
    pub rotations: AtomicU64,
}

/// State shared by the handle and the writer thread.
#[derive(Default)]
pub(crate) struct Shared {
    poison: OnceLock<String>,
    pub counters: Counters,
    /// Fault injection: the next fdatasync of a log file fails.
    #[cfg(test)]
    pub fail_next_sync: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// `Some(Error::Poisoned)` once a write or sync has failed.
    pub fn poisoned(&self) -> Option<Error> {
        self.poison
            .get()
            .map(|reason| Error::Poisoned(reason.clone()))
    }

    /// Marks the log failed; the first reason wins and is what every later caller sees.
    fn poison(&self, reason: String) -> String {
        if self.poison.set(reason.clone()).is_ok() {
            tracing::error!(%reason, "WAL poisoned: no further appends will be accepted");
        }
        self.poison.get().cloned().unwrap_or(reason)
    }
}

/// What the handle hands to the writer thread when it starts it.
pub(crate) struct WriterParts {
    pub rx: mpsc::Receiver<Request>,
    pub durability: Durability,
    pub files: Arc<FileSet>,
    pub shared: Arc<Shared>,
    /// The file to write first (already activated by `Wal::open`).
    pub current: ActiveFile,
    /// `file_seq` of the next file to activate.
    pub next_seq: u64,
    pub acked: watch::Sender<Lsn>,
    /// Set to `true` as the thread's last act, after the directory lock is released.
    pub finished: watch::Sender<bool>,
    /// Held for the lifetime of the thread: nobody else may open the directory while this
    /// thread may still write to it.
    pub lock_file: File,
    pub preparer: JoinHandle<()>,
}

/// Starts the writer thread.
pub(crate) fn spawn(parts: WriterParts) -> io::Result<JoinHandle<()>> {
    // A tiny runtime only for its timer, to wait on the queue with a deadline.
    let timer = match parts.durability {
        Durability::Interval(_) => Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?,
        ),
        _ => None,
    };
    let writer = Writer {
        rx: parts.rx,
        durability: parts.durability,
        files: parts.files,
        shared: parts.shared,
        current: parts.current,
        next_seq: parts.next_seq,
        acked: parts.acked,
        finished: parts.finished,
        lock_file: Some(parts.lock_file),
        preparer: Some(parts.preparer),
        timer,
        buf: Vec::new(),
    };
    std::thread::Builder::new()
        .name("wal-writer".to_string())
        .spawn(move || writer.run())
}

enum Received {
    Request(Request),
    /// Interval mode: the sync deadline passed while waiting.
    SyncDue,
    /// Every handle is gone.
    Disconnected,
}

struct Writer {
    rx: mpsc::Receiver<Request>,
    durability: Durability,
    files: Arc<FileSet>,
    shared: Arc<Shared>,
    current: ActiveFile,
    next_seq: u64,
    acked: watch::Sender<Lsn>,
    finished: watch::Sender<bool>,
    lock_file: Option<File>,
    preparer: Option<JoinHandle<()>>,
    timer: Option<tokio::runtime::Runtime>,
    /// Coalescing buffer for one group, kept between groups (bounded by `GROUP_MAX_BYTES`
    /// except transiently for a single larger record).
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let first = match self.receive() {
                Received::Request(request) => request,
                Received::SyncDue => {
                    self.sync_or_poison();
                    continue;
                }
                Received::Disconnected => break,
            };
            let mut group = Vec::new();
            let mut group_bytes = 0;
            let mut closing = false;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Append(append) => {
                        group_bytes += append.payload.len();
                        group.push(append);
                    }
                    Request::Close => {
                        closing = true;
                        break;
                    }
                }
                if group_bytes < GROUP_MAX_BYTES && group.len() < GROUP_MAX_RECORDS {
                    next = self.rx.try_recv().ok();
                }
            }
            self.commit(group);
            if closing {
                break;
            }
            if self.interval_sync_due() {
                self.sync_or_poison();
            }
        }
        self.finish();
    }

    fn interval(&self) -> Option<Duration> {
        match self.durability {
            Durability::Interval(every) => Some(every),
            _ => None,
        }
    }

    fn interval_sync_due(&self) -> bool {
        match (self.current.unsynced_since, self.interval()) {
            (Some(since), Some(every)) => since.elapsed() >= every,
            _ => false,
        }
    }

    fn receive(&mut self) -> Received {
        // Interval mode: wake up `every` after the oldest unsynced write at the latest.
        let deadline = match (self.interval(), self.current.unsynced_since, &self.timer) {
            (Some(every), Some(since), Some(_)) => Some(since + every),
            _ => None,
        };
        let request = match (deadline, &self.timer) {
            (Some(deadline), Some(timer)) => {
                let rx = &mut self.rx;
                let deadline = tokio::time::Instant::from_std(deadline);
                // The timer must be created inside the runtime, hence the async block.
                match timer.block_on(async { tokio::time::timeout_at(deadline, rx.recv()).await }) {
                    Ok(request) => request,
                    Err(_elapsed) => return Received::SyncDue,
                }
            }
            _ => self.rx.blocking_recv(),
        };
        request.map_or(Received::Disconnected, Received::Request)
    }

    /// Writes a group, makes it as durable as the mode demands, and answers every append.
    fn commit(&mut self, group: Vec<Append>) {
        let Some(last_lsn) = group.last().map(|a| a.lsn) else {
            return;
        };
        if let Some(Error::Poisoned(reason)) = self.shared.poisoned() {
            fail_all(group, &reason);
            return;
        }
        let mut result = self.write_group(&group);
        if result.is_ok() && self.durability == Durability::Fsync {
            result = self.sync_current();
        }
        if let Err(e) = result {
            let reason = self.shared.poison(e.to_string());
            fail_all(group, &reason);
            return;
        }
        let counters = &self.shared.counters;
        counters
            .records
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        counters.groups.fetch_add(1, Ordering::Relaxed);
        // Published before the individual acknowledgements: when an append returns, the
        // acknowledged LSN already covers it, so a read right after sees the record.
        self.acked.send_replace(last_lsn);
        for append in group {
            // A dropped `Pending` just means nobody waits for this acknowledgement.
            let _ = append.ack.send(Ok(append.lsn));
        }
    }

    fn write_group(&mut self, group: &[Append]) -> io::Result<()> {
        self.buf.clear();
        for append in group {
            let header =
                RecordHeader::new(append.lsn, append.payload.len() as u32, append.payload_crc);
            let record_bytes = header.total_len();
            // Records never straddle files: recovery reads each file on its own.
            if self.current.offset + self.buf.len() as u64 + record_bytes > self.current.capacity {
                self.flush_buf()?;
                self.rotate(append.lsn, record_bytes)?;
            }
            self.buf.extend_from_slice(&header.encode());
            for part in append.payload.parts() {
                if part.len() >= DIRECT_WRITE_MIN_BYTES {
                    self.flush_buf()?;
                    self.write_through(part)?;
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
        }
        self.flush_buf()?;
        if self.buf.capacity() > GROUP_MAX_BYTES {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let written = self.write_through(&buf);
        self.buf = buf;
        self.buf.clear();
        written
    }

    /// Writes `bytes` at the current file's end.
    fn write_through(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let current = &mut self.current;
        current.file.write_all_at(bytes, current.offset).context(|| {
            format!(
                "write {} bytes at offset {} of {}",
                bytes.len(),
                current.offset,
                current.path.display()
            )
        })?;
        current.offset += bytes.len() as u64;
        current.unsynced_since.get_or_insert_with(Instant::now);
        self.shared
            .counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Moves writing to a new file whose first record is `first_lsn`, of `record_bytes`.
    fn rotate(&mut self, first_lsn: Lsn, record_bytes: u64) -> io::Result<()> {
        // Recovery relies on only the last file having a torn tail, so the old file must be
        // durable before any record lands in the new one (in every durability mode).
        self.sync_current()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let next = self.files.activate(seq, first_lsn, record_bytes)?;
        let old = std::mem::replace(&mut self.current, next);
        self.files.seal(old.sealed(), first_lsn);
        self.shared
            .counters
            .rotations
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(seq, first_lsn, "WAL rotated to a new file");
        Ok(())
    }

    fn sync_current(&mut self) -> io::Result<()> {
        let current = &mut self.current;
        if current.unsynced_since.is_none() {
            return Ok(());
        }
        #[cfg(test)]
        if self.shared.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other(format!(
                "injected fdatasync failure on {}",
                current.path.display()
            )));
        }
        current
            .file
            .sync_data()
            .context(|| format!("fdatasync {}", current.path.display()))?;
        current.unsynced_since = None;
        self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync_or_poison(&mut self) {
        if self.shared.poisoned().is_some() {
            return;
        }
        if let Err(e) = self.sync_current() {
            self.shared.poison(e.to_string());
        }
    }

    /// Final sync, stop the preparer, release the directory, tell `close` we are done.
    fn finish(mut self) {
        self.sync_or_poison();
        self.files.shutdown();
        if let Some(preparer) = self.preparer.take() {
            let _ = preparer.join();
        }
        drop(self.lock_file.take());
        self.finished.send_replace(true);
    }
}

fn fail_all(group: Vec<Append>, reason: &str) {
    for append in group {
        let _ = append.ack.send(Err(Error::Poisoned(reason.to_string())));
    }
}
