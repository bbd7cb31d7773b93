//! Raw prepared INSERT statements that bind text and blobs with `SQLITE_STATIC`: SQLite reads
//! the batch's own buffers during `sqlite3_step` instead of copying every field into a fresh
//! allocation (rusqlite always binds text with `SQLITE_TRANSIENT`: a malloc, a copy and a free
//! per field, about 40% of the insert's CPU). Statements are cached per SQL text by the writer.
//!
//! Soundness:
//! * [`StmtCache`] holds statements of ONE connection (the writer's); the writer finalizes
//!   them all ([`StmtCache::finalize_all`]) before it closes that connection, and nothing else
//!   finalizes them. Dropping a non-empty cache only leaks (never touches a closed handle).
//! * A [`RawInsert<'s, 'd>`] borrows the cache mutably for `'s` (no statement can be finalized
//!   or handed out twice meanwhile) and every bound text/blob for `'d` (the data outlives the
//!   `RawInsert`). Its `Drop` resets the statement and clears every binding, so once it is gone
//!   the cached statement holds no pointer to the data.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{ffi, Connection};

/// Most statements kept; past that the cache is emptied (tables x column sets are few).
const CACHE_CAP: usize = 32;

/// Prepared statements of one connection, by SQL text.
#[derive(Default)]
pub(crate) struct StmtCache {
    stmts: HashMap<String, *mut ffi::sqlite3_stmt>,
}

// SAFETY: the statements belong to a connection opened with SQLITE_OPEN_NO_MUTEX
// ("multi-thread" mode), which may be used from any thread as long as no two threads use it at
// once; the cache is only reached through `&mut SqliteWriter`, which the bindings keep behind
// a mutex, exactly like the rusqlite `Connection` beside it (itself `Send`).
unsafe impl Send for StmtCache {}

impl StmtCache {
    /// The statement for `sql` on `conn` (prepared on first use), ready to bind.
    pub(crate) fn insert_stmt<'s, 'd>(
        &'s mut self,
        conn: &Connection,
        sql: &str,
    ) -> rusqlite::Result<RawInsert<'s, 'd>> {
        // SAFETY: `handle()` is the live handle of `conn`, the connection this cache belongs to
        // (the writer passes its own); we only prepare/bind/step/reset/clear our statements on
        // it while the writer is borrowed mutably, and finalize them before it is closed.
        let db = unsafe { conn.handle() };
        let stmt = match self.stmts.get(sql) {
            Some(&stmt) => stmt,
            None => {
                if self.stmts.len() >= CACHE_CAP {
                    self.finalize_all();
                }
                let stmt = prepare(db, sql)?;
                self.stmts.insert(sql.to_string(), stmt);
                stmt
            }
        };
        Ok(RawInsert {
            db,
            stmt,
            _cache: PhantomData,
            _data: PhantomData,
        })
    }

    /// Finalize every statement (before the connection closes).
    pub(crate) fn finalize_all(&mut self) {
        for (_, stmt) in self.stmts.drain() {
            // SAFETY: each statement was prepared by us on the still-open connection and is
            // finalized exactly once (it leaves the map here); no `RawInsert` is alive, since
            // we hold `&mut self`.
            unsafe {
                ffi::sqlite3_finalize(stmt);
            }
        }
    }
}

fn prepare(db: *mut ffi::sqlite3, sql: &str) -> rusqlite::Result<*mut ffi::sqlite3_stmt> {
    let len = c_int::try_from(sql.len())
        .map_err(|_| rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None))?;
    let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: `db` is a live handle (see `insert_stmt`); `sql` points to `len` initialized
    // bytes (the byte count makes a NUL terminator unnecessary); `stmt` is a valid out-pointer;
    // a null tail pointer is allowed.
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db,
            sql.as_ptr().cast::<c_char>(),
            len,
            &mut stmt,
            ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(error(db, rc));
    }
    if stmt.is_null() {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_MISUSE),
            Some("empty SQL statement".into()),
        ));
    }
    Ok(stmt)
}

/// A cached statement in use, with parameters borrowed for `'d`.
pub(crate) struct RawInsert<'s, 'd> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _cache: PhantomData<&'s mut StmtCache>,
    _data: PhantomData<&'d [u8]>,
}

impl<'d> RawInsert<'_, 'd> {
    #[inline]
    fn check(&self, rc: c_int) -> rusqlite::Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }

    #[inline]
    fn index(i: usize) -> c_int {
        // An index beyond c_int becomes 0, which SQLite rejects with SQLITE_RANGE.
        c_int::try_from(i).unwrap_or(0)
    }

    #[inline]
    pub(crate) fn bind_null(&mut self, i: usize) -> rusqlite::Result<()> {
        // SAFETY: `stmt` is a live statement (finalized only in Drop); a bad index is an
        // SQLITE_RANGE error, not undefined behaviour.
        self.check(unsafe { ffi::sqlite3_bind_null(self.stmt, Self::index(i)) })
    }

    #[inline]
    pub(crate) fn bind_i64(&mut self, i: usize, v: i64) -> rusqlite::Result<()> {
        // SAFETY: as in `bind_null`.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt, Self::index(i), v) })
    }

    #[inline]
    pub(crate) fn bind_f64(&mut self, i: usize, v: f64) -> rusqlite::Result<()> {
        // SAFETY: as in `bind_null`.
        self.check(unsafe { ffi::sqlite3_bind_double(self.stmt, Self::index(i), v) })
    }

    /// Bind text without a copy: SQLite keeps the pointer until the parameter is bound again
    /// or the statement is finalized; `s` lives for 'd, longer than `self`.
    #[inline]
    pub(crate) fn bind_text(&mut self, i: usize, s: &'d str) -> rusqlite::Result<()> {
        // SAFETY: `stmt` is live; `s` is valid UTF-8 of `s.len()` bytes and stays valid for
        // 'd, which outlives this `RawInsert`, whose Drop clears the binding (module docs).
        self.check(unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt,
                Self::index(i),
                s.as_ptr().cast::<c_char>(),
                s.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            )
        })
    }

    /// Bind a blob without a copy (same lifetime argument as `bind_text`).
    pub(crate) fn bind_blob(&mut self, i: usize, b: &'d [u8]) -> rusqlite::Result<()> {
        // SAFETY: as in `bind_text`: `b` is `b.len()` initialized bytes valid for 'd.
        self.check(unsafe {
            ffi::sqlite3_bind_blob64(
                self.stmt,
                Self::index(i),
                b.as_ptr().cast(),
                b.len() as u64,
                ffi::SQLITE_STATIC(),
            )
        })
    }

    /// Run the statement once (it must not return rows) and reset it for the next run.
    #[inline]
    pub(crate) fn execute(&mut self) -> rusqlite::Result<()> {
        // SAFETY: `stmt` is live and every bound text/blob is valid for 'd (see `bind_text`).
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        let result = match rc {
            ffi::SQLITE_DONE => Ok(()),
            ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
            _ => Err(error(self.db, rc)),
        };
        // SAFETY: `stmt` is live. Its return code repeats a step error, already captured.
        let rr = unsafe { ffi::sqlite3_reset(self.stmt) };
        match (result, rr) {
            (Ok(()), ffi::SQLITE_OK) => Ok(()),
            (Ok(()), code) => Err(error(self.db, code)),
            (Err(e), _) => Err(e),
        }
    }
}

impl Drop for RawInsert<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live (the cache cannot finalize it while we borrow the cache).
        // Reset stops any half-run statement; clearing the bindings sets every parameter to
        // NULL, so the cached statement keeps no pointer into the 'd data after this.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
    }
}

/// The error of a failed call: SQLite's code and the connection's message.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is a live connection handle; `sqlite3_errmsg` returns a NUL-terminated
    // string owned by SQLite that stays valid until the next call on `db`, and we copy it
    // before making any other call.
    let msg = unsafe {
        let p = ffi::sqlite3_errmsg(db);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_steps_and_reports_errors() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a, b, c, d, e); CREATE UNIQUE INDEX u ON t(a)")
            .unwrap();
        let mut cache = StmtCache::default();
        let sql = "INSERT INTO t VALUES (?,?,?,?,?)";
        {
            let owned = String::from("text");
            let blob = vec![0u8, 1, 2];
            let mut s = cache.insert_stmt(&conn, sql).unwrap();
            s.bind_i64(1, 1).unwrap();
            s.bind_f64(2, 2.5).unwrap();
            s.bind_text(3, &owned).unwrap();
            s.bind_blob(4, &blob).unwrap();
            s.bind_null(5).unwrap();
            s.execute().unwrap();
            s.bind_text(3, "").unwrap();
            let e = s.execute().unwrap_err();
            assert_eq!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            );
            assert!(e.to_string().contains("UNIQUE"), "{e}");
            assert!(s.bind_i64(6, 1).is_err(), "out of range");
        }
        {
            // the cached statement comes back with every binding cleared (NULL)
            let mut s = cache.insert_stmt(&conn, sql).unwrap();
            s.bind_i64(1, 2).unwrap();
            s.execute().unwrap();
        }
        assert_eq!(cache.stmts.len(), 1);
        type Row = (i64, Option<f64>, Option<String>, Option<Vec<u8>>);
        let rows: Vec<Row> = conn
            .prepare("SELECT a, b, c, d FROM t ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, Some(2.5), Some("text".into()), Some(vec![0, 1, 2])),
                (2, None, None, None)
            ]
        );
        assert!(cache
            .insert_stmt(&conn, "INSERT INTO nope VALUES (1)")
            .is_err());
        assert!(cache.insert_stmt(&conn, "").is_err());
        {
            let mut sel = cache.insert_stmt(&conn, "SELECT 1").unwrap();
            assert!(matches!(
                sel.execute(),
                Err(rusqlite::Error::ExecuteReturnedResults)
            ));
        }
        cache.finalize_all();
        assert!(cache.stmts.is_empty());
        conn.close().unwrap();
    }
}
