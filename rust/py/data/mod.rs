//! Python bindings of the data path ([`crate::data`]): `TableSchema`, `Reject`, `RecordBatch`,
//! `CsvReader`, `JsonlReader`, `InputStream`, `SqliteWriter`, `file_fingerprint`, `infer_csv`,
//! `SchemaInference`.
//!
//! Thin: they convert arguments, detach from the interpreter around parsing, validation,
//! inserts and hashing, and map [`DataError`](crate::data::DataError) to `tallyclerk.errors`.
//! Mutable Rust state sits behind a `parking_lot::Mutex`. Long work (parsing, validating,
//! inserting) locks it while detached; accessors that build Python objects take it attached
//! only when it is free (otherwise they wait for it detached), so no thread ever blocks the
//! interpreter waiting for a lock, and none holds a lock while waiting for the interpreter.

use pyo3::prelude::*;

mod arrow;
mod batch;
mod convert;
mod infer;
mod input;
mod jsonl;
mod keys;
mod reader;
mod schema;
mod writer;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<schema::PyTableSchema>()?;
    m.add_class::<batch::PyReject>()?;
    m.add_class::<batch::PyRecordBatch>()?;
    m.add_class::<arrow::PyArrowRows>()?;
    m.add_class::<reader::PyCsvReader>()?;
    m.add_class::<jsonl::PyJsonlReader>()?;
    m.add_class::<input::PyInputStream>()?;
    m.add_class::<writer::PySqliteWriter>()?;
    m.add_class::<keys::PyKeyCheck>()?;
    m.add_function(wrap_pyfunction!(writer::file_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(writer::known_encoding, m)?)?;
    m.add_class::<infer::PySchemaInference>()?;
    m.add_function(wrap_pyfunction!(infer::infer_csv, m)?)?;
    Ok(())
}
