"""The audit event writer: the sink of the service's write-behind queue.

``record()`` puts one tuple per event on the Rust :class:`~tallyclerk.WriteBehindQueue`, already
in the row's shape: ``(type, batch_id, file_id, payload_json, created_at_us, correlation_id)``
(the payload serialized with orjson at ``record()`` time, so a payload the caller mutates later,
or one that cannot be serialized, is caught at the call site, not in the writer). The queue's
single writer thread hands batches to :class:`EventWriter`, which inserts each batch with one
``executemany`` and one commit on a DBAPI connection of its own: opened on the writer thread at
its first batch, detached from the pool (no other thread ever gets it) and closed by
:meth:`EventWriter.close` once the writer thread has stopped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine

from tallyclerk.audit.sqlgen import insert_events_sql
from tallyclerk.audit.translate import DB_ERRORS, classify, wrap_db_errors

__all__ = ["EventRow", "EventWriter"]

log = logging.getLogger("tallyclerk.audit")

EventRow = tuple[str, "str | None", "int | None", "str | None", int, "str | None"]
"""(type, batch_id, file_id, payload JSON text, created_at as epoch microseconds, correlation id)"""


class EventWriter:
    """Writes batches of event rows with its own connection; called by one thread only."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sql = insert_events_sql(self._dialect).sql
        self._conn: Any = None
        self.batches = 0
        self.rows = 0

    def _connect(self) -> Any:
        with wrap_db_errors():
            proxied = self._engine.raw_connection()
            proxied.detach()  # ours alone: never returned to the pool, never handed to a thread
            return proxied

    def __call__(self, batch: list[EventRow]) -> None:
        if not batch:
            return
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        rows: Any = batch
        if self._dialect != "sqlite":
            rows = [
                (t, b, f, p, datetime.fromtimestamp(c / 1e6, timezone.utc), k)
                for (t, b, f, p, c, k) in batch
            ]
        try:
            cursor = conn.cursor()
            try:
                if self._dialect == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(self._sql, rows)
            finally:
                cursor.close()
            conn.commit()
        except DB_ERRORS as exc:
            self._recover(conn)
            translated = classify(exc)
            if translated is None or translated is exc:
                raise
            raise translated from exc
        self.batches += 1
        self.rows += len(batch)

    def _recover(self, conn: Any) -> None:
        """Roll back after a failed batch; drop the connection if it is unusable."""
        try:
            conn.rollback()
        except DB_ERRORS as exc:  # the connection is broken: reconnect next time
            log.warning("audit event writer: rollback failed (%s); reconnecting", exc)
            self._discard()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except DB_ERRORS as exc:  # closing a broken connection
                log.warning("audit event writer: closing its connection failed: %s", exc)

    def close(self) -> None:
        """Close the writer's connection (call only after the writer thread has stopped)."""
        self._discard()
