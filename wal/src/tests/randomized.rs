//! Randomized crash test: random appends, releases, file sizes, in-flight appends at the
//! "crash", and damage at random byte positions of the region a crash could have left
//! unsynced. Invariant after every restart: the replay is a contiguous run of LSNs whose
//! payloads are exactly what was appended, containing every record that was acknowledged
//! before the crash and not released, each once, in order.
//!
//! Reproduce a failure with `WAL_SEED=<seed printed by the failing run>`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const SESSIONS: usize = 30;
const FILE_SIZES: [u64; 3] = [12 * 1024, 16 * 1024, 64 * 1024];
const MAX_RECORD: usize = 80 * 1024;

/// What the test knows about the log across crashes.
struct Model {
    /// Payload of every LSN ever handed out that may still be in the log.
    payloads: BTreeMap<Lsn, Vec<u8>>,
    /// Records up to here were acknowledged before the last crash: they must survive.
    durable: Lsn,
    /// Records below this were released and may be gone.
    released_before: Lsn,
}

#[tokio::test]
async fn random_appends_releases_and_crashes_keep_every_acknowledged_record() {
    let seed: u64 = std::env::var("WAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("randomized WAL test seed: {seed} (rerun with WAL_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model {
        payloads: BTreeMap::new(),
        durable: 0,
        released_before: 1,
    };
    let mut tag = 0u64;

    for session in 0..SESSIONS {
        let file_size = FILE_SIZES[rng.gen_range(0..FILE_SIZES.len())];
        let config = WalConfig {
            max_record_bytes: MAX_RECORD,
            spare_files: rng.gen_range(0..3),
            queue_depth: rng.gen_range(1..64),
            ..small_config(dir.path(), file_size)
        };
        let (wal, replayed) =
            open(config).unwrap_or_else(|e| panic!("seed {seed} session {session}: {e}"));
        check_replay(&model, &replayed, wal.next_lsn(), seed, session);
        // What survived is on disk and synced now; what did not is gone for good.
        model.payloads.retain(|lsn, _| *lsn < wal.next_lsn());
        model.durable = wal.next_lsn() - 1;

        for _ in 0..rng.gen_range(1..6) {
            if rng.gen_bool(0.75) {
                let mut pendings = Vec::new();
                for _ in 0..rng.gen_range(1..40) {
                    tag += 1;
                    let len = if rng.gen_bool(0.05) {
                        rng.gen_range(0..=MAX_RECORD)
                    } else {
                        rng.gen_range(0..400)
                    };
                    let p = payload(tag, len);
                    let pending = wal.enqueue(p.clone()).await.unwrap();
                    model.payloads.insert(pending.lsn, p);
                    pendings.push(pending);
                }
                for pending in pendings {
                    let lsn = pending.lsn;
                    assert_eq!(pending.acked().await.unwrap(), lsn);
                    model.durable = lsn;
                }
                assert_eq!(wal.acked_lsn(), model.durable);
            } else {
                let lsn = rng.gen_range(model.released_before..=model.durable + 1);
                wal.release_before(lsn);
                model.released_before = lsn;
            }
        }

        // The crash: appends in flight (queued, not acknowledged) ...
        let mut in_flight = Vec::new();
        for _ in 0..rng.gen_range(0..20) {
            tag += 1;
            let p = payload(tag, rng.gen_range(0..400));
            let pending = wal.enqueue(p.clone()).await.unwrap();
            model.payloads.insert(pending.lsn, p);
            in_flight.push(pending);
        }
        wal.close().await.unwrap();
        drop(in_flight);
        // ... and the bytes after the last acknowledged record of the last file only
        // partially reaching the disk. Older files were synced before the last one got
        // any record, so they are never damaged.
        damage_unsynced_tail(dir.path(), model.durable, &mut rng);
    }

    let (wal, replayed) = open(small_config(dir.path(), 16 * 1024)).unwrap();
    check_replay(&model, &replayed, wal.next_lsn(), seed, SESSIONS);
    wal.release_before(wal.next_lsn());
    assert_eq!(
        log_files(dir.path()).len(),
        1,
        "seed {seed}: {:?}",
        dir_names(dir.path())
    );
    wal.close().await.unwrap();
}

fn check_replay(model: &Model, replayed: &Replayed, next_lsn: Lsn, seed: u64, session: usize) {
    let ctx = format!("seed {seed} session {session}");
    for pair in replayed.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "{ctx}: replay is not contiguous");
    }
    if let Some((last, _)) = replayed.last() {
        assert_eq!(
            *last + 1,
            next_lsn,
            "{ctx}: next LSN does not follow the replay"
        );
    }
    assert!(
        next_lsn > model.durable,
        "{ctx}: acknowledged LSN {} lost (next {next_lsn})",
        model.durable
    );
    for (lsn, payload) in replayed {
        let expected = model
            .payloads
            .get(lsn)
            .unwrap_or_else(|| panic!("{ctx}: LSN {lsn} was never appended"));
        assert!(payload == expected, "{ctx}: payload of LSN {lsn} differs");
    }
    // Every record still needed (not released) and acknowledged must be there.
    let needed_from = model.released_before.max(1);
    if needed_from <= model.durable {
        let first = replayed.first().map(|(lsn, _)| *lsn);
        assert!(
            first.is_some_and(|f| f <= needed_from),
            "{ctx}: replay starts at {first:?}, needed {needed_from}"
        );
    }
}

/// Simulates a crash of the page cache: from a random position after the last durable
/// record of the last file, bytes are cut, flipped, zeroed or replaced by garbage.
fn damage_unsynced_tail(dir: &Path, durable: Lsn, rng: &mut StdRng) {
    let Some(last) = log_files(dir).pop() else {
        return;
    };
    let records = records_in(&last);
    let lo = records
        .iter()
        .filter(|r| r.lsn <= durable)
        .map(Placed::end)
        .max()
        .unwrap_or(crate::FILE_HEADER_SIZE);
    let len = fs::metadata(&last).unwrap().len();
    if lo >= len || rng.gen_bool(0.2) {
        return;
    }
    // Usually inside the in-flight records, where damage matters.
    let hi = records.last().map_or(len, |r| r.end().max(lo + 1)).min(len);
    let at = if rng.gen_bool(0.8) {
        rng.gen_range(lo..hi)
    } else {
        rng.gen_range(lo..len)
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&last)
        .unwrap();
    match rng.gen_range(0..4) {
        0 => file.set_len(at).unwrap(),
        1 => {
            let mut b = [0u8];
            file.read_exact_at(&mut b, at).unwrap();
            file.write_all_at(&[b[0] ^ (1 << rng.gen_range(0..8))], at)
                .unwrap();
        }
        2 => {
            let n = rng.gen_range(1..=(len - at).min(8192));
            file.write_all_at(&vec![0u8; n as usize], at).unwrap();
        }
        _ => {
            let n = rng.gen_range(1..=(len - at).min(8192));
            let garbage: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            file.write_all_at(&garbage, at).unwrap();
        }
    }
}
