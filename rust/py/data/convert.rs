//! Conversions between Python objects and data-path values, and error mapping.

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyString};
use rusqlite::types::Value as SqlValue;
use serde_json::Value as Json;

use crate::data::{CellRef, DataError, Value};
use crate::py::errors::{ConfigError, SchemaError, SinkError, SourceError};

/// Raise `cls(message, **kwargs)`.
fn with_kwargs<'py>(
    py: Python<'py>,
    cls: Bound<'py, pyo3::types::PyType>,
    message: &str,
    kwargs: &[(&str, Bound<'py, PyAny>)],
) -> PyErr {
    let dict = PyDict::new(py);
    for (k, v) in kwargs {
        if let Err(e) = dict.set_item(k, v) {
            return e;
        }
    }
    match cls.call((message,), Some(&dict)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Map a data-path error to its `tallyclerk.errors` class.
pub fn to_py(py: Python<'_>, e: DataError) -> PyErr {
    use pyo3::type_object::PyTypeInfo;
    match e {
        DataError::Source {
            message,
            path,
            line,
        } => {
            let path = PyString::new(py, &path).into_any();
            let line = match line {
                Some(l) => {
                    let Ok(l) = l.into_pyobject(py);
                    l.into_any()
                }
                None => py.None().into_bound(py),
            };
            with_kwargs(
                py,
                SourceError::type_object(py),
                &message,
                &[("path", path), ("line", line)],
            )
        }
        DataError::Sink { message, transient } => {
            let t = PyBool::new(py, transient).to_owned().into_any();
            with_kwargs(
                py,
                SinkError::type_object(py),
                &message,
                &[("transient", t)],
            )
        }
        DataError::Schema(m) => SchemaError::new_err(m),
        DataError::Config(m) => ConfigError::new_err(m),
        DataError::Value(m) => PyValueError::new_err(m),
        DataError::Index(m) => PyIndexError::new_err(m),
    }
}

/// `Result<T, DataError>` -> `PyResult<T>`.
pub trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, DataError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A Python value as a batch value: None, bool, int (beyond 64 bits: its decimal text, which
/// an integer field then rejects), float, str; dict and list as compact JSON text (what a
/// nested JSONL value means); anything else as `str(obj)`.
pub fn value_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        Ok(Value::Null)
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Value::Text(s.to_str()?.to_string()))
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => Ok(Value::Text(obj.str()?.to_str()?.to_string())),
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Ok(Value::Real(f.value()))
    } else if obj.is_instance_of::<PyDict>() || obj.is_instance_of::<pyo3::types::PyList>() {
        // Nested JSON values (from a JSONL loader) load as compact JSON text.
        let json = obj.py().import("json")?;
        let kwargs = PyDict::new(obj.py());
        kwargs.set_item("ensure_ascii", false)?;
        kwargs.set_item("separators", (",", ":"))?;
        let text = json.call_method("dumps", (obj,), Some(&kwargs))?;
        Ok(Value::Text(text.extract()?))
    } else {
        Ok(Value::Text(obj.str()?.to_str()?.to_string()))
    }
}

pub fn cell_to_py<'py>(py: Python<'py>, c: CellRef<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c {
        CellRef::Null => py.None().into_bound(py),
        CellRef::Int(i) => i.into_pyobject(py)?.into_any(),
        CellRef::Real(f) => PyFloat::new(py, f).into_any(),
        CellRef::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        CellRef::Text(s) => PyString::new(py, s).into_any(),
    })
}

/// A Python value as an SQL parameter: None, bool (0/1), int, float, str, bytes/bytearray;
/// `datetime`/`date` as ISO text (like the sqlite3 module's old default adapters).
pub fn sql_from_py(obj: &Bound<'_, PyAny>) -> PyResult<SqlValue> {
    if obj.is_none() {
        return Ok(SqlValue::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(SqlValue::Text(s.to_str()?.to_string()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(SqlValue::Integer(i64::from(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().map(SqlValue::Integer).map_err(|_| {
            PyValueError::new_err(format!(
                "integer {obj} does not fit SQLite's 64-bit INTEGER"
            ))
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(SqlValue::Real(f.value()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(SqlValue::Blob(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(SqlValue::Blob(b.to_vec()));
    }
    let py = obj.py();
    let dt = py.import("datetime")?;
    if obj.is_instance(&dt.getattr("datetime")?)? {
        return Ok(SqlValue::Text(
            obj.call_method1("isoformat", (" ",))?.extract()?,
        ));
    }
    if obj.is_instance(&dt.getattr("date")?)? {
        return Ok(SqlValue::Text(obj.call_method0("isoformat")?.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "SQL parameters must be None, bool, int, float, str, bytes, date or datetime, not {}",
        obj.get_type().name()?
    )))
}

pub fn sql_params(params: &Bound<'_, PyAny>) -> PyResult<Vec<SqlValue>> {
    if params.is_instance_of::<PyString>() || params.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "SQL parameters must be a sequence of values",
        ));
    }
    params.try_iter()?.map(|p| sql_from_py(&p?)).collect()
}

pub fn sql_to_py<'py>(py: Python<'py>, v: SqlValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        SqlValue::Null => py.None().into_bound(py),
        SqlValue::Integer(i) => i.into_pyobject(py)?.into_any(),
        SqlValue::Real(f) => PyFloat::new(py, f).into_any(),
        SqlValue::Text(s) => PyString::new(py, &s).into_any(),
        SqlValue::Blob(b) => PyBytes::new(py, &b).into_any(),
    })
}

pub fn json_to_py<'py>(py: Python<'py>, v: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            pyo3::types::PyList::new(py, items)?.into_any()
        }
        Json::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}
