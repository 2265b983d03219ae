//! The log's files: naming, preallocation, the pool of spare files, rotation and recycling.
//!
//! fdatasync after appending to a growing file must also persist the new size and block
//! allocation (about 7 ms here); after overwriting blocks that already exist it only flushes
//! data (about 0.2 ms). So a log file is written over blocks that exist: it is either a
//! *fresh spare* (zeros written and fdatasync'd once, in the background) or a *recycled*
//! one (a released log file, renamed, whose stale records are harmless, see `format`).
//! The exceptions are *dedicated* files, sized for one record: a record larger than a file,
//! or a bulk record (`BULK_RECORD_BYTES`) when no spare is ready — for those, writing the
//! bytes once and paying one slow fdatasync beats zero-filling first. A dedicated file may
//! be sparse after a crash, so only fully allocated files are ever recycled.
//!
//! Names in the directory:
//! - `wal-{file_seq:020}.log`: a log file; the header inside repeats `file_seq`.
//! - `spare-{id:020}.wal`: a ready spare (never read as log).
//! - `spare-{id:020}.tmp`: a spare being prepared (deleted at startup).
//! - `LOCK`: held with an exclusive file lock by the open log.
//!
//! [`FileSet`] is shared by the writer thread (which takes spares and seals files), the
//! preparer thread (which keeps one spare ready so rotation does not stall appends) and
//! `Wal::release_before` (which recycles or deletes released files).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{BULK_RECORD_BYTES, ZERO_CHUNK_BYTES};
use crate::error::IoContext;
use crate::format::{FileHeader, FILE_HEADER_SIZE};
use crate::Lsn;

const LOG_PREFIX: &str = "wal-";
const LOG_SUFFIX: &str = ".log";
const SPARE_PREFIX: &str = "spare-";
const SPARE_SUFFIX: &str = ".wal";
const PREPARING_SUFFIX: &str = ".tmp";
pub(crate) const LOCK_FILE_NAME: &str = "LOCK";

/// How long the preparer waits before retrying after a failure (e.g. disk full); the writer
/// prepares synchronously meanwhile if it needs a file.
const PREPARE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The writer re-checks the pool at least this often while waiting for the preparer.
const SPARE_WAIT_SLICE: Duration = Duration::from_millis(100);

pub(crate) fn log_file_name(seq: u64) -> String {
    format!("{LOG_PREFIX}{seq:020}{LOG_SUFFIX}")
}

pub(crate) fn parse_log_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, LOG_PREFIX, LOG_SUFFIX)
}

fn spare_file_name(id: u64) -> String {
    format!("{SPARE_PREFIX}{id:020}{SPARE_SUFFIX}")
}

pub(crate) fn parse_spare_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, SPARE_PREFIX, SPARE_SUFFIX)
}

pub(crate) fn is_preparing_file_name(name: &str) -> bool {
    parse_numbered(name, SPARE_PREFIX, PREPARING_SUFFIX).is_some()
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes renames, creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("fsync directory {}", dir.display()))
}

/// Overwrites `[from, to)` of `file` with zeros, in bounded chunks.
pub(crate) fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut offset = from;
    while offset < to {
        let n = (to - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all_at(&zeros[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

/// A sealed (no longer written) log file and the first LSN it holds.
#[derive(Clone, Debug)]
pub(crate) struct LogFile {
    pub first_lsn: Lsn,
    pub path: PathBuf,
}

/// The file records are currently appended to; owned by the writer thread.
#[derive(Debug)]
pub(crate) struct ActiveFile {
    pub file: File,
    pub first_lsn: Lsn,
    pub path: PathBuf,
    /// Length of the file; records never extend past it.
    pub capacity: u64,
    /// Where the next record goes.
    pub offset: u64,
    /// When the oldest write not yet covered by an fdatasync happened.
    pub unsynced_since: Option<Instant>,
}

impl ActiveFile {
    pub fn sealed(&self) -> LogFile {
        LogFile {
            first_lsn: self.first_lsn,
            path: self.path.clone(),
        }
    }
}

struct FileSetState {
    /// Sealed log files, oldest first. The file being written is not in here, so nothing
    /// that consults this list can touch it.
    sealed: VecDeque<LogFile>,
    /// First LSN of the file being written: the exclusive upper bound of the newest sealed
    /// file's records.
    current_first_lsn: Lsn,
    /// Ready spares (preallocated or recycled), each `file_size` bytes long.
    spares: Vec<PathBuf>,
    next_spare_id: u64,
    /// Spares being prepared right now (by the preparer or the writer).
    preparing: usize,
    shutdown: bool,
}

/// The directory's files and the rules for creating, sealing and recycling them.
pub(crate) struct FileSet {
    dir: PathBuf,
    file_size: u64,
    spare_files: usize,
    state: Mutex<FileSetState>,
    /// Signalled when a spare is added or taken, and at shutdown.
    changed: Condvar,
    /// Serialises releases, see `release_before`.
    releasing: Mutex<()>,
}

/// What `FileSet::new` starts from, as found by recovery.
pub(crate) struct InitialFiles {
    pub sealed: Vec<LogFile>,
    pub spares: Vec<PathBuf>,
    pub next_spare_id: u64,
    pub current_first_lsn: Lsn,
}

impl FileSet {
    pub fn new(dir: PathBuf, file_size: u64, spare_files: usize, initial: InitialFiles) -> FileSet {
        FileSet {
            dir,
            file_size,
            spare_files,
            state: Mutex::new(FileSetState {
                sealed: initial.sealed.into(),
                current_first_lsn: initial.current_first_lsn,
                spares: initial.spares,
                next_spare_id: initial.next_spare_id,
                preparing: 0,
                shutdown: false,
            }),
            changed: Condvar::new(),
            releasing: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FileSetState> {
        // The state stays consistent across a panic elsewhere (every update is one statement).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the file that records starting at `first_lsn` go to, named after `seq`.
    /// `record_bytes` is the framed size of the first record: if it does not fit in a regular
    /// file, or it is a bulk record (`BULK_RECORD_BYTES`) and no spare is ready, a dedicated
    /// file just big enough for it is created (its first fdatasync is the slower,
    /// growing-file kind). The header is durable, and so is the file's name, before this
    /// returns, so records written next are recoverable once synced.
    pub fn activate(&self, seq: u64, first_lsn: Lsn, record_bytes: u64) -> io::Result<ActiveFile> {
        let path = self.dir.join(log_file_name(seq));
        let spare = if record_bytes > self.file_size - FILE_HEADER_SIZE {
            None
        } else if record_bytes >= BULK_RECORD_BYTES as u64 {
            self.ready_spare()
        } else {
            Some(self.take_spare()?)
        };
        let file = match spare {
            Some(spare) => {
                fs::rename(&spare, &path).context(|| {
                    format!("rename spare {} to {}", spare.display(), path.display())
                })?;
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .context(|| format!("open WAL file {}", path.display()))?
            }
            None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .context(|| format!("create dedicated WAL file {}", path.display()))?;
                file.set_len(FILE_HEADER_SIZE + record_bytes)
                    .context(|| format!("size dedicated WAL file {}", path.display()))?;
                file
            }
        };
        let header = FileHeader {
            file_seq: seq,
            first_lsn,
        }
        .encode();
        file.write_all_at(&header, 0)
            .context(|| format!("write header of {}", path.display()))?;
        file.sync_data()
            .context(|| format!("fdatasync header of {}", path.display()))?;
        sync_dir(&self.dir)?;
        let capacity = file
            .metadata()
            .context(|| format!("stat {}", path.display()))?
            .len();
        Ok(ActiveFile {
            file,
            first_lsn,
            path,
            capacity,
            offset: FILE_HEADER_SIZE,
            unsynced_since: None,
        })
    }

    /// Records that `file` is complete (and durable) and that records from `next_first_lsn`
    /// on live in the newer file.
    pub fn seal(&self, file: LogFile, next_first_lsn: Lsn) {
        let mut state = self.lock();
        state.sealed.push_back(file);
        state.current_first_lsn = next_first_lsn;
    }

    /// A spare of the right size: from the pool, from the preparer if it is busy with one,
    /// or prepared right here as a last resort.
    fn take_spare(&self) -> io::Result<PathBuf> {
        loop {
            if let Some(path) = self.ready_spare() {
                return Ok(path);
            }
            let mut state = self.lock();
            if !state.spares.is_empty() {
                continue;
            }
            if state.preparing > 0 {
                // The preparer is busy with one: wait for it, then look again.
                let _ = self.changed.wait_timeout(state, SPARE_WAIT_SLICE);
                continue;
            }
            let id = state.next_spare_id;
            state.next_spare_id += 1;
            state.preparing += 1;
            drop(state);
            let prepared = prepare_spare(&self.dir, id, self.file_size, &|| false);
            self.lock().preparing -= 1;
            self.changed.notify_all();
            return prepared
                .and_then(|p| p.ok_or_else(|| io::Error::other("spare preparation aborted")));
        }
    }

    /// A spare from the pool, if one is ready (never waits).
    fn ready_spare(&self) -> Option<PathBuf> {
        loop {
            let path = self.lock().spares.pop()?;
            // Tell the preparer the pool shrank.
            self.changed.notify_all();
            match fs::metadata(&path) {
                // A spare from a run with another file_size, or damaged: not reusable.
                Ok(meta) if meta.len() == self.file_size => return Some(path),
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// Body of the preparer thread: keeps at least one spare ready until shutdown.
    pub fn run_preparer(self: &Arc<Self>) {
        loop {
            let id = {
                let mut state = self.lock();
                while !state.shutdown && state.spares.len() + state.preparing >= 1 {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if state.shutdown {
                    return;
                }
                state.preparing += 1;
                state.next_spare_id += 1;
                state.next_spare_id - 1
            };
            let result = prepare_spare(&self.dir, id, self.file_size, &|| self.lock().shutdown);
            let mut state = self.lock();
            state.preparing -= 1;
            match result {
                Ok(Some(path)) => state.spares.push(path),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "preparing a spare WAL file failed; retrying later");
                    self.changed.notify_all();
                    let _ = self.changed.wait_timeout(state, PREPARE_RETRY_DELAY);
                    continue;
                }
            }
            self.changed.notify_all();
        }
    }

    /// Stops the preparer (an unfinished spare is abandoned and deleted).
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.changed.notify_all();
    }

    /// Removes every sealed file whose records all have LSNs below `lsn`, oldest first.
    /// Each is recycled into the spare pool while the pool holds fewer than `spare_files`,
    /// otherwise deleted.
    ///
    /// The remaining files must always form a contiguous chain, even after a crash in the
    /// middle of this: if an older file survived while a newer released one is gone,
    /// recovery would see a gap and refuse to start. Hence releases are serialised, each
    /// removal is made durable (directory fsync) before the next, and on a failure the file
    /// and everything after it stay in the log.
    pub fn release_before(&self, lsn: Lsn) -> io::Result<usize> {
        let _one_release_at_a_time = self
            .releasing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let released: Vec<LogFile> = {
            let mut state = self.lock();
            let mut out = Vec::new();
            while !state.sealed.is_empty() {
                // A sealed file's records end where the next file (or the current one) starts.
                let end = state
                    .sealed
                    .get(1)
                    .map_or(state.current_first_lsn, |next| next.first_lsn);
                if end > lsn {
                    break;
                }
                out.extend(state.sealed.pop_front());
            }
            out
        };
        let count = released.len();
        let mut remaining = released.into_iter();
        while let Some(file) = remaining.next() {
            if let Err(e) = self.recycle_or_delete(&file.path) {
                self.restore_front(std::iter::once(file).chain(remaining));
                return Err(e);
            }
            if let Err(e) = sync_dir(&self.dir) {
                self.restore_front(remaining);
                return Err(e);
            }
        }
        Ok(count)
    }

    /// Puts files that could not be released back at the old end of the chain.
    fn restore_front(&self, files: impl DoubleEndedIterator<Item = LogFile>) {
        let mut state = self.lock();
        for file in files.rev() {
            state.sealed.push_front(file);
        }
    }

    /// Releases sealed files at the end of the chain that hold no records (the last file
    /// found at startup when nothing was appended since), so restarts do not pile up files.
    /// An empty file can go missing anywhere without breaking the chain, so failures are
    /// only logged.
    pub fn release_empty_tail(&self) -> io::Result<usize> {
        let _one_release_at_a_time = self
            .releasing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let released: Vec<LogFile> = {
            let mut state = self.lock();
            let mut out = Vec::new();
            while state
                .sealed
                .back()
                .is_some_and(|f| f.first_lsn == state.current_first_lsn)
            {
                out.extend(state.sealed.pop_back());
            }
            out
        };
        for file in &released {
            if let Err(e) = self.recycle_or_delete(&file.path) {
                tracing::warn!(error = %e, "releasing an empty WAL file failed");
            }
        }
        if !released.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(released.len())
    }

    /// Puts a file no longer part of the log into the spare pool, or deletes it.
    pub fn recycle_or_delete(&self, path: &Path) -> io::Result<()> {
        // Right size and every block allocated: a dedicated file of exactly `file_size` that
        // a crash left partly written would otherwise come back as a sparse "spare".
        let reusable = fs::metadata(path)
            .map(|m| m.len() == self.file_size && m.blocks() * 512 >= m.len())
            .unwrap_or(false);
        let id = {
            let mut state = self.lock();
            if reusable && state.spares.len() < self.spare_files {
                state.next_spare_id += 1;
                Some(state.next_spare_id - 1)
            } else {
                None
            }
        };
        match id {
            Some(id) => {
                let spare = self.dir.join(spare_file_name(id));
                fs::rename(path, &spare).context(|| {
                    format!("rename released {} to {}", path.display(), spare.display())
                })?;
                self.lock().spares.push(spare);
                self.changed.notify_all();
            }
            None => {
                fs::remove_file(path).context(|| format!("delete released {}", path.display()))?
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn sealed_count(&self) -> usize {
        self.lock().sealed.len()
    }
}

/// Writes a spare full of zeros under a temporary name, fdatasyncs it once, and renames it
/// into place. Returns `None` if `abort` said so midway (the partial file is removed).
fn prepare_spare(
    dir: &Path,
    id: u64,
    size: u64,
    abort: &dyn Fn() -> bool,
) -> io::Result<Option<PathBuf>> {
    let tmp = dir.join(format!("{SPARE_PREFIX}{id:020}{PREPARING_SUFFIX}"));
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .context(|| format!("create spare {}", tmp.display()))?;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut offset = 0;
        while offset < size {
            if abort() {
                return Ok(None);
            }
            let n = (size - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
            file.write_all_at(&zeros[..n], offset)
                .context(|| format!("preallocate {}", tmp.display()))?;
            offset += n as u64;
        }
        file.sync_data()
            .context(|| format!("fdatasync spare {}", tmp.display()))?;
        let spare = dir.join(spare_file_name(id));
        fs::rename(&tmp, &spare)
            .context(|| format!("rename {} to {}", tmp.display(), spare.display()))?;
        Ok(Some(spare))
    })();
    if !matches!(result, Ok(Some(_))) {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_do_not_collide() {
        assert_eq!(log_file_name(7), "wal-00000000000000000007.log");
        assert_eq!(
            parse_log_file_name(&log_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_spare_file_name(&spare_file_name(3)), Some(3));
        assert_eq!(parse_log_file_name(&spare_file_name(3)), None);
        assert_eq!(parse_spare_file_name(&log_file_name(3)), None);
        assert!(is_preparing_file_name("spare-00000000000000000003.tmp"));
        assert_eq!(parse_log_file_name("wal-7.log"), None);
        assert_eq!(parse_log_file_name("wal-0000000000000000000x.log"), None);
        assert_eq!(parse_log_file_name("LOCK"), None);
    }

    #[test]
    fn spares_are_zero_filled_and_exactly_sized() {
        let dir = tempfile::tempdir().unwrap();
        let path = prepare_spare(dir.path(), 1, 3 * ZERO_CHUNK_BYTES as u64 / 2, &|| false)
            .unwrap()
            .unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * ZERO_CHUNK_BYTES / 2);
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );

        assert!(prepare_spare(dir.path(), 2, 4096, &|| true)
            .unwrap()
            .is_none());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "aborted preparation cleaned up"
        );
    }

    #[test]
    fn release_never_touches_the_current_file_and_keeps_a_bounded_pool() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8192;
        let mut sealed = Vec::new();
        for seq in 1..=4u64 {
            let path = dir.path().join(log_file_name(seq));
            fs::write(&path, vec![1u8; size as usize]).unwrap();
            sealed.push(LogFile {
                first_lsn: seq * 10,
                path,
            });
        }
        let current = dir.path().join(log_file_name(5));
        fs::write(&current, vec![1u8; size as usize]).unwrap();
        let files = FileSet::new(
            dir.path().to_path_buf(),
            size,
            1,
            InitialFiles {
                sealed,
                spares: Vec::new(),
                next_spare_id: 1,
                current_first_lsn: 50,
            },
        );

        // File 1 holds 10..=19, file 2 holds 20..=29: only file 1 is entirely below 25.
        assert_eq!(files.release_before(25).unwrap(), 1);
        assert_eq!(files.sealed_count(), 3);
        // Everything sealed is below u64::MAX, but the current file is not sealed.
        assert_eq!(files.release_before(u64::MAX).unwrap(), 3);
        assert!(current.exists());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "the current file plus one recycled spare: {names:?}"
        );
        assert_eq!(
            names
                .iter()
                .filter(|n| parse_spare_file_name(n).is_some())
                .count(),
            1
        );
    }

    /// A file set with no log files and no spares yet.
    fn empty_file_set(dir: &Path, file_size: u64, spare_files: usize) -> FileSet {
        let initial = InitialFiles {
            sealed: Vec::new(),
            spares: Vec::new(),
            next_spare_id: 1,
            current_first_lsn: 1,
        };
        FileSet::new(dir.to_path_buf(), file_size, spare_files, initial)
    }

    #[test]
    fn a_bulk_record_gets_its_own_file_only_when_no_spare_is_ready() {
        let dir = tempfile::tempdir().unwrap();
        let size = 2 * BULK_RECORD_BYTES as u64;
        let files = empty_file_set(dir.path(), size, 1);
        let bulk = BULK_RECORD_BYTES as u64 + 100;
        // No spare and nobody preparing one: a file sized for the record, not a wait.
        let dedicated = files.activate(1, 1, bulk).unwrap();
        assert_eq!(dedicated.capacity, FILE_HEADER_SIZE + bulk);
        // With a spare ready, the bulk record goes to it like any other.
        let spare = prepare_spare(dir.path(), 7, size, &|| false).unwrap().unwrap();
        files.lock().spares.push(spare);
        let regular = files.activate(2, 2, bulk).unwrap();
        assert_eq!(regular.capacity, size);
        // A small record without a spare waits for (here: prepares) a zero-filled one.
        let small = files.activate(3, 3, 100).unwrap();
        assert_eq!(small.capacity, size);
    }

    #[test]
    fn only_fully_allocated_files_are_recycled() {
        let dir = tempfile::tempdir().unwrap();
        let size = 64 * 1024;
        let files = empty_file_set(dir.path(), size, 2);
        // A dedicated file that a crash left with holes: deleted, not recycled.
        let sparse = dir.path().join(log_file_name(1));
        File::create(&sparse).unwrap().set_len(size).unwrap();
        files.recycle_or_delete(&sparse).unwrap();
        assert!(!sparse.exists());
        assert!(files.lock().spares.is_empty());
        let written = dir.path().join(log_file_name(2));
        fs::write(&written, vec![1u8; size as usize]).unwrap();
        files.recycle_or_delete(&written).unwrap();
        assert_eq!(files.lock().spares.len(), 1);
    }

    #[test]
    fn a_failed_release_keeps_the_rest_of_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8192;
        let mut sealed = Vec::new();
        for seq in 1..=4u64 {
            let path = dir.path().join(log_file_name(seq));
            if seq == 2 {
                // Neither renamable into the pool (wrong size) nor removable as a file.
                fs::create_dir(&path).unwrap();
            } else {
                fs::write(&path, vec![1u8; size as usize]).unwrap();
            }
            sealed.push(LogFile {
                first_lsn: seq * 10,
                path,
            });
        }
        let files = FileSet::new(
            dir.path().to_path_buf(),
            size,
            0,
            InitialFiles {
                sealed,
                spares: Vec::new(),
                next_spare_id: 1,
                current_first_lsn: 50,
            },
        );
        assert!(files.release_before(u64::MAX).is_err());
        // File 1 went; file 2 failed, so 2, 3 and 4 all stay: no gap after a restart.
        assert_eq!(files.sealed_count(), 3);
        assert!(!dir.path().join(log_file_name(1)).exists());
        assert!(dir.path().join(log_file_name(3)).exists());
        assert!(dir.path().join(log_file_name(4)).exists());
    }
}
