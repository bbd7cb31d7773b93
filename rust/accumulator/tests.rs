//! Unit tests of the accumulator: counting, expiry, cancellation, concurrency.

use super::*;
use std::sync::{Arc, Barrier};
use std::thread;

fn acc_at(t: u64) -> Accumulator {
    let timeout = BatchTimeout::from_secs(10.0, 2.0, 0.5).unwrap();
    Accumulator::started_at("b1", timeout, Mono(t))
}

const SEC: u64 = 1_000_000_000;

#[test]
fn counts_events_and_rows() {
    let acc = acc_at(0);
    let rows = Rows {
        read: 3,
        written: 2,
        rejected: 1,
        bytes: 100,
    };
    acc.write(Some(FileEvent::Started), Rows::default(), Mono(5))
        .unwrap();
    acc.write(Some(FileEvent::Loaded), rows, Mono(6)).unwrap();
    acc.write(Some(FileEvent::Skipped), Rows::default(), Mono(7))
        .unwrap();
    acc.write(
        Some(FileEvent::Failed),
        Rows {
            read: 1,
            ..Rows::default()
        },
        Mono(8),
    )
    .unwrap();
    acc.write(
        None,
        Rows {
            bytes: 7,
            ..Rows::default()
        },
        Mono(9),
    )
    .unwrap();
    let s = acc.snapshot_at(Mono(10));
    assert_eq!(
        s.counters,
        Counters {
            files_started: 1,
            files_loaded: 1,
            files_skipped: 1,
            files_failed: 1,
            rows_read: 4,
            rows_written: 2,
            rows_rejected: 1,
            bytes_read: 107,
            ..Counters::default()
        }
    );
    assert_eq!(s.last_activity_at, Mono(9));
    assert_eq!(s.elapsed(), Duration::from_nanos(10));
    assert_eq!(s.idle(), Duration::from_nanos(1));
    assert_eq!(s.cancellation, None);
}

#[test]
fn last_activity_never_goes_back() {
    let acc = acc_at(0);
    acc.touch_at(Mono(50));
    acc.write(None, Rows::default(), Mono(20)).unwrap();
    assert_eq!(acc.last_activity(), Mono(50));
}

#[test]
fn cancel_refuses_later_events_and_keeps_first_reason() {
    let acc = acc_at(0);
    acc.add_file_event(FileEvent::Started, Rows::default())
        .unwrap();
    assert!(acc.cancel("user"));
    assert!(!acc.cancel("again"));
    assert!(!acc.cancel_expired(Expiry::Idle));
    let err = acc.add_file_event(
        FileEvent::Loaded,
        Rows {
            read: 1,
            ..Rows::default()
        },
    );
    assert_eq!(
        err,
        Err(Cancelled {
            batch_id: "b1".into(),
            reason: "user".into()
        })
    );
    assert!(acc
        .add_rows(Rows {
            read: 1,
            ..Rows::default()
        })
        .is_err());
    let s = acc.snapshot();
    assert_eq!(s.counters.files_loaded, 0);
    assert_eq!(s.counters.rows_read, 0);
    assert_eq!(s.counters.files_started, 1);
    assert_eq!(
        s.cancellation,
        Some(Cancellation {
            reason: "user".into(),
            expired: None
        })
    );
}

#[test]
fn cancel_expired_records_the_kind() {
    let acc = acc_at(0);
    assert!(acc.cancel_expired(Expiry::Operation));
    let c = acc.cancellation().unwrap();
    assert_eq!(c.reason, "operation timeout");
    assert_eq!(c.expired, Some(Expiry::Operation));
}

#[test]
fn expiry_logic() {
    let acc = acc_at(100 * SEC);
    assert_eq!(acc.expired_at(Mono(100 * SEC)), None);
    assert_eq!(acc.expired_at(Mono(101 * SEC)), None);
    // idle: 2 s without activity
    assert_eq!(acc.expired_at(Mono(102 * SEC)), Some(Expiry::Idle));
    acc.touch_at(Mono(102 * SEC));
    assert_eq!(acc.expired_at(Mono(103 * SEC)), None);
    acc.write(None, Rows::default(), Mono(109 * SEC)).unwrap();
    assert_eq!(acc.expired_at(Mono(109 * SEC + 1)), None);
    // operation: 10 s in total, wins over idle
    assert_eq!(acc.expired_at(Mono(110 * SEC)), Some(Expiry::Operation));
    assert_eq!(acc.expired_at(Mono(200 * SEC)), Some(Expiry::Operation));
    // a clock reading before the start never expires anything
    assert_eq!(acc.expired_at(Mono(0)), None);
}

#[test]
fn timeouts_are_validated() {
    assert!(BatchTimeout::from_secs(1.0, 1.0, 1.0).is_ok());
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
        let err = BatchTimeout::from_secs(1.0, bad, 1.0).unwrap_err();
        assert_eq!(err.name, "idle_timeout_s");
    }
    assert_eq!(BatchTimeout::default().operation, Duration::from_secs(3600));
    assert_eq!(BatchTimeout::default().idle, Duration::from_secs(1800));
}

/// Writers add (1 file, 3 rows read, 2 written, 1 rejected, 5 bytes) per event, so every
/// consistent snapshot has rows_read == 3 * files etc. Writers keep writing until two readers
/// have each checked that on many snapshots; then the totals must equal what writers counted.
#[test]
fn snapshots_are_consistent_under_concurrency() {
    const WRITERS: usize = 4;
    const READS: u64 = 5_000;
    let acc = Arc::new(acc_at(0));
    let barrier = Arc::new(Barrier::new(WRITERS + 2));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (acc, barrier, done) = (acc.clone(), barrier.clone(), done.clone());
        writers.push(thread::spawn(move || {
            barrier.wait();
            let kind = if w % 2 == 0 {
                FileEvent::Loaded
            } else {
                FileEvent::Failed
            };
            let rows = Rows {
                read: 3,
                written: 2,
                rejected: 1,
                bytes: 5,
            };
            let mut events = 0u64;
            while !done.load(Ordering::Relaxed) {
                acc.add_file_event(kind, rows).unwrap();
                events += 1;
            }
            (kind, events)
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (acc, barrier) = (acc.clone(), barrier.clone());
        readers.push(thread::spawn(move || {
            barrier.wait();
            let mut last = 0u64;
            for _ in 0..READS {
                let c = acc.counters();
                let files = c.files_loaded + c.files_failed;
                assert_eq!(c.rows_read, 3 * files, "{c:?}");
                assert_eq!(c.rows_written, 2 * files, "{c:?}");
                assert_eq!(c.rows_rejected, files, "{c:?}");
                assert_eq!(c.bytes_read, 5 * files, "{c:?}");
                assert!(files >= last, "counters went back");
                last = files;
            }
        }));
    }
    let read_results: Vec<_> = readers.into_iter().map(|r| r.join()).collect();
    done.store(true, Ordering::Relaxed);
    let counted: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for r in read_results {
        r.unwrap();
    }
    let c = acc.counters();
    let loaded: u64 = counted
        .iter()
        .filter(|(k, _)| *k == FileEvent::Loaded)
        .map(|(_, n)| n)
        .sum();
    let total: u64 = counted.iter().map(|(_, n)| n).sum();
    assert!(total > 0);
    assert_eq!(c.files_loaded, loaded);
    assert_eq!(c.files_loaded + c.files_failed, total);
    assert_eq!(c.rows_read, 3 * total);
    assert_eq!(c.bytes_read, 5 * total);
}

/// More writers than slots: claims collide and writers move to other slots; totals stay
/// exact and every snapshot stays consistent.
#[test]
fn more_writers_than_slots() {
    let writers = SLOTS as u64 * 2 + 3;
    const EVENTS: u64 = 2_000;
    let acc = Arc::new(acc_at(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (acc, done) = (acc.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let c = acc.counters();
                assert_eq!(c.rows_read, 3 * c.files_started, "{c:?}");
                assert_eq!(c.bytes_read, 7 * c.files_started, "{c:?}");
            }
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let acc = acc.clone();
            thread::spawn(move || {
                for _ in 0..EVENTS {
                    let rows = Rows {
                        read: 3,
                        bytes: 7,
                        ..Rows::default()
                    };
                    acc.add_file_event(FileEvent::Started, rows).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    reader.join().unwrap();
    let c = acc.counters();
    assert_eq!(c.files_started, writers * EVENTS);
    assert_eq!(c.rows_read, 3 * writers * EVENTS);
}

/// Once cancel() returns, counters never change again, even with writers racing it.
#[test]
fn nothing_counted_after_cancel_returns() {
    let acc = Arc::new(acc_at(0));
    let barrier = Arc::new(Barrier::new(5));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (acc, barrier) = (acc.clone(), barrier.clone());
        writers.push(thread::spawn(move || {
            barrier.wait();
            let mut accepted = 0u64;
            while acc
                .add_file_event(
                    FileEvent::Loaded,
                    Rows {
                        read: 1,
                        ..Rows::default()
                    },
                )
                .is_ok()
            {
                accepted += 1;
            }
            accepted
        }));
    }
    barrier.wait();
    while acc.counters().files_loaded < 1000 {
        thread::yield_now();
    }
    assert!(acc.cancel("stop"));
    let at_cancel = acc.counters();
    let accepted: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(acc.counters(), at_cancel);
    assert_eq!(at_cancel.files_loaded, accepted);
    assert_eq!(at_cancel.rows_read, accepted);
}

fn rows(read: u64, written: u64, rejected: u64, bytes: u64) -> Rows {
    Rows {
        read,
        written,
        rejected,
        bytes,
    }
}

#[test]
fn tally_settles_once_as_loaded_failed_or_retried() {
    let acc = Arc::new(acc_at(0));
    let a = FileTally::begin(acc.clone());
    assert!(a.add(rows(5, 0, 1, 50)));
    assert!(a.add(rows(0, 4, 0, 0)));
    let c = acc.counters();
    assert_eq!(
        (c.live, c.rows_read, c.file_attempts),
        (rows(5, 4, 1, 50), 0, 1)
    );
    assert_eq!(a.settle(Settle::Retried), Ok(rows(5, 4, 1, 50)));
    assert_eq!(a.settle(Settle::Loaded), Err(Settled(Settle::Retried)));
    assert!(!a.add(rows(1, 1, 0, 0)), "nothing counted after settling");
    let c = acc.counters();
    assert_eq!((c.live, c.rows_read, c.rows_sent), (Rows::default(), 0, 4));

    let b = FileTally::begin(acc.clone());
    b.add(rows(5, 4, 1, 50));
    b.settle(Settle::Loaded).unwrap();
    let f = FileTally::begin(acc.clone());
    f.add(rows(7, 3, 2, 70));
    f.settle(Settle::Failed).unwrap();
    let c = acc.counters();
    assert_eq!(c.live, Rows::default());
    assert_eq!((c.files_loaded, c.files_failed, c.file_attempts), (1, 1, 3));
    assert_eq!(
        (
            c.rows_read,
            c.rows_written,
            c.rows_rejected,
            c.rows_rolled_back
        ),
        (12, 4, 3, 5)
    );
    assert_eq!((c.bytes_read, c.rows_sent), (120, 11));
}

#[test]
fn tally_dropped_unsettled_leaves_nothing_live() {
    let acc = Arc::new(acc_at(0));
    {
        let t = FileTally::begin(acc.clone());
        t.add(rows(3, 3, 0, 9));
    }
    let c = acc.counters();
    assert_eq!(
        (c.live, c.rows_read, c.file_attempts),
        (Rows::default(), 0, 1)
    );
}

#[test]
fn tally_counts_and_settles_after_cancel() {
    let acc = Arc::new(acc_at(0));
    let t = FileTally::begin(acc.clone());
    t.add(rows(2, 0, 0, 0));
    acc.cancel("stop");
    assert!(t.add(rows(1, 0, 1, 0)));
    t.settle(Settle::Failed).unwrap();
    let c = acc.counters();
    assert_eq!(
        (
            c.files_failed,
            c.rows_read,
            c.rows_rejected,
            c.rows_rolled_back
        ),
        (1, 3, 1, 2)
    );
}

#[test]
fn snapshots_never_show_a_file_both_live_and_settled() {
    let acc = Arc::new(acc_at(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (acc, stop) = (acc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let c = acc.counters();
                // every tally adds read 10 in two halves, then settles Loaded or Retried
                assert_eq!((c.rows_read + c.live.read) % 5, 0, "{c:?}");
                assert_eq!(c.rows_read, c.files_loaded * 10, "{c:?}");
                checked += 1;
            }
            checked
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let acc = acc.clone();
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    let t = FileTally::begin(acc.clone());
                    t.add(rows(5, 0, 0, 0));
                    t.add(rows(5, 0, 0, 0));
                    let how = if (i + w) % 3 == 0 {
                        Settle::Retried
                    } else {
                        Settle::Loaded
                    };
                    t.settle(how).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let c = acc.counters();
    assert_eq!((c.live.read, c.file_attempts), (0, 8000));
    assert_eq!(c.rows_read, c.files_loaded * 10);
}

#[test]
fn unload_turns_loaded_files_into_failed_ones_exactly() {
    let acc = Arc::new(acc_at(0));
    // loaded events from several threads land in several slots; the undo in another one
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let acc = acc.clone();
            thread::spawn(move || {
                acc.write(Some(FileEvent::Loaded), rows(3, 2, 1, 10), Mono(1))
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let before = acc.counters();
    assert_eq!((before.files_loaded, before.rows_written), (4, 8));
    assert!(acc.unload(5, 8).is_err()); // more than counted: refused, nothing changes
    assert!(acc.unload(4, 9).is_err());
    assert_eq!(acc.counters(), before);
    acc.cancel("stopped"); // allowed after cancel: it corrects settled work
    acc.unload(4, 8).unwrap();
    let after = acc.counters();
    assert_eq!(
        (
            after.files_loaded,
            after.files_failed,
            after.rows_written,
            after.rows_rolled_back
        ),
        (0, 4, 0, 8)
    );
    assert_eq!((after.rows_read, after.rows_rejected), (12, 4));
    assert_eq!(
        after.rows_read,
        after.rows_written + after.rows_rejected + after.rows_rolled_back
    );
}
