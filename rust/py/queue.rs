//! Python bindings of the write-behind queue ([`crate::queue`]): `WriteBehindQueue`, `QueueStats`.
//!
//! The binding supplies the [`Sink`] that calls Python: the writer thread attaches to the
//! interpreter only to build the batch list and call `sink(batch)` (or `dead_letter`), and
//! never once the interpreter is shutting down. Every blocking wait of a Python caller runs
//! detached from the interpreter, in slices, checking for signals in between; it re-attaches
//! without running Python code first ([`quiet_wait`]), so no finalizer swallows a Ctrl-C.
//!
//! Interpreter exit: one `atexit` hook (registered at import) lets every live queue drain,
//! bounded by its `exit_timeout_s` (not at all for `flush_at_exit=False`), then takes what is
//! left out of the writer's reach and dead-letters it itself, on its own thread, before it
//! returns (it never relies on a writer being scheduled in time to do it); only a batch still
//! inside a sink call stays with its writer, which gets a bounded grace to finish it. Then the
//! hook raises a flag after which no writer attaches any more; `atexit` hooks run before the
//! interpreter starts finalizing, so a writer never blocks trying to attach to a dying one.
//!
//! Fork: the queue records its creator's pid; `os.register_at_fork` refreshes the cached pid in
//! the child, where every use of an inherited queue raises `ForkedError` (its writer thread
//! does not exist there, and its lock may have been held at fork time).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::errors::ReentrantFlush;
use super::errors::{guard, FlushTimeout, ForkedError, InternalError, QueueClosed, QueueFull};
use super::quiet_wait::quiet_wait;
use crate::queue::{
    CloseError, Config, DeadReason, FlushError, OnFull, PutError, Sink, SinkError, Stats,
    WriteBehindQueue as Core,
};

type Item = Py<PyAny>;
type CoreQueue = Core<Item>;

/// How often a blocked Python caller wakes to check for signals (Ctrl-C).
const SLICE: Duration = Duration::from_millis(100);

/// Set once the exit hook has closed every queue: from then on no writer attaches.
static EXITED: AtomicBool = AtomicBool::new(false);
/// This process's id, refreshed in a child after `os.fork()`.
static CURRENT_PID: AtomicU32 = AtomicU32::new(0);
/// Live queues, closed by the exit hook (entries whose writer stopped are pruned).
static LIVE: Mutex<LiveSet> = Mutex::new(LiveSet {
    exiting: false,
    queues: Vec::new(),
});
/// How long the exit hook waits for a batch still in flight once the exit timeouts passed
/// (see `_close_queues_at_exit`).
const EXIT_GRACE: Duration = Duration::from_secs(1);

struct LiveSet {
    /// The exit hook has taken the queues: no new queue may start (it would never be closed).
    exiting: bool,
    queues: Vec<Live>,
}

struct Live {
    queue: Arc<CoreQueue>,
    /// How long the exit hook lets it drain (zero for `flush_at_exit=False`).
    exit_timeout: Duration,
    /// `threading.get_ident()` of the writer thread once it has attached (0 before).
    writer_ident: Arc<AtomicU64>,
    /// Shared with the writer's sink, so the exit hook can dead-letter on its own thread.
    dead: Arc<DeadLetter>,
}

// ------------------------------------------------------------------------------------------
// The sink that calls Python
// ------------------------------------------------------------------------------------------

/// A sink failure: the Python exception, and its text taken while attached.
pub struct PyFailure {
    err: PyErr,
    text: String,
}

impl std::fmt::Display for PyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

struct PySink {
    sink: Py<PyAny>,
    /// `retry_if(exc)`: False makes a failure permanent (dead-lettered without retries).
    retry_if: Option<Py<PyAny>>,
    dead: Arc<DeadLetter>,
    ident: Arc<AtomicU64>,
    /// `flush_at_exit` with a non-zero `exit_timeout_s` (for the reason of a dead letter).
    flush_at_exit: bool,
}

/// Where dead batches go: logged at error level, then given to the `dead_letter` callable.
struct DeadLetter {
    name: String,
    callback: Option<Py<PyAny>>,
    logger: Py<PyAny>,
}

/// Why items were not delivered, for the log and the `FlushTimeout` message.
#[derive(Clone, Copy)]
enum Cut {
    /// `close(timeout)` ran out of time.
    Close,
    /// Interpreter exit, after `exit_timeout_s` (or at once for `flush_at_exit=False`).
    Exit { flush: bool },
}

impl Sink<Item> for PySink {
    type Error = PyFailure;

    fn write(&mut self, batch: &mut Vec<Item>) -> Result<(), SinkError<PyFailure>> {
        if EXITED.load(Ordering::Acquire) {
            return Err(SinkError::Gone);
        }
        Python::try_attach(|py| {
            if self.ident.load(Ordering::Relaxed) == 0 {
                let ident = py
                    .import("threading")
                    .and_then(|t| t.call_method0("get_ident"))
                    .and_then(|i| i.extract::<u64>())
                    .map_err(|err| failure(py, err))?;
                self.ident.store(ident, Ordering::Relaxed);
            }
            let list = PyList::new(py, batch.iter().map(|o| o.bind(py)))
                .map_err(|err| failure(py, err))?;
            match self.sink.bind(py).call1((list,)) {
                Ok(_) => {
                    batch.clear(); // release the references while attached
                    Ok(())
                }
                Err(err) => {
                    let retry = self.retry_if.as_ref().map_or(true, |f| {
                        let f = f.bind(py);
                        match f.call1((err.value(py),)).and_then(|r| r.is_truthy()) {
                            Ok(retry) => retry,
                            Err(e) => {
                                // a failing predicate must not lose the batch: retried
                                e.write_unraisable(py, Some(f));
                                true
                            }
                        }
                    });
                    Err(match failure(py, err) {
                        SinkError::Failed(f) if !retry => SinkError::Permanent(f),
                        other => other,
                    })
                }
            }
        })
        .unwrap_or(Err(SinkError::Gone))
    }

    fn session(&mut self, f: &mut dyn FnMut(&mut Self)) {
        // Attached once for a run of batches; `write` inside re-attaches for free. If the
        // interpreter cannot be attached to, `f` still runs (its `write` reports `Gone`).
        if EXITED.load(Ordering::Acquire) || Python::try_attach(|_| f(self)).is_none() {
            f(self);
        }
    }

    fn dead_letter(&mut self, batch: Vec<Item>, reason: DeadReason<PyFailure>) {
        if EXITED.load(Ordering::Acquire) {
            // The interpreter is going away: nobody can receive them any more. Only a batch the
            // exit hook abandoned (a sink call that outlived its grace) gets here; the hook
            // logged it, with its count, before returning.
            return;
        }
        let cut = if LIVE.lock().exiting {
            Cut::Exit {
                flush: self.flush_at_exit,
            }
        } else {
            Cut::Close
        };
        let _ = Python::try_attach(|py| self.dead.hand_over(py, batch, reason, cut));
    }
}

fn failure(py: Python<'_>, err: PyErr) -> SinkError<PyFailure> {
    let text = describe(py, &err);
    SinkError::Failed(PyFailure { err, text })
}

fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_string());
    match err.value(py).str() {
        Ok(msg) if !msg.to_string().is_empty() => format!("{name}: {msg}"),
        _ => name,
    }
}

impl DeadLetter {
    /// Log `batch` at error level and give it to the `dead_letter` callable (attached).
    fn hand_over(&self, py: Python<'_>, batch: Vec<Item>, reason: DeadReason<PyFailure>, cut: Cut) {
        let n = batch.len();
        let (why, err) = match reason {
            DeadReason::Failed(f) => ("the sink kept failing", f.err),
            DeadReason::Panicked(msg) => (
                "the sink call panicked",
                InternalError::new_err(format!("write-behind sink panicked: {msg}")),
            ),
            DeadReason::Undelivered(last) => {
                let (why, when) = match cut {
                    Cut::Close => ("close() ran out of time", "closed"),
                    Cut::Exit { flush: true } => (
                        "exit_timeout_s ran out at interpreter exit",
                        "closed at interpreter exit",
                    ),
                    Cut::Exit { flush: false } => (
                        "flush_at_exit=False",
                        "closed at interpreter exit (flush_at_exit=False)",
                    ),
                };
                let e = FlushTimeout::new_err(format!(
                    "write-behind queue {:?} {when} before these {n} item(s) were delivered",
                    self.name
                ));
                if let Some(last) = last {
                    e.set_cause(py, Some(last.err));
                }
                (why, e)
            }
        };
        let text = describe(py, &err);
        let exc = err.into_value(py);
        let logged = (|| -> PyResult<()> {
            let kwargs = PyDict::new(py);
            kwargs.set_item("exc_info", exc.bind(py))?;
            self.logger.bind(py).call_method(
                "error",
                (
                    "write-behind queue %r dead-lettered %d item(s) (%s): %s",
                    &self.name,
                    n,
                    why,
                    &text,
                ),
                Some(&kwargs),
            )?;
            Ok(())
        })();
        if let Err(e) = logged {
            e.write_unraisable(py, Some(self.logger.bind(py)));
        }
        if let Some(callback) = &self.callback {
            let delivered = PyList::new(py, batch)
                .and_then(|list| callback.bind(py).call1((list, exc.bind(py))));
            if let Err(e) = delivered {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// QueueStats
// ------------------------------------------------------------------------------------------

#[pyclass(frozen, name = "QueueStats", module = "tallyclerk")]
pub struct PyQueueStats {
    #[pyo3(get)]
    enqueued: u64,
    #[pyo3(get)]
    written: u64,
    #[pyo3(get)]
    retried: u64,
    #[pyo3(get)]
    dead_lettered: u64,
    #[pyo3(get)]
    depth: u64,
    #[pyo3(get)]
    bytes_queued: u64,
    #[pyo3(get)]
    high_water: u64,
    #[pyo3(get)]
    batches: u64,
    #[pyo3(get)]
    last_error: Option<String>,
}

impl From<Stats> for PyQueueStats {
    fn from(s: Stats) -> Self {
        PyQueueStats {
            enqueued: s.enqueued,
            written: s.written,
            retried: s.retried,
            dead_lettered: s.dead_lettered,
            depth: s.depth,
            bytes_queued: s.bytes_queued,
            high_water: s.high_water,
            batches: s.batches,
            last_error: s.last_error,
        }
    }
}

#[pymethods]
impl PyQueueStats {
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("enqueued", self.enqueued)?;
        d.set_item("written", self.written)?;
        d.set_item("retried", self.retried)?;
        d.set_item("dead_lettered", self.dead_lettered)?;
        d.set_item("depth", self.depth)?;
        d.set_item("bytes_queued", self.bytes_queued)?;
        d.set_item("high_water", self.high_water)?;
        d.set_item("batches", self.batches)?;
        d.set_item("last_error", &self.last_error)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let last = match &self.last_error {
            Some(e) => format!("{e:?}"),
            None => "None".to_string(),
        };
        format!(
            "QueueStats(enqueued={}, written={}, retried={}, dead_lettered={}, depth={}, \
             bytes_queued={}, high_water={}, batches={}, last_error={last})",
            self.enqueued,
            self.written,
            self.retried,
            self.dead_lettered,
            self.depth,
            self.bytes_queued,
            self.high_water,
            self.batches,
        )
    }
}

// ------------------------------------------------------------------------------------------
// WriteBehindQueue
// ------------------------------------------------------------------------------------------

#[pyclass(frozen, name = "WriteBehindQueue", module = "tallyclerk")]
pub struct PyWriteBehindQueue {
    inner: Arc<CoreQueue>,
    pid: u32,
    name: String,
    put_timeout: Option<Duration>,
}

fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    if (0.0..1e12).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!(
            "{what} must be a finite number >= 0, not {value}"
        )))
    }
}

fn opt_seconds(what: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    value.map(|v| seconds(what, v)).transpose()
}

fn count(what: &str, value: i64) -> PyResult<usize> {
    if value >= 1 {
        Ok(value as usize)
    } else {
        Err(PyValueError::new_err(format!(
            "{what} must be at least 1, not {value}"
        )))
    }
}

impl PyWriteBehindQueue {
    #[inline]
    fn check_fork(&self) -> PyResult<()> {
        if self.pid != CURRENT_PID.load(Ordering::Relaxed) {
            return Err(self.forked());
        }
        Ok(())
    }

    /// The thorough check, for the slow paths (a fork not made through `os.fork()`).
    fn check_fork_strict(&self) -> PyResult<()> {
        self.check_fork()?;
        if self.pid != std::process::id() {
            return Err(self.forked());
        }
        Ok(())
    }

    fn forked(&self) -> PyErr {
        ForkedError::new_err(format!(
            "write-behind queue {:?} was created in process {} and cannot be used in process {} \
             (after os.fork() its writer thread does not exist here); create a new queue",
            self.name,
            self.pid,
            std::process::id()
        ))
    }

    fn closed_err(&self) -> PyErr {
        QueueClosed::new_err(format!("write-behind queue {:?} is closed", self.name))
    }

    fn full_err(&self) -> PyErr {
        let cfg = self.inner.config();
        let bytes = cfg
            .max_bytes
            .map(|b| format!(", max_bytes={b}"))
            .unwrap_or_default();
        QueueFull::new_err(format!(
            "write-behind queue {:?} is full (max_items={}{bytes})",
            self.name, cfg.max_items
        ))
    }

    fn put_error(&self, err: PutError<Item>, size: u64) -> PyErr {
        match &err {
            PutError::Full(_) => self.full_err(),
            PutError::Closed(_) => self.closed_err(),
            PutError::TooLarge(_) => PyValueError::new_err(format!(
                "item size {size} exceeds max_bytes={} of write-behind queue {:?}",
                self.inner.config().max_bytes.unwrap_or(0),
                self.name
            )),
        }
    }

    /// The slow path of `put`: wait for room, detached, in slices (the item stays with the
    /// caller while detached: see [`quiet_wait`]), then put it attached.
    fn put_blocking(
        &self,
        py: Python<'_>,
        mut item: Item,
        size: u64,
        timeout: Option<Duration>,
    ) -> PyResult<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let inner = &self.inner;
            quiet_wait(py, || inner.wait_room(size, Some(slice)));
            match inner.try_put(item, size) {
                Ok(()) => return Ok(()),
                Err(PutError::Full(back)) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(self.put_error(PutError::Full(back), size));
                    }
                    item = back;
                    py.check_signals()?;
                }
                Err(other) => return Err(self.put_error(other, size)),
            }
        }
    }

    fn do_put(&self, py: Python<'_>, item: Item, size: u64, timeout: Option<f64>) -> PyResult<()> {
        match self.inner.try_put(item, size) {
            Ok(()) => Ok(()),
            Err(PutError::Full(_)) if self.inner.is_writer_thread() => {
                // Only the writer makes room: waiting here, inside the sink, would deadlock.
                Err(QueueFull::new_err(format!(
                    "write-behind queue {:?} is full and put() was called from inside its own \
                     sink, which cannot wait for room",
                    self.name
                )))
            }
            Err(PutError::Full(item)) if self.inner.config().on_full == OnFull::Block => {
                let timeout = match timeout {
                    Some(t) => Some(seconds("timeout", t)?),
                    None => self.put_timeout,
                };
                self.put_blocking(py, item, size, timeout)
            }
            Err(err) => Err(self.put_error(err, size)),
        }
    }
}

#[pymethods]
impl PyWriteBehindQueue {
    #[new]
    #[pyo3(signature = (
        sink, *, max_items=10000, max_bytes=None, max_batch=1000, linger_ms=5.0, on_full="block",
        put_timeout=None, max_retries=5, backoff_initial_ms=10.0, backoff_max_ms=2000.0,
        dead_letter=None, flush_at_exit=true, exit_timeout_s=5.0, name="tallyclerk-writer",
        retry_if=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sink: Py<PyAny>,
        max_items: i64,
        max_bytes: Option<i64>,
        max_batch: i64,
        linger_ms: f64,
        on_full: &str,
        put_timeout: Option<f64>,
        max_retries: i64,
        backoff_initial_ms: f64,
        backoff_max_ms: f64,
        dead_letter: Option<Py<PyAny>>,
        flush_at_exit: bool,
        exit_timeout_s: f64,
        name: &str,
        retry_if: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let name = name.to_string();
        guard(|| {
            if !sink.bind(py).is_callable() {
                return Err(PyTypeError::new_err("sink must be callable"));
            }
            if dead_letter
                .as_ref()
                .is_some_and(|d| !d.bind(py).is_callable())
            {
                return Err(PyTypeError::new_err("dead_letter must be callable or None"));
            }
            if retry_if.as_ref().is_some_and(|d| !d.bind(py).is_callable()) {
                return Err(PyTypeError::new_err("retry_if must be callable or None"));
            }
            let on_full = match on_full {
                "block" => OnFull::Block,
                "raise" => OnFull::Raise,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "on_full must be \"block\" or \"raise\", not {other:?}"
                    )))
                }
            };
            if !(0..=1000).contains(&max_retries) {
                return Err(PyValueError::new_err(format!(
                    "max_retries must be between 0 and 1000, not {max_retries}"
                )));
            }
            let cfg = Config {
                max_items: count("max_items", max_items)?,
                max_bytes: max_bytes
                    .map(|b| count("max_bytes", b).map(|b| b as u64))
                    .transpose()?,
                max_batch: count("max_batch", max_batch)?,
                linger: seconds("linger_ms", linger_ms / 1000.0)?,
                on_full,
                max_retries: max_retries as u32,
                backoff_initial: seconds("backoff_initial_ms", backoff_initial_ms / 1000.0)?,
                backoff_max: seconds("backoff_max_ms", backoff_max_ms / 1000.0)?,
                thread_name: name.clone(),
            };
            let put_timeout = opt_seconds("put_timeout", put_timeout)?;
            let exit_timeout = seconds("exit_timeout_s", exit_timeout_s)?;
            let exiting = || {
                QueueClosed::new_err(
                    "the interpreter is exiting: no new write-behind queue can start",
                )
            };
            if LIVE.lock().exiting {
                return Err(exiting());
            }
            let logger = py
                .import("logging")?
                .call_method1("getLogger", ("tallyclerk.queue",))?
                .unbind();
            let dead = Arc::new(DeadLetter {
                name: name.clone(),
                callback: dead_letter,
                logger,
            });
            let exit_timeout = if flush_at_exit {
                exit_timeout
            } else {
                Duration::ZERO
            };
            let py_sink = PySink {
                sink,
                retry_if,
                dead: Arc::clone(&dead),
                ident: Arc::new(AtomicU64::new(0)),
                flush_at_exit: !exit_timeout.is_zero(),
            };
            let writer_ident = Arc::clone(&py_sink.ident);
            let inner = Arc::new(Core::new(cfg, py_sink).map_err(PyValueError::new_err)?);
            let mut live = LIVE.lock();
            if live.exiting {
                drop(live);
                inner.begin_close(); // empty: its writer just stops
                return Err(exiting());
            }
            // Entries of stopped queues are dropped after unlocking (a decref may run Python).
            let (keep, stale): (Vec<Live>, Vec<Live>) = std::mem::take(&mut live.queues)
                .into_iter()
                .partition(|l| !l.queue.is_stopped());
            live.queues = keep;
            live.queues.push(Live {
                queue: Arc::clone(&inner),
                exit_timeout,
                writer_ident,
                dead,
            });
            drop(live);
            drop(stale);
            Ok(PyWriteBehindQueue {
                pid: inner.pid(),
                inner,
                name,
                put_timeout,
            })
        })
    }

    #[pyo3(signature = (item, size=None, timeout=None))]
    fn put(
        &self,
        py: Python<'_>,
        item: Item,
        size: Option<i64>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check_fork()?;
        let size = match size {
            None => 0,
            Some(s) if s >= 0 => s as u64,
            Some(s) => return Err(PyValueError::new_err(format!("size must be >= 0, not {s}"))),
        };
        if let Some(t) = timeout {
            seconds("timeout", t)?; // refused even when the put would not wait
        }
        guard(|| self.do_put(py, item, size, timeout))
    }

    fn put_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check_fork()?;
        let items: Vec<Item> = items
            .try_iter()?
            .map(|r| r.map(Bound::unbind))
            .collect::<PyResult<_>>()?;
        guard(|| match self.inner.try_put_all(items) {
            Ok(()) => Ok(()),
            Err(PutError::Full(items)) if self.inner.config().on_full == OnFull::Block => {
                for item in items {
                    self.do_put(py, item, 0, None)?;
                }
                Ok(())
            }
            Err(PutError::Closed(_)) => Err(self.closed_err()),
            Err(_) => Err(self.full_err()),
        })
    }

    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        self.check_fork_strict()?;
        let timeout = opt_seconds("timeout", timeout)?;
        guard(|| {
            let target = match self.inner.flush_mark() {
                Ok(t) => t,
                Err(FlushError::Closed) => return Err(self.closed_err()),
                Err(_) => {
                    return Err(ReentrantFlush::new_err(
                        "flush() called from inside the queue's own sink would deadlock",
                    ))
                }
            };
            let deadline = timeout.map(|t| Instant::now() + t);
            loop {
                let slice = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                    None => SLICE,
                };
                let inner = &self.inner;
                match quiet_wait(py, || inner.wait_flushed(target, Some(slice))) {
                    Ok(()) => return Ok(()),
                    Err(FlushError::Timeout { pending }) => {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            return Err(FlushTimeout::new_err(format!(
                                "flush of write-behind queue {:?} timed out with {pending} item(s) \
                                 pending",
                                self.name
                            )));
                        }
                        py.check_signals()?;
                    }
                    Err(_) => return Err(InternalError::new_err("unexpected flush state")),
                }
            }
        })
    }

    #[pyo3(signature = (timeout=None))]
    fn close(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        self.check_fork_strict()?;
        let timeout = opt_seconds("timeout", timeout)?;
        guard(|| close_queue(py, &self.inner, &self.name, timeout))
    }

    #[getter]
    fn closed(&self) -> PyResult<bool> {
        self.check_fork()?;
        Ok(self.inner.is_closed())
    }

    fn stats(&self) -> PyResult<PyQueueStats> {
        self.check_fork()?;
        Ok(self.inner.stats().into())
    }

    fn __len__(&self) -> PyResult<usize> {
        self.check_fork()?;
        Ok(self.inner.len())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type, exc, tb))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc, tb); // closes whether or not the block raised
        self.close(py, None)
    }

    fn __repr__(&self) -> String {
        format!("<WriteBehindQueue {:?}>", self.name)
    }
}

impl Drop for PyWriteBehindQueue {
    fn drop(&mut self) {
        // Unreferenced: stop taking items; the writer drains in the background and the exit
        // hook still bounds it. In a forked child, touch nothing.
        if self.pid == std::process::id() {
            self.inner.begin_close();
        }
    }
}

/// Close one queue, waiting detached in slices (checking for signals in between);
/// `FlushTimeout` when time runs out.
fn close_queue(
    py: Python<'_>,
    inner: &Arc<CoreQueue>,
    name: &str,
    timeout: Option<Duration>,
) -> PyResult<()> {
    if inner.is_writer_thread() {
        return Err(ReentrantFlush::new_err(
            "close() called from inside the queue's own sink would deadlock",
        ));
    }
    inner.begin_close();
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        if quiet_wait(py, || inner.wait_stopped(Some(slice))) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        py.check_signals()?;
    }
    // Stopped: joins the writer. Out of time: aborts it (its items are dead-lettered).
    match quiet_wait(py, || inner.close(Some(Duration::ZERO))) {
        Ok(()) => Ok(()),
        Err(CloseError::Timeout { undelivered }) => Err(FlushTimeout::new_err(format!(
            "close of write-behind queue {name:?} timed out after {:.3} s with {undelivered} \
             item(s) not delivered; they are dead-lettered",
            timeout.unwrap_or_default().as_secs_f64()
        ))),
        Err(CloseError::Reentrant) => Err(InternalError::new_err("unexpected close state")),
    }
}

/// The `atexit` hook: close every live queue of this process (bounded), then stop attaching.
///
/// `atexit` hooks run before the interpreter starts finalizing. Every item not delivered is
/// dead-lettered (logged at error level, given to `dead_letter`) before this returns, except a
/// batch inside a sink call that outlives its grace: that one is abandoned, and logged.
#[pyfunction]
fn _close_queues_at_exit(py: Python<'_>) -> PyResult<()> {
    let queues = {
        let mut live = LIVE.lock();
        live.exiting = true;
        std::mem::take(&mut live.queues)
    };
    let result = close_all_at_exit(py, queues);
    // Whatever happened above: from now on no writer attaches to the interpreter.
    EXITED.store(true, Ordering::Release);
    result
}

/// 1. Every queue stops taking items at once: with `flush_at_exit` its writer drains, bounded
///    by its `exit_timeout_s` (all run together, from the same start).
/// 2. When a queue's time is up (at once for `flush_at_exit=False`), the hook takes its queued
///    items itself ([`CoreQueue::abort_take`]): the writer can no longer touch them, so their
///    fate does not depend on the writer being scheduled, or attaching, before the hook ends.
/// 3. A batch still in flight stays with its writer: a writer inside its sink gets a
///    `FlushTimeout` raised there; each gets [`EXIT_GRACE`] to write or dead-letter it (the
///    hook waits detached, so it can attach). A sink blocked in C beyond that is left behind
///    (and must not return into Python during finalization); its batch is logged as abandoned.
/// 4. The hook dead-letters the items it took, on its own thread, after the batch ahead of
///    them (so a dead letter sees batches in enqueue order).
fn close_all_at_exit(py: Python<'_>, queues: Vec<Live>) -> PyResult<()> {
    let me = std::process::id();
    let logger = py
        .import("logging")?
        .call_method1("getLogger", ("tallyclerk.queue",))?;
    // A failing log call must not stop the hook before it has dead-lettered everything.
    let log_error = |args: Bound<'_, PyTuple>| {
        if let Err(e) = logger.call_method1("error", args) {
            e.write_unraisable(py, Some(&logger));
        }
    };
    let queues: Vec<Live> = queues
        .into_iter()
        .filter(|l| l.queue.pid() == me && !l.queue.is_stopped())
        .collect();
    let start = Instant::now();
    // Items taken out of each queue's reach (step 2), dead-lettered here in step 4.
    let mut taken: Vec<Option<Vec<Item>>> = Vec::with_capacity(queues.len());
    for live in &queues {
        if live.exit_timeout.is_zero() {
            // Not flushed: nothing more is written (a sink call already running may finish).
            taken.push(Some(live.queue.abort_take()));
        } else {
            live.queue.begin_close();
            taken.push(None);
        }
    }
    for (live, taken) in queues.iter().zip(taken.iter_mut()) {
        let queue = &live.queue;
        if taken.is_none() {
            let left = start
                .checked_add(live.exit_timeout)
                .map_or(live.exit_timeout, |d| {
                    d.saturating_duration_since(Instant::now())
                });
            if py.detach(|| queue.wait_stopped(Some(left))) {
                continue;
            }
            *taken = Some(queue.abort_take());
        }
        let queued = taken.as_ref().map_or(0, Vec::len);
        let in_flight = queue.in_flight();
        if queued as u64 + in_flight > 0 {
            let msg = if live.exit_timeout.is_zero() {
                "at exit: write-behind queue %r (flush_at_exit=False) closed with item(s) not \
                 delivered: %d queued (dead-lettered now), %d in a sink call still running"
            } else {
                "at exit: write-behind queue %r did not drain within exit_timeout_s: item(s) \
                 not delivered: %d queued (dead-lettered now), %d in a sink call still running"
            };
            log_error((msg, &live.dead.name, queued, in_flight).into_pyobject(py)?);
        }
    }
    let grace_end = Instant::now() + EXIT_GRACE;
    for live in &queues {
        live.queue.with_writer_calling(|calling| {
            if calling {
                // The writer cannot leave the sink call while we hold its state (and the
                // interpreter), so the exception lands in that call.
                interrupt_sink(py, live.writer_ident.load(Ordering::Relaxed));
            }
        });
    }
    for live in &queues {
        let queue = &live.queue;
        let left = grace_end.saturating_duration_since(Instant::now());
        if py.detach(|| queue.wait_stopped(Some(left))) {
            let _ = py.detach(|| queue.close(Some(Duration::ZERO))); // joins the writer
        } else {
            log_error(
                (
                    "at exit: the sink of write-behind queue %r did not return; its batch of %d \
                     item(s) is abandoned (not delivered, not dead-lettered)",
                    &live.dead.name,
                    queue.in_flight(),
                )
                    .into_pyobject(py)?,
            );
        }
    }
    for (live, items) in queues.iter().zip(taken) {
        let Some(items) = items else { continue };
        let max_batch = live.queue.config().max_batch;
        let mut items = items.into_iter();
        loop {
            let chunk: Vec<Item> = items.by_ref().take(max_batch).collect();
            if chunk.is_empty() {
                break;
            }
            let cut = Cut::Exit {
                flush: !live.exit_timeout.is_zero(),
            };
            live.dead
                .hand_over(py, chunk, DeadReason::Undelivered(None), cut);
        }
    }
    Ok(())
}

/// Raise `FlushTimeout` asynchronously in the writer thread `ident` (0: not known, no-op).
fn interrupt_sink(py: Python<'_>, ident: u64) {
    let Ok(ident) = std::os::raw::c_long::try_from(ident) else {
        return;
    };
    if ident == 0 {
        return;
    }
    let exc_type = py.get_type::<FlushTimeout>();
    // SAFETY: we are attached to the interpreter (`py`), as the function requires; `exc_type`
    // is a live type object kept alive by the `Bound` for the duration of the call, and the
    // function takes its own reference. `ident` is a thread id or unknown (then it is a no-op).
    unsafe {
        pyo3::ffi::PyThreadState_SetAsyncExc(ident, exc_type.as_ptr());
    }
}

/// `os.register_at_fork(after_in_child=...)`: inherited queues are unusable in the child.
#[pyfunction]
fn _queue_after_fork_in_child() {
    CURRENT_PID.store(std::process::id(), Ordering::Relaxed);
    // The parent's queues: never close, drop or lock them here.
    std::mem::forget(std::mem::take(&mut LIVE.lock().queues));
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    CURRENT_PID.store(std::process::id(), Ordering::Relaxed);
    m.add_class::<PyWriteBehindQueue>()?;
    m.add_class::<PyQueueStats>()?;
    let at_exit = wrap_pyfunction!(_close_queues_at_exit, m)?;
    py.import("atexit")?.call_method1("register", (at_exit,))?;
    let after_fork = wrap_pyfunction!(_queue_after_fork_in_child, m)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("after_in_child", after_fork)?;
    py.import("os")?
        .call_method("register_at_fork", PyTuple::empty(py), Some(&kwargs))?;
    Ok(())
}
