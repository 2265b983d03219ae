//! Released files are recycled (same inode under a new name) or deleted, the directory
//! stays bounded, and the stale records inside recycled files are never replayed.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;

use super::*;

const FILE_SIZE: u64 = 64 * 1024;

fn inodes(paths: &[PathBuf]) -> HashSet<u64> {
    paths
        .iter()
        .map(|p| fs::metadata(p).unwrap().ino())
        .collect()
}

fn spare_count(dir: &Path) -> usize {
    dir_names(dir)
        .iter()
        .filter(|n| n.starts_with("spare-") && n.ends_with(".wal"))
        .count()
}

#[tokio::test]
async fn released_files_are_recycled_and_their_stale_records_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let config = || WalConfig {
        spare_files: 2,
        ..small_config(dir.path(), FILE_SIZE)
    };
    let (wal, _) = open(config()).unwrap();
    let mut expected: Vec<(Lsn, Vec<u8>)> = Vec::new();
    let mut released_inodes = HashSet::new();
    let mut reused = false;
    let mut rounds_releasing = 0;
    let mut released_before = 1;
    for round in 0..12u64 {
        for i in 0..100u64 {
            let tag = round * 1000 + i;
            let p = payload(tag, 200 + (tag as usize * 7) % 900);
            expected.push((wal.append(p.clone()).await.unwrap(), p));
        }
        let files = log_files(dir.path());
        if !reused && !inodes(&files).is_disjoint(&released_inodes) {
            reused = true;
        }
        // Keep the last 50 records, as if everything older had reached segments.
        let before = files.clone();
        let before_inodes: Vec<u64> = before
            .iter()
            .map(|p| fs::metadata(p).unwrap().ino())
            .collect();
        released_before = wal.next_lsn() - 50;
        wal.release_before(released_before);
        let after = log_files(dir.path());
        if after.len() < before.len() {
            rounds_releasing += 1;
        }
        assert!(
            after.contains(before.last().unwrap()),
            "the file being written was released"
        );
        released_inodes.extend(&before_inodes[..before.len() - after.len()]);
        // Bounded: the files still needed (<= 50 records of <= ~1.1 KiB in 64 KiB files
        // span at most 2 files, plus the current one) and at most `spare_files` spares
        // (the preparer tops up only an empty pool).
        assert!(
            after.len() <= 3,
            "round {round}: {:?}",
            dir_names(dir.path())
        );
        assert!(
            spare_count(dir.path()) <= 2,
            "round {round}: {:?}",
            dir_names(dir.path())
        );
    }
    assert!(
        rounds_releasing >= 6,
        "only {rounds_releasing} rounds released files"
    );
    assert!(reused, "no released file was ever reused as a log file");
    assert!(wal.stats().rotations >= 8, "{:?}", wal.stats());
    wal.close().await.unwrap();

    // Recycled files hold stale, once valid records of an older generation after their own
    // records: make sure the reopen below really has to skip some.
    let stale_seen = log_files(dir.path()).iter().any(|path| {
        let end = records_in(path)
            .last()
            .map_or(crate::FILE_HEADER_SIZE, |r| r.end()) as usize;
        fs::read(path).unwrap()[end..].iter().any(|&b| b != 0)
    });
    assert!(stale_seen, "no log file with stale bytes after its records");

    let (wal, replayed) = open(config()).unwrap();
    let first = replayed.first().unwrap().0;
    assert!(
        first <= released_before,
        "records at or above the release point are kept"
    );
    let kept: Vec<_> = expected
        .iter()
        .filter(|(lsn, _)| *lsn >= first)
        .cloned()
        .collect();
    assert_replayed(&replayed, &kept);
    assert_eq!(wal.next_lsn(), expected.last().unwrap().0 + 1);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn without_spares_released_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        spare_files: 0,
        ..small_config(dir.path(), FILE_SIZE)
    };
    let (wal, _) = open(config).unwrap();
    for i in 0..400u64 {
        wal.append(payload(i, 500)).await.unwrap();
    }
    assert!(log_files(dir.path()).len() >= 3);
    wal.release_before(wal.next_lsn());
    assert_eq!(
        log_files(dir.path()).len(),
        1,
        "only the file being written remains"
    );
    // Only the preparer's ready spare, if any.
    assert!(spare_count(dir.path()) <= 1, "{:?}", dir_names(dir.path()));
    wal.close().await.unwrap();
}

#[tokio::test]
async fn releasing_everything_keeps_the_lsn_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    for i in 0..300u64 {
        wal.append(payload(i, 400)).await.unwrap();
    }
    wal.release_before(u64::MAX);
    let next = wal.next_lsn();
    wal.close().await.unwrap();
    // The only file left is the one written last; its records (if any) are still replayed,
    // and its header carries the LSN sequence across the restart even when it is empty.
    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert!(replayed.iter().all(|(lsn, _)| *lsn < next));
    assert_eq!(wal.next_lsn(), next);
    wal.release_before(u64::MAX);
    wal.close().await.unwrap();
    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert!(
        replayed.is_empty(),
        "everything was released before this restart"
    );
    assert_eq!(wal.next_lsn(), next);
    assert_eq!(wal.append(b"x".to_vec()).await.unwrap(), next);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn spares_of_another_file_size_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    for i in 0..200u64 {
        wal.append(payload(i, 500)).await.unwrap();
    }
    wal.release_before(wal.next_lsn());
    wal.close().await.unwrap();
    assert!(spare_count(dir.path()) >= 1);

    let bigger = 2 * FILE_SIZE;
    let (wal, replayed) = open(small_config(dir.path(), bigger)).unwrap();
    for i in 0..200u64 {
        wal.append(payload(1000 + i, 500)).await.unwrap();
    }
    for path in log_files(dir.path()).iter().skip(1) {
        // Every file created by this run has the new size (older ones keep theirs).
        let len = fs::metadata(path).unwrap().len();
        assert!(
            len == bigger || len == FILE_SIZE,
            "{} has {len} bytes",
            path.display()
        );
    }
    let current = log_files(dir.path()).pop().unwrap();
    assert_eq!(fs::metadata(&current).unwrap().len(), bigger);
    let first_new = replayed.last().map_or(1, |(lsn, _)| lsn + 1);
    wal.close().await.unwrap();
    let (wal, replayed) = open(small_config(dir.path(), bigger)).unwrap();
    assert_eq!(replayed.last().unwrap().0, first_new + 199);
    wal.close().await.unwrap();
}

/// The stale record right after the last valid one of `path`, if it is intact (checksum
/// matches) - the case only the expected-LSN check can stop.
fn intact_stale_record_after_valid_ones(path: &Path) -> Option<Lsn> {
    use crate::format::RecordHeader;
    let end = records_in(path).last()?.end() as usize;
    let bytes = fs::read(path).unwrap();
    let raw: [u8; crate::RECORD_HEADER_SIZE] = bytes
        .get(end..end + crate::RECORD_HEADER_SIZE)?
        .try_into()
        .unwrap();
    let header = RecordHeader::decode(&raw);
    let payload = bytes.get(end + crate::RECORD_HEADER_SIZE..end + header.total_len() as usize)?;
    (header.lsn != 0 && header.matches(payload)).then_some(header.lsn)
}

#[tokio::test]
async fn intact_stale_records_aligned_with_new_ones_are_not_replayed() {
    // Equal-sized records make every recycled file's stale records line up exactly with the
    // new ones, so the bytes after the last new record form a record with a valid checksum.
    const LEN: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let config = || WalConfig {
        spare_files: 4,
        ..small_config(dir.path(), 16 * 1024)
    };
    let (wal, _) = open(config()).unwrap();
    let mut expected = Vec::new();
    let mut tag = 0;
    let mut append = async |wal: &Wal, expected: &mut Vec<(Lsn, Vec<u8>)>| {
        tag += 1;
        let p = payload(tag, LEN);
        expected.push((wal.append(p.clone()).await.unwrap(), p));
    };
    for _ in 0..60 {
        append(&wal, &mut expected).await;
    }
    let mut stale = None;
    for _ in 0..40 {
        wal.release_before(wal.next_lsn());
        let rotations = wal.stats().rotations;
        while wal.stats().rotations == rotations {
            append(&wal, &mut expected).await;
        }
        for _ in 0..3 {
            append(&wal, &mut expected).await;
        }
        let current = log_files(dir.path()).pop().unwrap();
        stale = intact_stale_record_after_valid_ones(&current);
        if stale.is_some() {
            break;
        }
    }
    let stale = stale.expect("never wrote into a recycled file with aligned stale records");
    assert!(
        stale < wal.next_lsn() - 3,
        "stale LSN {stale} is older than the new records"
    );
    wal.close().await.unwrap();

    let (wal, replayed) = open(config()).unwrap();
    let first = replayed.first().unwrap().0;
    let kept: Vec<_> = expected
        .iter()
        .filter(|(lsn, _)| *lsn >= first)
        .cloned()
        .collect();
    assert_replayed(&replayed, &kept);
    wal.close().await.unwrap();
}
