//! `TableSchema`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::convert::{json_to_py, IntoPy};
use crate::data::TableSchema;
use crate::py::errors::guard;

/// A compiled Frictionless Table Schema (immutable, shareable across threads).
#[pyclass(frozen, module = "tallyclerk._core", name = "TableSchema")]
pub struct PyTableSchema {
    pub inner: Arc<TableSchema>,
}

#[pymethods]
impl PyTableSchema {
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        guard(|| {
            let inner = TableSchema::from_json(text).py_err(py)?;
            Ok(PyTableSchema {
                inner: Arc::new(inner),
            })
        })
    }

    #[staticmethod]
    fn text_columns(py: Python<'_>, names: Vec<String>) -> PyResult<Self> {
        guard(|| {
            let inner = TableSchema::text_columns(&names).py_err(py)?;
            Ok(PyTableSchema {
                inner: Arc::new(inner),
            })
        })
    }

    #[getter]
    fn field_names(&self) -> Vec<String> {
        self.inner.field_names()
    }

    /// The keys no two rows may share, as `(columns, rule)`: the `primaryKey` (rule
    /// `primary-key`), then each `unique` field (rule `unique`).
    #[getter]
    fn keys(&self) -> Vec<(Vec<String>, String)> {
        self.inner
            .key_specs()
            .into_iter()
            .map(|k| (k.columns, k.rule.to_string()))
            .collect()
    }

    #[getter]
    fn sensitive_names(&self) -> Vec<String> {
        self.inner.sensitive_names()
    }

    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .fields
            .iter()
            .map(|f| json_to_py(py, &f.describe()))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    fn __repr__(&self) -> String {
        let fields: Vec<String> = self
            .inner
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.ftype.name()))
            .collect();
        format!("TableSchema({})", fields.join(", "))
    }
}
