//! Bindings: `BatchTimeout`, `FileEvent`, `MetricsSnapshot`, `BatchAccumulator`, `FileTally`.
//!
//! The hot path (`add_file_event`, `add_rows`) takes positional ints and a frozen enum, never
//! allocates on success and stays attached to the interpreter (the call is a few atomics).

use super::errors::BatchCancelled;
use crate::accumulator::{self as core, Accumulator, Expiry, FileTally, Rows, Settle};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

// ------------------------------------------------------------------------------------------

/// Operation and idle timeouts of one batch, and how often the watchdog looks.
#[pyclass(module = "tallyclerk", name = "BatchTimeout", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyBatchTimeout {
    pub(crate) inner: core::BatchTimeout,
}

#[pymethods]
impl PyBatchTimeout {
    #[new]
    #[pyo3(signature = (operation_timeout_s = 3600.0, idle_timeout_s = 1800.0, watchdog_interval_s = 1.0))]
    fn new(
        operation_timeout_s: f64,
        idle_timeout_s: f64,
        watchdog_interval_s: f64,
    ) -> PyResult<Self> {
        core::BatchTimeout::from_secs(operation_timeout_s, idle_timeout_s, watchdog_interval_s)
            .map(|inner| Self { inner })
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    #[getter]
    fn operation_timeout_s(&self) -> f64 {
        self.inner.operation.as_secs_f64()
    }

    #[getter]
    fn idle_timeout_s(&self) -> f64 {
        self.inner.idle.as_secs_f64()
    }

    #[getter]
    fn watchdog_interval_s(&self) -> f64 {
        self.inner.watchdog_interval.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!(
            "BatchTimeout(operation_timeout_s={:?}, idle_timeout_s={:?}, watchdog_interval_s={:?})",
            self.operation_timeout_s(),
            self.idle_timeout_s(),
            self.watchdog_interval_s()
        )
    }
}

// ------------------------------------------------------------------------------------------

/// Kinds of file event counted by a BatchAccumulator.
#[pyclass(
    module = "tallyclerk",
    name = "FileEvent",
    eq,
    eq_int,
    hash,
    frozen,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyFileEvent {
    #[pyo3(name = "STARTED")]
    Started,
    #[pyo3(name = "LOADED")]
    Loaded,
    #[pyo3(name = "SKIPPED")]
    Skipped,
    #[pyo3(name = "FAILED")]
    Failed,
}

impl From<PyFileEvent> for core::FileEvent {
    fn from(e: PyFileEvent) -> Self {
        match e {
            PyFileEvent::Started => core::FileEvent::Started,
            PyFileEvent::Loaded => core::FileEvent::Loaded,
            PyFileEvent::Skipped => core::FileEvent::Skipped,
            PyFileEvent::Failed => core::FileEvent::Failed,
        }
    }
}

// ------------------------------------------------------------------------------------------

/// An immutable, internally consistent view of a batch's counters.
#[pyclass(module = "tallyclerk", name = "MetricsSnapshot", frozen, get_all)]
pub struct PyMetricsSnapshot {
    batch_id: String,
    files_started: u64,
    files_loaded: u64,
    files_skipped: u64,
    files_failed: u64,
    rows_read: u64,
    rows_written: u64,
    rows_rejected: u64,
    bytes_read: u64,
    rows_rolled_back: u64,
    live_rows_read: u64,
    live_rows_written: u64,
    live_rows_rejected: u64,
    live_bytes_read: u64,
    rows_sent: u64,
    file_attempts: u64,
    started_at: f64,
    last_activity_at: f64,
    elapsed_s: f64,
    idle_s: f64,
    cancelled: bool,
    cancel_reason: Option<String>,
    expired: Option<&'static str>,
}

impl PyMetricsSnapshot {
    fn new(batch_id: &str, s: core::Snapshot) -> Self {
        let c = s.counters;
        Self {
            batch_id: batch_id.to_string(),
            files_started: c.files_started,
            files_loaded: c.files_loaded,
            files_skipped: c.files_skipped,
            files_failed: c.files_failed,
            rows_read: c.rows_read,
            rows_written: c.rows_written,
            rows_rejected: c.rows_rejected,
            bytes_read: c.bytes_read,
            rows_rolled_back: c.rows_rolled_back,
            live_rows_read: c.live.read,
            live_rows_written: c.live.written,
            live_rows_rejected: c.live.rejected,
            live_bytes_read: c.live.bytes,
            rows_sent: c.rows_sent,
            file_attempts: c.file_attempts,
            started_at: core::to_seconds(s.started_at),
            last_activity_at: core::to_seconds(s.last_activity_at),
            elapsed_s: s.elapsed().as_secs_f64(),
            idle_s: s.idle().as_secs_f64(),
            cancelled: s.cancellation.is_some(),
            cancel_reason: s.cancellation.as_ref().map(|c| c.reason.clone()),
            expired: s.cancellation.and_then(|c| c.expired).map(Expiry::as_str),
        }
    }
}

#[pymethods]
impl PyMetricsSnapshot {
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("batch_id", &self.batch_id)?;
        d.set_item("files_started", self.files_started)?;
        d.set_item("files_loaded", self.files_loaded)?;
        d.set_item("files_skipped", self.files_skipped)?;
        d.set_item("files_failed", self.files_failed)?;
        d.set_item("rows_read", self.rows_read)?;
        d.set_item("rows_written", self.rows_written)?;
        d.set_item("rows_rejected", self.rows_rejected)?;
        d.set_item("bytes_read", self.bytes_read)?;
        d.set_item("rows_rolled_back", self.rows_rolled_back)?;
        d.set_item("live_rows_read", self.live_rows_read)?;
        d.set_item("live_rows_written", self.live_rows_written)?;
        d.set_item("live_rows_rejected", self.live_rows_rejected)?;
        d.set_item("live_bytes_read", self.live_bytes_read)?;
        d.set_item("rows_sent", self.rows_sent)?;
        d.set_item("file_attempts", self.file_attempts)?;
        d.set_item("started_at", self.started_at)?;
        d.set_item("last_activity_at", self.last_activity_at)?;
        d.set_item("elapsed_s", self.elapsed_s)?;
        d.set_item("idle_s", self.idle_s)?;
        d.set_item("cancelled", self.cancelled)?;
        d.set_item("cancel_reason", &self.cancel_reason)?;
        d.set_item("expired", self.expired)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricsSnapshot(batch_id={:?}, files_started={}, files_loaded={}, files_skipped={}, \
             files_failed={}, rows_read={}, rows_written={}, rows_rejected={}, bytes_read={}, \
             elapsed_s={:.3}, cancelled={})",
            self.batch_id,
            self.files_started,
            self.files_loaded,
            self.files_skipped,
            self.files_failed,
            self.rows_read,
            self.rows_written,
            self.rows_rejected,
            self.bytes_read,
            self.elapsed_s,
            if self.cancelled { "True" } else { "False" },
        )
    }
}

// ------------------------------------------------------------------------------------------

/// Per-batch metrics, updated from any thread without a lock on the hot path.
#[pyclass(module = "tallyclerk", name = "BatchAccumulator", frozen)]
pub struct PyBatchAccumulator {
    pub(crate) inner: Arc<Accumulator>,
    timeout: Py<PyBatchTimeout>,
}

fn cancelled_err(e: core::Cancelled) -> PyErr {
    BatchCancelled::new_err(e.to_string())
}

#[inline]
fn rows(read: i64, written: i64, rejected: i64, bytes: i64) -> PyResult<Rows> {
    #[cold]
    fn negative(name: &str, value: i64) -> PyErr {
        PyValueError::new_err(format!("{name} must be >= 0, not {value}"))
    }
    let get = |name, v: i64| u64::try_from(v).map_err(|_| negative(name, v));
    Ok(Rows {
        read: get("rows_read", read)?,
        written: get("rows_written", written)?,
        rejected: get("rows_rejected", rejected)?,
        bytes: get("bytes_read", bytes)?,
    })
}

#[pymethods]
impl PyBatchAccumulator {
    #[new]
    #[pyo3(signature = (batch_id, timeout = None))]
    fn new(
        py: Python<'_>,
        batch_id: String,
        timeout: Option<Py<PyBatchTimeout>>,
    ) -> PyResult<Self> {
        let timeout = match timeout {
            Some(t) => t,
            None => Py::new(
                py,
                PyBatchTimeout {
                    inner: core::BatchTimeout::default(),
                },
            )?,
        };
        let inner = Arc::new(Accumulator::new(batch_id, timeout.get().inner));
        Ok(Self { inner, timeout })
    }

    #[getter]
    fn batch_id(&self) -> &str {
        self.inner.batch_id()
    }

    #[getter]
    fn timeout(&self, py: Python<'_>) -> Py<PyBatchTimeout> {
        self.timeout.clone_ref(py)
    }

    #[pyo3(signature = (kind, rows_read = 0, rows_written = 0, rows_rejected = 0, bytes_read = 0))]
    fn add_file_event(
        &self,
        kind: PyFileEvent,
        rows_read: i64,
        rows_written: i64,
        rows_rejected: i64,
        bytes_read: i64,
    ) -> PyResult<()> {
        let rows = rows(rows_read, rows_written, rows_rejected, bytes_read)?;
        self.inner
            .add_file_event(kind.into(), rows)
            .map_err(cancelled_err)
    }

    #[pyo3(signature = (rows_read = 0, rows_written = 0, rows_rejected = 0, bytes_read = 0))]
    fn add_rows(
        &self,
        rows_read: i64,
        rows_written: i64,
        rows_rejected: i64,
        bytes_read: i64,
    ) -> PyResult<()> {
        let rows = rows(rows_read, rows_written, rows_rejected, bytes_read)?;
        self.inner.add_rows(rows).map_err(cancelled_err)
    }

    fn touch(&self) {
        self.inner.touch();
    }

    /// Undo files counted loaded (an abandoned replace): failed, their rows rolled back.
    fn unload(&self, files: i64, rows_written: i64) -> PyResult<()> {
        let files = u64::try_from(files)
            .map_err(|_| PyValueError::new_err(format!("files must be >= 0, not {files}")))?;
        let rows = u64::try_from(rows_written).map_err(|_| {
            PyValueError::new_err(format!("rows_written must be >= 0, not {rows_written}"))
        })?;
        self.inner
            .unload(files, rows)
            .map_err(PyValueError::new_err)
    }

    /// Begin an attempt at a file: its rows are counted live until it settles.
    fn begin_file(&self) -> PyFileTally {
        PyFileTally {
            inner: FileTally::begin(self.inner.clone()),
        }
    }

    fn snapshot(&self) -> PyMetricsSnapshot {
        PyMetricsSnapshot::new(self.inner.batch_id(), self.inner.snapshot())
    }

    fn cancel(&self, reason: &str) -> bool {
        self.inner.cancel(reason)
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    #[getter]
    fn cancel_reason(&self) -> Option<String> {
        self.inner.cancellation().map(|c| c.reason)
    }

    fn is_expired(&self) -> Option<&'static str> {
        self.inner.is_expired().map(Expiry::as_str)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.counters();
        format!(
            "<BatchAccumulator {:?} files_started={} rows_read={} cancelled={}>",
            self.inner.batch_id(),
            c.files_started,
            c.rows_read,
            if self.inner.is_cancelled() {
                "True"
            } else {
                "False"
            }
        )
    }
}

// ------------------------------------------------------------------------------------------

/// The rows of one attempt at one file, live in its batch until the attempt settles.
#[pyclass(module = "tallyclerk", name = "FileTally", frozen)]
pub struct PyFileTally {
    inner: FileTally,
}

fn settle_name(s: Settle) -> &'static str {
    match s {
        Settle::Loaded => "loaded",
        Settle::Failed => "failed",
        Settle::Retried => "retried",
    }
}

#[pymethods]
impl PyFileTally {
    /// Count rows of this attempt; False (nothing counted) once it has settled.
    #[pyo3(signature = (rows_read = 0, rows_written = 0, rows_rejected = 0, bytes_read = 0))]
    fn add(
        &self,
        rows_read: i64,
        rows_written: i64,
        rows_rejected: i64,
        bytes_read: i64,
    ) -> PyResult<bool> {
        let rows = rows(rows_read, rows_written, rows_rejected, bytes_read)?;
        Ok(self.inner.add(rows))
    }

    #[getter]
    fn rows_read(&self) -> u64 {
        self.inner.rows().read
    }

    #[getter]
    fn rows_written(&self) -> u64 {
        self.inner.rows().written
    }

    #[getter]
    fn rows_rejected(&self) -> u64 {
        self.inner.rows().rejected
    }

    #[getter]
    fn bytes_read(&self) -> u64 {
        self.inner.rows().bytes
    }

    #[getter]
    fn settled(&self) -> Option<&'static str> {
        self.inner.settled().map(settle_name)
    }

    /// End the attempt: "loaded", "failed" or "retried" (see the module docs).
    fn settle(&self, outcome: &str) -> PyResult<()> {
        let how = match outcome {
            "loaded" => Settle::Loaded,
            "failed" => Settle::Failed,
            "retried" => Settle::Retried,
            other => {
                return Err(PyValueError::new_err(format!(
                    "outcome must be 'loaded', 'failed' or 'retried', not {other:?}"
                )))
            }
        };
        self.inner.settle(how).map(|_| ()).map_err(|e| {
            PyValueError::new_err(format!(
                "this attempt was already settled ({})",
                settle_name(e.0)
            ))
        })
    }

    fn __repr__(&self) -> String {
        let r = self.inner.rows();
        format!(
            "<FileTally rows_read={} rows_written={} rows_rejected={} settled={:?}>",
            r.read,
            r.written,
            r.rejected,
            self.inner.settled().map(settle_name)
        )
    }
}

/// Calibrate the core's monotonic seconds against `time.monotonic()` (the same clock).
fn calibrate_clock(py: Python<'_>) -> PyResult<()> {
    let monotonic = py.import("time")?.getattr("monotonic")?;
    let mut failure = None;
    core::calibrate_seconds_offset(
        || match monotonic.call0().and_then(|v| v.extract::<f64>()) {
            Ok(v) => v,
            Err(e) => {
                failure = Some(e);
                f64::NAN
            }
        },
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    calibrate_clock(m.py())?;
    m.add_class::<PyBatchTimeout>()?;
    m.add_class::<PyFileEvent>()?;
    m.add_class::<PyMetricsSnapshot>()?;
    m.add_class::<PyBatchAccumulator>()?;
    m.add_class::<PyFileTally>()?;
    Ok(())
}
