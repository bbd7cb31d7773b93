//! Exceptions are defined in Python (`tallyclerk.errors`) and imported here, so Python code and
//! Rust raise the very same classes.

#![allow(dead_code)]

pyo3::import_exception!(tallyclerk.errors, TallyclerkError);
pyo3::import_exception!(tallyclerk.errors, InternalError);
pyo3::import_exception!(tallyclerk.errors, QueueClosed);
pyo3::import_exception!(tallyclerk.errors, QueueFull);
pyo3::import_exception!(tallyclerk.errors, FlushTimeout);
pyo3::import_exception!(tallyclerk.errors, ReentrantFlush);
pyo3::import_exception!(tallyclerk.errors, ForkedError);
pyo3::import_exception!(tallyclerk.errors, BatchCancelled);
pyo3::import_exception!(tallyclerk.errors, SchemaError);
pyo3::import_exception!(tallyclerk.errors, SourceError);
pyo3::import_exception!(tallyclerk.errors, SinkError);
pyo3::import_exception!(tallyclerk.errors, ConfigError);

use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`, turning a Rust panic into `tallyclerk.errors.InternalError` so that no panic ever
/// crosses into Python (PyO3 would otherwise raise its own `PanicException`, a BaseException).
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            Err(InternalError::new_err(format!(
                "internal error in tallyclerk core: {msg}"
            )))
        }
    }
}
