//! Bindings: `Watchdog`.
//!
//! The watchdog thread is a plain Rust thread: it sleeps without the interpreter and attaches
//! only to run a callback (`Python::try_attach`, so it never attaches during shutdown). Callback
//! exceptions go to `sys.unraisablehook` and are counted. An `atexit` hook stops every live
//! watchdog, so a watchdog that was never stopped cannot run callbacks while the interpreter
//! finalizes, and interpreter exit never waits for it (the thread is not a Python thread).

use super::accumulator::PyBatchAccumulator;
use super::errors::ForkedError;
use crate::accumulator::Expiry;
use crate::watchdog::{CallbackFailed, HeartbeatFn, OnTimeout, Watchdog, WatchdogError};
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pyo3::import_exception!(tallyclerk.errors, WatchdogStopped);

type Inner = Watchdog<Py<PyBatchAccumulator>>;

/// How long `stop()` waits for the thread (a callback in progress) before returning anyway.
const STOP_WAIT: Duration = Duration::from_millis(900);

/// Every live watchdog, for the atexit hook.
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

fn map_err(e: WatchdogError) -> PyErr {
    match e {
        WatchdogError::Forked { .. } => ForkedError::new_err(e.to_string()),
        WatchdogError::Stopped => WatchdogStopped::new_err(e.to_string()),
    }
}

fn positive_seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 {
        if let Ok(d) = Duration::try_from_secs_f64(value) {
            return Ok(d);
        }
    }
    Err(PyValueError::new_err(format!(
        "{name} must be a finite positive number of seconds, not {value}"
    )))
}

/// Report a callback's exception through `sys.unraisablehook`.
fn report(
    py: Python<'_>,
    result: PyResult<Bound<'_, PyAny>>,
    callback: &Py<PyAny>,
) -> Result<(), CallbackFailed> {
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            e.write_unraisable(py, Some(callback.bind(py)));
            Err(CallbackFailed)
        }
    }
}

fn on_timeout_fn(callback: Option<Py<PyAny>>) -> OnTimeout<Py<PyBatchAccumulator>> {
    Box::new(move |acc, expiry: Expiry| {
        Python::try_attach(|py| {
            let result = match &callback {
                Some(cb) => report(py, cb.bind(py).call1((acc.bind(py), expiry.as_str())), cb),
                None => Ok(()),
            };
            drop(acc);
            result
        })
        // The interpreter is shutting down: the callback cannot run.
        .unwrap_or(Err(CallbackFailed))
    })
}

/// A Rust thread that watches accumulators and runs heartbeats.
#[pyclass(module = "tallyclerk", name = "Watchdog", frozen)]
pub struct PyWatchdog {
    inner: Arc<Inner>,
}

#[pymethods]
impl PyWatchdog {
    #[new]
    #[pyo3(signature = (on_timeout = None, tick_s = 0.05))]
    fn new(on_timeout: Option<Bound<'_, PyAny>>, tick_s: f64) -> PyResult<Self> {
        let tick = positive_seconds("tick_s", tick_s)?;
        let callback = match on_timeout {
            Some(cb) if cb.is_none() => None,
            Some(cb) if !cb.is_callable() => {
                return Err(PyTypeError::new_err("on_timeout must be callable or None"))
            }
            Some(cb) => Some(cb.unbind()),
            None => None,
        };
        let inner = Watchdog::start(tick, on_timeout_fn(callback)).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot start the watchdog thread: {e}"
            ))
        })?;
        let inner = Arc::new(inner);
        let mut live = LIVE.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    fn watch(&self, accumulator: &Bound<'_, PyBatchAccumulator>) -> PyResult<()> {
        let acc = accumulator.get().inner.clone();
        self.inner
            .watch(acc, accumulator.clone().unbind())
            .map_err(map_err)
    }

    fn unwatch(&self, accumulator: &Bound<'_, PyBatchAccumulator>) -> PyResult<bool> {
        let payload = self
            .inner
            .unwatch(&accumulator.get().inner)
            .map_err(map_err)?;
        Ok(payload.is_some())
    }

    fn add_heartbeat(
        &self,
        name: &str,
        interval_s: f64,
        callback: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let interval = positive_seconds("interval_s", interval_s)?;
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("heartbeat callback must be callable"));
        }
        let callback = callback.unbind();
        let f: HeartbeatFn = Arc::new(move || {
            Python::try_attach(|py| report(py, callback.bind(py).call0(), &callback))
                .unwrap_or(Err(CallbackFailed))
        });
        // The replaced callback (if any) is dropped here, with the interpreter attached.
        self.inner
            .add_heartbeat(name, interval, f)
            .map_err(map_err)?;
        Ok(())
    }

    fn remove_heartbeat(&self, name: &str) -> PyResult<bool> {
        Ok(self
            .inner
            .remove_heartbeat(name)
            .map_err(map_err)?
            .is_some())
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner.running()
    }

    #[getter]
    fn fired(&self) -> u64 {
        self.inner.fired()
    }

    #[getter]
    fn callback_errors(&self) -> u64 {
        self.inner.callback_errors()
    }

    fn stop(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(move || inner.stop(STOP_WAIT));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        tb: &Bound<'_, PyAny>,
    ) {
        let _ = (exc_type, exc, tb);
        self.stop(py);
    }

    fn __repr__(&self) -> String {
        format!(
            "<Watchdog running={} watched={} fired={} callback_errors={}>",
            if self.inner.running() {
                "True"
            } else {
                "False"
            },
            self.inner.watched(),
            self.inner.fired(),
            self.inner.callback_errors()
        )
    }
}

/// atexit: stop every live watchdog, waiting (detached) at most about a second in total.
fn stop_all_at_exit(args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {
    let live: Vec<Arc<Inner>> = LIVE.lock().drain(..).filter_map(|w| w.upgrade()).collect();
    for wd in &live {
        wd.request_stop();
    }
    args.py().detach(move || {
        let deadline = Instant::now() + STOP_WAIT;
        for wd in &live {
            wd.wait_stopped(deadline);
        }
    });
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWatchdog>()?;
    let py = m.py();
    let hook = PyCFunction::new_closure(
        py,
        Some(c"_tallyclerk_stop_watchdogs"),
        None,
        stop_all_at_exit,
    )?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
