//! `InputStream`: the decompressed bytes of a possibly-compressed file, for readers written in
//! Python (the JSONL loader, plugins through `tallyclerk.open_input`).

use std::io::Read;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::IntoPy;
use crate::data::input::{open_path, Input};
use crate::data::{Compression, DataError};
use crate::py::errors::guard;

/// Reads happen detached from the interpreter (decompression is CPU work).
#[pyclass(frozen, module = "tallyclerk._core", name = "InputStream")]
pub struct PyInputStream {
    path: String,
    compression: &'static str,
    inner: Mutex<Option<Box<dyn std::io::BufRead + Send>>>,
}

#[pymethods]
impl PyInputStream {
    #[new]
    #[pyo3(signature = (path, *, compression = "auto"))]
    fn new(py: Python<'_>, path: &str, compression: &str) -> PyResult<Self> {
        guard(|| {
            let forced = Compression::parse(compression).py_err(py)?;
            let Input {
                reader,
                compression,
            } = py.detach(|| open_path(path, forced)).py_err(py)?;
            Ok(PyInputStream {
                path: path.to_string(),
                compression: compression.name(),
                inner: Mutex::new(Some(reader)),
            })
        })
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// The compression the file is read with (`none`, `gzip`, `bzip2`, `xz`, `zstd`).
    #[getter]
    fn compression(&self) -> &'static str {
        self.compression
    }

    /// Up to `size` bytes of the decompressed text (fewer only at the end); b"" at the end.
    #[pyo3(signature = (size = 262144))]
    fn read<'py>(&self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        guard(|| {
            let want = usize::try_from(size)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| DataError::Config(format!("size must be at least 1, not {size}")))
                .py_err(py)?;
            let path = self.path.clone();
            let data = py
                .detach(|| -> Result<Vec<u8>, DataError> {
                    let mut guard = self.inner.lock();
                    let Some(reader) = guard.as_mut() else {
                        return Err(DataError::Config("read from a closed InputStream".into()));
                    };
                    let mut buf = vec![0u8; want];
                    let mut got = 0;
                    while got < want {
                        match reader.read(&mut buf[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let reason = if e.kind() == std::io::ErrorKind::InvalidData {
                                    e.to_string()
                                } else {
                                    format!("read error: {e}")
                                };
                                return Err(DataError::source(&path, None, reason));
                            }
                        }
                    }
                    buf.truncate(got);
                    Ok(buf)
                })
                .py_err(py)?;
            Ok(PyBytes::new(py, &data))
        })
    }

    /// Release the file (idempotent).
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            self.inner.lock().take();
        });
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.lock().is_none())
    }

    fn __repr__(&self) -> String {
        format!(
            "InputStream({:?}, compression={:?})",
            self.path, self.compression
        )
    }
}
