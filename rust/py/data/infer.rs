//! `infer_csv` and `SchemaInference` (see [`crate::data::infer`]).

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::batch::PyRecordBatch;
use super::convert::IntoPy;
use crate::data::infer::{self, Inference};
use crate::data::{Compression, CsvOptions, DataError};
use crate::py::errors::guard;

fn at_least_one(what: &str, v: i64) -> Result<u64, DataError> {
    u64::try_from(v)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| DataError::Config(format!("{what} must be at least 1, not {v}")))
}

/// The Table Schema (JSON text) inferred from the first `rows` rows of CSV files read in
/// order; parsing and inference run detached from the interpreter.
#[pyfunction]
#[pyo3(signature = (paths, *, rows = 10000, delimiter = ",", quote = "\"", encoding = "utf-8",
                    missing_values = None, max_field_bytes = 16777216, compression = "auto"))]
#[allow(clippy::too_many_arguments)]
pub fn infer_csv(
    py: Python<'_>,
    paths: Vec<String>,
    rows: i64,
    delimiter: &str,
    quote: &str,
    encoding: &str,
    missing_values: Option<Vec<String>>,
    max_field_bytes: i64,
    compression: &str,
) -> PyResult<String> {
    guard(|| {
        let rows = at_least_one("rows", rows).py_err(py)?;
        let max_field_bytes = at_least_one("max_field_bytes", max_field_bytes).py_err(py)?;
        let opts = CsvOptions {
            delimiter: delimiter.to_string(),
            quote: quote.to_string(),
            encoding: encoding.to_string(),
            batch_rows: 10_000,
            max_field_bytes: usize::try_from(max_field_bytes).unwrap_or(usize::MAX),
            compression: Compression::parse(compression).py_err(py)?,
        };
        let missing = missing_values.unwrap_or_else(|| vec![String::new()]);
        let doc = py
            .detach(|| infer::infer_csv(&paths, &opts, rows, missing))
            .py_err(py)?;
        Ok(doc.to_string())
    })
}

/// Infers a Table Schema from record batches added one by one (JSONL and other loaders).
#[pyclass(frozen, module = "tallyclerk._core", name = "SchemaInference")]
pub struct PySchemaInference {
    inner: Mutex<Inference>,
}

#[pymethods]
impl PySchemaInference {
    #[new]
    #[pyo3(signature = (*, missing_values = None))]
    fn new(py: Python<'_>, missing_values: Option<Vec<String>>) -> PyResult<Self> {
        guard(|| {
            let missing = missing_values.unwrap_or_else(|| vec![String::new()]);
            let inner = Inference::new(missing).py_err(py)?;
            Ok(PySchemaInference {
                inner: Mutex::new(inner),
            })
        })
    }

    /// Add the batch's valid rows, at most `limit` (all when None); returns how many.
    #[pyo3(signature = (batch, limit = None))]
    fn add(&self, py: Python<'_>, batch: &PyRecordBatch, limit: Option<u64>) -> PyResult<u64> {
        guard(|| {
            Ok(py.detach(|| {
                let b = batch.inner.lock();
                self.inner.lock().add_batch(&b, limit.unwrap_or(u64::MAX))
            }))
        })
    }

    #[getter]
    fn rows(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.lock().rows())
    }

    /// The inferred Table Schema as JSON text; `sources` are named in its description.
    fn schema(&self, py: Python<'_>, sources: Vec<String>) -> String {
        py.detach(|| self.inner.lock().schema(&sources).to_string())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("SchemaInference(rows={})", self.rows(py))
    }
}
