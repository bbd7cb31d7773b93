//! Unit tests of the watchdog thread (real time, tiny timeouts, generous waits).

use super::*;
use crate::accumulator::{BatchTimeout, FileEvent, Rows};
use std::sync::mpsc;

fn timeout(op: f64, idle: f64, interval: f64) -> BatchTimeout {
    BatchTimeout::from_secs(op, idle, interval).unwrap()
}

const WAIT: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(5);

fn dog() -> (Watchdog<u32>, mpsc::Receiver<(u32, Expiry)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let on_timeout: OnTimeout<u32> =
        Box::new(move |id, expiry| tx.lock().send((id, expiry)).map_err(|_| CallbackFailed));
    (Watchdog::start(TICK, on_timeout).unwrap(), rx)
}

#[test]
fn fires_idle_timeout_once_and_cancels() {
    let (wd, rx) = dog();
    let acc = Arc::new(Accumulator::new("b", timeout(3600.0, 0.05, 0.01)));
    wd.watch(acc.clone(), 7).unwrap();
    assert_eq!(rx.recv_timeout(WAIT), Ok((7, Expiry::Idle)));
    let c = acc.cancellation().unwrap();
    assert_eq!(
        (c.reason.as_str(), c.expired),
        ("idle timeout", Some(Expiry::Idle))
    );
    assert!(acc
        .add_file_event(FileEvent::Loaded, Rows::default())
        .is_err());
    assert_eq!(wd.fired(), 1);
    assert_eq!(wd.watched(), 0);
    // nothing more arrives: the accumulator is no longer watched
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert!(wd.stop(Duration::from_secs(1)));
}

#[test]
fn fires_operation_timeout_despite_activity() {
    let (wd, rx) = dog();
    let acc = Arc::new(Accumulator::new("b", timeout(0.05, 3600.0, 0.01)));
    wd.watch(acc.clone(), 1).unwrap();
    loop {
        if acc
            .add_rows(Rows {
                read: 1,
                ..Rows::default()
            })
            .is_err()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rx.recv_timeout(WAIT), Ok((1, Expiry::Operation)));
    assert_eq!(acc.cancellation().unwrap().expired, Some(Expiry::Operation));
    wd.stop(Duration::from_secs(1));
}

#[test]
fn two_watchdogs_fire_once_in_total() {
    let (a, rx_a) = dog();
    let (b, rx_b) = dog();
    let acc = Arc::new(Accumulator::new("b", timeout(3600.0, 0.02, 0.005)));
    a.watch(acc.clone(), 1).unwrap();
    b.watch(acc.clone(), 2).unwrap();
    while a.watched() + b.watched() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.stop(Duration::from_secs(1));
    b.stop(Duration::from_secs(1));
    let got: Vec<_> = rx_a.try_iter().chain(rx_b.try_iter()).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(a.fired() + b.fired(), 1);
}

#[test]
fn cancelled_and_unwatched_accumulators_never_fire() {
    let (wd, rx) = dog();
    let cancelled = Arc::new(Accumulator::new("c", timeout(3600.0, 0.02, 0.005)));
    cancelled.cancel("user");
    let unwatched = Arc::new(Accumulator::new("u", timeout(3600.0, 0.02, 0.005)));
    wd.watch(cancelled.clone(), 1).unwrap();
    wd.watch(unwatched.clone(), 2).unwrap();
    assert_eq!(wd.unwatch(&unwatched), Ok(Some(2)));
    assert_eq!(wd.unwatch(&unwatched), Ok(None));
    // a third one that does fire proves the thread was running all along
    let fires = Arc::new(Accumulator::new("f", timeout(3600.0, 0.04, 0.005)));
    wd.watch(fires.clone(), 3).unwrap();
    assert_eq!(rx.recv_timeout(WAIT), Ok((3, Expiry::Idle)));
    assert!(!unwatched.is_cancelled());
    assert_eq!(cancelled.cancellation().unwrap().reason, "user");
    assert_eq!(wd.fired(), 1);
    wd.stop(Duration::from_secs(1));
}

#[test]
fn heartbeats_run_and_errors_are_counted() {
    let (wd, _rx) = dog();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let hb: HeartbeatFn = Arc::new(move || {
        let _ = tx.lock().send(());
        Err(CallbackFailed)
    });
    assert!(wd
        .add_heartbeat("lease", Duration::from_millis(5), hb)
        .unwrap()
        .is_none());
    for _ in 0..4 {
        rx.recv_timeout(WAIT).unwrap();
    }
    // the 4th call started, so the first 3 have returned their errors
    assert!(wd.callback_errors() >= 3);
    assert!(wd.remove_heartbeat("lease").unwrap().is_some());
    assert!(wd.remove_heartbeat("lease").unwrap().is_none());
    wd.stop(Duration::from_secs(1));
}

#[test]
fn stop_is_prompt_idempotent_and_refuses_new_work() {
    let (wd, _rx) = dog();
    let hb: HeartbeatFn = Arc::new(|| Ok(()));
    wd.add_heartbeat("slow", Duration::from_secs(3600), hb.clone())
        .unwrap();
    assert!(wd.running());
    assert!(wd.stop(Duration::from_secs(5)));
    assert!(!wd.running());
    assert!(wd.stop(Duration::from_secs(5)));
    let acc = Arc::new(Accumulator::new("b", BatchTimeout::default()));
    assert_eq!(wd.watch(acc, 1), Err(WatchdogError::Stopped));
    assert_eq!(
        wd.add_heartbeat("x", Duration::from_secs(1), hb).err(),
        Some(WatchdogError::Stopped)
    );
}

#[test]
fn stop_from_a_callback_does_not_deadlock() {
    let slot: Arc<Mutex<Option<Arc<Watchdog<u32>>>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let inner = slot.clone();
    let wd = Arc::new(
        Watchdog::start(
            TICK,
            Box::new(move |_, _| {
                let wd = inner.lock().clone();
                if let Some(wd) = wd {
                    let _ = tx.lock().send(wd.stop(Duration::from_secs(1)));
                }
                Ok(())
            }),
        )
        .unwrap(),
    );
    *slot.lock() = Some(wd.clone());
    wd.watch(
        Arc::new(Accumulator::new("b", timeout(3600.0, 0.01, 0.005))),
        1,
    )
    .unwrap();
    // stop() on its own thread returns at once (false: it cannot wait for itself)
    assert_eq!(rx.recv_timeout(WAIT), Ok(false));
    assert!(wd.wait_stopped(Instant::now() + WAIT));
    slot.lock().take();
}
