//! `ArrowRows`: a record batch's valid rows as Arrow, handed out through the Arrow PyCapsule
//! interface (`__arrow_c_array__`): `pyarrow.record_batch(rows)` imports it without copying.
use arrow_data::ffi::FFI_ArrowArray;
use arrow_data::ArrayData;
use arrow_schema::ffi::FFI_ArrowSchema;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::py::errors::guard;

/// Arrow arrays built in Rust (immutable, shared buffers).
#[pyclass(frozen, module = "tallyclerk._core", name = "ArrowRows")]
pub struct PyArrowRows {
    pub data: ArrayData,
}

#[pymethods]
impl PyArrowRows {
    #[getter]
    fn num_rows(&self) -> usize {
        self.data.len()
    }

    /// `(schema capsule, array capsule)` of the Arrow C Data Interface (a struct array: one
    /// record batch). `requested_schema` is ignored (the caller casts if it wants other types).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema;
        guard(|| {
            let schema = FFI_ArrowSchema::try_from(self.data.data_type()).map_err(|e| {
                PyValueError::new_err(format!("cannot export an Arrow schema: {e}"))
            })?;
            let array = FFI_ArrowArray::new(&self.data);
            // The consumer moves each struct out of its capsule (leaving `release` NULL); a
            // capsule never consumed drops its struct, whose Drop calls `release`.
            let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
            let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
            PyTuple::new(py, [schema.into_any(), array.into_any()])
        })
    }

    fn __repr__(&self) -> String {
        format!("ArrowRows(num_rows={})", self.data.len())
    }
}
