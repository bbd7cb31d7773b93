"""One classification of database errors (``tallyclerk.dberrors.is_transient``) for the sinks,
the audit store and the Rust writer: the same locked SQLite database seen through the Rust
writer, ``sqlite3`` and SQLAlchemy is transient all three ways; the audit store's translation,
the SQLAlchemy sink and the PostgreSQL sink follow it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tallyclerk import SqliteWriter
from tallyclerk.audit.translate import classify
from tallyclerk.builtins import postgres_sink, sqlalchemy_sink
from tallyclerk.dberrors import is_transient
from tallyclerk.errors import SinkError, TransientRepositoryError


@pytest.fixture()
def locked(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file whose write lock another connection holds."""
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield db
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_locked_database_is_transient_through_every_driver(locked: Path) -> None:
    writer = SqliteWriter(str(locked), busy_timeout_ms=10)
    try:
        with pytest.raises(SinkError) as rust:
            writer.begin()
    finally:
        writer.close()
    con = sqlite3.connect(locked, timeout=0.01, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as raw:
            con.execute("BEGIN IMMEDIATE")
    finally:
        con.close()
    engine = sa.create_engine(f"sqlite:///{locked}", connect_args={"timeout": 0.01})
    try:
        with pytest.raises(sa.exc.OperationalError) as wrapped, engine.connect() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        engine.dispose()
    for exc in (rust.value, raw.value, wrapped.value):
        assert is_transient(exc), exc
    assert isinstance(classify(raw.value), TransientRepositoryError)
    assert isinstance(classify(wrapped.value), TransientRepositoryError)
    assert sqlalchemy_sink.sink_error(wrapped.value, "insert").transient


def test_permanent_errors_are_permanent_everywhere(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "x.db")
    try:
        with pytest.raises(sqlite3.OperationalError) as raw:
            con.execute("SELECT * FROM no_such_table")
    finally:
        con.close()
    assert not is_transient(raw.value)
    assert not is_transient(ValueError("not a database error"))
    assert not is_transient(SinkError("constraint failed", transient=False))
    assert is_transient(SinkError("busy", transient=True))


def test_postgresql_states_and_the_statement_timeout_policy() -> None:
    pytest.importorskip("psycopg")
    from psycopg import errors as pg

    for cls in (pg.SerializationFailure, pg.DeadlockDetected, pg.LockNotAvailable,
                pg.AdminShutdown, pg.ConnectionFailure):
        assert is_transient(cls("x")), cls
        assert isinstance(classify(cls("x")), TransientRepositoryError), cls
        assert postgres_sink.sink_error(cls("x"), "copy").transient, cls
    for cls in (pg.UndefinedTable, pg.UniqueViolation, pg.SyntaxError):
        assert not is_transient(cls("x")), cls
        assert not postgres_sink.sink_error(cls("x"), "copy").transient, cls
    # a statement timeout: transient for the sink and the audit store alike (as before)
    timeout = pg.QueryCanceled("canceling statement due to statement timeout")
    assert is_transient(timeout)
    assert postgres_sink.sink_error(timeout, "copy").transient
    assert isinstance(classify(timeout), TransientRepositoryError)


def test_duckdb_file_locked_by_another_process_is_transient_a_bad_statement_is_not(
    tmp_path: Path,
) -> None:
    duckdb = pytest.importorskip("duckdb")
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.Error) as locked:
            duckdb.connect(str(path))
        assert is_transient(locked.value), str(locked.value)
    finally:
        holder.communicate("", timeout=30)
    con = duckdb.connect(str(path))
    try:
        with pytest.raises(duckdb.Error) as bad:
            con.execute("SELECT * FROM no_such_table")
        assert not is_transient(bad.value)
    finally:
        con.close()
