//! `KeyCheck`: the within-file check of `unique` fields and keys (see [`crate::data::keys`]).

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::batch::PyRecordBatch;
use super::convert::IntoPy;
use crate::data::keys::{KeyCheck, KeySpec, PRIMARY_KEY_RULE, UNIQUE_RULE};
use crate::data::DataError;
use crate::py::errors::guard;

/// `(columns, rule)` pairs as key specs (rule `unique` or `primary-key`).
pub fn specs_from(keys: Vec<(Vec<String>, String)>) -> Result<Vec<KeySpec>, DataError> {
    keys.into_iter()
        .map(|(columns, rule)| {
            if columns.is_empty() {
                return Err(DataError::Config("a key needs at least one column".into()));
            }
            let rule = match rule.as_str() {
                UNIQUE_RULE => UNIQUE_RULE,
                PRIMARY_KEY_RULE => PRIMARY_KEY_RULE,
                other => {
                    return Err(DataError::Config(format!(
                        "a key's rule is \"unique\" or \"primary-key\", not {other:?}"
                    )))
                }
            };
            Ok(KeySpec { columns, rule })
        })
        .collect()
}

/// The uniqueness check of one file: rejects a row repeating a key value an earlier row of
/// the file had (the first kept), or with an empty primary key column.
#[pyclass(frozen, module = "tallyclerk._core", name = "KeyCheck")]
pub struct PyKeyCheck {
    inner: Mutex<KeyCheck>,
}

#[pymethods]
impl PyKeyCheck {
    #[new]
    fn new(py: Python<'_>, keys: Vec<(Vec<String>, String)>) -> PyResult<Self> {
        guard(|| {
            let specs = specs_from(keys).py_err(py)?;
            Ok(PyKeyCheck {
                inner: Mutex::new(KeyCheck::new(specs)),
            })
        })
    }

    /// Check one batch (in file order); returns how many rows it rejected.
    fn check(&self, py: Python<'_>, batch: &PyRecordBatch) -> PyResult<usize> {
        guard(|| {
            py.detach(|| {
                let mut keys = self.inner.lock();
                let mut b = batch.inner.lock();
                keys.check(&mut b)
            })
            .py_err(py)
        })
    }
}
