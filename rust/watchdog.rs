//! A thread that watches [`Accumulator`]s for timeouts and runs periodic heartbeats.
//!
//! The thread sleeps on a condition variable until the earliest due check or heartbeat (never
//! waking more often than every `tick`), and is woken at once by `watch`, `add_heartbeat` and
//! `stop`. Callbacks run on the thread with no lock held. When an accumulator has passed its
//! operation or idle timeout, the watchdog cancels it with [`Accumulator::cancel_expired`] and,
//! only if that call did the cancelling, calls `on_timeout` once: so a timeout fires exactly
//! once per accumulator even with several watchdogs, and never for a batch already cancelled.
//!
//! `T` is a payload stored with each watched accumulator and handed to `on_timeout` (the
//! Python bindings store the Python object there). The watchdog owns no interpreter state.
//!
//! After `fork()` the thread does not exist in the child: every method checks the process id
//! first (before touching a lock another thread may have held at fork time) and refuses.

use crate::accumulator::{now, Accumulator, Expiry, Mono};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// A callback failed (the caller has already reported why); it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackFailed;

/// Called as `on_timeout(payload, expiry)` once per expired accumulator.
pub type OnTimeout<T> = Box<dyn Fn(T, Expiry) -> Result<(), CallbackFailed> + Send + Sync>;
/// A heartbeat callback.
pub type HeartbeatFn = Arc<dyn Fn() -> Result<(), CallbackFailed> + Send + Sync>;

/// Why the watchdog refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchdogError {
    #[error("this watchdog was created in process {parent}; its thread does not exist in child process {child} after fork()")]
    Forked { parent: u32, child: u32 },
    #[error("the watchdog is stopped")]
    Stopped,
}

struct Watched<T> {
    acc: Arc<Accumulator>,
    payload: T,
    next_check: Mono,
}

struct Heartbeat {
    name: String,
    interval: Duration,
    next_due: Mono,
    callback: HeartbeatFn,
}

struct State<T> {
    stop: bool,
    watched: Vec<Watched<T>>,
    heartbeats: Vec<Heartbeat>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
    finished: Mutex<bool>,
    finished_cv: Condvar,
    stopping: AtomicBool,
    fired: AtomicU64,
    callback_errors: AtomicU64,
    tick: Duration,
    on_timeout: OnTimeout<T>,
}

/// The watchdog: one thread, stopped by [`Watchdog::stop`] or on drop.
pub struct Watchdog<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
    pid: u32,
}

/// Work collected under the lock and run without it.
struct Due<T> {
    expired: Vec<(Watched<T>, Expiry)>,
    heartbeats: Vec<HeartbeatFn>,
}

impl<T: Send + 'static> Shared<T> {
    fn run(&self) {
        let mut last_work: Option<Mono> = None;
        loop {
            let due = {
                let mut st = self.state.lock();
                loop {
                    if st.stop {
                        break;
                    }
                    let t = now();
                    let next = st
                        .watched
                        .iter()
                        .map(|w| w.next_check)
                        .chain(st.heartbeats.iter().map(|h| h.next_due))
                        .min();
                    let earliest = last_work.map_or(t, |l| l.plus(self.tick));
                    match next {
                        Some(next) if t >= next.max(earliest) => break,
                        Some(next) => {
                            let wait = next.max(earliest).since(t);
                            self.wake.wait_for(&mut st, wait);
                        }
                        None => self.wake.wait(&mut st),
                    }
                }
                if st.stop {
                    break;
                }
                let t = now();
                last_work = Some(t);
                collect_due(&mut st, t)
            };
            self.run_due(due);
        }
        *self.finished.lock() = true;
        self.finished_cv.notify_all();
    }

    fn run_due(&self, due: Due<T>) {
        for (watched, expiry) in due.expired {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            if watched.acc.cancel_expired(expiry) {
                self.fired.fetch_add(1, Ordering::AcqRel);
                if (self.on_timeout)(watched.payload, expiry).is_err() {
                    self.callback_errors.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        for callback in due.heartbeats {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            if callback().is_err() {
                self.callback_errors.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

fn collect_due<T>(st: &mut State<T>, t: Mono) -> Due<T> {
    let mut expired = Vec::new();
    let mut i = 0;
    while i < st.watched.len() {
        let w = &mut st.watched[i];
        if w.next_check > t {
            i += 1;
            continue;
        }
        w.next_check = t.plus(w.acc.timeout().watchdog_interval);
        if w.acc.is_cancelled() {
            // Cancelled by someone else: it can never fire, stop watching it.
            st.watched.swap_remove(i);
        } else if let Some(expiry) = w.acc.expired_at(t) {
            expired.push((st.watched.swap_remove(i), expiry));
        } else {
            i += 1;
        }
    }
    let mut heartbeats = Vec::new();
    for h in st.heartbeats.iter_mut().filter(|h| h.next_due <= t) {
        heartbeats.push(h.callback.clone());
        // No catch-up bursts after a slow callback: the next run is at least one interval away.
        h.next_due = h.next_due.plus(h.interval).max(t.plus(h.interval / 2));
    }
    Due {
        expired,
        heartbeats,
    }
}

impl<T: Send + 'static> Watchdog<T> {
    /// Start the thread. `tick` is the shortest time between two rounds of work.
    pub fn start(tick: Duration, on_timeout: OnTimeout<T>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                watched: Vec::new(),
                heartbeats: Vec::new(),
            }),
            wake: Condvar::new(),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            fired: AtomicU64::new(0),
            callback_errors: AtomicU64::new(0),
            tick,
            on_timeout,
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("tallyclerk-watchdog".into())
            .spawn(move || thread_shared.run())?;
        let thread_id = handle.thread().id();
        Ok(Self {
            shared,
            handle: Mutex::new(Some(handle)),
            thread_id,
            pid: std::process::id(),
        })
    }

    fn check_pid(&self) -> Result<(), WatchdogError> {
        let child = std::process::id();
        if child == self.pid {
            Ok(())
        } else {
            Err(WatchdogError::Forked {
                parent: self.pid,
                child,
            })
        }
    }

    /// True in a child process after `fork()`.
    pub fn forked(&self) -> bool {
        self.check_pid().is_err()
    }

    /// Watch `acc` (no-op if already watched). Its first check is due at once.
    pub fn watch(&self, acc: Arc<Accumulator>, payload: T) -> Result<(), WatchdogError> {
        self.check_pid()?;
        let mut st = self.shared.state.lock();
        if st.stop {
            return Err(WatchdogError::Stopped);
        }
        if st.watched.iter().all(|w| !Arc::ptr_eq(&w.acc, &acc)) {
            st.watched.push(Watched {
                acc,
                payload,
                next_check: now(),
            });
            self.shared.wake.notify_all();
        }
        Ok(())
    }

    /// Stop watching `acc`; returns its payload if it was watched. When it returns `Some`, the
    /// watchdog never fires for `acc` (unless it is watched again); `None` means it was not
    /// watched, or its timeout was already taken up (fired, or firing right now).
    pub fn unwatch(&self, acc: &Arc<Accumulator>) -> Result<Option<T>, WatchdogError> {
        self.check_pid()?;
        let mut st = self.shared.state.lock();
        let pos = st.watched.iter().position(|w| Arc::ptr_eq(&w.acc, acc));
        Ok(pos.map(|i| st.watched.swap_remove(i).payload))
    }

    /// Run `callback` every `interval` (first run one interval from now). Replaces a heartbeat
    /// of the same name and returns the replaced callback.
    pub fn add_heartbeat(
        &self,
        name: &str,
        interval: Duration,
        callback: HeartbeatFn,
    ) -> Result<Option<HeartbeatFn>, WatchdogError> {
        self.check_pid()?;
        let mut st = self.shared.state.lock();
        if st.stop {
            return Err(WatchdogError::Stopped);
        }
        let hb = Heartbeat {
            name: name.to_string(),
            interval,
            next_due: now().plus(interval),
            callback,
        };
        let old = match st.heartbeats.iter().position(|h| h.name == name) {
            Some(i) => Some(std::mem::replace(&mut st.heartbeats[i], hb).callback),
            None => {
                st.heartbeats.push(hb);
                None
            }
        };
        self.shared.wake.notify_all();
        Ok(old)
    }

    /// Remove a heartbeat; returns its callback if it existed.
    pub fn remove_heartbeat(&self, name: &str) -> Result<Option<HeartbeatFn>, WatchdogError> {
        self.check_pid()?;
        let mut st = self.shared.state.lock();
        let pos = st.heartbeats.iter().position(|h| h.name == name);
        Ok(pos.map(|i| st.heartbeats.swap_remove(i).callback))
    }

    /// Number of watched accumulators.
    pub fn watched(&self) -> usize {
        if self.forked() {
            return 0;
        }
        self.shared.state.lock().watched.len()
    }

    /// The thread runs and has not been told to stop (false in a forked child).
    pub fn running(&self) -> bool {
        !self.forked()
            && !self.shared.stopping.load(Ordering::Acquire)
            && !*self.shared.finished.lock()
    }

    pub fn fired(&self) -> u64 {
        self.shared.fired.load(Ordering::Acquire)
    }

    pub fn callback_errors(&self) -> u64 {
        self.shared.callback_errors.load(Ordering::Acquire)
    }

    /// Tell the thread to stop and wake it; does not wait. Idempotent.
    pub fn request_stop(&self) {
        if self.forked() {
            return;
        }
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_all();
    }

    /// Wait until the thread has finished or `deadline` passed; joins it when finished.
    /// Returns true if the thread finished. Returns at once on the watchdog's own thread
    /// (a callback calling stop) and in a forked child.
    pub fn wait_stopped(&self, deadline: Instant) -> bool {
        if self.forked() || std::thread::current().id() == self.thread_id {
            return false;
        }
        let mut finished = self.shared.finished.lock();
        while !*finished {
            if self
                .shared
                .finished_cv
                .wait_until(&mut finished, deadline)
                .timed_out()
            {
                break;
            }
        }
        let done = *finished;
        drop(finished);
        if done {
            if let Some(handle) = self.handle.lock().take() {
                // The thread has left its loop; a panic in it was already counted nowhere, so
                // report nothing more here than that it ended.
                let _ = handle.join();
            }
        }
        done
    }

    /// Stop the thread, waiting at most `timeout` for it to finish. Idempotent.
    pub fn stop(&self, timeout: Duration) -> bool {
        self.request_stop();
        self.wait_stopped(Instant::now() + timeout)
    }
}

impl<T: Send + 'static> Drop for Watchdog<T> {
    fn drop(&mut self) {
        if self.forked() {
            // The thread does not exist here; its handle must neither be joined nor detached.
            if let Some(handle) = self.handle.get_mut().take() {
                std::mem::forget(handle);
            }
            return;
        }
        // Signal only: the thread ends after its current callback; dropping the handle
        // detaches it.
        self.request_stop();
    }
}

#[cfg(test)]
mod tests;
