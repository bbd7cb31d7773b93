"""The audit event writer: the sink of the service's write-behind queue.

``record()`` puts one tuple per event on the Rust :class:`~tallyclerk.WriteBehindQueue`, already
in the row's shape: ``(type, batch_id, file_id, payload_json, created_at_us, correlation_id)``
(the payload serialized with orjson at ``record()`` time, so a payload the caller changes later,
or one that cannot be serialized, is caught at the call site, not in the writer). The queue's
single writer thread hands batches to :class:`EventWriter`, which inserts each batch with one
``executemany`` and one commit:

* SQLite: on the audit store's one pooled connection (the engine's), after taking this
  process's turn at the file (:class:`~tallyclerk.sqlitegate.FileGate`): while a load's data
  transaction holds the file, the writer waits for it on that in-process condition, not in
  SQLite's busy handler, and writes the moment it ends (the events stay queued meanwhile;
  ``record()`` does not wait). A batch is one multi-row ``INSERT ... VALUES (...), (...)``
  statement (its own transaction); a batch too big for one statement is several statements in
  one ``BEGIN IMMEDIATE`` transaction;
* PostgreSQL: a DBAPI connection of its own, detached from the engine's pool (no other thread
  ever gets it), opened on the writer thread at its first batch and closed by
  :meth:`EventWriter.close` once that thread has stopped.

The engine is either a SQLAlchemy ``Engine`` (PostgreSQL, or SQLite through Core) or a
:class:`~tallyclerk.audit.liteengine.LiteEngine` (SQLite on ``sqlite3``, no SQLAlchemy: its
:meth:`~tallyclerk.audit.liteengine.LiteEngine.raw` is the one connection for the turn, and
the file's gate is :func:`~tallyclerk.sqlitegate.gate_for` of its path).
:func:`event_store` adapts either to the :class:`EventStore` the writer uses.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, Union

from tallyclerk.audit.liteengine import LiteEngine
from tallyclerk.audit.sqlgen import insert_events_sql
from tallyclerk.audit.translate import classify, db_errors, wrap_db_errors
from tallyclerk.errors import PermanentRepositoryError
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import FileGate, GateBusy, gate_for, gate_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["AuditEngine", "EventRow", "EventStore", "EventWriter", "event_store"]

log = logging.getLogger("tallyclerk.audit")

EventRow = tuple[str, "str | None", "int | None", "str | None", int, "str | None"]
"""(type, batch_id, file_id, payload JSON text, created_at as epoch microseconds, correlation id)"""

_COLUMNS = 6
# SQLite's bound on parameters per statement: 32766 since 3.32, 999 before
_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
ROWS_PER_STATEMENT = min(2000, _MAX_PARAMS // _COLUMNS)
_chain = itertools.chain.from_iterable


AuditEngine = Union["Engine", LiteEngine]
"""The audit store's engine, as the event log takes it."""


class EventStore(Protocol):
    """What the event writer needs of the audit store's engine."""

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    @property
    def gate(self) -> FileGate | None:
        """The SQLite file's gate (this process's turn at its write lock); None otherwise."""
        ...

    def turn(self) -> AbstractContextManager[Any]:
        """SQLite: the store's DB-API connection outside any transaction, for one batch
        (within the gate's turn, which the caller holds)."""
        ...

    def own_connection(self) -> Any:
        """Other databases: a DB-API connection for the writer alone (it closes it)."""
        ...


class _CoreStore:
    """A SQLAlchemy ``Engine``: its pooled connection for a turn, a detached one of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.dialect_name: str = engine.dialect.name
        self.gate = gate_of(engine)

    @contextmanager
    def turn(self) -> Iterator[Any]:
        conn = self._engine.raw_connection()
        try:
            yield conn
        finally:
            conn.close()  # back to the pool

    def own_connection(self) -> Any:
        proxied = self._engine.raw_connection()
        proxied.detach()  # ours alone: never returned to the pool
        return proxied


class _LiteStore:
    """A :class:`LiteEngine`: its one connection, for the turn (no SQLAlchemy)."""

    dialect_name = "sqlite"

    def __init__(self, engine: LiteEngine) -> None:
        self._engine = engine
        self.gate: FileGate | None = gate_for(engine.path)

    def turn(self) -> AbstractContextManager[Any]:
        return self._engine.raw()

    def own_connection(self) -> Any:
        raise AssertionError("a SQLite store writes through its own connection, in turns")


def event_store(engine: AuditEngine) -> EventStore:
    """The :class:`EventStore` of a SQLAlchemy ``Engine`` or a :class:`LiteEngine`."""
    if isinstance(engine, LiteEngine):
        return _LiteStore(engine)
    return _CoreStore(engine)


@functools.lru_cache(maxsize=32)
def _multirow_sql(single_row_sql: str, rows: int) -> str:
    """``INSERT ... VALUES (?, ...), (?, ...)`` for ``rows`` rows, from the one-row statement."""
    head, sep, values = single_row_sql.rpartition(" VALUES ")
    assert sep, single_row_sql
    return head + sep + ", ".join([values] * rows)


class EventWriter:
    """Writes batches of event rows; called by one thread only."""

    def __init__(self, engine: AuditEngine, settings: Settings) -> None:
        self._store = event_store(engine)
        self._settings = settings
        self._dialect = self._store.dialect_name
        self._sql = insert_events_sql(self._dialect).sql
        self._gate = self._store.gate
        self._dbapi: Any = None
        self._give_up_at: float | None = None
        self.batches = 0
        self.rows = 0

    def __call__(self, batch: list[EventRow]) -> None:
        if not batch:
            return
        if self._gate is not None:
            self._write_sqlite(batch)
        else:
            self._write_dbapi(batch)
        self.batches += 1
        self.rows += len(batch)

    def closing(self, timeout: float | None) -> None:
        """The log is closing within ``timeout`` seconds (None: no bound): a batch still
        waiting for the file's turn then gives up (and is dead-lettered) instead of keeping
        the writer thread."""
        self._give_up_at = None if timeout is None else time.monotonic() + timeout

    # --- SQLite: the audit store's connection, in turns -----------------------------------------

    def _take_turn(self, n: int) -> None:
        gate = self._gate
        assert gate is not None
        while True:
            try:
                gate.acquire(0.1)
                return
            except GateBusy as exc:
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    raise PermanentRepositoryError(
                        f"writing {n} audit event(s): the event log closed while {exc}"
                    ) from exc

    def _write_sqlite(self, batch: list[EventRow]) -> None:
        gate = self._gate
        assert gate is not None
        self._take_turn(len(batch))
        try:
            with wrap_db_errors(), self._store.turn() as conn:
                cursor = conn.cursor()
                try:
                    self._insert_sqlite(cursor, batch)
                finally:
                    cursor.close()
        finally:
            gate.release()

    def _insert_sqlite(self, cursor: Any, batch: list[EventRow]) -> None:
        n = len(batch)
        if n <= ROWS_PER_STATEMENT:
            cursor.execute(_multirow_sql(self._sql, n), list(_chain(batch)))
            return
        cursor.execute("BEGIN IMMEDIATE")
        try:
            for k in range(0, n, ROWS_PER_STATEMENT):
                chunk = batch[k : k + ROWS_PER_STATEMENT]
                cursor.execute(_multirow_sql(self._sql, len(chunk)), list(_chain(chunk)))
            cursor.execute("COMMIT")
        except BaseException:
            if cursor.connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise

    # --- other databases: a detached DBAPI connection ------------------------------------------

    def _write_dbapi(self, batch: list[EventRow]) -> None:
        conn = self._dbapi
        if conn is None:
            with wrap_db_errors():
                conn = self._dbapi = self._store.own_connection()
        rows = [
            (t, b, f, p, datetime.fromtimestamp(c / 1e6, timezone.utc), k)
            for (t, b, f, p, c, k) in batch
        ]
        try:
            cursor = conn.cursor()
            try:
                cursor.executemany(self._sql, rows)
            finally:
                cursor.close()
            conn.commit()
        except db_errors() as exc:
            self._recover(conn)
            translated = classify(exc)
            if translated is None or translated is exc:
                raise
            raise translated from exc

    def _recover(self, conn: Any) -> None:
        """Roll back after a failed batch; drop the connection if it is unusable."""
        try:
            conn.rollback()
        except db_errors() as exc:  # the connection is broken: reconnect next time
            log.warning("audit event writer: rollback failed (%s); reconnecting", exc)
            self._discard_dbapi()

    def _discard_dbapi(self) -> None:
        conn, self._dbapi = self._dbapi, None
        if conn is not None:
            try:
                conn.close()
            except db_errors() as exc:  # closing a broken connection
                log.warning("audit event writer: closing its connection failed: %s", exc)

    def close(self) -> None:
        """Close the writer's own connection, if any (call only after the writer thread has
        stopped)."""
        self._discard_dbapi()
