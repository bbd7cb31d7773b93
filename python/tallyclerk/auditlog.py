"""``tallyclerk.AuditLog``: the loader's write-behind audit event log, for applications.

::

    with tallyclerk.AuditLog("sqlite:///audit.db") as events:
        events.record("order_paid", order=42, amount="9.90")   # returns at once
        events.flush()                                          # everything above committed

Events land in the audit store's ``tallyclerk_events`` table, the one ``tallyclerk load`` writes
(``tallyclerk status --events`` shows them), with ``created_at`` the time of the ``record()``
call. One Rust writer thread inserts them in batches (on SQLite through the store's one
connection, taking turns with a load into the same file in this process).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import orjson

from tallyclerk.errors import ConfigError, QueueClosed, QueueFull
from tallyclerk.settings import Settings

__all__ = ["AuditLog"]

_dumps = orjson.dumps
_now_ns = time.time_ns


class AuditLog:
    """A write-behind event log into the audit store at ``url``.

    Args:
        url: the audit store (``sqlite:///path.db`` or ``postgresql://...``); its tables are
            created if missing.
        settings: a :class:`~tallyclerk.Settings` or a mapping of overrides (the queue's bounds
            ``queue_max_items``/``queue_max_bytes``, ``queue_put_timeout_ms``, ``linger_ms``,
            retries); default: the config file and ``TALLYCLERK_*`` variables.
        correlation_id: stored with every event (default none).

    ``record()`` never waits on the database while the queue has room; if the database falls
    so far behind that the queue stays full for ``queue_put_timeout_ms``, the event is
    dead-lettered (counted in :attr:`dead_lettered`, logged at error level), never silently
    dropped. A batch failing with a transient error is retried with backoff.

    Raises:
        ConfigError: a bad URL or setting.
        StoreError: the store cannot be reached or was written by a newer tallyclerk.
    """

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        from tallyclerk.audit import backend
        from tallyclerk.audit.eventlog import EventLog
        from tallyclerk.dburl import parse_url
        from tallyclerk.settings import load_settings

        if isinstance(settings, Settings):
            resolved = settings
        elif settings is None or isinstance(settings, Mapping):
            resolved = load_settings(overrides=settings)
        else:
            raise ConfigError("settings must be a Settings or a mapping of overrides")
        if not resolved.audit_async:
            from dataclasses import replace

            resolved = replace(resolved, audit_async=True)
        db = parse_url(url)
        self.url = db.masked
        self.correlation_id = correlation_id
        # SQLite: plain sqlite3 (no SQLAlchemy import); a server: SQLAlchemy Core
        self._engine = backend.open_engine(db, resolved)
        try:
            runner = backend.runner(self._engine, resolved, label=self.url,
                                    gate=backend.gate(self._engine))
            runner.retrying(lambda: backend.ensure_schema(self._engine),
                            what="create the audit schema")
            self._log = EventLog(self._engine, resolved, label=self.url,
                                 name="tallyclerk-auditlog-writer")
        except BaseException:
            backend.dispose(self._engine)
            raise
        self._put = self._log.put
        self._dropped = self._log.dropped

    # -- recording --------------------------------------------------------------------------

    def record(self, kind: str, /, **fields: Any) -> None:
        """Record one event of type ``kind`` with ``fields`` as its JSON payload.

        Returns at once (the row is written behind the caller); ``created_at`` is now. Values
        JSON cannot hold are stored as their ``str``.

        Raises:
            QueueClosed: after :meth:`close`.
        """
        if fields:
            try:
                data: str | None = _dumps(fields).decode()
            except TypeError:  # a value JSON cannot hold: stored as its str
                data = _dumps(fields, default=str).decode()
            size = 64 + len(data)  # type: ignore[arg-type]
        else:
            data, size = None, 64
        row = (kind, None, None, data, _now_ns() // 1000, self.correlation_id)
        try:
            self._put(row, size)
        except QueueFull:
            self._dropped(row)

    def flush(self, timeout: float | None = None) -> None:
        """Return when every event recorded before this call is committed (or dead-lettered).

        Raises:
            FlushTimeout: ``timeout`` seconds passed first (the events stay queued).
            QueueClosed: after :meth:`close`.
        """
        self._log.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued (within ``timeout`` seconds; None: all of it), stop the
        writer thread and close the connections. Idempotent; ``record`` then raises
        ``QueueClosed``."""
        if self._log.closed:
            return
        from tallyclerk.audit import backend

        stopped = self._log.close(timeout)
        backend.dispose(self._engine, close=stopped)

    @property
    def closed(self) -> bool:
        return self._log.closed

    @property
    def dead_lettered(self) -> int:
        """Events that could not be written (queue full too long, or failing after retries)."""
        return self._log.dead_lettered

    def stats(self) -> dict[str, Any]:
        """The queue's counters: ``enqueued``, ``written``, ``dead_lettered``, ``depth``, ..."""
        return self._log.stats()

    def __enter__(self) -> AuditLog:
        if self._log.closed:
            raise QueueClosed(f"audit log for {self.url} is closed")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._log.closed else "open"
        return f"<AuditLog {self.url} {state}>"
