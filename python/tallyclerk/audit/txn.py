"""Transactions of the audit service: one connection each, retried on transient errors.

A unit of work is a function of an :class:`~tallyclerk.audit.repository.AuditRepository`
run inside one transaction of its own (``engine.begin()``: ``BEGIN IMMEDIATE`` on SQLite, see
:mod:`tallyclerk.audit.engine`). When it fails
with a :class:`~tallyclerk.errors.TransientRepositoryError` (database locked, deadlock,
serialization failure, connection lost) the whole transaction is run again after an
exponential backoff with jitter, at most ``settings.max_retries`` times; then the error is
logged at error level and raised. Anything else is raised at once.

On SQLite each attempt first takes this process's turn at the file
(:class:`~tallyclerk.sqlitegate.FileGate`), waiting at most ``gate_timeout_s`` (default: the busy
timeout); a turn not given back in time is a transient error like SQLite's own "database is
locked". ``busy_timeout_ms`` shortens SQLite's own wait for the write lock (other processes)
for this runner's transactions.

:class:`TransactionRunner` runs units of work of the SQLAlchemy Core repository on an
``Engine``; :class:`LiteTransactionRunner` the same retries, turns and busy waits for the
DB-API repository on a :class:`~tallyclerk.audit.liteengine.LiteEngine` (no SQLAlchemy: a
SQLite audit store). This module imports SQLAlchemy only when a Core unit of work runs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from tallyclerk.audit.sqlitebusy import busy_timeout
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.errors import TransientRepositoryError
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import FileGate, GateBusy

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine  # noqa: F401 (a base class's string argument)

    from tallyclerk.audit.dbapi_repository import DbapiRepository
    from tallyclerk.audit.liteengine import LiteEngine  # noqa: F401 (the same)
    from tallyclerk.audit.repository import AuditRepository

__all__ = ["LiteTransactionRunner", "TransactionRunner"]

log = logging.getLogger("tallyclerk.audit")

R = TypeVar("R")
E = TypeVar("E")


class _Runner(Generic[E]):
    """Runs units of work in transactions of their own, with retries.

    ``max_retries`` overrides the settings' (0: one attempt); ``give_up_level`` is the level of
    the message when the retries are exhausted (error, unless the caller expects it).
    """

    def __init__(
        self,
        engine: E,
        settings: Settings,
        *,
        label: str,
        max_retries: int | None = None,
        give_up_level: int = logging.ERROR,
        sleep: Callable[[float], None] = time.sleep,
        gate: FileGate | None = None,
        gate_timeout_s: float | None = None,
        busy_timeout_ms: int | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._label = label
        self._max_retries = settings.max_retries if max_retries is None else max_retries
        self._give_up_level = give_up_level
        self._sleep = sleep
        self._gate = gate
        self._busy_ms = busy_timeout_ms
        self._gate_timeout_s = (settings.busy_timeout_ms / 1000.0 if gate_timeout_s is None
                                else gate_timeout_s)

    def delay_ms(self, attempt: int) -> float:
        """The backoff before retry ``attempt`` (0-based): exponential, capped, jittered."""
        s = self._settings
        delay = min(s.backoff_max_ms, s.backoff_initial_ms * (2.0**attempt))
        return float(delay * random.uniform(0.5, 1.0))

    def _attempt(self, fn: Callable[[], R]) -> R:
        if self._busy_ms is not None:
            with busy_timeout(self._busy_ms):
                return self._in_turn(fn)
        return self._in_turn(fn)

    def _in_turn(self, fn: Callable[[], R]) -> R:
        with wrap_db_errors():
            if self._gate is None:
                return fn()
            try:
                self._gate.acquire(self._gate_timeout_s)
            except GateBusy as exc:
                raise TransientRepositoryError(f"database is locked: {exc}") from exc
            try:
                return fn()
            finally:
                self._gate.release()

    def retrying(self, fn: Callable[[], R], *, what: str) -> R:
        """Run ``fn`` (one whole transaction), retrying it on transient errors."""
        attempt = 0
        while True:
            try:
                return self._attempt(fn)
            except TransientRepositoryError as exc:
                if attempt >= self._max_retries:
                    log.log(
                        self._give_up_level,
                        "audit store %s: giving up trying to %s after %d attempt(s): %s",
                        self._label,
                        what,
                        attempt + 1,
                        exc,
                    )
                    # the error a user sees names the store and what was being done (the
                    # label is the masked URL: no password)
                    raise TransientRepositoryError(
                        f"audit store {self._label}: gave up trying to {what} after "
                        f"{attempt + 1} attempt(s): {exc}"
                    ) from exc
                delay = self.delay_ms(attempt)
                log.warning(
                    "audit store %s: transient error (%s); retrying to %s in %.0f ms",
                    self._label,
                    exc,
                    what,
                    delay,
                )
                self._sleep(delay / 1000.0)
                attempt += 1


class TransactionRunner(_Runner["Engine"]):
    """:class:`_Runner` of the SQLAlchemy Core repository on an ``Engine``."""

    def run(self, work: Callable[[AuditRepository], R], *, what: str) -> R:
        """Run ``work`` in one transaction of its own, retried on transient errors."""
        from tallyclerk.audit.repository import AuditRepository

        def once() -> R:
            with self._engine.begin() as connection:
                return work(AuditRepository(connection=connection))

        return self.retrying(once, what=what)


class LiteTransactionRunner(_Runner["LiteEngine"]):
    """:class:`_Runner` of the DB-API repository on a :class:`LiteEngine` (no SQLAlchemy)."""

    def run(self, work: Callable[[DbapiRepository], R], *, what: str) -> R:
        """Run ``work`` in one transaction of its own, retried on transient errors."""
        from tallyclerk.audit.dbapi_repository import DbapiRepository

        def once() -> R:
            with self._engine.begin() as connection:
                return work(DbapiRepository(connection=connection))

        return self.retrying(once, what=what)
