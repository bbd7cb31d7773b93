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
"""

from __future__ import annotations

import functools
import itertools
import logging
import sqlite3
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine

from tallyclerk.audit.sqlgen import insert_events_sql
from tallyclerk.audit.translate import classify, db_errors, wrap_db_errors
from tallyclerk.errors import PermanentRepositoryError
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import GateBusy, gate_of

__all__ = ["EventRow", "EventWriter"]

log = logging.getLogger("tallyclerk.audit")

EventRow = tuple[str, "str | None", "int | None", "str | None", int, "str | None"]
"""(type, batch_id, file_id, payload JSON text, created_at as epoch microseconds, correlation id)"""

_COLUMNS = 6
# SQLite's bound on parameters per statement: 32766 since 3.32, 999 before
_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
ROWS_PER_STATEMENT = min(2000, _MAX_PARAMS // _COLUMNS)
_chain = itertools.chain.from_iterable


@functools.lru_cache(maxsize=32)
def _multirow_sql(single_row_sql: str, rows: int) -> str:
    """``INSERT ... VALUES (?, ...), (?, ...)`` for ``rows`` rows, from the one-row statement."""
    head, sep, values = single_row_sql.rpartition(" VALUES ")
    assert sep, single_row_sql
    return head + sep + ", ".join([values] * rows)


class EventWriter:
    """Writes batches of event rows; called by one thread only."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._dialect = engine.dialect.name
        self._sql = insert_events_sql(self._dialect).sql
        self._gate = gate_of(engine)
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
            with wrap_db_errors():
                conn = self._engine.raw_connection()
                try:
                    cursor = conn.cursor()
                    try:
                        self._insert_sqlite(cursor, batch)
                    finally:
                        cursor.close()
                finally:
                    conn.close()  # back to the pool
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
                proxied = self._engine.raw_connection()
                proxied.detach()  # ours alone: never returned to the pool
                conn = self._dbapi = proxied
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
