//! `SqliteWriter` and `file_fingerprint`.

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyMapping, PyString, PyTuple};
use rusqlite::types::Value as SqlValue;

use super::batch::PyRecordBatch;
use super::convert::{sql_from_py, sql_params, sql_to_py, IntoPy};
use super::schema::PyTableSchema;
use crate::data::{DataError, SqliteWriter};
use crate::py::errors::guard;

/// One SQLite connection (the system libsqlite3, the library Python's sqlite3 loads).
#[pyclass(frozen, module = "tallyclerk._core", name = "SqliteWriter")]
pub struct PySqliteWriter {
    path: String,
    inner: Mutex<SqliteWriter>,
}

impl PySqliteWriter {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut SqliteWriter) -> Result<T, DataError> + Send,
    ) -> PyResult<T> {
        py.detach(|| f(&mut self.inner.lock())).py_err(py)
    }

    fn write_batch(
        &self,
        py: Python<'_>,
        table: &str,
        batch: &PyRecordBatch,
        extra_values: Option<&Bound<'_, PyAny>>,
        keys: Vec<String>,
    ) -> PyResult<usize> {
        guard(|| {
            // (name, value) pairs: a mapping names its columns; a sequence takes the extra
            // columns `create_table` declared for this table, in order.
            let mut named: Option<Vec<(String, SqlValue)>> = None;
            let mut values: Vec<SqlValue> = Vec::new();
            if let Some(ev) = extra_values {
                if let Ok(m) = ev.cast::<PyMapping>() {
                    let mut pairs = Vec::new();
                    for item in m.items()?.iter() {
                        let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
                        pairs.push((k, sql_from_py(&v)?));
                    }
                    named = Some(pairs);
                } else {
                    values = sql_params(ev)?;
                }
            }
            self.with(py, move |w| {
                let extra = match named {
                    Some(p) => p,
                    None if values.is_empty() => Vec::new(),
                    None => {
                        let names = w.extra_columns(table).unwrap_or(&[]);
                        if names.len() != values.len() {
                            return Err(DataError::Value(format!(
                                "insert_batch: {} extra values, but create_table declared {} \
                                 extra columns for table {table:?} (or pass a mapping \
                                 {{column: value}})",
                                values.len(),
                                names.len()
                            )));
                        }
                        names.iter().cloned().zip(values).collect()
                    }
                };
                let b = batch.inner.lock();
                if keys.is_empty() {
                    w.insert_batch(table, &b, &extra)
                } else {
                    w.upsert_batch(table, &b, &extra, &keys)
                }
            })
        })
    }
}

#[pymethods]
impl PySqliteWriter {
    /// The SQL dialect, for the audit service's `SqlExecutor` protocol.
    #[classattr]
    fn dialect_name() -> &'static str {
        "sqlite"
    }

    #[new]
    #[pyo3(signature = (path, *, busy_timeout_ms = 5000, synchronous = "NORMAL"))]
    fn new(py: Python<'_>, path: &str, busy_timeout_ms: i64, synchronous: &str) -> PyResult<Self> {
        guard(|| {
            let busy_timeout_ms = u64::try_from(busy_timeout_ms)
                .map_err(|_| {
                    DataError::Config(format!(
                        "busy_timeout_ms must not be negative, not {busy_timeout_ms}"
                    ))
                })
                .py_err(py)?;
            let w = py
                .detach(|| SqliteWriter::open(path, busy_timeout_ms, synchronous))
                .py_err(py)?;
            Ok(PySqliteWriter {
                path: path.to_string(),
                inner: Mutex::new(w),
            })
        })
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    #[getter]
    fn in_transaction(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.lock().in_transaction())
    }

    #[pyo3(signature = (table, schema, extra_columns = Vec::new()),
           text_signature = "($self, table, schema, extra_columns=())")]
    fn create_table(
        &self,
        py: Python<'_>,
        table: &str,
        schema: &PyTableSchema,
        extra_columns: Vec<(String, String)>,
    ) -> PyResult<()> {
        guard(|| {
            let s = schema.inner.clone();
            self.with(py, move |w| w.create_table(table, &s, &extra_columns))
        })
    }

    fn begin(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| self.with(py, |w| w.begin()))
    }

    #[pyo3(signature = (table, batch, extra_values = None),
           text_signature = "($self, table, batch, extra_values=())")]
    fn insert_batch(
        &self,
        py: Python<'_>,
        table: &str,
        batch: &PyRecordBatch,
        extra_values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        self.write_batch(py, table, batch, extra_values, Vec::new())
    }

    #[pyo3(signature = (table, batch, keys, extra_values = None),
           text_signature = "($self, table, batch, keys, extra_values=())")]
    fn upsert_batch(
        &self,
        py: Python<'_>,
        table: &str,
        batch: &PyRecordBatch,
        keys: Vec<String>,
        extra_values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        if keys.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "upsert_batch needs at least one key column",
            ));
        }
        self.write_batch(py, table, batch, extra_values, keys)
    }

    /// Reject the valid rows of `batch` whose key value (`(columns, rule)` pairs) is already
    /// in `table`; returns how many. Call inside the file's transaction, before the insert.
    fn reject_existing(
        &self,
        py: Python<'_>,
        table: &str,
        batch: &PyRecordBatch,
        keys: Vec<(Vec<String>, String)>,
    ) -> PyResult<usize> {
        guard(|| {
            let specs = super::keys::specs_from(keys).py_err(py)?;
            self.with(py, move |w| {
                let mut b = batch.inner.lock();
                w.reject_existing(table, &mut b, &specs)
            })
        })
    }

    #[pyo3(signature = (sql, params = None), text_signature = "($self, sql, params=())")]
    fn execute(
        &self,
        py: Python<'_>,
        sql: &str,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        guard(|| {
            let p = match params {
                Some(p) => sql_params(p)?,
                None => Vec::new(),
            };
            self.with(py, move |w| w.execute(sql, &p))
        })
    }

    fn executemany(&self, py: Python<'_>, sql: &str, rows: &Bound<'_, PyAny>) -> PyResult<u64> {
        guard(|| {
            let mut all = Vec::new();
            for row in rows.try_iter()? {
                all.push(sql_params(&row?)?);
            }
            self.with(py, move |w| w.executemany(sql, &all))
        })
    }

    #[pyo3(signature = (sql, params = None), text_signature = "($self, sql, params=())")]
    fn query<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let p = match params {
                Some(p) => sql_params(p)?,
                None => Vec::new(),
            };
            let rows = self.with(py, move |w| w.query(sql, &p))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let cells = r
                    .into_iter()
                    .map(|v| sql_to_py(py, v))
                    .collect::<PyResult<Vec<_>>>()?;
                out.push(PyTuple::new(py, cells)?);
            }
            PyList::new(py, out)
        })
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| self.with(py, |w| w.commit()))
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| self.with(py, |w| w.rollback()))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| self.with(py, |w| w.close()))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc, tb);
        self.close(py)
    }

    fn __repr__(&self) -> String {
        format!("SqliteWriter({:?})", self.path)
    }
}

/// Whether `--encoding LABEL` names an encoding the CSV reader decodes.
#[pyfunction]
pub fn known_encoding(label: &str) -> bool {
    crate::data::csv_reader::known_encoding(label)
}

/// `"xxh3-128:<32 hex digits>"` of a file, streamed, detached from the interpreter.
#[pyfunction]
pub fn file_fingerprint(py: Python<'_>, path: &Bound<'_, PyString>) -> PyResult<String> {
    guard(|| {
        let p = path.to_str()?.to_string();
        py.detach(move || crate::data::file_fingerprint(&p))
            .py_err(py)
    })
}
