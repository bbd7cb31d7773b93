//! A bounded write-behind queue: many producers, one writer thread, batches handed to a sink.
//!
//! [`WriteBehindQueue`] is generic over the item type and a [`Sink`], so `cargo test` proves the
//! whole protocol (order, batching, flush, retries, dead letters, back-pressure, close) without
//! Python; the bindings in `py/queue.rs` only supply a sink that calls Python.
//!
//! # Design
//!
//! One `parking_lot` mutex guards a `VecDeque` and the counters; three condition variables wake
//! the writer (items, close, abort), blocked producers (room) and flush/close callers (progress).
//! A `put` is a lock, a push and an unlock; it notifies the writer only when the writer is
//! asleep waiting for work, or lingering and the batch just filled up.
//!
//! Items are numbered in enqueue order: item *k* is the *k*-th ever enqueued. The writer takes
//! batches from the front and finishes them in order, so `completed` (items written or
//! dead-lettered) is a prefix of that numbering. `flush` remembers `enqueued` at its call and
//! waits until `completed` reaches it: items put after the call never delay it, and the writer
//! keeps running. The bound counts queued items *and* the batch in flight (`depth`), so memory
//! stays bounded while the sink is slow.
//!
//! # Failures
//!
//! A batch whose sink call fails is retried up to `max_retries` times, sleeping with exponential
//! backoff and jitter (the sleep wakes at once when `close` runs out of time), then given to
//! [`Sink::dead_letter`] and counted, never as written; a failure the sink reports as
//! [`SinkError::Permanent`] is dead-lettered at once (retrying it would only delay the batches
//! behind it). A panicking sink dead-letters its batch
//! at once. When the sink reports [`SinkError::Gone`] (the Python interpreter is shutting down)
//! the writer stops: it cannot hand anything over any more, and counts what it abandons.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// What `put` does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFull {
    /// Wait for room (up to a timeout).
    Block,
    /// Fail at once.
    Raise,
}

/// Queue settings. See the Python stub `WriteBehindQueue` for each field's meaning.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_items: usize,
    pub max_bytes: Option<u64>,
    pub max_batch: usize,
    pub linger: Duration,
    pub on_full: OnFull,
    pub max_retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub thread_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_items: 10_000,
            max_bytes: None,
            max_batch: 1000,
            linger: Duration::from_millis(5),
            on_full: OnFull::Block,
            max_retries: 5,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(2),
            thread_name: "tallyclerk-writer".to_string(),
        }
    }
}

impl Config {
    /// Check the settings; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_items == 0 {
            return Err("max_items must be at least 1".into());
        }
        if self.max_batch == 0 {
            return Err("max_batch must be at least 1".into());
        }
        if self.max_bytes == Some(0) {
            return Err("max_bytes must be at least 1 (or None)".into());
        }
        if self.backoff_max < self.backoff_initial {
            return Err("backoff_max_ms must be at least backoff_initial_ms".into());
        }
        if self.thread_name.contains('\0') {
            return Err("name must not contain NUL".into());
        }
        Ok(())
    }
}

/// Why a sink call failed.
#[derive(Debug)]
pub enum SinkError<E> {
    /// The sink raised; the batch is retried, then dead-lettered.
    Failed(E),
    /// The sink raised an error retrying cannot fix: the batch is dead-lettered at once.
    Permanent(E),
    /// The sink can never run again (the interpreter is finalizing): the writer stops.
    Gone,
}

/// Why a batch was dead-lettered.
#[derive(Debug)]
pub enum DeadReason<E> {
    /// The sink kept failing; its last error.
    Failed(E),
    /// The sink panicked (a bug); the panic message.
    Panicked(String),
    /// `close(timeout)` ran out of time before these items were delivered; the last sink error
    /// of this batch, if its delivery had been failing.
    Undelivered(Option<E>),
}

/// Where batches go. Only the writer thread calls it.
pub trait Sink<T>: Send + 'static {
    type Error: fmt::Display + Send;
    /// Hand over one batch, in enqueue order. On success the sink may take the items (leave
    /// the vector empty); on failure it must leave the batch intact, as it is retried.
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), SinkError<Self::Error>>;
    /// Receive a batch the queue gave up on.
    fn dead_letter(&mut self, batch: Vec<T>, reason: DeadReason<Self::Error>);
    /// Run `f` exactly once, which makes several [`write`](Self::write) calls in a row (for
    /// Python: attached to the interpreter once for all of them). `f` never waits.
    fn session(&mut self, f: &mut dyn FnMut(&mut Self)) {
        f(self)
    }
}

/// Counters of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub enqueued: u64,
    pub written: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Items enqueued and not yet written or dead-lettered (includes the batch in flight).
    pub depth: u64,
    pub bytes_queued: u64,
    pub high_water: u64,
    pub batches: u64,
    pub last_error: Option<String>,
}

/// A `put` that did not enqueue; the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum PutError<T> {
    Full(T),
    Closed(T),
    /// `size` exceeds `max_bytes`: it could never fit.
    TooLarge(T),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushError {
    /// The timeout passed with this many items (put before the call) still pending.
    Timeout {
        pending: u64,
    },
    Closed,
    /// Called from the writer thread, i.e. from inside the sink.
    Reentrant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// The drain did not finish in time; this many items were not delivered (they are
    /// dead-lettered by the writer, at once unless it is inside a sink call).
    Timeout {
        undelivered: u64,
    },
    Reentrant,
}

struct Entry<T> {
    item: T,
    size: u64,
}

struct State<T> {
    queue: VecDeque<Entry<T>>,
    in_flight: u64,
    in_flight_bytes: u64,
    bytes: u64, // queued + in flight
    enqueued: u64,
    completed: u64, // written + dead-lettered, a prefix of the enqueue order
    /// Items taken out by [`WriteBehindQueue::abort_take`] behind the batch in flight: done,
    /// but added to `completed` only when that batch is (to keep `completed` a prefix).
    parked: u64,
    flush_target: u64,
    closed: bool,
    abort: bool,
    writer_done: bool,
    writer_calling: bool,
    writer_idle: bool,
    writer_lingering: bool,
    putters_waiting: usize,
    waiters: usize,
    written: u64,
    retried: u64,
    dead_lettered: u64,
    high_water: u64,
    batches: u64,
    last_error: Option<String>,
}

impl<T> State<T> {
    fn depth(&self) -> u64 {
        self.queue.len() as u64 + self.in_flight
    }

    fn has_room(&self, cfg: &Config, n: u64, size: u64) -> bool {
        self.depth() + n <= cfg.max_items as u64
            && cfg.max_bytes.map_or(true, |max| self.bytes + size <= max)
    }

    fn push(&mut self, item: T, size: u64, max_batch: usize) -> bool {
        self.queue.push_back(Entry { item, size });
        self.bytes += size;
        self.enqueued += 1;
        let depth = self.depth();
        if depth > self.high_water {
            self.high_water = depth;
        }
        // Tell the caller to wake the writer only when it sleeps waiting for this.
        if self.writer_idle || (self.writer_lingering && self.queue.len() >= max_batch) {
            self.writer_idle = false;
            self.writer_lingering = false;
            return true;
        }
        false
    }
}

struct Shared<T> {
    cfg: Config,
    state: Mutex<State<T>>,
    writer_cv: Condvar,
    room_cv: Condvar,
    done_cv: Condvar,
}

impl<T> Shared<T> {
    /// One wait for room (a put waiting, counted in `putters_waiting`); false without waiting
    /// when `bounded` and the `deadline` (None: it overflowed) has passed.
    fn wait_for_room(
        &self,
        st: &mut MutexGuard<'_, State<T>>,
        bounded: bool,
        deadline: Option<Instant>,
    ) -> bool {
        if bounded && deadline.map_or(true, |d| Instant::now() >= d) {
            return false;
        }
        st.putters_waiting += 1;
        match deadline {
            Some(d) => {
                self.room_cv.wait_until(st, d);
            }
            None => self.room_cv.wait(st),
        }
        st.putters_waiting -= 1;
        true
    }

    /// The batch in flight is done (written or dead-lettered).
    fn settle(&self, st: &mut MutexGuard<'_, State<T>>, n: u64) {
        st.in_flight = 0;
        st.bytes -= st.in_flight_bytes;
        st.in_flight_bytes = 0;
        let parked = std::mem::take(&mut st.parked);
        self.finish(st, n + parked);
    }

    fn finish(&self, st: &mut MutexGuard<'_, State<T>>, n: u64) {
        st.completed += n;
        if st.waiters > 0 {
            self.done_cv.notify_all();
        }
        if st.putters_waiting > 0 {
            self.room_cv.notify_all();
        }
    }
}

/// The queue handle. Dropping it closes the queue without waiting (the writer drains in the
/// background); call [`WriteBehindQueue::close`] to wait for the drain.
pub struct WriteBehindQueue<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_id: ThreadId,
    pid: u32,
}

impl<T: Send + 'static> WriteBehindQueue<T> {
    /// Start the writer thread. Fails on an invalid config or if the thread cannot start.
    pub fn new<S: Sink<T>>(cfg: Config, sink: S) -> Result<Self, String> {
        cfg.validate()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(cfg.max_items.min(cfg.max_batch * 2)),
                in_flight: 0,
                in_flight_bytes: 0,
                bytes: 0,
                enqueued: 0,
                completed: 0,
                parked: 0,
                flush_target: 0,
                closed: false,
                abort: false,
                writer_done: false,
                writer_calling: false,
                writer_idle: false,
                writer_lingering: false,
                putters_waiting: 0,
                waiters: 0,
                written: 0,
                retried: 0,
                dead_lettered: 0,
                high_water: 0,
                batches: 0,
                last_error: None,
            }),
            cfg,
            writer_cv: Condvar::new(),
            room_cv: Condvar::new(),
            done_cv: Condvar::new(),
        });
        let for_writer = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(shared.cfg.thread_name.clone())
            .spawn(move || {
                Writer {
                    shared: for_writer,
                    sink,
                }
                .run()
            })
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok(WriteBehindQueue {
            writer_id: handle.thread().id(),
            writer: Mutex::new(Some(handle)),
            shared,
            pid: std::process::id(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    /// The process that created the queue (its writer thread lives only there).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the calling thread is this queue's writer (i.e. we are inside the sink).
    pub fn is_writer_thread(&self) -> bool {
        std::thread::current().id() == self.writer_id
    }

    /// Enqueue without waiting, whatever the policy.
    #[inline]
    pub fn try_put(&self, item: T, size: u64) -> Result<(), PutError<T>> {
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        if st.closed {
            return Err(PutError::Closed(item));
        }
        if !st.has_room(&sh.cfg, 1, size) {
            if sh.cfg.max_bytes.is_some_and(|max| size > max) {
                return Err(PutError::TooLarge(item));
            }
            return Err(PutError::Full(item));
        }
        if st.push(item, size, sh.cfg.max_batch) {
            sh.writer_cv.notify_one();
        }
        Ok(())
    }

    /// Enqueue, waiting for room up to `timeout` (None: forever), whatever the policy.
    pub fn put_wait(
        &self,
        item: T,
        size: u64,
        timeout: Option<Duration>,
    ) -> Result<(), PutError<T>> {
        let sh = &*self.shared;
        if sh.cfg.max_bytes.is_some_and(|max| size > max) {
            return Err(PutError::TooLarge(item));
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = sh.state.lock();
        loop {
            if st.closed {
                return Err(PutError::Closed(item));
            }
            if st.has_room(&sh.cfg, 1, size) {
                if st.push(item, size, sh.cfg.max_batch) {
                    sh.writer_cv.notify_one();
                }
                return Ok(());
            }
            if !sh.wait_for_room(&mut st, timeout.is_some(), deadline) {
                return Err(PutError::Full(item));
            }
        }
    }

    /// Wait up to `timeout` (None: forever) until an item of `size` would fit or the queue is
    /// closed; whether one of those is so. Takes and drops no item, so a caller can wait
    /// without handing over the item (the Python binding waits so, detached, and then puts
    /// with [`try_put`](Self::try_put), which may still find the room taken: then it waits
    /// again).
    pub fn wait_room(&self, size: u64, timeout: Option<Duration>) -> bool {
        let sh = &*self.shared;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = sh.state.lock();
        loop {
            if st.closed || st.has_room(&sh.cfg, 1, size) {
                return true;
            }
            if !sh.wait_for_room(&mut st, timeout.is_some(), deadline) {
                return false;
            }
        }
    }

    /// Enqueue following the configured policy.
    pub fn put(&self, item: T, size: u64, timeout: Option<Duration>) -> Result<(), PutError<T>> {
        match self.try_put(item, size) {
            Err(PutError::Full(item)) if self.shared.cfg.on_full == OnFull::Block => {
                self.put_wait(item, size, timeout)
            }
            other => other,
        }
    }

    /// Enqueue all items (size 0 each) or none, without waiting.
    pub fn try_put_all(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>> {
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        if st.closed {
            return Err(PutError::Closed(items));
        }
        if !st.has_room(&sh.cfg, items.len() as u64, 0) {
            return Err(PutError::Full(items));
        }
        let mut wake = false;
        for item in items {
            wake |= st.push(item, 0, sh.cfg.max_batch);
        }
        if wake {
            sh.writer_cv.notify_one();
        }
        Ok(())
    }

    /// Wait until every item put before this call was written or dead-lettered.
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), FlushError> {
        let target = self.flush_mark()?;
        self.wait_flushed(target, timeout)
    }

    /// First half of [`flush`](Self::flush): the number of items put so far (the flush
    /// target), and the writer is told not to linger until it has delivered them.
    pub fn flush_mark(&self) -> Result<u64, FlushError> {
        if self.is_writer_thread() {
            return Err(FlushError::Reentrant);
        }
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        if st.closed {
            return Err(FlushError::Closed);
        }
        let target = st.enqueued;
        if target > st.flush_target {
            st.flush_target = target;
        }
        if st.writer_lingering && st.completed < target {
            st.writer_lingering = false;
            sh.writer_cv.notify_one();
        }
        Ok(target)
    }

    /// Second half of [`flush`](Self::flush): wait until the first `target` items are done.
    /// Can be called repeatedly with short timeouts (e.g. to check for signals in between).
    pub fn wait_flushed(&self, target: u64, timeout: Option<Duration>) -> Result<(), FlushError> {
        let sh = &*self.shared;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = sh.state.lock();
        st.waiters += 1;
        let result = loop {
            if st.completed >= target {
                break Ok(());
            }
            if timeout.is_some() && deadline.map_or(true, |d| Instant::now() >= d) {
                break Err(FlushError::Timeout {
                    pending: target - st.completed,
                });
            }
            match deadline {
                Some(d) => {
                    sh.done_cv.wait_until(&mut st, d);
                }
                None => sh.done_cv.wait(&mut st),
            }
        };
        st.waiters -= 1;
        result
    }

    /// Stop accepting items and wake the writer so it drains and stops; returns at once.
    pub fn begin_close(&self) {
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        if !st.closed {
            st.closed = true;
            st.writer_idle = false;
            st.writer_lingering = false;
            sh.writer_cv.notify_all();
            sh.room_cv.notify_all();
        }
    }

    /// Wait up to `timeout` (None: forever) for the writer to stop; whether it has.
    pub fn wait_stopped(&self, timeout: Option<Duration>) -> bool {
        let sh = &*self.shared;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = sh.state.lock();
        st.waiters += 1;
        while !st.writer_done {
            if timeout.is_some() && deadline.map_or(true, |d| Instant::now() >= d) {
                break;
            }
            match deadline {
                Some(d) => {
                    sh.done_cv.wait_until(&mut st, d);
                }
                None => sh.done_cv.wait(&mut st),
            }
        }
        st.waiters -= 1;
        st.writer_done
    }

    /// Stop accepting items, drain everything, stop the writer. Idempotent.
    ///
    /// With a timeout, when it passes the writer is told to abort: after its current sink call
    /// it dead-letters every undelivered item ([`DeadReason::Undelivered`]) and stops. This
    /// returns once that is done, or at once if the writer is inside a sink call.
    pub fn close(&self, timeout: Option<Duration>) -> Result<(), CloseError> {
        if self.is_writer_thread() {
            return Err(CloseError::Reentrant);
        }
        self.begin_close();
        let mut result = Ok(());
        if !self.wait_stopped(timeout) {
            let sh = &*self.shared;
            let mut st = sh.state.lock();
            let undelivered = st.depth();
            if undelivered > 0 {
                result = Err(CloseError::Timeout { undelivered });
            }
            st.abort = true;
            sh.writer_cv.notify_all();
            st.waiters += 1;
            while !st.writer_done && !st.writer_calling {
                sh.done_cv.wait(&mut st);
            }
            st.waiters -= 1;
        }
        if self.shared.state.lock().writer_done {
            if let Some(handle) = self.writer.lock().take() {
                // The writer has finished its work and touches nothing after `writer_done`.
                let _ = handle.join();
            }
        }
        result
    }

    /// Close at once, handing the undelivered items to the caller (for interpreter exit, where
    /// the caller, not the writer, must dead-letter them before it returns).
    ///
    /// Stops accepting items and tells the writer to stop after its current sink call (it
    /// starts no new one); takes every queued item the writer has not taken, in enqueue order,
    /// and counts it as dead-lettered: the caller must hand them to a dead letter. The batch in
    /// flight, if any, stays with the writer (written, or dead-lettered by it).
    pub fn abort_take(&self) -> Vec<T> {
        let sh = &*self.shared;
        let mut st = sh.state.lock();
        st.closed = true;
        st.abort = true;
        st.writer_idle = false;
        st.writer_lingering = false;
        let taken: Vec<Entry<T>> = st.queue.drain(..).collect();
        let n = taken.len() as u64;
        st.bytes -= taken.iter().map(|e| e.size).sum::<u64>();
        st.dead_lettered += n;
        if st.in_flight > 0 {
            st.parked += n; // completed once the batch ahead of them is
        } else {
            sh.finish(&mut st, n);
        }
        sh.writer_cv.notify_all();
        sh.room_cv.notify_all();
        drop(st);
        taken.into_iter().map(|e| e.item).collect()
    }

    /// Items the writer holds in a batch in flight (0 when it holds none).
    pub fn in_flight(&self) -> u64 {
        self.shared.state.lock().in_flight
    }

    /// Run `f` with whether the writer is inside a sink call right now; the writer cannot
    /// enter or leave one while `f` runs.
    pub fn with_writer_calling<R>(&self, f: impl FnOnce(bool) -> R) -> R {
        let st = self.shared.state.lock();
        f(st.writer_calling)
    }

    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }

    /// Whether the writer thread has stopped (after close, or when its sink went away).
    pub fn is_stopped(&self) -> bool {
        self.shared.state.lock().writer_done
    }

    /// Items enqueued and not yet written or dead-lettered.
    pub fn len(&self) -> usize {
        self.shared.state.lock().depth() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> Stats {
        let st = self.shared.state.lock();
        Stats {
            enqueued: st.enqueued,
            written: st.written,
            retried: st.retried,
            dead_lettered: st.dead_lettered,
            depth: st.depth(),
            bytes_queued: st.bytes,
            high_water: st.high_water,
            batches: st.batches,
            last_error: st.last_error.clone(),
        }
    }
}

impl<T: Send + 'static> Drop for WriteBehindQueue<T> {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // A forked child: the writer thread does not exist here and the lock may have
            // been held by a parent thread at fork time. Touch nothing.
            if let Some(handle) = self.writer.get_mut().take() {
                std::mem::forget(handle);
            }
            return;
        }
        self.begin_close();
    }
}

// ------------------------------------------------------------------------------------------
// The writer thread
// ------------------------------------------------------------------------------------------

/// Sink calls made in one [`Sink::session`] at most (bounds how long it is held).
const SESSION_BATCHES: usize = 16;

enum Outcome<E> {
    Written,
    Dead(DeadReason<E>),
    Gone,
}

type CallResult<E> = std::thread::Result<Result<(), SinkError<E>>>;

/// How a session left its current batch.
enum Left<E> {
    /// Every batch it took was written.
    Done,
    /// `close` ran out of time before the batch was handed over.
    Aborted,
    /// The first attempt of the batch failed: retry outside the session.
    Failed(CallResult<E>),
}

struct Writer<T, S> {
    shared: Arc<Shared<T>>,
    sink: S,
}

/// Move up to `max` items from the queue into `batch` and account them as in flight.
fn take_into<T>(st: &mut State<T>, batch: &mut Vec<T>, max: usize) {
    let take = st.queue.len().min(max);
    let mut bytes = 0;
    for e in st.queue.drain(..take) {
        bytes += e.size;
        batch.push(e.item);
    }
    st.in_flight = take as u64;
    st.in_flight_bytes = bytes;
}

/// One sink call, marked so `close` knows the writer is inside the sink; None if aborted.
fn call<T, S: Sink<T>>(
    sh: &Shared<T>,
    sink: &mut S,
    batch: &mut Vec<T>,
) -> Option<CallResult<S::Error>> {
    {
        let mut st = sh.state.lock();
        if st.abort {
            return None;
        }
        st.writer_calling = true;
    }
    let result = catch_unwind(AssertUnwindSafe(|| sink.write(batch)));
    sh.state.lock().writer_calling = false;
    Some(result)
}

impl<T: Send + 'static, S: Sink<T>> Writer<T, S> {
    fn run(mut self) {
        let sh = Arc::clone(&self.shared);
        let cfg = &sh.cfg;
        let mut batch: Vec<T> = Vec::with_capacity(cfg.max_batch.min(cfg.max_items));
        loop {
            let mut st = sh.state.lock();
            let mut linger_until: Option<Instant> = None;
            loop {
                if st.abort {
                    drop(st);
                    self.abort_rest();
                    return;
                }
                let n = st.queue.len();
                if n == 0 {
                    if st.closed {
                        st.writer_done = true;
                        sh.done_cv.notify_all();
                        return;
                    }
                    linger_until = None;
                    st.writer_idle = true;
                    sh.writer_cv.wait(&mut st);
                    st.writer_idle = false;
                    continue;
                }
                if n >= cfg.max_batch
                    || st.closed
                    || st.flush_target > st.completed
                    || cfg.linger.is_zero()
                {
                    break;
                }
                let now = Instant::now();
                let until = *linger_until.get_or_insert_with(|| now + cfg.linger);
                if now >= until {
                    break;
                }
                st.writer_lingering = true;
                sh.writer_cv.wait_until(&mut st, until);
                st.writer_lingering = false;
            }
            take_into(&mut st, &mut batch, cfg.max_batch);
            drop(st);

            // Write this batch, and the batches ready behind it, in one sink session (for
            // Python: one attach to the interpreter instead of one per batch).
            let mut left = Left::Done;
            let shared = &*sh;
            let mut body = |sink: &mut S| {
                for round in 1..=SESSION_BATCHES {
                    let n = batch.len() as u64;
                    match call(shared, sink, &mut batch) {
                        None => {
                            left = Left::Aborted;
                            return;
                        }
                        Some(Ok(Ok(()))) => {}
                        Some(other) => {
                            left = Left::Failed(other);
                            return;
                        }
                    }
                    batch.clear();
                    let mut st = shared.state.lock();
                    st.written += n;
                    st.batches += 1;
                    shared.settle(&mut st, n);
                    let ready = st.queue.len() >= cfg.max_batch
                        || (!st.queue.is_empty() && (st.closed || st.flush_target > st.completed));
                    if round == SESSION_BATCHES || st.abort || !ready {
                        return;
                    }
                    take_into(&mut st, &mut batch, cfg.max_batch);
                }
            };
            self.sink.session(&mut body);

            // The sink may take the items on success: count them first.
            let n = batch.len() as u64;
            let outcome = match left {
                Left::Done => continue,
                Left::Aborted => Outcome::Dead(DeadReason::Undelivered(None)),
                Left::Failed(result) => self.deliver(&mut batch, result),
            };
            match outcome {
                Outcome::Written => {
                    batch.clear();
                    let mut st = sh.state.lock();
                    st.written += n;
                    st.batches += 1;
                    sh.settle(&mut st, n);
                }
                Outcome::Dead(reason) => {
                    let items = std::mem::replace(&mut batch, Vec::with_capacity(n as usize));
                    self.sink.dead_letter(items, reason);
                    let mut st = sh.state.lock();
                    st.dead_lettered += n;
                    sh.settle(&mut st, n);
                }
                Outcome::Gone => {
                    self.gone(&mut batch);
                    return;
                }
            }
        }
    }

    /// A batch whose first sink call did not succeed: retried with backoff until written or
    /// given up. `result` is the outcome of the latest call.
    fn deliver(
        &mut self,
        batch: &mut Vec<T>,
        mut result: CallResult<S::Error>,
    ) -> Outcome<S::Error> {
        let sh = Arc::clone(&self.shared);
        let cfg = &sh.cfg;
        let mut attempt: u32 = 0;
        loop {
            let mut st = sh.state.lock();
            let err = match result {
                Ok(Ok(())) => return Outcome::Written,
                Ok(Err(SinkError::Gone)) => return Outcome::Gone,
                Ok(Err(SinkError::Failed(e))) => e,
                Ok(Err(SinkError::Permanent(e))) => {
                    st.last_error = Some(e.to_string());
                    return Outcome::Dead(DeadReason::Failed(e));
                }
                Err(payload) => {
                    let msg = panic_message(payload.as_ref());
                    st.last_error = Some(format!("sink panicked: {msg}"));
                    return Outcome::Dead(DeadReason::Panicked(msg));
                }
            };
            st.last_error = Some(err.to_string());
            if st.abort {
                sh.done_cv.notify_all();
                return Outcome::Dead(DeadReason::Undelivered(Some(err)));
            }
            if attempt >= cfg.max_retries {
                return Outcome::Dead(DeadReason::Failed(err));
            }
            attempt += 1;
            st.retried += 1;
            let until = Instant::now() + backoff(cfg, attempt);
            while !st.abort {
                if sh.writer_cv.wait_until(&mut st, until).timed_out() {
                    break;
                }
            }
            if st.abort {
                return Outcome::Dead(DeadReason::Undelivered(Some(err)));
            }
            drop(st);
            result = match call(&sh, &mut self.sink, batch) {
                Some(r) => r,
                None => return Outcome::Dead(DeadReason::Undelivered(Some(err))),
            };
        }
    }

    /// `close` ran out of time: dead-letter everything still queued, then stop.
    fn abort_rest(&mut self) {
        let sh = Arc::clone(&self.shared);
        loop {
            let mut st = sh.state.lock();
            if st.queue.is_empty() {
                st.writer_done = true;
                sh.done_cv.notify_all();
                return;
            }
            let take = st.queue.len().min(sh.cfg.max_batch);
            let mut items = Vec::with_capacity(take);
            take_into(&mut st, &mut items, take);
            drop(st);
            self.sink.dead_letter(items, DeadReason::Undelivered(None));
            let mut st = sh.state.lock();
            st.dead_lettered += take as u64;
            sh.settle(&mut st, take as u64);
        }
    }

    /// The sink can never run again: count everything as dead and stop without handing
    /// anything over (items are dropped here, on the writer thread).
    fn gone(&mut self, batch: &mut Vec<T>) {
        let sh = &self.shared;
        let mut st = sh.state.lock();
        let rest: Vec<Entry<T>> = st.queue.drain(..).collect();
        let n = st.in_flight + rest.len() as u64;
        let parked = std::mem::take(&mut st.parked);
        st.bytes = 0;
        st.in_flight = 0;
        st.in_flight_bytes = 0;
        st.dead_lettered += n;
        st.closed = true;
        st.last_error = Some(format!(
            "writer stopped: the sink can no longer run (interpreter shutting down); {n} items not delivered"
        ));
        st.writer_done = true;
        sh.finish(&mut st, n + parked);
        sh.done_cv.notify_all();
        sh.room_cv.notify_all();
        drop(st);
        // Dropped outside the lock.
        batch.clear();
        drop(rest);
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random.
fn backoff(cfg: &Config, attempt: u32) -> Duration {
    let base = cfg.backoff_initial.as_nanos() as u64;
    let cap = cfg.backoff_max.as_nanos() as u64;
    let exp = base.saturating_mul(1u64 << (attempt - 1).min(40)).min(cap);
    let half = exp / 2;
    Duration::from_nanos(half + fastrand::u64(0..=exp - half))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    /// What the test sink saw, shared with the test.
    #[derive(Default)]
    struct Log {
        batches: Vec<Vec<u32>>,
        dead: Vec<(Vec<u32>, String)>,
    }

    #[derive(Clone, Default)]
    struct Probe {
        log: Arc<Mutex<Log>>,
        /// Fail this many calls, then succeed.
        fail_next: Arc<AtomicU32>,
        /// While true, write() blocks.
        gate: Arc<(Mutex<bool>, Condvar)>,
        /// Set to make write() call flush/close on this queue.
        reenter: Arc<OnceLock<Arc<WriteBehindQueue<u32>>>>,
        reentry: Arc<Mutex<Vec<String>>>,
        panic_on: Option<u32>,
        /// Failures are reported as `SinkError::Permanent`.
        permanent: bool,
        /// Sink calls made in each session.
        sessions: Arc<Mutex<Vec<usize>>>,
    }

    impl Probe {
        fn close_gate(&self) {
            *self.gate.0.lock() = true;
        }
        fn open_gate(&self) {
            *self.gate.0.lock() = false;
            self.gate.1.notify_all();
        }
        fn written(&self) -> Vec<u32> {
            self.log.lock().batches.concat()
        }
    }

    impl Sink<u32> for Probe {
        type Error = String;
        fn write(&mut self, batch: &mut Vec<u32>) -> Result<(), SinkError<String>> {
            {
                let mut closed = self.gate.0.lock();
                while *closed {
                    self.gate.1.wait(&mut closed);
                }
            }
            if let Some(q) = self.reenter.get() {
                let mut r = self.reentry.lock();
                r.push(format!("{:?}", q.flush(None)));
                r.push(format!("{:?}", q.close(None)));
            }
            if self.panic_on.is_some_and(|p| batch.contains(&p)) {
                panic!("boom");
            }
            if self.fail_next.load(Ordering::SeqCst) > 0 {
                self.fail_next.fetch_sub(1, Ordering::SeqCst);
                if self.permanent {
                    return Err(SinkError::Permanent("bad batch".to_string()));
                }
                return Err(SinkError::Failed("sink down".to_string()));
            }
            self.log.lock().batches.push(std::mem::take(batch));
            Ok(())
        }
        fn dead_letter(&mut self, batch: Vec<u32>, reason: DeadReason<String>) {
            let why = match reason {
                DeadReason::Failed(e) => format!("failed: {e}"),
                DeadReason::Panicked(m) => format!("panicked: {m}"),
                DeadReason::Undelivered(e) => format!("undelivered: {e:?}"),
            };
            self.log.lock().dead.push((batch, why));
        }
        fn session(&mut self, f: &mut dyn FnMut(&mut Self)) {
            let before = self.log.lock().batches.len();
            f(self);
            let after = self.log.lock().batches.len();
            self.sessions.lock().push(after - before);
        }
    }

    fn cfg(max_items: usize, max_batch: usize, linger_ms: u64) -> Config {
        Config {
            max_items,
            max_batch,
            linger: Duration::from_millis(linger_ms),
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            ..Config::default()
        }
    }

    const LONG: Option<Duration> = Some(Duration::from_secs(30));

    #[test]
    fn delivers_everything_in_order_in_bounded_batches() {
        let probe = Probe::default();
        let q = WriteBehindQueue::new(cfg(100, 7, 1), probe.clone()).unwrap();
        for i in 0..1000 {
            q.put(i, 0, None).unwrap();
        }
        q.flush(LONG).unwrap();
        assert_eq!(probe.written(), (0..1000).collect::<Vec<_>>());
        assert!(probe
            .log
            .lock()
            .batches
            .iter()
            .all(|b| !b.is_empty() && b.len() <= 7));
        let s = q.stats();
        assert_eq!(
            (s.enqueued, s.written, s.dead_lettered, s.depth),
            (1000, 1000, 0, 0)
        );
        assert_eq!(s.batches as usize, probe.log.lock().batches.len());
        assert!(s.high_water <= 100);
        q.close(LONG).unwrap();
    }

    #[test]
    fn flush_cuts_a_long_linger_short_and_the_writer_keeps_running() {
        let probe = Probe::default();
        let q = WriteBehindQueue::new(cfg(100, 1000, 3_600_000), probe.clone()).unwrap();
        q.put(1, 0, None).unwrap();
        q.put(2, 0, None).unwrap();
        q.flush(LONG).unwrap();
        assert_eq!(probe.written(), vec![1, 2]);
        q.put(3, 0, None).unwrap();
        q.flush(LONG).unwrap();
        assert_eq!(probe.written(), vec![1, 2, 3]);
        assert!(!q.is_closed());
    }

    #[test]
    fn ready_batches_share_one_session_up_to_its_bound() {
        let probe = Probe::default();
        probe.close_gate();
        let q = WriteBehindQueue::new(cfg(1000, 10, 3_600_000), probe.clone()).unwrap();
        q.put(0, 0, None).unwrap();
        q.flush_mark().unwrap(); // the writer takes [0] at once and waits at the gate
        while q.shared.state.lock().in_flight != 1 {
            std::thread::yield_now();
        }
        for i in 1..=300 {
            q.put(i, 0, None).unwrap(); // 30 full batches wait behind it
        }
        probe.open_gate();
        q.close(LONG).unwrap(); // joins the writer: every session has been recorded
        assert_eq!(probe.written(), (0..=300).collect::<Vec<_>>());
        let sessions = probe.sessions.lock().clone();
        assert_eq!(sessions.iter().sum::<usize>(), 31);
        assert!(sessions.iter().all(|&n| n <= SESSION_BATCHES));
        assert!(
            sessions.len() < 31,
            "full batches behind each other share sessions"
        );
    }

    #[test]
    fn flush_times_out_while_the_sink_is_stuck_and_counts_pending() {
        let probe = Probe::default();
        probe.close_gate();
        let q = WriteBehindQueue::new(cfg(100, 1000, 0), probe.clone()).unwrap();
        for i in 0..5 {
            q.put(i, 0, None).unwrap();
        }
        let err = q.flush(Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(err, FlushError::Timeout { pending: 5 });
        probe.open_gate();
        q.flush(LONG).unwrap();
        assert_eq!(probe.written(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn close_wakes_a_lingering_writer_drains_and_is_idempotent() {
        let probe = Probe::default();
        let q = WriteBehindQueue::new(cfg(100, 1000, 3_600_000), probe.clone()).unwrap();
        q.put(1, 0, None).unwrap();
        q.close(None).unwrap();
        assert_eq!(probe.written(), vec![1]);
        assert!(q.is_stopped());
        q.close(None).unwrap();
        assert_eq!(q.put(2, 0, None), Err(PutError::Closed(2)));
        assert_eq!(q.flush(None), Err(FlushError::Closed));
    }

    #[test]
    fn transient_failures_are_retried_then_written() {
        let probe = Probe::default();
        probe.fail_next.store(2, Ordering::SeqCst);
        let q = WriteBehindQueue::new(cfg(100, 1000, 0), probe.clone()).unwrap();
        q.put(9, 0, None).unwrap();
        q.flush(LONG).unwrap();
        let s = q.stats();
        assert_eq!((s.written, s.retried, s.dead_lettered), (1, 2, 0));
        assert_eq!(s.last_error.as_deref(), Some("sink down"));
        assert_eq!(probe.written(), vec![9]);
    }

    #[test]
    fn permanent_failures_are_dead_lettered_never_written() {
        let probe = Probe::default();
        probe.fail_next.store(u32::MAX, Ordering::SeqCst);
        let mut c = cfg(100, 3, 0);
        c.max_retries = 2;
        let q = WriteBehindQueue::new(c, probe.clone()).unwrap();
        for i in 0..6 {
            q.put(i, 0, None).unwrap();
        }
        q.flush(LONG).unwrap();
        let s = q.stats();
        assert_eq!((s.written, s.dead_lettered, s.depth), (0, 6, 0));
        assert_eq!(s.retried % 2, 0);
        let log = probe.log.lock();
        let dead: Vec<u32> = log.dead.iter().flat_map(|(b, _)| b.clone()).collect();
        assert_eq!(dead, (0..6).collect::<Vec<_>>());
        assert!(log.dead.iter().all(|(_, why)| why == "failed: sink down"));
        assert!(log.batches.is_empty());
    }

    #[test]
    fn a_permanent_failure_is_dead_lettered_without_retries() {
        let probe = Probe {
            permanent: true,
            ..Probe::default()
        };
        probe.fail_next.store(1, Ordering::SeqCst);
        let mut c = cfg(100, 1, 0);
        c.max_retries = 5;
        c.backoff_initial = Duration::from_secs(30); // a retry would outlast the flush below
        c.backoff_max = Duration::from_secs(30);
        let q = WriteBehindQueue::new(c, probe.clone()).unwrap();
        for i in 0..3 {
            q.put(i, 0, None).unwrap();
        }
        q.flush(Some(Duration::from_secs(20))).unwrap();
        let s = q.stats();
        assert_eq!((s.written, s.dead_lettered, s.retried), (2, 1, 0));
        assert_eq!(probe.written(), vec![1, 2]);
        let log = probe.log.lock();
        assert_eq!(log.dead, vec![(vec![0], "failed: bad batch".to_string())]);
    }

    #[test]
    fn a_panicking_sink_dead_letters_its_batch_and_the_writer_goes_on() {
        let probe = Probe {
            panic_on: Some(3),
            ..Probe::default()
        };
        let q = WriteBehindQueue::new(cfg(100, 1, 0), probe.clone()).unwrap();
        for i in 0..5 {
            q.put(i, 0, None).unwrap();
        }
        q.flush(LONG).unwrap();
        assert_eq!(probe.written(), vec![0, 1, 2, 4]);
        assert_eq!(
            probe.log.lock().dead,
            vec![(vec![3], "panicked: boom".to_string())]
        );
    }

    #[test]
    fn close_with_timeout_cuts_a_long_backoff_and_dead_letters_the_rest() {
        let probe = Probe::default();
        probe.fail_next.store(u32::MAX, Ordering::SeqCst);
        let mut c = cfg(100, 2, 0);
        c.backoff_initial = Duration::from_secs(3600);
        c.backoff_max = Duration::from_secs(3600);
        let q = WriteBehindQueue::new(c, probe.clone()).unwrap();
        for i in 0..5 {
            q.put(i, 0, None).unwrap();
        }
        while q.stats().retried == 0 {
            std::thread::yield_now(); // until the first batch failed and the writer sleeps
        }
        let err = q.close(Some(Duration::from_millis(50))).unwrap_err();
        assert_eq!(err, CloseError::Timeout { undelivered: 5 });
        // The writer was sleeping, not in the sink: close waited for the dead letters.
        assert!(q.is_stopped());
        let s = q.stats();
        assert_eq!((s.written, s.dead_lettered, s.depth), (0, 5, 0));
        let log = probe.log.lock();
        let dead: Vec<u32> = log.dead.iter().flat_map(|(b, _)| b.clone()).collect();
        assert_eq!(dead, vec![0, 1, 2, 3, 4]);
        assert_eq!(log.dead[0].1, "undelivered: Some(\"sink down\")");
        assert_eq!(log.dead[1].1, "undelivered: None");
    }

    #[test]
    fn close_with_timeout_returns_while_the_sink_is_stuck() {
        let probe = Probe::default();
        probe.close_gate();
        let q = WriteBehindQueue::new(cfg(100, 1, 0), probe.clone()).unwrap();
        q.put(1, 0, None).unwrap();
        while !q.shared.state.lock().writer_calling {
            std::thread::yield_now(); // until [1] is inside the sink, at the gate
        }
        q.put(2, 0, None).unwrap();
        let err = q.close(Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(err, CloseError::Timeout { undelivered: 2 });
        probe.open_gate();
        q.close(LONG).unwrap();
        // The batch in the sink was accepted; the queued one was dead-lettered.
        assert_eq!(probe.written(), vec![1]);
        assert_eq!(probe.log.lock().dead[0].0, vec![2]);
        let s = q.stats();
        assert_eq!((s.written, s.dead_lettered), (1, 1));
    }

    #[test]
    fn abort_take_hands_a_lingering_queue_to_the_caller_and_the_writer_stops() {
        let probe = Probe::default();
        let q = WriteBehindQueue::new(cfg(100, 1000, 3_600_000), probe.clone()).unwrap();
        for i in 1..=3 {
            q.put(i, 10, None).unwrap();
        }
        assert_eq!(q.abort_take(), vec![1, 2, 3]);
        assert!(q.wait_stopped(LONG));
        let s = q.stats();
        assert_eq!(
            (s.written, s.dead_lettered, s.depth, s.bytes_queued),
            (0, 3, 0, 0)
        );
        assert!(probe.written().is_empty());
        assert!(
            probe.log.lock().dead.is_empty(),
            "the caller dead-letters them"
        );
        assert_eq!(q.put(4, 0, None), Err(PutError::Closed(4)));
        assert_eq!(q.abort_take(), Vec::<u32>::new());
        q.close(None).unwrap();
    }

    #[test]
    fn abort_take_leaves_the_batch_in_flight_to_the_writer_and_completes_in_order() {
        let probe = Probe::default();
        probe.close_gate();
        let q = WriteBehindQueue::new(cfg(100, 1, 0), probe.clone()).unwrap();
        q.put(0, 0, None).unwrap();
        while !q.with_writer_calling(|calling| calling) {
            std::thread::yield_now(); // until [0] is inside the sink, at the gate
        }
        q.put(1, 0, None).unwrap();
        q.put(2, 0, None).unwrap();
        assert_eq!(q.abort_take(), vec![1, 2]);
        assert_eq!(q.in_flight(), 1);
        // Items 1 and 2 are done, but not before the batch ahead of them.
        assert_eq!(
            q.wait_flushed(3, Some(Duration::from_millis(20))),
            Err(FlushError::Timeout { pending: 3 })
        );
        assert!(!q.is_stopped());
        probe.open_gate();
        q.wait_flushed(3, LONG).unwrap();
        assert!(q.wait_stopped(LONG));
        assert_eq!(probe.written(), vec![0]);
        let s = q.stats();
        assert_eq!((s.written, s.dead_lettered, s.depth), (1, 2, 0));
        assert_eq!(q.in_flight(), 0);
        q.close(None).unwrap();
    }

    #[test]
    fn raise_policy_refuses_at_once_and_bytes_bound_too() {
        let probe = Probe::default();
        probe.close_gate();
        let mut c = cfg(3, 1000, 0);
        c.on_full = OnFull::Raise;
        c.max_bytes = Some(100);
        let q = WriteBehindQueue::new(c, probe.clone()).unwrap();
        q.put(1, 60, None).unwrap();
        assert_eq!(q.put(2, 50, None), Err(PutError::Full(2)));
        assert_eq!(q.put(2, 101, None), Err(PutError::TooLarge(2)));
        q.put(2, 40, None).unwrap();
        q.put(3, 0, None).unwrap();
        assert_eq!(q.put(4, 0, None), Err(PutError::Full(4)));
        assert_eq!(q.try_put_all(vec![4, 5]), Err(PutError::Full(vec![4, 5])));
        let s = q.stats();
        assert_eq!((s.depth, s.bytes_queued, s.high_water), (3, 100, 3));
        probe.open_gate();
        q.flush(LONG).unwrap();
        q.try_put_all(vec![4, 5]).unwrap();
        q.close(LONG).unwrap();
        assert_eq!(probe.written(), vec![1, 2, 3, 4, 5]);
        assert_eq!(q.stats().bytes_queued, 0);
    }

    #[test]
    fn block_policy_waits_for_room_or_times_out() {
        let probe = Probe::default();
        probe.close_gate();
        let q = Arc::new(WriteBehindQueue::new(cfg(2, 1000, 0), probe.clone()).unwrap());
        q.put(1, 0, None).unwrap();
        q.put(2, 0, None).unwrap();
        assert_eq!(
            q.put(3, 0, Some(Duration::from_millis(10))),
            Err(PutError::Full(3))
        );
        let q2 = Arc::clone(&q);
        let blocked = std::thread::spawn(move || q2.put(3, 0, None));
        probe.open_gate();
        assert_eq!(blocked.join().unwrap(), Ok(()));
        q.close(LONG).unwrap();
        assert_eq!(probe.written(), vec![1, 2, 3]);
    }

    #[test]
    fn wait_room_waits_for_room_or_close_and_takes_no_item() {
        let probe = Probe::default();
        probe.close_gate();
        let q = Arc::new(WriteBehindQueue::new(cfg(1, 1000, 0), probe.clone()).unwrap());
        q.put(1, 0, None).unwrap();
        assert!(!q.wait_room(0, Some(Duration::from_millis(10))));
        let q2 = Arc::clone(&q);
        let waiter = std::thread::spawn(move || q2.wait_room(0, None));
        probe.open_gate();
        assert!(waiter.join().unwrap());
        q.flush(LONG).unwrap();
        assert_eq!(q.len(), 0); // waiting put nothing in
        probe.close_gate();
        q.put(2, 0, None).unwrap();
        let q3 = Arc::clone(&q);
        let waiter = std::thread::spawn(move || q3.wait_room(0, None));
        while q.shared.state.lock().putters_waiting == 0 {
            std::thread::yield_now();
        }
        q.begin_close(); // closed: there will never be room, and waiting is over
        assert!(waiter.join().unwrap());
        probe.open_gate();
        q.close(LONG).unwrap();
        assert_eq!(probe.written(), vec![1, 2]);
    }

    #[test]
    fn close_releases_blocked_producers_with_closed() {
        let probe = Probe::default();
        probe.close_gate();
        let q = Arc::new(WriteBehindQueue::new(cfg(1, 1000, 0), probe.clone()).unwrap());
        q.put(1, 0, None).unwrap();
        let q2 = Arc::clone(&q);
        let blocked = std::thread::spawn(move || q2.put(2, 0, None));
        while q.shared.state.lock().putters_waiting == 0 {
            std::thread::yield_now();
        }
        let q3 = Arc::clone(&q);
        let closer = std::thread::spawn(move || q3.close(None));
        assert_eq!(blocked.join().unwrap(), Err(PutError::Closed(2)));
        probe.open_gate();
        assert_eq!(closer.join().unwrap(), Ok(()));
    }

    #[test]
    fn flush_and_close_from_inside_the_sink_are_refused() {
        let probe = Probe::default();
        let q = Arc::new(WriteBehindQueue::new(cfg(10, 10, 0), probe.clone()).unwrap());
        assert!(probe.reenter.set(Arc::clone(&q)).is_ok());
        q.put(1, 0, None).unwrap();
        q.flush(LONG).unwrap();
        assert_eq!(
            *probe.reentry.lock(),
            vec!["Err(Reentrant)", "Err(Reentrant)"]
        );
        assert!(!q.is_writer_thread());
        q.close(LONG).unwrap();
    }

    #[test]
    fn producers_on_many_threads_keep_their_order_and_exact_totals() {
        let probe = Probe::default();
        let q = Arc::new(WriteBehindQueue::new(cfg(64, 16, 1), probe.clone()).unwrap());
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        q.put(t * 100_000 + i, 1, None).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        q.close(LONG).unwrap();
        let all = probe.written();
        assert_eq!(all.len(), 20_000);
        for t in 0..4u32 {
            let mine: Vec<u32> = all.iter().copied().filter(|v| v / 100_000 == t).collect();
            assert_eq!(mine, (0..5000).map(|i| t * 100_000 + i).collect::<Vec<_>>());
        }
        let s = q.stats();
        assert_eq!(
            (s.enqueued, s.written, s.depth, s.bytes_queued),
            (20_000, 20_000, 0, 0)
        );
        assert!(s.high_water <= 64);
    }

    #[test]
    fn a_gone_sink_stops_the_writer_and_counts_what_it_abandons() {
        struct GoneSink;
        impl Sink<u32> for GoneSink {
            type Error = String;
            fn write(&mut self, _: &mut Vec<u32>) -> Result<(), SinkError<String>> {
                Err(SinkError::Gone)
            }
            fn dead_letter(&mut self, _: Vec<u32>, _: DeadReason<String>) {
                unreachable!("a gone sink is never called again");
            }
        }
        let q = WriteBehindQueue::new(cfg(10, 1, 0), GoneSink).unwrap();
        q.put(1, 0, None).unwrap();
        // The writer may already have stopped (and closed the queue) when flush looks.
        assert!(matches!(q.flush(LONG), Ok(()) | Err(FlushError::Closed)));
        assert!(q.wait_stopped(LONG));
        assert!(matches!(q.put(2, 0, None), Err(PutError::Closed(2))));
        assert_eq!(q.stats().dead_lettered, 1);
        q.close(None).unwrap();
    }

    #[test]
    fn dropping_the_handle_lets_the_writer_drain_in_the_background() {
        let probe = Probe::default();
        let q = WriteBehindQueue::new(cfg(10, 1000, 3_600_000), probe.clone()).unwrap();
        q.put(7, 0, None).unwrap();
        drop(q);
        for _ in 0..10_000 {
            if !probe.written().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(probe.written(), vec![7]);
    }

    #[test]
    fn invalid_configs_are_refused() {
        for c in [
            Config {
                max_items: 0,
                ..Config::default()
            },
            Config {
                max_batch: 0,
                ..Config::default()
            },
            Config {
                max_bytes: Some(0),
                ..Config::default()
            },
            Config {
                backoff_max: Duration::ZERO,
                ..Config::default()
            },
        ] {
            assert!(WriteBehindQueue::<u32>::new(c, Probe::default()).is_err());
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_the_cap() {
        let c = cfg(1, 1, 0);
        for attempt in 1..50 {
            let d = backoff(&c, attempt);
            let exp =
                (Duration::from_millis(1) * 2u32.pow((attempt - 1).min(10))).min(c.backoff_max);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
    }
}
