//! The data path: CSV reading, Table Schema compilation and coercion, columnar record batches,
//! the SQLite writer and file fingerprints.
