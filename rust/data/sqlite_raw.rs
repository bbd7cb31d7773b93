//! A raw prepared INSERT statement that binds text and blobs with `SQLITE_STATIC`: SQLite reads
//! the batch's own buffers during `sqlite3_step` instead of copying every field into a fresh
//! allocation (rusqlite always binds text with `SQLITE_TRANSIENT`: a malloc, a copy and a free
//! per field, about a quarter of the insert's CPU).
//!
//! Soundness in one sentence: a `RawInsert<'c, 'd>` borrows the connection for `'c` (so it
//! cannot be closed under it) and every bound text/blob for `'d` (so the data outlives the
//! statement), and it finalizes the statement in `Drop` — the only point after which SQLite
//! may no longer touch the bound pointers.

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{ffi, Connection};

/// One prepared statement on `'c`'s connection with parameters borrowed for `'d`.
pub(crate) struct RawInsert<'c, 'd> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _conn: PhantomData<&'c Connection>,
    _data: PhantomData<&'d [u8]>,
}

impl<'c, 'd> RawInsert<'c, 'd> {
    /// Prepare one SQL statement.
    pub(crate) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: `handle()` returns the live handle of `conn`, which we borrow for 'c: it
        // stays open while this statement exists. We only prepare/bind/step/reset/finalize our
        // own statement on it, on the thread that holds `conn` (the writer's mutex).
        let db = unsafe { conn.handle() };
        let len = c_int::try_from(sql.len()).map_err(|_| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None)
        })?;
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        // SAFETY: `db` is valid (above); `sql` points to `len` initialized bytes (the byte
        // count makes a NUL terminator unnecessary); `stmt` is a valid out-pointer; a null
        // tail pointer is allowed.
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
        Ok(RawInsert {
            db,
            stmt,
            _conn: PhantomData,
            _data: PhantomData,
        })
    }

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
        // 'd, which outlives this statement (see the module docs), so SQLITE_STATIC is sound.
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
        // SAFETY: `stmt` was prepared by us, is finalized exactly once (here), and `db` is
        // still open (borrowed for 'c). After this, SQLite holds no pointer to bound data.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
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
        let owned = String::from("text");
        let blob = vec![0u8, 1, 2];
        {
            let mut s = RawInsert::prepare(&conn, "INSERT INTO t VALUES (?,?,?,?,?)").unwrap();
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
        let row: (i64, f64, String, Vec<u8>, Option<i64>) = conn
            .query_row("SELECT * FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert_eq!(row, (1, 2.5, "text".into(), vec![0, 1, 2], None));
        assert!(RawInsert::prepare(&conn, "INSERT INTO nope VALUES (1)").is_err());
        assert!(RawInsert::prepare(&conn, "").is_err());
        let mut sel = RawInsert::prepare(&conn, "SELECT 1").unwrap();
        assert!(matches!(
            sel.execute(),
            Err(rusqlite::Error::ExecuteReturnedResults)
        ));
    }
}
