//! The data path: CSV and JSON Lines reading, Table Schema compilation and coercion, columnar record batches,
//! the SQLite writer and file fingerprints. Pure Rust (no pyo3): `cargo test` covers it, and
//! `rust/py/data/` holds the thin bindings.
//!
//! One SQLite library per process: the writer uses `rusqlite` WITHOUT its `bundled` feature, so
//! the extension links the system `libsqlite3.so.0` dynamically — the very library Python's
//! `_sqlite3` module loads. The dynamic loader maps one copy of it into the process, so both reach
//! a database file through one SQLite (one set of POSIX lock bookkeeping; see
//! sqlite.org/howtocorrupt.html §2.2.1). `tests/data/test_sqlite_writer.py` asserts the link.

pub mod arrow;
pub mod batch;
#[cfg(test)]
mod chunky;
pub mod coerce;
pub mod copy_text;
mod csv_plain;
pub mod csv_reader;
pub mod error;
pub mod field;
pub mod field_type;
pub mod fingerprint;
pub mod geo;
pub mod infer;
pub mod input;
pub mod json_value;
mod jsonl_flat;
pub mod jsonl_reader;
pub mod keys;
pub mod number;
pub mod read_ahead;
pub mod schema;
pub mod sqlite;
mod sqlite_raw;
pub mod strptime;
pub mod temporal;
mod transcode;

pub use batch::{CellRef, Column, RecordBatch, RejectInfo, Value};
pub use csv_reader::{CsvOptions, CsvReader};
pub use error::DataError;
pub use fingerprint::file_fingerprint;
pub use input::Compression;
pub use jsonl_reader::{JsonlOptions, JsonlReader};
pub use read_ahead::{BatchSource, ReadAhead};
pub use schema::{FieldType, TableSchema};
pub use sqlite::SqliteWriter;
