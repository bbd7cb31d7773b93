//! `Reject` and `RecordBatch`.

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::arrow::PyArrowRows;
use super::convert::{cell_to_py, value_from_py, IntoPy};
use super::schema::PyTableSchema;
use crate::data::copy_text::{copy_text, UnknownColumn};
use crate::data::{DataError, RecordBatch, Value};
use crate::py::errors::guard;

/// One rejected record.
#[pyclass(frozen, module = "tallyclerk._core", name = "Reject")]
pub struct PyReject {
    #[pyo3(get)]
    index: usize,
    #[pyo3(get)]
    record_number: u64,
    #[pyo3(get)]
    line: u64,
    #[pyo3(get)]
    column: Option<String>,
    #[pyo3(get)]
    rule: String,
    #[pyo3(get)]
    reason: String,
    #[pyo3(get)]
    raw: String,
    #[pyo3(get)]
    masked: bool,
}

#[pymethods]
impl PyReject {
    fn __repr__(&self) -> String {
        format!(
            "Reject(record_number={}, line={}, column={:?}, rule={:?}, reason={:?})",
            self.record_number, self.line, self.column, self.rule, self.reason
        )
    }
}

/// A batch of records held column-wise in Rust.
#[pyclass(frozen, module = "tallyclerk._core", name = "RecordBatch")]
pub struct PyRecordBatch {
    pub inner: Mutex<RecordBatch>,
}

impl PyRecordBatch {
    pub fn new(b: RecordBatch) -> Self {
        PyRecordBatch {
            inner: Mutex::new(b),
        }
    }

    /// Run `f` on the batch, locked while detached from the interpreter.
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut RecordBatch) -> T + Send) -> T {
        py.detach(|| f(&mut self.inner.lock()))
    }

    /// Lock the batch while attached (to build Python objects from it) without ever blocking
    /// other Python threads: when another thread holds it (validating or inserting, detached),
    /// wait for it detached, then retry.
    fn lock_attached(&self, py: Python<'_>) -> MutexGuard<'_, RecordBatch> {
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return guard;
            }
            py.detach(|| drop(self.inner.lock()));
        }
    }
}

fn index(i: isize) -> Result<usize, DataError> {
    usize::try_from(i).map_err(|_| DataError::Index(format!("row index {i} out of range")))
}

#[pymethods]
impl PyRecordBatch {
    #[staticmethod]
    #[pyo3(signature = (columns, rows, record_numbers, lines, raws = None))]
    fn from_rows(
        py: Python<'_>,
        columns: Vec<String>,
        rows: &Bound<'_, PyAny>,
        record_numbers: Vec<u64>,
        lines: Vec<u64>,
        raws: Option<Vec<String>>,
    ) -> PyResult<Self> {
        guard(|| {
            let mut out = Vec::with_capacity(rows.len().unwrap_or(0));
            let width = columns.len();
            let convert_row = |row: &Bound<'_, PyAny>| -> PyResult<Vec<Value>> {
                // Lists and tuples (what loaders build) without the generic iterator protocol.
                if let Ok(l) = row.cast::<PyList>() {
                    l.iter().map(|v| value_from_py(&v)).collect()
                } else if let Ok(t) = row.cast::<PyTuple>() {
                    t.iter().map(|v| value_from_py(&v)).collect()
                } else {
                    let mut vals = Vec::with_capacity(width);
                    for v in row.try_iter()? {
                        vals.push(value_from_py(&v?)?);
                    }
                    Ok(vals)
                }
            };
            if let Ok(list) = rows.cast::<PyList>() {
                for row in list.iter() {
                    out.push(convert_row(&row)?);
                }
            } else {
                for row in rows.try_iter()? {
                    out.push(convert_row(&row?)?);
                }
            }
            let b = RecordBatch::from_rows(columns, out, record_numbers, lines, raws).py_err(py)?;
            Ok(PyRecordBatch::new(b))
        })
    }

    #[getter]
    fn num_rows(&self, py: Python<'_>) -> usize {
        self.with(py, |b| b.len())
    }

    #[getter]
    fn columns(&self, py: Python<'_>) -> Vec<String> {
        self.with(py, |b| b.names.clone())
    }

    #[getter]
    fn num_rejected(&self, py: Python<'_>) -> usize {
        self.with(py, |b| b.num_rejected())
    }

    #[getter]
    fn num_valid(&self, py: Python<'_>) -> usize {
        self.with(py, |b| b.num_valid())
    }

    #[getter]
    fn first_record_number(&self, py: Python<'_>) -> u64 {
        self.with(py, |b| b.record_numbers.first().copied().unwrap_or(0))
    }

    #[getter]
    fn bytes(&self, py: Python<'_>) -> u64 {
        self.with(py, |b| b.bytes)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.with(py, |b| b.len())
    }

    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let b = self.lock_attached(py);
            let k = b
                .column_index(name)
                .ok_or_else(|| PyKeyError::new_err(format!("no column {name:?} in the batch")))?;
            let col = &b.columns[k];
            let items = (0..b.len())
                .map(|i| cell_to_py(py, col.get(i)))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)
        })
    }

    fn set_column(&self, py: Python<'_>, name: &str, values: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| {
            let vals = values
                .try_iter()?
                .map(|v| value_from_py(&v?))
                .collect::<PyResult<Vec<_>>>()?;
            self.with(py, |b| b.set_column(name, vals)).py_err(py)
        })
    }

    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let b = self.lock_attached(py);
            let mut out = Vec::with_capacity(b.len());
            for i in 0..b.len() {
                let cells = b
                    .columns
                    .iter()
                    .map(|c| cell_to_py(py, c.get(i)))
                    .collect::<PyResult<Vec<_>>>()?;
                out.push(PyTuple::new(py, cells)?);
            }
            PyList::new(py, out)
        })
    }

    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let b = self.lock_attached(py);
            let mut out = Vec::with_capacity(b.len());
            for i in 0..b.len() {
                let d = PyDict::new(py);
                for (name, c) in b.names.iter().zip(&b.columns) {
                    d.set_item(name, cell_to_py(py, c.get(i))?)?;
                }
                out.push(d);
            }
            PyList::new(py, out)
        })
    }

    fn record_numbers(&self, py: Python<'_>) -> Vec<u64> {
        self.with(py, |b| b.record_numbers.clone())
    }

    fn lines(&self, py: Python<'_>) -> Vec<u64> {
        self.with(py, |b| b.lines.clone())
    }

    fn raw(&self, py: Python<'_>, index: isize) -> PyResult<String> {
        guard(|| {
            let i = super::batch::index(index).py_err(py)?;
            self.with(py, |b| b.raw(i)).py_err(py)
        })
    }

    fn is_rejected(&self, py: Python<'_>, index: isize) -> PyResult<bool> {
        guard(|| {
            let i = super::batch::index(index).py_err(py)?;
            self.with(py, |b| {
                if i >= b.len() {
                    Err(DataError::Index(format!(
                        "row index {i} out of range for a batch of {} rows",
                        b.len()
                    )))
                } else {
                    Ok(b.is_rejected(i))
                }
            })
            .py_err(py)
        })
    }

    fn reject(
        &self,
        py: Python<'_>,
        index: isize,
        column: Option<String>,
        rule: &str,
        reason: &str,
    ) -> PyResult<()> {
        guard(|| {
            let i = super::batch::index(index).py_err(py)?;
            self.with(py, |b| b.reject(i, column, rule, reason))
                .py_err(py)
                .map(|_| ())
        })
    }

    fn rejects(&self, py: Python<'_>) -> PyResult<Vec<PyReject>> {
        guard(|| {
            let b = self.lock_attached(py);
            b.rejects()
                .map(|(i, r)| {
                    let raw = match &r.raw {
                        Some(s) => s.clone(),
                        None => b.raw(i).py_err(py)?,
                    };
                    Ok(PyReject {
                        index: i,
                        record_number: b.record_numbers[i],
                        line: b.lines[i],
                        column: r.column.clone(),
                        rule: r.rule.clone(),
                        reason: r.reason.clone(),
                        raw,
                        masked: r.masked,
                    })
                })
                .collect()
        })
    }

    /// Mark columns sensitive: masked in the raw text and reason of every reject.
    fn set_sensitive(&self, py: Python<'_>, names: Vec<String>) {
        self.with(py, |b| b.set_sensitive(&names));
    }

    #[getter]
    fn sensitive(&self, py: Python<'_>) -> Vec<String> {
        self.with(py, |b| b.sensitive().to_vec())
    }

    #[pyo3(
        signature = (schema, *, nan = false, big_int = false),
        text_signature = "($self, schema, *, nan=False, big_int=False)"
    )]
    fn validate(
        &self,
        py: Python<'_>,
        schema: &PyTableSchema,
        nan: bool,
        big_int: bool,
    ) -> PyResult<usize> {
        guard(|| {
            let s = schema.inner.clone();
            let target = crate::data::field::Target { nan, big_int };
            self.with(py, move |b| b.validate_for(&s, target))
                .py_err(py)
        })
    }

    /// The valid rows as PostgreSQL COPY text (encoded detached from the interpreter).
    #[pyo3(
        signature = (columns, extra_values = Vec::new()),
        text_signature = "($self, columns, extra_values=())"
    )]
    fn copy_text<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<String>,
        extra_values: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        guard(|| {
            let extra = extra_values
                .iter()
                .map(value_from_py)
                .collect::<PyResult<Vec<_>>>()?;
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            let data = self.with(py, |b| copy_text(b, &names, &extra)).map_err(
                |UnknownColumn(name)| {
                    PyKeyError::new_err(format!("no column {name:?} in the batch"))
                },
            )?;
            Ok(PyBytes::new(py, &data))
        })
    }

    /// The valid rows as Arrow arrays typed by `schema` (see `crate::data::arrow`), built
    /// detached from the interpreter; `None` when a column holds values its field type does
    /// not produce (an unvalidated batch).
    #[pyo3(signature = (schema, constant = None))]
    fn arrow_rows(
        &self,
        py: Python<'_>,
        schema: &PyTableSchema,
        constant: Option<(String, i64)>,
    ) -> PyResult<Option<PyArrowRows>> {
        guard(|| {
            let s = schema.inner.clone();
            let data = self
                .with(py, move |b| {
                    crate::data::arrow::export(
                        b,
                        &s,
                        constant.as_ref().map(|(n, v)| (n.as_str(), *v)),
                    )
                })
                .py_err(py)?;
            Ok(data.map(|data| PyArrowRows { data }))
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.with(py, |b| {
            format!(
                "RecordBatch(rows={}, rejected={}, columns={:?})",
                b.len(),
                b.num_rejected(),
                b.names
            )
        })
    }
}
