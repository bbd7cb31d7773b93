//! `CsvReader`.

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::batch::PyRecordBatch;
use super::convert::IntoPy;
use crate::data::{Compression, CsvOptions, CsvReader, DataError, ReadAhead};
use crate::py::errors::guard;

/// Streams a CSV file as `RecordBatch` objects; parsing runs detached from the interpreter.
#[pyclass(frozen, module = "tallyclerk._core", name = "CsvReader")]
pub struct PyCsvReader {
    path: String,
    header: Vec<String>,
    inner: Mutex<ReadAhead<CsvReader>>,
}

/// A reader option that must be at least 1 (batch size, line or field limit), as a `usize`.
pub(super) fn positive(what: &str, v: i64) -> Result<usize, DataError> {
    usize::try_from(v)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| DataError::Config(format!("{what} must be at least 1, not {v}")))
}

#[pymethods]
impl PyCsvReader {
    #[new]
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
    #[pyo3(signature = (path, *, delimiter = ",", quote = "\"", encoding = "utf-8",
                        batch_rows = 10000, max_field_bytes = 16777216,
                        compression = "auto", read_ahead = false))]
    fn new(
        py: Python<'_>,
        path: &str,
        delimiter: &str,
        quote: &str,
        encoding: &str,
        batch_rows: i64,
        max_field_bytes: i64,
        compression: &str,
        read_ahead: bool,
    ) -> PyResult<Self> {
        guard(|| {
            let opts = CsvOptions {
                delimiter: delimiter.to_string(),
                quote: quote.to_string(),
                encoding: encoding.to_string(),
                batch_rows: positive("batch_rows", batch_rows).py_err(py)?,
                max_field_bytes: positive("max_field_bytes", max_field_bytes).py_err(py)?,
                compression: Compression::parse(compression).py_err(py)?,
            };
            let reader = py.detach(|| CsvReader::open(path, &opts)).py_err(py)?;
            Ok(PyCsvReader {
                path: path.to_string(),
                header: reader.header().to_vec(),
                inner: Mutex::new(ReadAhead::new(reader, read_ahead)),
            })
        })
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    #[getter]
    fn header(&self) -> Vec<String> {
        self.header.clone()
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
        format!("CsvReader({:?}, columns={})", self.path, self.header.len())
    }
}
