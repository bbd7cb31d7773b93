"""Turns at one SQLite file's write lock for the writers of this process.

SQLite lets one connection write at a time; a connection that finds the write lock taken
waits in SQLite's busy handler, which sleeps in steps of up to 100 ms and gives up after the
busy timeout. That is right for other processes, wrong for this one: a load holds the lock for
a whole file's transaction (the data, its rejects and its manifest row commit together), and
the audit store's writers in the same process (event batches, lease heartbeats, the ledger's
own transactions) would sleep through it, then wake up to 100 ms late, or give up.

So every writer of a SQLite file in this process takes a turn at that file's :class:`FileGate`
(one per file, found by :func:`gate_for`) before it begins a write transaction, and gives it
back when the transaction ends: a writer waits on an in-process condition, woken the moment the
turn is given back, and SQLite's busy handler only ever waits for other processes. The data
transaction of a load takes its turn as ``data=True``; a lease heartbeat that finds such a turn
held does not wait for it (see :meth:`FileGate.owe`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tallyclerk.errors import SinkError

__all__ = ["DataTurn", "FileGate", "GateBusy", "gate_for", "gate_of"]

log = logging.getLogger("tallyclerk.audit")


class GateBusy(Exception):
    """The file's turn was not given back within the timeout."""


class FileGate:
    """One SQLite file's write turn in this process (reentrant for the thread holding it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._cond = threading.Condition(threading.Lock())
        self._holder: int | None = None
        self._depth = 0
        self._data = False
        self._owed: dict[str, Callable[[], None]] = {}

    @property
    def data_open(self) -> bool:
        """A load's data transaction holds the turn."""
        return self._data

    @property
    def data_open_here(self) -> bool:
        """This thread holds the turn for a data transaction."""
        return self._data and self._holder == threading.get_ident()

    def acquire(
        self, timeout: float | None = None, *, data: bool = False, not_after_data: bool = False
    ) -> None:
        """Take the turn, waiting at most ``timeout`` seconds (None: until given back);
        ``not_after_data``: do not wait for a data transaction's turn.

        Raises:
            GateBusy: not given back in time (or held by a data transaction).
        """
        me = threading.get_ident()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            if self._holder == me:
                self._depth += 1
                return
            while self._holder is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or (not_after_data and self._data):
                    raise GateBusy(
                        f"{self.path}: the database is being written by "
                        f"{'a load' if self._data else 'another thread'} of this process"
                    )
                self._cond.wait(left)
            self._holder, self._depth, self._data = me, 1, data

    def release(self) -> None:
        """Give the turn back; after a data transaction, run what was owed (:meth:`owe`)."""
        with self._cond:
            if self._holder is None:
                raise RuntimeError(f"{self.path}: the write turn is not taken")
            self._depth -= 1
            if self._depth:
                return
            was_data = self._data
            self._holder, self._data = None, False
            owed = list(self._owed.values()) if was_data else []
            if was_data:
                self._owed.clear()
            self._cond.notify_all()  # waiters that gave up must not swallow the wake-up
        for work in owed:
            try:
                work()
            except Exception:  # the transaction has ended: its outcome must not change
                log.exception("%s: work owed after a data transaction failed", self.path)

    @contextmanager
    def turn(self, timeout: float | None = None, *, data: bool = False) -> Iterator[None]:
        self.acquire(timeout, data=data)
        try:
            yield
        finally:
            self.release()

    def owe(self, key: str, work: Callable[[], None]) -> None:
        """Run ``work`` (on the releasing thread) as soon as the data transaction holding the
        turn ends; at once if none does. ``work`` must not raise. One per ``key``."""
        with self._cond:
            if self._data:
                self._owed[key] = work
                return
        work()

    def forgive(self, key: str) -> None:
        """Drop what ``key`` owes."""
        with self._cond:
            self._owed.pop(key, None)


_gates: weakref.WeakValueDictionary[str, FileGate] = weakref.WeakValueDictionary()
_gates_lock = threading.Lock()


def gate_of(engine: Any) -> FileGate | None:
    """The gate of a SQLAlchemy engine's SQLite file; None for other databases."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return gate_for(str(engine.url.database))


def gate_for(path: str) -> FileGate:
    """The gate of the SQLite file at ``path`` (one per file in this process; keep a reference
    while you use it)."""
    key = os.path.normcase(os.path.realpath(path))
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = FileGate(key)
        return gate


class DataTurn:
    """A sink's turn at its file for one data transaction: :meth:`take` before it begins,
    :meth:`give_back` once it has ended (idempotent)."""

    def __init__(self, gate: FileGate | None, timeout_s: float) -> None:
        self._gate = gate
        self._timeout_s = timeout_s
        self._held = False

    def take(self) -> None:
        """Raises ``SinkError`` (transient) when the turn is not given back within the
        timeout, as SQLite's own "database is locked" would."""
        if self._gate is None:
            return
        try:
            self._gate.acquire(self._timeout_s, data=True)
        except GateBusy as exc:
            raise SinkError(f"database is locked: {exc}", transient=True) from exc
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            assert self._gate is not None
            self._gate.release()
