//! Recovery after damage: torn tails are cut and wiped, writing continues with the right
//! LSNs, and damage that would lose acknowledged records is reported as corruption.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;

use super::*;
use crate::files::log_file_name;

const FILE_SIZE: u64 = 256 * 1024;

/// Appends `n` records (LSN i+1 carries `payload(i, ..)`) and closes the log.
async fn write_and_close(dir: &Path, n: u64, file_size: u64) -> Vec<(Lsn, Vec<u8>)> {
    let (wal, _) = open(small_config(dir, file_size)).unwrap();
    let mut expected = Vec::new();
    for i in 0..n {
        let p = payload(i, 300 + (i as usize * 13) % 500);
        expected.push((wal.append(p.clone()).await.unwrap(), p));
    }
    wal.close().await.unwrap();
    expected
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[b[0] ^ 0x10], offset).unwrap();
}

fn assert_zero_from(path: &Path, offset: u64) {
    let bytes = fs::read(path).unwrap();
    let dirty = bytes[offset as usize..].iter().position(|&b| b != 0);
    assert_eq!(
        dirty,
        None,
        "{} not wiped after offset {offset}",
        path.display()
    );
}

/// The torn record is gone, later appends reuse its LSN, and a further reopen sees exactly
/// the surviving records followed by the new ones.
async fn check_torn_last_record(damage: impl FnOnce(&Path, Placed)) {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = write_and_close(dir.path(), 20, FILE_SIZE).await;
    let (last_file, records) = last_file_with_records(dir.path());
    let torn = *records.last().unwrap();
    assert_eq!(torn.lsn, 20);
    damage(&last_file, torn);

    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    expected.pop();
    assert_replayed(&replayed, &expected);
    assert_eq!(wal.next_lsn(), 20);
    assert_zero_from(&last_file, torn.offset);

    for i in 0..2u64 {
        let p = payload(1000 + i, 77);
        let lsn = wal.append(p.clone()).await.unwrap();
        assert_eq!(lsn, 20 + i);
        expected.push((lsn, p));
    }
    wal.close().await.unwrap();
    assert!(
        records_in(&last_file).iter().all(|r| r.lsn < 20),
        "the torn file received no new records"
    );

    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert_replayed(&replayed, &expected);
    assert_eq!(wal.next_lsn(), 22);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn flipped_payload_byte_in_the_last_record_is_a_torn_tail() {
    check_torn_last_record(|path, torn| {
        flip_byte(path, torn.offset + crate::RECORD_HEADER_SIZE as u64 + 7)
    })
    .await;
}

#[tokio::test]
async fn flipped_header_byte_in_the_last_record_is_a_torn_tail() {
    check_torn_last_record(|path, torn| flip_byte(path, torn.offset + 5)).await;
}

#[tokio::test]
async fn truncation_inside_the_last_record_header_is_a_torn_tail() {
    check_torn_last_record(|path, torn| {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(torn.offset + 9)
            .unwrap()
    })
    .await;
}

#[tokio::test]
async fn truncation_inside_the_last_record_payload_is_a_torn_tail() {
    check_torn_last_record(|path, torn| {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(torn.end() - 1)
            .unwrap()
    })
    .await;
}

#[tokio::test]
async fn garbage_after_the_last_record_is_wiped_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_and_close(dir.path(), 10, FILE_SIZE).await;
    let (last_file, records) = last_file_with_records(dir.path());
    let end = records.last().unwrap().end();
    let file = OpenOptions::new().write(true).open(&last_file).unwrap();
    file.write_all_at(&payload(99, 5000), end).unwrap();

    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert_replayed(&replayed, &expected);
    assert_zero_from(&last_file, end);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_missing_file_in_the_middle_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 200, 16 * 1024).await;
    let files = log_files(dir.path());
    assert!(files.len() >= 4, "{files:?}");
    fs::remove_file(&files[1]).unwrap();
    match open(small_config(dir.path(), 16 * 1024)) {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("gap"), "{msg}"),
        other => panic!("expected Corrupt, got {:?}", other.map(|(w, _)| w)),
    }
}

#[tokio::test]
async fn damage_to_a_record_of_an_older_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 200, 16 * 1024).await;
    let first = &log_files(dir.path())[0];
    let records = records_in(first);
    assert!(records.len() > 2);
    // Records after the damaged one are synced and the next file starts after them: a torn
    // write cannot explain that, so recovery must refuse rather than silently drop them.
    flip_byte(first, records[1].offset + 20);
    assert!(matches!(
        open(small_config(dir.path(), 16 * 1024)),
        Err(Error::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_damaged_header_before_valid_files_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 200, 16 * 1024).await;
    let first = &log_files(dir.path())[0];
    flip_byte(first, 20);
    match open(small_config(dir.path(), 16 * 1024)) {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("no valid header"), "{msg}"),
        other => panic!("expected Corrupt, got {:?}", other.map(|(w, _)| w)),
    }
}

#[tokio::test]
async fn trailing_files_without_their_header_are_unused_and_recycled() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = write_and_close(dir.path(), 30, FILE_SIZE).await;
    let files = log_files(dir.path());
    let last_seq = crate::files::parse_log_file_name(
        files.last().unwrap().file_name().unwrap().to_str().unwrap(),
    )
    .unwrap();
    // A crash right after a spare was renamed: one all-zero file, and one recycled file whose
    // header still names its previous life (and whose records are valid-looking).
    let zeros = dir.path().join(log_file_name(last_seq + 1));
    fs::write(&zeros, vec![0u8; FILE_SIZE as usize]).unwrap();
    let stale = dir.path().join(log_file_name(last_seq + 2));
    fs::copy(&files[0], &stale).unwrap();

    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert_replayed(&replayed, &expected);
    assert!(
        !zeros.exists() && !stale.exists(),
        "{:?}",
        dir_names(dir.path())
    );
    let lsn = wal.append(b"next".to_vec()).await.unwrap();
    assert_eq!(lsn, 31);
    expected.push((lsn, b"next".to_vec()));
    wal.close().await.unwrap();

    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert_replayed(&replayed, &expected);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn an_interrupted_spare_preparation_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 3, FILE_SIZE).await;
    let leftover = dir.path().join("spare-00000000000000000099.tmp");
    fs::write(&leftover, b"partial").unwrap();
    let (wal, replayed) = open(small_config(dir.path(), FILE_SIZE)).unwrap();
    assert_eq!(replayed.len(), 3);
    assert!(!leftover.exists());
    wal.close().await.unwrap();
}
