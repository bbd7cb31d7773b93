//! `JsonlReader`.

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::batch::PyRecordBatch;
use super::convert::IntoPy;
use super::reader::positive;
use crate::data::{Compression, JsonlOptions, JsonlReader, ReadAhead};
use crate::py::errors::guard;

/// Streams a JSON Lines file as `RecordBatch` objects; parsing runs detached from the
/// interpreter.
#[pyclass(frozen, module = "tallyclerk._core", name = "JsonlReader")]
pub struct PyJsonlReader {
    path: String,
    columns: Vec<String>,
    inner: Mutex<ReadAhead<JsonlReader>>,
}

#[pymethods]
impl PyJsonlReader {
    #[new]
    #[pyo3(signature = (path, *, encoding = "utf-8", batch_rows = 10000,
                        max_line_bytes = 16777216, compression = "auto",
                        read_ahead = false))]
    fn new(
        py: Python<'_>,
        path: &str,
        encoding: &str,
        batch_rows: i64,
        max_line_bytes: i64,
        compression: &str,
        read_ahead: bool,
    ) -> PyResult<Self> {
        guard(|| {
            let opts = JsonlOptions {
                encoding: encoding.to_string(),
                batch_rows: positive("batch_rows", batch_rows).py_err(py)?,
                max_line_bytes: positive("max_line_bytes", max_line_bytes).py_err(py)?,
                compression: Compression::parse(compression).py_err(py)?,
            };
            let reader = py.detach(|| JsonlReader::open(path, &opts)).py_err(py)?;
            Ok(PyJsonlReader {
                path: path.to_string(),
                columns: reader.columns().to_vec(),
                inner: Mutex::new(ReadAhead::new(reader, read_ahead)),
            })
        })
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    #[getter]
    fn columns(&self) -> Vec<String> {
        self.columns.clone()
    }

    #[getter]
    fn bytes_read(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.lock().bytes_read())
    }

    #[getter]
    fn records_read(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.lock().records_read())
    }

    /// Records per batch; settable between batches (the loader's adaptive batch size).
    #[getter]
    fn batch_rows(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.lock().batch_rows())
    }

    #[setter]
    fn set_batch_rows(&self, py: Python<'_>, rows: i64) -> PyResult<()> {
        let rows = positive("batch_rows", rows).py_err(py)?;
        py.detach(|| self.inner.lock().set_batch_rows(rows));
        Ok(())
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        guard(|| {
            let next = py.detach(|| self.inner.lock().next_batch()).py_err(py)?;
            Ok(next.map(PyRecordBatch::new))
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "JsonlReader({:?}, columns={})",
            self.path,
            self.columns.len()
        )
    }
}
