"""The plain-``sqlite3`` executor and SQLAlchemy's answer alike: rowcounts of execute and
executemany, query rows, and the caller's transaction left to the caller."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tallyclerk.audit.dbapi_executor import DbapiExecutor
from tallyclerk.audit.executor import SqlAlchemyExecutor


def _run(executor: Any) -> list[Any]:
    out: list[Any] = [executor.dialect_name]
    executor.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    out.append(executor.executemany("INSERT INTO t VALUES (?, ?)", [(1, "x"), (2, "y"), [3, None]]))
    out.append(executor.executemany("INSERT INTO t VALUES (?, ?)", []))
    out.append(executor.execute("UPDATE t SET b = ? WHERE a > ?", ("z", 1)))
    out.append(executor.execute("DELETE FROM t WHERE a = ?", [9]))
    out.append(executor.query("SELECT a, b FROM t ORDER BY a"))
    out.append(executor.query("SELECT count(*) FROM t WHERE b = ?", ("z",)))
    return out


def test_it_answers_as_the_sqlalchemy_executor(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'core.db'}")
    try:
        with engine.begin() as conn:
            core = _run(SqlAlchemyExecutor(conn))
    finally:
        engine.dispose()
    conn = sqlite3.connect(tmp_path / "plain.db", isolation_level=None)
    try:
        conn.execute("BEGIN")
        plain = _run(DbapiExecutor(conn))
        assert conn.in_transaction  # never commits
        conn.execute("ROLLBACK")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            conn.execute("SELECT * FROM t")
    finally:
        conn.close()
    assert plain == core
    assert core[1:5] == [3, 0, 2, 0]
