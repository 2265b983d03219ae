//! Startup recovery: replay every valid record in LSN order and cut off a torn tail.
//!
//! Invariant the writer maintains (see `writer`): a file is fdatasync'd before any record
//! goes to the next one, so only the **last** file can end in a partially written record.
//! Recovery therefore:
//! 1. lists `wal-*.log` files in `file_seq` order; trailing files without a valid header
//!    (a crash while a spare was being turned into a log file) are unused and go back to
//!    the spare pool; an invalid header *before* a valid one is corruption;
//! 2. reads each file's records while the checksum is valid, the length fits in the file and
//!    the LSN is exactly the next expected one (stale records of a recycled file carry
//!    older LSNs, zeros carry LSN 0, so both stop the scan);
//! 3. requires each file's `first_lsn` to equal the LSN expected after the previous file;
//!    anything else is a gap (acknowledged records missing) or an overlap: `Error::Corrupt`.
//!    A non-last file that stops early is thus accepted exactly when the next file starts
//!    at the LSN where it stopped;
//! 4. wipes (zeros) everything after the last valid record of the last file, so a torn record
//!    can never resurface, and leaves that file sealed: writing continues in a new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::{RECOVERY_READ_BUFFER_BYTES, ZERO_CHUNK_BYTES};
use crate::error::IoContext;
use crate::files::{self, LogFile};
use crate::format::{FileHeader, RecordHeader, FILE_HEADER_SIZE, RECORD_HEADER_SIZE};
use crate::{Error, Lsn};

/// The caller's callback that receives every valid record, in LSN order.
pub(crate) type ReplayFn<'a> = dyn FnMut(Lsn, &[u8]) -> Result<(), Error> + 'a;

/// What recovery found, for the writer and the file set to start from.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// LSN the next append gets.
    pub next_lsn: Lsn,
    /// `file_seq` for the next log file: above every name in the directory.
    pub next_seq: u64,
    /// Log files holding the replayed records, oldest first.
    pub sealed: Vec<LogFile>,
    /// Ready spare files.
    pub spares: Vec<PathBuf>,
    pub next_spare_id: u64,
    /// Log files that never received a header: to be recycled or deleted.
    pub unused: Vec<PathBuf>,
    /// Records passed to the replay callback.
    pub records: u64,
    /// Bytes wiped after the last valid record of the last file.
    pub wiped_bytes: u64,
}

/// One record found by [`scan_file`].
pub(crate) struct ScannedRecord<'a> {
    pub lsn: Lsn,
    /// Offset of the record header in the file (the crash tests aim their damage with it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub offset: u64,
    pub payload: &'a [u8],
}

/// Where the valid records of a file end.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// The LSN after the last valid record (the file's `first_lsn` if it holds none).
    pub next_lsn: Lsn,
    /// Offset just after the last valid record.
    pub end_offset: u64,
    pub records: u64,
}

pub(crate) fn recover(dir: &Path, replay: &mut ReplayFn<'_>) -> Result<Recovered, Error> {
    let listing = list_dir(dir)?;
    let next_seq = listing.logs.last().map_or(1, |(seq, _)| seq + 1);
    let next_spare_id = listing
        .spares
        .iter()
        .map(|(id, _)| id + 1)
        .max()
        .unwrap_or(1);
    let spares = listing.spares.into_iter().map(|(_, path)| path).collect();

    let mut headers = Vec::with_capacity(listing.logs.len());
    for (seq, path) in &listing.logs {
        headers.push(read_header(path, *seq)?);
    }
    // Files after the last one with a valid header never became part of the log.
    let used = headers
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |last| last + 1);
    let mut chain = Vec::with_capacity(used);
    for ((_, path), header) in listing.logs[..used].iter().zip(headers) {
        let Some(header) = header else {
            return Err(Error::Corrupt(format!(
                "{} has no valid header but later WAL files do",
                path.display()
            )));
        };
        chain.push((path, header));
    }

    let mut sealed = Vec::with_capacity(used);
    let mut expected: Option<Lsn> = None;
    let mut records = 0;
    let mut wiped_bytes = 0;
    for (i, (path, header)) in chain.into_iter().enumerate() {
        if let Some(expected) = expected {
            if header.first_lsn != expected {
                let what = if header.first_lsn > expected {
                    "gap"
                } else {
                    "overlap"
                };
                return Err(Error::Corrupt(format!(
                    "{what}: records are valid up to LSN {} but {} starts at LSN {}",
                    expected - 1,
                    path.display(),
                    header.first_lsn
                )));
            }
        }
        let end = scan_file(path, header.first_lsn, &mut |record| {
            replay(record.lsn, record.payload)
        })?;
        records += end.records;
        if i + 1 == used {
            wiped_bytes = wipe_tail(path, end.end_offset)?;
            if wiped_bytes > 0 {
                // Torn records, or stale ones if the file was recycled.
                tracing::info!(
                    file = %path.display(),
                    offset = end.end_offset,
                    next_lsn = end.next_lsn,
                    wiped_bytes,
                    "WAL tail after the last valid record wiped"
                );
            }
        }
        expected = Some(end.next_lsn);
        sealed.push(LogFile {
            first_lsn: header.first_lsn,
            path: path.clone(),
        });
    }

    let unused: Vec<PathBuf> = listing.logs[used..]
        .iter()
        .map(|(_, path)| path.clone())
        .collect();
    if !unused.is_empty() {
        tracing::info!(
            files = unused.len(),
            "WAL files without a header found after the log; recycling them"
        );
    }
    Ok(Recovered {
        next_lsn: expected.unwrap_or(1),
        next_seq,
        sealed,
        spares,
        next_spare_id,
        unused,
        records,
        wiped_bytes,
    })
}

struct Listing {
    /// (file_seq, path), ascending.
    logs: Vec<(u64, PathBuf)>,
    /// (id, path) of ready spares.
    spares: Vec<(u64, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<Listing, Error> {
    let mut listing = Listing {
        logs: Vec::new(),
        spares: Vec::new(),
    };
    for entry in fs::read_dir(dir).context(|| format!("list WAL directory {}", dir.display()))? {
        let entry = entry.context(|| format!("list WAL directory {}", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        if let Some(seq) = files::parse_log_file_name(&name) {
            listing.logs.push((seq, path));
        } else if let Some(id) = files::parse_spare_file_name(&name) {
            listing.spares.push((id, path));
        } else if files::is_preparing_file_name(&name) {
            // A preparation interrupted by a crash: its zeros may not all be there.
            fs::remove_file(&path)
                .context(|| format!("delete unfinished spare {}", path.display()))?;
        }
    }
    listing.logs.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(listing)
}

/// The header of the file named `seq`, or `None` if the file never received one.
fn read_header(path: &Path, seq: u64) -> Result<Option<FileHeader>, Error> {
    let file = File::open(path).context(|| format!("open {}", path.display()))?;
    let mut block = vec![0u8; FILE_HEADER_SIZE as usize];
    let read = file.read_exact_at(&mut block, 0);
    if matches!(&read, Err(e) if e.kind() == io::ErrorKind::UnexpectedEof) {
        return Ok(None);
    }
    read.context(|| format!("read header of {}", path.display()))?;
    // A header naming another file is a recycled file whose new header never made it.
    Ok(FileHeader::decode(&block).filter(|h| h.file_seq == seq))
}

/// Calls `visit` for every valid record of the file, starting at `first_lsn`, and reports
/// where they end. Stops at the first record that is not exactly the next one.
pub(crate) fn scan_file(
    path: &Path,
    first_lsn: Lsn,
    visit: &mut dyn FnMut(ScannedRecord<'_>) -> Result<(), Error>,
) -> Result<ScanEnd, Error> {
    let context = || format!("read records of {}", path.display());
    let mut file = File::open(path).context(context)?;
    let file_len = file.metadata().context(context)?.len();
    file.seek(SeekFrom::Start(FILE_HEADER_SIZE))
        .context(context)?;
    let mut reader = BufReader::with_capacity(RECOVERY_READ_BUFFER_BYTES, file);

    let mut end = ScanEnd {
        next_lsn: first_lsn,
        end_offset: FILE_HEADER_SIZE,
        records: 0,
    };
    let mut payload = Vec::new();
    loop {
        let offset = end.end_offset;
        if file_len.saturating_sub(offset) < RECORD_HEADER_SIZE as u64 {
            break;
        }
        let mut raw = [0u8; RECORD_HEADER_SIZE];
        reader.read_exact(&mut raw).context(context)?;
        let header = RecordHeader::decode(&raw);
        // Checked before reading the payload so that stale or zeroed bytes are not read.
        if header.lsn != end.next_lsn || header.total_len() > file_len - offset {
            break;
        }
        payload.resize(header.len as usize, 0);
        reader.read_exact(&mut payload).context(context)?;
        if !header.matches(&payload) {
            break;
        }
        visit(ScannedRecord {
            lsn: header.lsn,
            offset,
            payload: &payload,
        })?;
        end.next_lsn += 1;
        end.end_offset += header.total_len();
        end.records += 1;
    }
    Ok(end)
}

/// Zeros every non-zero byte from `from` to the end of the file and makes that durable.
/// Returns the number of bytes rewritten (0 when the tail was already clean).
fn wipe_tail(path: &Path, from: u64) -> Result<u64, Error> {
    let context = || format!("wipe torn tail of {}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context(context)?;
    let len = file.metadata().context(context)?.len();
    let mut chunk = vec![0u8; ZERO_CHUNK_BYTES];
    let mut wiped = 0;
    let mut offset = from;
    while offset < len {
        let n = (len - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
        file.read_exact_at(&mut chunk[..n], offset)
            .context(context)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            files::write_zeros(&file, offset, offset + n as u64).context(context)?;
            wiped += n as u64;
        }
        offset += n as u64;
    }
    if wiped > 0 {
        file.sync_data().context(context)?;
    }
    Ok(wiped)
}
