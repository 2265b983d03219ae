//! Tests of the whole log through its public API, plus the file-level inspection helpers
//! they need to simulate crashes (which byte to tear, which file is last).

mod crash;
mod group_commit;
mod oversize;
mod randomized;
mod recycling;
mod round_trip;

use std::fs;
use std::path::{Path, PathBuf};

use crate::files::parse_log_file_name;
use crate::format::FileHeader;
use crate::recovery::scan_file;
use crate::{Durability, Error, Lsn, Wal, WalConfig, FILE_HEADER_SIZE};

pub(crate) type Replayed = Vec<(Lsn, Vec<u8>)>;

pub(crate) fn small_config(dir: &Path, file_size: u64) -> WalConfig {
    WalConfig {
        file_size,
        ..WalConfig::new(dir)
    }
}

pub(crate) fn config_with(dir: &Path, durability: Durability) -> WalConfig {
    WalConfig {
        durability,
        file_size: 256 * 1024,
        ..WalConfig::new(dir)
    }
}

/// Opens the log and returns everything replayed, in order.
pub(crate) fn open(config: WalConfig) -> Result<(Wal, Replayed), Error> {
    let mut replayed = Vec::new();
    let wal = Wal::open(config, |lsn, payload| {
        replayed.push((lsn, payload.to_vec()));
        Ok(())
    })?;
    Ok((wal, replayed))
}

/// A payload that identifies its record: `len` bytes derived from `tag`.
pub(crate) fn payload(tag: u64, len: usize) -> Vec<u8> {
    let seed = tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|i| (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8))
        .collect()
}

/// Log files in `file_seq` order.
pub(crate) fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            parse_log_file_name(e.file_name().to_str()?).map(|seq| (seq, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Names of every file in `dir`.
pub(crate) fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A record as laid out in a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub lsn: Lsn,
    pub offset: u64,
    pub len: u64,
}

impl Placed {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The valid records of one file, with their positions (empty if the header is invalid).
pub(crate) fn records_in(path: &Path) -> Vec<Placed> {
    let bytes = fs::read(path).unwrap();
    let Some(header) = FileHeader::decode(&bytes[..(FILE_HEADER_SIZE as usize).min(bytes.len())])
    else {
        return Vec::new();
    };
    let mut placed = Vec::new();
    scan_file(path, header.first_lsn, &mut |r| {
        placed.push(Placed {
            lsn: r.lsn,
            offset: r.offset,
            len: (crate::RECORD_HEADER_SIZE + r.payload.len()) as u64,
        });
        Ok(())
    })
    .unwrap();
    placed
}

/// The last log file that holds at least one record.
pub(crate) fn last_file_with_records(dir: &Path) -> (PathBuf, Vec<Placed>) {
    log_files(dir)
        .into_iter()
        .rev()
        .map(|p| {
            let records = records_in(&p);
            (p, records)
        })
        .find(|(_, records)| !records.is_empty())
        .expect("a log file with records")
}

/// Asserts that `replayed` is exactly `expected` (LSN and payload, in order).
pub(crate) fn assert_replayed(replayed: &Replayed, expected: &[(Lsn, Vec<u8>)]) {
    assert_eq!(
        replayed.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        expected.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        "replayed LSNs"
    );
    for ((lsn, got), (_, want)) in replayed.iter().zip(expected) {
        assert!(
            got == want,
            "payload of LSN {lsn} differs ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
}
