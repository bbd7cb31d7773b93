"""The two audit repository implementations behind one test harness: SQLAlchemy Core
(``AuditRepository`` on an engine's connection) and DB-API (``DbapiRepository`` on a plain
``sqlite3`` connection), each on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from tallyclerk.audit.dbapi_repository import DbapiRepository
from tallyclerk.audit.repository import AuditRepository

Repo = Any  # AuditRepository | DbapiRepository: the same methods

IMPLEMENTATIONS = ("core", "dbapi")


def dbapi_connect(path: str, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A connection set up as the audit engine sets up its own (driver transactions off,
    foreign keys on, the busy timeout)."""
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    """Units of work on one audit store through one implementation."""

    def __init__(self, kind: str, engine: Engine, path: str) -> None:
        self.kind = kind
        self.engine = engine
        self.path = path

    def repo_on(self, connection: Any) -> Repo:
        if self.kind == "core":
            return AuditRepository(connection=connection)
        return DbapiRepository(connection=connection)

    @contextmanager
    def begin(self) -> Iterator[Repo]:
        """A committed unit of work (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        if self.kind == "core":
            with self.engine.begin() as conn:
                yield AuditRepository(connection=conn)
            return
        conn = dbapi_connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield DbapiRepository(connection=conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def connect(self, busy_timeout_ms: int = 5000) -> Iterator[Repo]:
        """A unit of work that is rolled back at the end (Core's ``engine.connect()``: a
        transaction begun by the first statement; here a deferred ``BEGIN``, so the first
        write inside the repository is the one that meets a locked database)."""
        if self.kind == "core":
            with self.engine.connect() as conn:
                yield AuditRepository(connection=conn)
            return
        conn = dbapi_connect(self.path, busy_timeout_ms)
        try:
            conn.execute("BEGIN")
            try:
                yield DbapiRepository(connection=conn)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            conn.close()


def count_rows(path: str, table: str) -> int:
    """Rows of ``table`` as a third connection sees them."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()
