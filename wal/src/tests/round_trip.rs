//! Appends survive close and reopen, in every durability mode, and the handle behaves
//! around open and close (locking, LSN continuity, closed state, replay errors).

use std::time::Duration;

use super::*;

#[tokio::test]
async fn round_trip_replays_exactly_the_appended_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert!(replayed.is_empty());
    assert_eq!(wal.next_lsn(), 1);
    assert_eq!(wal.acked_lsn(), 0);

    let mut expected = Vec::new();
    for i in 0..500u64 {
        let p = payload(i, (i as usize * 37) % 700);
        let lsn = wal.append(p.clone()).await.unwrap();
        assert_eq!(lsn, i + 1, "LSNs are dense and start at 1");
        expected.push((lsn, p));
    }
    assert_eq!(wal.acked_lsn(), 500);
    assert!(wal.stats().rotations > 0, "64 KiB files must have rotated");
    wal.close().await.unwrap();

    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert_replayed(&replayed, &expected);
    assert_eq!(wal.next_lsn(), 501);
    assert_eq!(
        wal.acked_lsn(),
        500,
        "replayed records count as acknowledged"
    );

    // LSNs continue after a reopen, and the second generation is replayed too.
    for i in 500..520u64 {
        let p = payload(i, 10);
        assert_eq!(wal.append(p.clone()).await.unwrap(), i + 1);
        expected.push((i + 1, p));
    }
    wal.close().await.unwrap();
    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert_replayed(&replayed, &expected);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn reopening_without_appends_does_not_pile_up_files() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 16 * 1024)).unwrap();
    wal.append(b"only".to_vec()).await.unwrap();
    wal.close().await.unwrap();
    for _ in 0..10 {
        let (wal, replayed) = open(small_config(dir.path(), 16 * 1024)).unwrap();
        assert_replayed(&replayed, &[(1, b"only".to_vec())]);
        assert_eq!(wal.next_lsn(), 2);
        wal.close().await.unwrap();
    }
    // The file holding record 1 plus the (empty) current one.
    assert_eq!(
        log_files(dir.path()).len(),
        2,
        "{:?}",
        dir_names(dir.path())
    );
}

async fn round_trip_in_mode(durability: Durability) -> crate::WalStats {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(config_with(dir.path(), durability)).unwrap();
    let mut expected = Vec::new();
    for i in 0..200u64 {
        let p = payload(i, 100 + i as usize);
        let pending = wal.enqueue(p.clone()).await.unwrap();
        assert_eq!(pending.lsn, i + 1);
        expected.push((pending.lsn, p));
        assert_eq!(pending.acked().await.unwrap(), i + 1);
    }
    let stats_before_close = wal.stats();
    wal.close().await.unwrap();
    let (wal, replayed) = open(config_with(dir.path(), durability)).unwrap();
    assert_replayed(&replayed, &expected);
    wal.close().await.unwrap();
    stats_before_close
}

#[tokio::test]
async fn durability_none_round_trips_and_never_syncs_before_close() {
    let stats = round_trip_in_mode(Durability::None).await;
    assert_eq!(stats.records, 200);
    assert_eq!(
        stats.syncs, 0,
        "no rotation happened, so no fdatasync either"
    );
}

#[tokio::test]
async fn durability_interval_round_trips() {
    let stats = round_trip_in_mode(Durability::Interval(Duration::from_millis(5))).await;
    assert_eq!(stats.records, 200);
}

#[tokio::test]
async fn durability_fsync_syncs_every_group() {
    let stats = round_trip_in_mode(Durability::Fsync).await;
    assert_eq!(stats.records, 200);
    // Appends were sequential, so every record was its own group with its own fdatasync.
    assert_eq!(stats.groups, 200);
    assert_eq!(stats.syncs, 200);
}

#[tokio::test]
async fn interval_mode_syncs_on_its_own_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(config_with(
        dir.path(),
        Durability::Interval(Duration::from_millis(200)),
    ))
    .unwrap();
    wal.append(b"x".to_vec()).await.unwrap();
    assert_eq!(wal.stats().syncs, 0, "acknowledged before any fdatasync");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while wal.stats().syncs == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the interval sync never happened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        wal.stats().syncs,
        1,
        "idle log: one sync, then nothing dirty"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(wal.stats().syncs, 1);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn acked_lsn_is_published_to_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    let mut rx = wal.subscribe_acked();
    assert_eq!(*rx.borrow_and_update(), 0);
    let writer = wal.clone();
    let task = tokio::spawn(async move {
        for i in 0..5u64 {
            writer.append(payload(i, 8)).await.unwrap();
        }
    });
    let seen = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|lsn| *lsn >= 5)).await;
    assert_eq!(*seen.unwrap().unwrap(), 5);
    task.await.unwrap();
    assert_eq!(wal.acked_lsn(), 5);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn close_is_idempotent_and_refuses_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    let pending = wal.enqueue(b"queued before close".to_vec()).await.unwrap();
    let other = wal.clone();
    let (a, b) = tokio::join!(wal.close(), other.close());
    a.unwrap();
    b.unwrap();
    assert_eq!(
        pending.acked().await.unwrap(),
        1,
        "close acknowledges what was queued"
    );
    assert!(matches!(
        wal.append(b"late".to_vec()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        wal.enqueue(b"late".to_vec()).await,
        Err(Error::Closed)
    ));
    wal.close().await.unwrap();
    assert_eq!(wal.next_lsn(), 2);
}

#[tokio::test]
async fn a_directory_can_be_opened_by_one_log_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    match open(small_config(dir.path(), 64 * 1024)) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        other => panic!("second open must fail, got {:?}", other.map(|(w, _)| w)),
    }
    wal.close().await.unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    wal.close().await.unwrap();
}

#[tokio::test]
async fn replay_errors_abort_open_without_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    for i in 0..10u64 {
        wal.append(payload(i, 32)).await.unwrap();
    }
    wal.close().await.unwrap();

    let result = Wal::open(small_config(dir.path(), 64 * 1024), |lsn, _| {
        if lsn == 4 {
            Err(Error::Replay("cannot decode LSN 4".to_string()))
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(Error::Replay(msg)) if msg.contains("LSN 4")));

    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert_eq!(
        replayed.len(),
        10,
        "the failed open released the lock and changed nothing"
    );
    wal.close().await.unwrap();
}

#[tokio::test]
async fn invalid_configs_are_rejected_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("wal");
    let too_small = WalConfig {
        file_size: 1024,
        ..WalConfig::new(&sub)
    };
    assert!(
        matches!(open(too_small), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput)
    );
    let no_queue = WalConfig {
        queue_depth: 0,
        ..WalConfig::new(&sub)
    };
    assert!(
        matches!(open(no_queue), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput)
    );
    assert!(!sub.exists());
}

#[tokio::test]
async fn dropping_every_handle_still_flushes_queued_records() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    let pending = wal.enqueue(b"left behind".to_vec()).await.unwrap();
    drop(wal);
    assert_eq!(pending.acked().await.unwrap(), 1);
    // The writer releases the directory lock as it exits.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (wal, replayed) = loop {
        match open(small_config(dir.path(), 64 * 1024)) {
            Ok(opened) => break opened,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_replayed(&replayed, &[(1, b"left behind".to_vec())]);
    wal.close().await.unwrap();
}
