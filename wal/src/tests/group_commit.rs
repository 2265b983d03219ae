//! Group commit: concurrent appends share fdatasyncs, LSNs stay dense and ordered, the
//! bounded queue applies back-pressure, and a failed fdatasync poisons the log.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fdatasyncs() {
    const TASKS: u64 = 64;
    const PER_TASK: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 1024 * 1024)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_TASK {
                let tag = t * 1000 + i;
                let lsn = wal.append(payload(tag, 64)).await.unwrap();
                acked.push((lsn, tag));
            }
            acked
        }));
    }
    let mut by_lsn = std::collections::BTreeMap::new();
    for task in tasks {
        for (lsn, tag) in task.await.unwrap() {
            assert!(
                by_lsn.insert(lsn, tag).is_none(),
                "LSN {lsn} assigned twice"
            );
        }
    }
    let total = TASKS * PER_TASK;
    assert_eq!(
        by_lsn.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(wal.acked_lsn(), total);

    let stats = wal.stats();
    println!("group commit: {stats:?}");
    assert_eq!(stats.records, total);
    assert!(
        stats.syncs < stats.records,
        "no group commit happened: {stats:?}"
    );
    assert!(stats.groups < stats.records, "{stats:?}");
    wal.close().await.unwrap();

    // The file holds them in LSN order with the payload each task sent.
    let (wal, replayed) = open(small_config(dir.path(), 1024 * 1024)).unwrap();
    assert_eq!(replayed.len() as u64, total);
    for (lsn, bytes) in &replayed {
        assert_eq!(bytes, &payload(by_lsn[lsn], 64), "payload of LSN {lsn}");
    }
    wal.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_one_still_accepts_many_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        queue_depth: 1,
        ..small_config(dir.path(), 64 * 1024)
    };
    let (wal, _) = open(config).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let mut lsns = Vec::new();
            for i in 0..10 {
                lsns.push(wal.append(payload(t * 100 + i, 200)).await.unwrap());
            }
            lsns
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all, (1..=160).collect());
    wal.close().await.unwrap();
}

#[tokio::test]
async fn enqueue_waits_for_queue_space_and_keeps_lsn_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        queue_depth: 4,
        ..small_config(dir.path(), 64 * 1024)
    };
    let (wal, _) = open(config).unwrap();
    // Enqueue far more than the queue holds without awaiting acknowledgements: enqueue
    // itself must wait for space, never fail, and hand out LSNs in call order.
    let mut pendings = Vec::new();
    for i in 0..100u64 {
        let pending = wal.enqueue(payload(i, 50)).await.unwrap();
        assert_eq!(pending.lsn, i + 1);
        pendings.push(pending);
    }
    for (i, pending) in pendings.into_iter().enumerate() {
        assert_eq!(pending.acked().await.unwrap(), i as u64 + 1);
    }
    wal.close().await.unwrap();
    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    let expected: Vec<_> = (0..100u64).map(|i| (i + 1, payload(i, 50))).collect();
    assert_replayed(&replayed, &expected);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_fdatasync_poisons_the_log_and_nothing_is_acknowledged_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert_eq!(wal.append(b"fine".to_vec()).await.unwrap(), 1);

    wal.inner_shared()
        .fail_next_sync
        .store(true, Ordering::SeqCst);
    match wal.append(b"doomed".to_vec()).await {
        Err(Error::Poisoned(reason)) => assert!(reason.contains("injected"), "{reason}"),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert_eq!(
        wal.acked_lsn(),
        1,
        "the record whose fdatasync failed is not acknowledged"
    );
    assert!(matches!(
        wal.append(b"after".to_vec()).await,
        Err(Error::Poisoned(_))
    ));
    assert!(matches!(
        wal.enqueue(b"after".to_vec()).await,
        Err(Error::Poisoned(_))
    ));
    assert_eq!(wal.acked_lsn(), 1);
    assert!(matches!(wal.close().await, Err(Error::Poisoned(_))));

    // After a restart the log is usable again; the first record is there.
    let (wal, replayed) = open(small_config(dir.path(), 64 * 1024)).unwrap();
    assert_eq!(replayed[0], (1, b"fine".to_vec()));
    let next = wal.append(b"again".to_vec()).await.unwrap();
    assert_eq!(next, replayed.len() as u64 + 1);
    wal.close().await.unwrap();
}

/// Throughput figure, not a check: `cargo test -p streamhouse-wal --release -- --ignored --nocapture`.
/// `WAL_BENCH_DIR` picks the directory (default: a temporary one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_fsync_appends_per_second() {
    let base = std::env::var_os("WAL_BENCH_DIR").map(std::path::PathBuf::from);
    for appenders in [1u64, 16, 64] {
        let dir = match &base {
            Some(base) => tempfile::tempdir_in(base).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let (wal, _) = open(WalConfig::new(dir.path())).unwrap();
        let run_for = Duration::from_secs(3);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..appenders {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut worst = Duration::ZERO;
                while started.elapsed() < run_for {
                    let t0 = Instant::now();
                    wal.append(payload(t + n, 100)).await.unwrap();
                    worst = worst.max(t0.elapsed());
                    n += 1;
                }
                (n, worst)
            }));
        }
        let mut total = 0;
        let mut worst = Duration::ZERO;
        for task in tasks {
            let (n, w) = task.await.unwrap();
            total += n;
            worst = worst.max(w);
        }
        let secs = started.elapsed().as_secs_f64();
        let stats = wal.stats();
        println!(
            "fsync mode, {appenders:>2} appenders, 100-byte payloads: {:>8.0} appends/s, {:>6.0} fdatasync/s, \
             {:.1} records/group, worst append {:.1} ms",
            total as f64 / secs,
            stats.syncs as f64 / secs,
            stats.records as f64 / stats.groups.max(1) as f64,
            worst.as_secs_f64() * 1000.0
        );
        wal.close().await.unwrap();
    }
}
