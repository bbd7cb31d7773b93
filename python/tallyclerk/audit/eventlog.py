"""The audit event log: events recorded behind the caller into ``tallyclerk_events``.

:class:`EventLog` owns the Rust :class:`~tallyclerk.WriteBehindQueue` and its
:class:`~tallyclerk.audit.events.EventWriter` (one writer thread; on SQLite it writes through
the audit store's one connection, in turns).
The audit service records the load's events through one; :class:`tallyclerk.AuditLog` gives
applications one of their own. With ``settings.audit_async`` off, events are inserted in a
transaction of their own at ``record()`` time instead (``insert_sync``).

How the queue is configured, and why (issue 12 item 4; the load's other queue, between a
file's reader and writer threads, is described in :mod:`tallyclerk.pipeline.stream`):

* many producers, one writer: ``record()`` is an append that never waits on the database;
  the writer inserts up to ``queue_max_batch`` rows per statement, lingering ``linger_ms``
  for a batch to fill;
* bounded (``queue_max_items``, ``queue_max_bytes``), ``on_full="block"`` for at most
  ``queue_put_timeout_ms``: an application stalls briefly behind a slow store, then the event
  is dead-lettered (counted, logged) rather than blocking it;
* retries: a batch failing with a *transient* error (a busy or dropped database, by the one
  classification in :mod:`tallyclerk.dberrors`) is retried ``max_retries`` times with backoff;
  a *permanent* one (``retry_if`` says no) is dead-lettered at once -- retrying it would
  hold every event behind it for the whole backoff and then lose it anyway;
* dead letters are counted in ``dead_lettered`` and logged at error level, never silent.
  Nothing exactly-once rests on events: a file's manifest row and rejects are written in
  the file's own transaction (the ledger), not through this queue;
* close: ``close(timeout)`` drains for at most ``timeout`` seconds, then dead-letters what is
  left (logged, with the total); ``flush()`` is the barrier a caller uses to read its events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tallyclerk import dberrors, retry
from tallyclerk._core import WriteBehindQueue
from tallyclerk.audit.events import AuditEngine, EventRow, EventWriter, event_store
from tallyclerk.dburl import mask_secrets
from tallyclerk.errors import FlushTimeout, QueueClosed, QueueFull
from tallyclerk.settings import Settings

__all__ = ["EventLog", "event_row", "retryable"]

log = logging.getLogger("tallyclerk.audit")

_now_ns = time.time_ns
_dumps = orjson.dumps


def retryable(exc: BaseException) -> bool:
    """Whether a batch of events that failed with ``exc`` may be written by trying again: the
    event writer's translated errors (``TransientRepositoryError``) and raw driver errors, by
    the one classification of :mod:`tallyclerk.dberrors`."""
    return retry.is_transient(exc) or dberrors.is_transient(exc)


def event_row(
    event_type: str,
    batch_id: str | None,
    file_id: int | None,
    payload: Mapping[str, Any] | None,
    correlation_id: str | None,
) -> EventRow:
    """One event in the row's shape, ``created_at`` now."""
    data = None if payload is None else _dumps(payload, default=str).decode()
    return (event_type, batch_id, file_id, data, _now_ns() // 1000, correlation_id)


class EventLog:
    """Write-behind event recording into the audit store at ``engine``.

    Args:
        engine: the audit store's engine (its schema already created): a SQLAlchemy
            ``Engine``, or a :class:`~tallyclerk.audit.liteengine.LiteEngine` for a SQLite
            store without SQLAlchemy (events written through its one connection, in turns
            at the file's gate, :func:`~tallyclerk.sqlitegate.gate_for` of its path).
        settings: queue bounds, linger, retries (``queue_*``, ``linger_ms``, ``max_retries``).
        label: the store's masked URL, for messages.
        insert_sync: inserts one row in a transaction of its own and returns its id (used when
            ``settings.audit_async`` is off).
        name: the writer thread's name.
    """

    def __init__(
        self,
        engine: AuditEngine,
        settings: Settings,
        *,
        label: str,
        insert_sync: Callable[[EventRow], int] | None = None,
        name: str = "tallyclerk-audit-writer",
    ) -> None:
        self.settings = settings
        self.label = label
        self._insert_sync = insert_sync
        self._lock = threading.Lock()
        self._closed = False
        self.dead_lettered = 0
        """Events that were not written (queue full, or failing after retries)."""
        self._full_drops = 0
        self._writer: EventWriter | None = None
        self._gate = event_store(engine).gate
        self._queue: WriteBehindQueue | None = None
        s = settings
        if s.audit_async or insert_sync is None:
            self._writer = EventWriter(engine, s)
            self._queue = WriteBehindQueue(
                self._writer,
                max_items=s.queue_max_items,
                max_bytes=s.queue_max_bytes or None,
                max_batch=s.queue_max_batch,
                linger_ms=s.linger_ms,
                on_full="block",
                put_timeout=s.queue_put_timeout_ms / 1000.0,
                max_retries=s.max_retries,
                backoff_initial_ms=s.backoff_initial_ms,
                backoff_max_ms=s.backoff_max_ms,
                dead_letter=self._dead_letter,
                name=name,
                retry_if=retryable,
            )
        self._put = None if self._queue is None else self._queue.put

    @property
    def put(self) -> Callable[[EventRow, int], None]:
        """The queue's own ``put(row, size)`` (no Python layer in between): ``QueueFull``
        after ``queue_put_timeout_ms`` (then call :meth:`dropped`), ``QueueClosed`` after
        close. Asynchronous mode only."""
        assert self._put is not None, "the event log writes synchronously"
        return self._put

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosed(f"audit event log for {self.label} is closed")

    def record(
        self,
        event_type: str,
        batch_id: str | None = None,
        file_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Queue one event (``created_at`` now); never waits on the database.

        The payload is serialized here (orjson; values JSON cannot hold are stored as their
        ``str``). If the queue stays full for ``settings.queue_put_timeout_ms``, the event is
        dead-lettered: counted in ``dead_lettered`` and logged at error level (the first, then
        every 1,000th, and the total at :meth:`close`). Raises ``QueueClosed`` after close.
        """
        put = self._put
        if put is None:
            self._check_open()
            assert self._insert_sync is not None
            self._insert_sync(event_row(event_type, batch_id, file_id, payload, correlation_id))
            return
        if payload is None:
            data = None
            size = 64
        else:
            try:
                data = _dumps(payload).decode()
            except TypeError:  # a value JSON cannot hold: stored as its str
                data = _dumps(payload, default=str).decode()
            size = 64 + len(data)
        row = (event_type, batch_id, file_id, data, _now_ns() // 1000, correlation_id)
        try:
            put(row, size)
        except QueueFull:
            self.dropped(row)

    def record_sync(
        self,
        event_type: str,
        batch_id: str | None = None,
        file_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Record one event in a transaction of its own (waits on the database); its id."""
        self._check_open()
        if self._insert_sync is None:
            raise TypeError("this event log has no synchronous insert")
        return self._insert_sync(event_row(event_type, batch_id, file_id, payload,
                                           correlation_id))

    def dropped(self, row: EventRow) -> None:
        """An event that found the queue full for ``queue_put_timeout_ms``: dead-lettered."""
        with self._lock:
            self.dead_lettered += 1
            self._full_drops += 1
            drops = self._full_drops
        if drops == 1 or drops % 1000 == 0:
            log.error(
                "audit store %s: the audit event queue stayed full for %.0f ms; %d event(s) "
                "dead-lettered so far (latest: %s)",
                self.label,
                self.settings.queue_put_timeout_ms,
                drops,
                row[0],
            )

    def _dead_letter(self, batch: list[Any], exc: BaseException) -> None:
        with self._lock:
            self.dead_lettered += len(batch)
        log.error(
            "audit store %s: %d audit event(s) could not be written and were dead-lettered "
            "(%d so far): %s",
            self.label,
            len(batch),
            self.dead_lettered,
            mask_secrets(f"{type(exc).__name__}: {exc}"),
        )

    def flush(self, timeout: float | None = None) -> None:
        """Return once every event recorded before this call is written (or dead-lettered).

        Raises ``FlushTimeout`` when ``timeout`` passes first, and at once when called inside
        a data transaction this thread holds on the same SQLite file (the events can only be
        written after it ends); ``QueueClosed`` after close.
        """
        self._check_open()
        if self._queue is not None:
            if self._gate is not None and self._gate.data_open_here:
                raise FlushTimeout(
                    f"audit event log for {self.label}: flush() inside this thread's own "
                    "transaction on the same database file would wait for itself; the events "
                    "are written when the transaction ends"
                )
            self._queue.flush(timeout)

    def stats(self) -> dict[str, Any]:
        """The queue's counters (``{}`` in synchronous mode)."""
        return {} if self._queue is None else self._queue.stats().as_dict()

    def close(self, timeout: float | None = 1.0) -> bool:
        """Drain the queue (bounded by ``timeout``; None: until written) and stop the writer.

        Events not written by then are dead-lettered and logged. Returns True when the writer
        thread stopped (its connection is then closed). Idempotent.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        stopped = True
        if self._queue is not None:
            if self._writer is not None:
                self._writer.closing(None if timeout is None else max(0.0, timeout))
            try:
                self._queue.close(timeout=None if timeout is None else max(0.0, timeout))
            except FlushTimeout as exc:
                stopped = False
                log.error(
                    "audit store %s: the audit event writer did not drain within %.2f s: %s",
                    self.label, timeout or 0.0, exc,
                )
        if self._writer is not None and stopped:
            self._writer.close()
        if self.dead_lettered:
            log.error(
                "audit store %s closed: %d audit event(s) were dead-lettered in all",
                self.label,
                self.dead_lettered,
            )
        return stopped
