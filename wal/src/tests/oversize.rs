//! Record size limits: oversize payloads are refused without side effects, and payloads
//! larger than a file (but within `max_record_bytes`) get a dedicated file.

use super::*;

#[tokio::test]
async fn a_payload_over_the_limit_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        max_record_bytes: 1000,
        ..small_config(dir.path(), 64 * 1024)
    };
    let (wal, _) = open(config.clone()).unwrap();
    match wal.append(vec![7u8; 1001]).await {
        Err(Error::RecordTooLarge { size, max }) => assert_eq!((size, max), (1001, 1000)),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(wal.next_lsn(), 1, "no LSN was consumed");
    assert_eq!(
        wal.append(vec![7u8; 1000]).await.unwrap(),
        1,
        "exactly the limit is fine"
    );
    wal.close().await.unwrap();
    let (wal, replayed) = open(config).unwrap();
    assert_replayed(&replayed, &[(1, vec![7u8; 1000])]);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn records_larger_than_a_file_get_a_dedicated_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_size = 16 * 1024;
    let config = WalConfig {
        max_record_bytes: 1024 * 1024,
        ..small_config(dir.path(), file_size)
    };
    let (wal, _) = open(config.clone()).unwrap();
    let sizes = [
        10,
        100_000,
        20,
        30,
        (file_size - crate::FILE_HEADER_SIZE) as usize - crate::RECORD_HEADER_SIZE,
        1024 * 1024,
        5,
    ];
    let mut expected = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let p = payload(i as u64, size);
        expected.push((wal.append(p.clone()).await.unwrap(), p));
    }
    wal.close().await.unwrap();
    let big_files = log_files(dir.path())
        .iter()
        .filter(|p| fs::metadata(p).unwrap().len() > file_size)
        .count();
    assert_eq!(big_files, 2, "one dedicated file per oversize record");
    let (wal, replayed) = open(config.clone()).unwrap();
    assert_replayed(&replayed, &expected);
    // Dedicated files are deleted, not recycled, once released.
    wal.release_before(wal.next_lsn());
    assert!(dir_names(dir.path()).iter().all(|n| {
        let len = fs::metadata(dir.path().join(n)).unwrap().len();
        len <= file_size
    }));
    wal.close().await.unwrap();
}

#[tokio::test]
async fn the_default_limits_accept_a_maximal_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig::new(dir.path());
    assert_eq!(config.max_record_bytes, crate::MAX_RECORD_BYTES);
    let (wal, _) = open(config.clone()).unwrap();
    let big = payload(1, crate::MAX_RECORD_BYTES);
    assert_eq!(wal.append(big.clone()).await.unwrap(), 1);
    assert_eq!(wal.append(b"small".to_vec()).await.unwrap(), 2);
    assert!(matches!(
        wal.append(vec![0; crate::MAX_RECORD_BYTES + 1]).await,
        Err(Error::RecordTooLarge { .. })
    ));
    wal.close().await.unwrap();
    let (wal, replayed) = open(config).unwrap();
    assert_eq!(replayed.len(), 2);
    assert!(replayed[0].1 == big);
    assert_eq!(replayed[1], (2, b"small".to_vec()));
    wal.close().await.unwrap();
}
