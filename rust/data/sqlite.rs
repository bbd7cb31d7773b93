//! The SQLite writer: one rusqlite connection to the SYSTEM libsqlite3 (no `bundled` feature,
//! see `data/mod.rs`), WAL, busy timeout, `BEGIN IMMEDIATE`, quoted identifiers, typed binds
//! through one cached prepared statement per (table, columns).
//!
//! Errors carry SQLite's message; `transient` is set for SQLITE_BUSY and SQLITE_LOCKED (a retry
//! of the whole transaction may succeed), never for disk full, read-only, constraint or syntax
//! errors.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rusqlite::limits::Limit;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OpenFlags, Statement};

use super::batch::{CellRef, Column, RecordBatch, Value};
use super::error::DataError;
use super::keys::{key_columns, key_of, KeySpec, UNIQUE_RULE};
use super::schema::TableSchema;
use super::sqlite_raw::{RawInsert, StmtCache};

/// Longest identifier accepted (characters).
pub const MAX_IDENTIFIER_CHARS: usize = 255;

/// Quote an identifier for SQLite (`"a""b"`), refusing empty names, NUL bytes and names over
/// [`MAX_IDENTIFIER_CHARS`] characters.
pub fn quote_ident(name: &str) -> Result<String, DataError> {
    if name.is_empty() {
        return Err(DataError::Config(
            "an SQL identifier cannot be empty".into(),
        ));
    }
    if name.contains('\0') {
        return Err(DataError::Config(format!(
            "SQL identifier {name:?} contains a NUL byte"
        )));
    }
    let n = name.chars().count();
    if n > MAX_IDENTIFIER_CHARS {
        let head: String = name.chars().take(40).collect();
        return Err(DataError::Config(format!(
            "SQL identifier {head:?}... is {n} characters long (at most {MAX_IDENTIFIER_CHARS})"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn sink(e: &rusqlite::Error, context: &str) -> DataError {
    DataError::sink(format!("{context}: {e}"), is_busy(e))
}

/// Run `f`, retrying while SQLite answers busy/locked, until `timeout` has passed.
///
/// SQLite returns `SQLITE_BUSY` without calling the busy handler in a few cases, notably while
/// another connection switches the file to WAL or recovers its WAL index; two loads opening a
/// new database at the same moment hit exactly that.
fn retry_busy<T>(
    timeout: Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// SQL types allowed for the extra columns of `create_table`.
const EXTRA_TYPES: [&str; 5] = ["INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC"];

fn check_extra_type(t: &str) -> Result<String, DataError> {
    let norm = t
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    let base = norm.strip_suffix(" NOT NULL").unwrap_or(&norm);
    if EXTRA_TYPES.contains(&base) {
        Ok(norm)
    } else {
        Err(DataError::Config(format!(
            "column type {t:?} is not allowed (use INTEGER, REAL, TEXT, BLOB or NUMERIC, \
             optionally NOT NULL)"
        )))
    }
}

/// One SQLite connection writing record batches.
pub struct SqliteWriter {
    conn: Option<Connection>,
    path: String,
    /// Extra column names per table, from `create_table`.
    extra_columns: HashMap<String, Vec<String>>,
    /// INSERT statements binding without copies (finalized before the connection closes).
    stmts: StmtCache,
}

fn bind_value(stmt: &mut Statement<'_>, i: usize, v: &SqlValue) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(i, v)
}

/// Most rows one INSERT statement carries.
const ROWS_PER_STATEMENT: usize = 64;

/// Bind the extra values after the batch's columns, starting after parameter `offset`.
fn bind_extra<'d>(
    stmt: &mut RawInsert<'_, 'd>,
    offset: usize,
    extra: &'d [(String, SqlValue)],
) -> rusqlite::Result<()> {
    for (k, (_, v)) in extra.iter().enumerate() {
        let i = offset + k + 1;
        match v {
            SqlValue::Null => stmt.bind_null(i),
            SqlValue::Integer(x) => stmt.bind_i64(i, *x),
            SqlValue::Real(x) => stmt.bind_f64(i, *x),
            SqlValue::Text(s) => stmt.bind_text(i, s),
            SqlValue::Blob(b) => stmt.bind_blob(i, b),
        }?;
    }
    Ok(())
}

/// Bind the cells of `rows` (one statement execution's rows) column by column: row `k`'s
/// cell of column `j` is parameter `k * width + j + 1` (text without a copy). Column by
/// column, the column's type is matched once per execution instead of once per cell.
#[inline]
fn bind_rows<'d>(
    stmt: &mut RawInsert<'_, 'd>,
    width: usize,
    batch: &'d RecordBatch,
    rows: &[usize],
) -> rusqlite::Result<()> {
    for (j, col) in batch.columns.iter().enumerate() {
        let params = rows
            .iter()
            .enumerate()
            .map(|(k, &row)| (k * width + j + 1, row));
        match col {
            Column::Text(c) => {
                for (idx, row) in params {
                    match c.get(row) {
                        Some(s) => stmt.bind_text(idx, s),
                        None => stmt.bind_null(idx),
                    }?;
                }
            }
            Column::Int(v) => {
                for (idx, row) in params {
                    match v[row] {
                        Some(x) => stmt.bind_i64(idx, x),
                        None => stmt.bind_null(idx),
                    }?;
                }
            }
            Column::Real(v) => {
                for (idx, row) in params {
                    match v[row] {
                        Some(x) => stmt.bind_f64(idx, x),
                        None => stmt.bind_null(idx),
                    }?;
                }
            }
            Column::Bool(v) => {
                for (idx, row) in params {
                    match v[row] {
                        Some(x) => stmt.bind_i64(idx, i64::from(x)),
                        None => stmt.bind_null(idx),
                    }?;
                }
            }
            Column::Any(v) => {
                for (idx, row) in params {
                    match &v[row] {
                        Value::Null => stmt.bind_null(idx),
                        Value::Int(i) => stmt.bind_i64(idx, *i),
                        Value::Real(f) => stmt.bind_f64(idx, *f),
                        Value::Bool(b) => stmt.bind_i64(idx, i64::from(*b)),
                        Value::Text(s) => stmt.bind_text(idx, s),
                    }?;
                }
            }
        }
    }
    Ok(())
}

impl SqliteWriter {
    /// Open (creating if needed) the database at `path` in WAL mode.
    pub fn open(path: &str, busy_timeout_ms: u64, synchronous: &str) -> Result<Self, DataError> {
        let sync = synchronous.trim().to_ascii_uppercase();
        if !["OFF", "NORMAL", "FULL", "EXTRA"].contains(&sync.as_str()) {
            return Err(DataError::Config(format!(
                "synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous:?}"
            )));
        }
        let ctx = format!("cannot open SQLite database {path}");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // A missing or empty file is switched to WAL by writing its first page in a
        // rollback-journal transaction: under the configured level (NORMAL: one journal sync
        // fewer than SQLite's default FULL). An existing file switches under FULL, as before.
        let new_file = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sink(&e, &ctx))?;
        let timeout = Duration::from_millis(busy_timeout_ms);
        conn.busy_timeout(timeout).map_err(|e| sink(&e, &ctx))?;
        let set_sync = || {
            retry_busy(timeout, || {
                conn.execute_batch(&format!("PRAGMA synchronous={sync}"))
            })
        };
        if new_file {
            set_sync().map_err(|e| sink(&e, &ctx))?;
        }
        retry_busy(timeout, || {
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        })
        .map_err(|e| sink(&e, &ctx))?;
        if !new_file {
            set_sync().map_err(|e| sink(&e, &ctx))?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteWriter {
            conn: Some(conn),
            path: path.to_string(),
            extra_columns: HashMap::new(),
            stmts: StmtCache::default(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn conn(&self) -> Result<&Connection, DataError> {
        self.conn.as_ref().ok_or_else(|| {
            DataError::sink(format!("SqliteWriter for {} is closed", self.path), false)
        })
    }

    pub fn in_transaction(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_autocommit())
    }

    /// CREATE TABLE IF NOT EXISTS with the schema's fields plus `extra` (name, SQL type).
    /// An existing table must have every column.
    pub fn create_table(
        &mut self,
        table: &str,
        schema: &TableSchema,
        extra: &[(String, String)],
    ) -> Result<(), DataError> {
        self.create_table_sql(table, schema, extra)?;
        self.extra_columns.insert(
            table.to_string(),
            extra.iter().map(|(n, _)| n.clone()).collect(),
        );
        Ok(())
    }

    fn create_table_sql(
        &self,
        table: &str,
        schema: &TableSchema,
        extra: &[(String, String)],
    ) -> Result<(), DataError> {
        let conn = self.conn()?;
        let qtable = quote_ident(table)?;
        if table.to_ascii_lowercase().starts_with("sqlite_") {
            return Err(DataError::Config(format!(
                "table name {table:?} is reserved by SQLite (names starting with sqlite_)"
            )));
        }
        let mut cols: Vec<(String, String)> = schema
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.ftype.sqlite_type().to_string()))
            .collect();
        for (name, t) in extra {
            cols.push((name.clone(), check_extra_type(t)?));
        }
        let limit = conn.limit(Limit::SQLITE_LIMIT_COLUMN).unwrap_or(2000) as usize;
        if cols.len() > limit {
            return Err(DataError::Config(format!(
                "table {table:?} would have {} columns; this SQLite allows at most {limit}",
                cols.len()
            )));
        }
        let mut seen = HashSet::new();
        let mut defs = Vec::with_capacity(cols.len());
        for (name, t) in &cols {
            // SQLite compares identifiers case-insensitively (ASCII).
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(DataError::Config(format!(
                    "column {name:?} of table {table:?} appears twice (SQLite ignores ASCII case)"
                )));
            }
            defs.push(format!("{} {t}", quote_ident(name)?));
        }
        let sql = format!("CREATE TABLE IF NOT EXISTS {qtable} ({})", defs.join(", "));
        let ctx = format!("cannot create table {table:?}");
        conn.execute_batch(&sql).map_err(|e| sink(&e, &ctx))?;
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| sink(&e, &ctx))?;
        let existing: HashSet<String> = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.map(|r| r.map(|s| s.to_ascii_lowercase())).collect())
            .map_err(|e| sink(&e, &ctx))?;
        let missing: Vec<&str> = cols
            .iter()
            .filter(|(n, _)| !existing.contains(&n.to_ascii_lowercase()))
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::sink(
                format!("table {table:?} already exists without the columns {missing:?}"),
                false,
            ));
        }
        Ok(())
    }

    pub fn begin(&mut self) -> Result<(), DataError> {
        self.conn()?
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| sink(&e, "BEGIN IMMEDIATE failed"))
    }

    pub fn commit(&mut self) -> Result<(), DataError> {
        self.conn()?
            .execute_batch("COMMIT")
            .map_err(|e| sink(&e, "COMMIT failed"))
    }

    /// Roll back the open transaction (no-op when none is open).
    pub fn rollback(&mut self) -> Result<(), DataError> {
        let conn = self.conn()?;
        if conn.is_autocommit() {
            return Ok(());
        }
        conn.execute_batch("ROLLBACK")
            .map_err(|e| sink(&e, "ROLLBACK failed"))
    }

    /// Close the connection (rolling back an open transaction). Idempotent.
    pub fn close(&mut self) -> Result<(), DataError> {
        self.stmts.finalize_all();
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn.close()
            .map_err(|(_, e)| sink(&e, "closing the database failed"))
    }

    /// The extra column names `create_table` declared for `table`.
    pub fn extra_columns(&self, table: &str) -> Option<&[String]> {
        self.extra_columns.get(table).map(Vec::as_slice)
    }

    /// Insert the batch's valid rows (plus `extra` (name, value) appended to every row) with one
    /// cached prepared statement; returns rows written. Must run inside `begin()`.
    pub fn insert_batch(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        extra: &[(String, SqlValue)],
    ) -> Result<usize, DataError> {
        self.write_batch(table, batch, extra, &[])
    }

    /// Like [`insert_batch`](Self::insert_batch), but a row whose `keys` match an existing
    /// row updates that row (`INSERT ... ON CONFLICT (keys) DO UPDATE SET` every other column,
    /// extra columns included). The table needs a unique index on exactly `keys`. Two rows of
    /// one batch with the same key: the later one wins (callers reject duplicates first).
    pub fn upsert_batch(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        extra: &[(String, SqlValue)],
        keys: &[String],
    ) -> Result<usize, DataError> {
        if keys.is_empty() {
            return Err(DataError::Config(
                "upsert_batch needs at least one key column".into(),
            ));
        }
        self.write_batch(table, batch, extra, keys)
    }

    fn write_batch(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        extra: &[(String, SqlValue)],
        keys: &[String],
    ) -> Result<usize, DataError> {
        let closed = || DataError::sink(format!("SqliteWriter for {} is closed", self.path), false);
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let stmts = &mut self.stmts;
        if conn.is_autocommit() {
            return Err(DataError::sink(
                "insert_batch outside a transaction: call begin() first",
                false,
            ));
        }
        let mut names = Vec::with_capacity(batch.names.len() + extra.len());
        for n in batch.names.iter().chain(extra.iter().map(|(n, _)| n)) {
            names.push(quote_ident(n)?);
        }
        let width = names.len();
        let ctx = format!("inserting into {table:?}");
        let err = |e: rusqlite::Error| sink(&e, &ctx);
        // Several rows per statement execution (`VALUES (...),(...)`) amortize SQLite's cost of
        // running a statement. The statements are cached per (table, columns, rows) and bind
        // text without copying (see `sqlite_raw`).
        let max_vars = conn
            .limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER)
            .unwrap_or(999)
            .max(1) as usize;
        let per = (max_vars / width.max(1)).clamp(1, ROWS_PER_STATEMENT);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_ident(table)?,
            names.join(",")
        );
        let tuple = format!("({})", vec!["?"; width].join(","));
        let conflict = Self::conflict_clause(batch, extra, keys)?;
        let valid: Vec<usize> = (0..batch.len())
            .filter(|&r| !batch.is_rejected(r))
            .collect();
        // Statements of `per`, 8 and 1 rows: a batch of any size needs few executions.
        let mut sizes = vec![per];
        sizes.extend([8, 1].into_iter().filter(|&k| k < per));
        let mut rest: &[usize] = &valid;
        for size in sizes {
            if rest.len() < size {
                continue;
            }
            let sql = format!("{head}{}{conflict}", vec![tuple.as_str(); size].join(","));
            let mut stmt = stmts.insert_stmt(conn, &sql).map_err(err)?;
            for k in 0..size {
                bind_extra(&mut stmt, k * width + batch.columns.len(), extra).map_err(err)?;
            }
            let mut chunks = rest.chunks_exact(size);
            for chunk in &mut chunks {
                bind_rows(&mut stmt, width, batch, chunk).map_err(err)?;
                stmt.execute().map_err(err)?;
            }
            rest = chunks.remainder();
        }
        Ok(valid.len())
    }

    /// Reject the valid rows of `batch` whose value of one of `specs` is already in `table`
    /// (rule `unique` / `primary-key`, "... (already in the table)"); returns how many. Runs in
    /// the file's transaction, before its insert: rows of a file replaced with `--force` were
    /// deleted earlier in it, so they are no duplicates. One indexed lookup per row and key
    /// (the sink creates a unique index on each key with the table).
    pub fn reject_existing(
        &mut self,
        table: &str,
        batch: &mut RecordBatch,
        specs: &[KeySpec],
    ) -> Result<usize, DataError> {
        let closed = || DataError::sink(format!("SqliteWriter for {} is closed", self.path), false);
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let ctx = format!("checking keys of {table:?}");
        let err = |e: rusqlite::Error| sink(&e, &ctx);
        let mut newly = 0;
        for spec in specs {
            let cols = key_columns(batch, spec, "the batch")?;
            let mut cond = Vec::with_capacity(spec.columns.len());
            for c in &spec.columns {
                cond.push(format!("{} = ?", quote_ident(c)?));
            }
            let sql = format!(
                "SELECT 1 FROM {} WHERE {} LIMIT 1",
                quote_ident(table)?,
                cond.join(" AND ")
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
            let mut found = Vec::new();
            for row in 0..batch.len() {
                if batch.is_rejected(row) {
                    continue;
                }
                let Ok((_, shown)) = key_of(batch, &cols, row) else {
                    continue; // an empty key column matches nothing (NULL = x is never true)
                };
                for (k, &c) in cols.iter().enumerate() {
                    let v = match batch.columns[c].get(row) {
                        CellRef::Null => SqlValue::Null,
                        CellRef::Int(i) => SqlValue::Integer(i),
                        CellRef::Real(f) => SqlValue::Real(f),
                        CellRef::Bool(b) => SqlValue::Integer(i64::from(b)),
                        CellRef::Text(t) => SqlValue::Text(t.to_string()),
                    };
                    bind_value(&mut stmt, k + 1, &v).map_err(err)?;
                }
                if stmt.raw_query().next().map_err(err)?.is_some() {
                    found.push((row, shown));
                }
            }
            drop(stmt);
            for (row, shown) in found {
                let what = if spec.rule == UNIQUE_RULE {
                    "value"
                } else {
                    "key"
                };
                let reason = format!(
                    "duplicate {what} {shown} for {} (already in the table)",
                    spec.describe()
                );
                if batch.reject(row, spec.reject_column(), spec.rule, &reason)? {
                    newly += 1;
                }
            }
        }
        Ok(newly)
    }

    /// ` ON CONFLICT ("k",...) DO UPDATE SET "c"=excluded."c",...` (empty without keys).
    fn conflict_clause(
        batch: &RecordBatch,
        extra: &[(String, SqlValue)],
        keys: &[String],
    ) -> Result<String, DataError> {
        if keys.is_empty() {
            return Ok(String::new());
        }
        let quoted_keys = keys
            .iter()
            .map(|k| quote_ident(k))
            .collect::<Result<Vec<_>, _>>()?;
        let lower: HashSet<String> = keys.iter().map(|k| k.to_ascii_lowercase()).collect();
        for k in keys {
            if !batch.names.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                return Err(DataError::Config(format!(
                    "key column {k:?} is not a column of the batch"
                )));
            }
        }
        let mut sets = Vec::new();
        for n in batch.names.iter().chain(extra.iter().map(|(n, _)| n)) {
            if !lower.contains(&n.to_ascii_lowercase()) {
                let q = quote_ident(n)?;
                sets.push(format!("{q}=excluded.{q}"));
            }
        }
        let action = if sets.is_empty() {
            "NOTHING".to_string()
        } else {
            format!("UPDATE SET {}", sets.join(","))
        };
        Ok(format!(
            " ON CONFLICT ({}) DO {action}",
            quoted_keys.join(",")
        ))
    }

    fn prepare_bound<'c>(
        conn: &'c Connection,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<rusqlite::CachedStatement<'c>, DataError> {
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| sink(&e, "SQL error"))?;
        Self::bind_all(&mut stmt, params)?;
        Ok(stmt)
    }

    fn bind_all(stmt: &mut Statement<'_>, params: &[SqlValue]) -> Result<(), DataError> {
        if stmt.parameter_count() != params.len() {
            return Err(DataError::sink(
                format!(
                    "SQL statement takes {} parameters, {} given",
                    stmt.parameter_count(),
                    params.len()
                ),
                false,
            ));
        }
        for (i, p) in params.iter().enumerate() {
            bind_value(stmt, i + 1, p).map_err(|e| sink(&e, "SQL error"))?;
        }
        Ok(())
    }

    fn step_all(conn: &Connection, stmt: &mut Statement<'_>) -> Result<u64, DataError> {
        let before = conn.total_changes();
        let mut rows = stmt.raw_query();
        while rows.next().map_err(|e| sink(&e, "SQL error"))?.is_some() {}
        Ok(if conn.total_changes() == before {
            0
        } else {
            conn.changes()
        })
    }

    /// Run one statement with `?` parameters; returns rows changed (0 for non-DML).
    pub fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DataError> {
        let conn = self.conn()?;
        let mut stmt = Self::prepare_bound(conn, sql, params)?;
        Self::step_all(conn, &mut stmt)
    }

    /// Run one statement once per parameter row; returns the sum of rows changed.
    pub fn executemany(&mut self, sql: &str, rows: &[Vec<SqlValue>]) -> Result<u64, DataError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| sink(&e, "SQL error"))?;
        let mut total = 0;
        for params in rows {
            Self::bind_all(&mut stmt, params)?;
            total += Self::step_all(conn, &mut stmt)?;
        }
        Ok(total)
    }

    /// Run a query with `?` parameters; every row's values.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, DataError> {
        let conn = self.conn()?;
        let mut stmt = Self::prepare_bound(conn, sql, params)?;
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| sink(&e, "SQL error"))? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(
                    row.get::<_, SqlValue>(i)
                        .map_err(|e| sink(&e, "SQL error"))?,
                );
            }
            out.push(vals);
        }
        Ok(out)
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::RecordBatch;

    fn busy() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        )
    }

    #[test]
    fn retry_busy_retries_until_sqlite_stops_answering_busy() {
        let mut calls = 0;
        let out = retry_busy(Duration::from_secs(5), || {
            calls += 1;
            if calls < 4 {
                Err(busy())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(out.unwrap(), 4);
    }

    #[test]
    fn retry_busy_gives_up_after_its_timeout_and_never_retries_other_errors() {
        let mut calls = 0;
        let out: rusqlite::Result<()> = retry_busy(Duration::from_millis(20), || {
            calls += 1;
            Err(busy())
        });
        assert!(is_busy(&out.unwrap_err()));
        assert!(calls > 1);
        let mut other_calls = 0;
        let out: rusqlite::Result<()> = retry_busy(Duration::from_secs(5), || {
            other_calls += 1;
            Err(rusqlite::Error::InvalidQuery)
        });
        assert!(out.is_err());
        assert_eq!(other_calls, 1);
    }

    fn schema() -> TableSchema {
        TableSchema::from_json(
            r#"{"fields": [{"name": "id", "type": "integer"}, {"name": "na\"me"},
                {"name": "x", "type": "number"}, {"name": "ok", "type": "boolean"}]}"#,
        )
        .unwrap()
    }

    fn writer(dir: &tempfile::TempDir) -> SqliteWriter {
        let p = dir.path().join("t.db");
        SqliteWriter::open(p.to_str().unwrap(), 1000, "NORMAL").unwrap()
    }

    #[test]
    fn create_insert_query_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let s = schema();
        w.create_table("t \"1\"", &s, &[("_tc_file_id".into(), "INTEGER".into())])
            .unwrap();
        let mut b = RecordBatch::new_text(s.field_names(), 3, &[]);
        b.push_text_row(["1", "a", "1.5", "true"].into_iter(), 1, 2);
        b.push_text_row(["x", "b", "2", "false"].into_iter(), 2, 3);
        b.push_text_row(["3", "", "", "0"].into_iter(), 3, 4);
        assert_eq!(b.validate(&s).unwrap(), 1);
        assert!(
            w.insert_batch("t \"1\"", &b, &[]).is_err(),
            "outside a transaction"
        );
        w.begin().unwrap();
        assert!(w.in_transaction());
        let n = w
            .insert_batch(
                "t \"1\"",
                &b,
                &[("_tc_file_id".into(), SqlValue::Integer(7))],
            )
            .unwrap();
        assert_eq!(n, 2);
        w.commit().unwrap();
        let rows = w
            .query("SELECT * FROM \"t \"\"1\"\"\" ORDER BY id", &[])
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    SqlValue::Integer(1),
                    SqlValue::Text("a".into()),
                    SqlValue::Real(1.5),
                    SqlValue::Integer(1),
                    SqlValue::Integer(7)
                ],
                vec![
                    SqlValue::Integer(3),
                    SqlValue::Null,
                    SqlValue::Null,
                    SqlValue::Integer(0),
                    SqlValue::Integer(7)
                ],
            ]
        );
        let changed = w
            .execute(
                "UPDATE \"t \"\"1\"\"\" SET x = ? WHERE id = ?",
                &[SqlValue::Real(9.0), SqlValue::Integer(3)],
            )
            .unwrap();
        assert_eq!(changed, 1);
        assert_eq!(w.execute("CREATE TABLE other (a)", &[]).unwrap(), 0);
        assert_eq!(
            w.executemany(
                "INSERT INTO other VALUES (?)",
                &[vec![SqlValue::Integer(1)], vec![SqlValue::Null]]
            )
            .unwrap(),
            2
        );
        assert!(w.execute("SELECT ?", &[]).is_err());
        w.close().unwrap();
        assert!(w.begin().is_err());
    }

    #[test]
    fn upsert_updates_existing_keys_and_inserts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let s = schema();
        let extra = [("_tc_file_id".to_string(), "INTEGER".to_string())];
        w.create_table("t", &s, &extra).unwrap();
        w.execute("CREATE UNIQUE INDEX k ON t (id)", &[]).unwrap();
        let keys = ["id".to_string()];
        let mut first = RecordBatch::new_text(s.field_names(), 2, &[]);
        first.push_text_row(["1", "a", "1", "true"].into_iter(), 1, 2);
        first.push_text_row(["2", "b", "2", "true"].into_iter(), 2, 3);
        first.validate(&s).unwrap();
        let mut second = RecordBatch::new_text(s.field_names(), 2, &[]);
        second.push_text_row(["2", "B", "20", "false"].into_iter(), 1, 2);
        second.push_text_row(["3", "c", "3", "false"].into_iter(), 2, 3);
        second.validate(&s).unwrap();
        w.begin().unwrap();
        let one = [("_tc_file_id".to_string(), SqlValue::Integer(1))];
        let two = [("_tc_file_id".to_string(), SqlValue::Integer(2))];
        assert_eq!(w.upsert_batch("t", &first, &one, &keys).unwrap(), 2);
        assert_eq!(w.upsert_batch("t", &second, &two, &keys).unwrap(), 2);
        assert!(w.upsert_batch("t", &second, &two, &[]).is_err());
        assert!(w
            .upsert_batch("t", &second, &two, &["nope".to_string()])
            .is_err());
        w.commit().unwrap();
        let rows = w
            .query(
                "SELECT id, \"na\"\"me\", _tc_file_id FROM t ORDER BY id",
                &[],
            )
            .unwrap();
        let text = |t: &str| SqlValue::Text(t.into());
        assert_eq!(
            rows,
            vec![
                vec![SqlValue::Integer(1), text("a"), SqlValue::Integer(1)],
                vec![SqlValue::Integer(2), text("B"), SqlValue::Integer(2)],
                vec![SqlValue::Integer(3), text("c"), SqlValue::Integer(2)],
            ]
        );
    }

    #[test]
    fn multi_row_statements_keep_every_valid_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let s =
            TableSchema::from_json(r#"{"fields": [{"name": "id", "type": "integer"}]}"#).unwrap();
        w.create_table("t", &s, &[("f".into(), "INTEGER".into())])
            .unwrap();
        let mut b = RecordBatch::new_text(s.field_names(), 0, &[]);
        let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        for (i, id) in ids.iter().enumerate() {
            let v = if i % 7 == 3 { "bad" } else { id.as_str() };
            b.push_text_row([v].into_iter(), i as u64 + 1, i as u64 + 2);
        }
        let rejected = b.validate(&s).unwrap();
        w.begin().unwrap();
        let n = w
            .insert_batch("t", &b, &[("f".into(), SqlValue::Integer(5))])
            .unwrap();
        w.commit().unwrap();
        assert_eq!(n, 1000 - rejected);
        let got = w.query("SELECT id, f FROM t ORDER BY rowid", &[]).unwrap();
        let expect: Vec<Vec<SqlValue>> = (0..1000i64)
            .filter(|i| i % 7 != 3)
            .map(|i| vec![SqlValue::Integer(i), SqlValue::Integer(5)])
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn every_batch_size_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let s = TableSchema::from_json(r#"{"fields": [{"name": "v"}]}"#).unwrap();
        for n in [1usize, 2, 7, 8, 9, 63, 64, 65, 72, 73, 130] {
            let table = format!("t{n}");
            w.create_table(&table, &s, &[("k".into(), "TEXT".into())])
                .unwrap();
            let mut b = RecordBatch::new_text(s.field_names(), 0, &[]);
            let vals: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
            for (i, v) in vals.iter().enumerate() {
                b.push_text_row([v.as_str()].into_iter(), i as u64 + 1, i as u64 + 2);
            }
            b.validate(&s).unwrap();
            w.begin().unwrap();
            let extra = [("k".to_string(), SqlValue::Text(format!("key{n}")))];
            assert_eq!(w.insert_batch(&table, &b, &extra).unwrap(), n);
            w.commit().unwrap();
            let got = w
                .query(&format!("SELECT v, k FROM {table} ORDER BY rowid"), &[])
                .unwrap();
            let expect: Vec<Vec<SqlValue>> = vals
                .iter()
                .map(|v| vec![SqlValue::Text(v.clone()), SqlValue::Text(format!("key{n}"))])
                .collect();
            assert_eq!(got, expect, "batch of {n}");
        }
    }

    #[test]
    fn identifiers_are_refused_or_quoted() {
        assert_eq!(quote_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(matches!(quote_ident(""), Err(DataError::Config(_))));
        assert!(matches!(quote_ident("a\0b"), Err(DataError::Config(_))));
        assert!(matches!(
            quote_ident(&"x".repeat(256)),
            Err(DataError::Config(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let s = schema();
        assert!(matches!(
            w.create_table("sqlite_master", &s, &[]),
            Err(DataError::Config(_))
        ));
        assert!(matches!(
            w.create_table("t", &s, &[("x".into(), "TEXT".into())]),
            Err(DataError::Config(_))
        ));
        assert!(matches!(
            w.create_table("t", &s, &[("y".into(), "TEXT); DROP TABLE t; --".into())]),
            Err(DataError::Config(_))
        ));
        let names: Vec<String> = (0..2001).map(|i| format!("c{i}")).collect();
        let wide = TableSchema::text_columns(&names).unwrap();
        let e = w.create_table("wide", &wide, &[]).unwrap_err();
        assert!(e.to_string().contains("at most 2000"), "{e}");
    }

    #[test]
    fn busy_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = writer(&dir);
        let mut b = {
            let p = dir.path().join("t.db");
            SqliteWriter::open(p.to_str().unwrap(), 10, "NORMAL").unwrap()
        };
        a.begin().unwrap();
        match b.begin() {
            Err(DataError::Sink { transient, message }) => {
                assert!(transient, "{message}");
                assert!(message.contains("locked"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        a.rollback().unwrap();
        b.begin().unwrap();
        b.commit().unwrap();
        match b.execute("INSERT INTO nope VALUES (1)", &[]) {
            Err(DataError::Sink { transient, .. }) => assert!(!transient),
            other => panic!("{other:?}"),
        }
    }
}
