"""SQLite connection set-up shared by the audit engines (SQLAlchemy's and the plain ``sqlite3``
one of :mod:`tallyclerk.audit.liteengine`): the pragmas every connection gets, retried while
SQLite answers "database is locked", and the per-transaction busy timeout. No SQLAlchemy."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tallyclerk.settings import Settings

__all__ = ["begin_immediate", "busy_timeout", "connection_pragmas", "retry_busy"]


def connection_pragmas(settings: Settings) -> tuple[str, ...]:
    """What every audit connection to a SQLite file runs first, in order."""
    return (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={int(settings.busy_timeout_ms)}",
        f"PRAGMA synchronous={settings.synchronous}",  # validated: OFF|NORMAL|FULL|EXTRA
        "PRAGMA foreign_keys=ON",
    )


def retry_busy(cursor: sqlite3.Cursor, pragma: str, timeout_s: float) -> None:
    """Run a connection pragma, retrying while SQLite answers "database is locked".

    SQLite returns SQLITE_BUSY from the WAL switch without calling the busy handler when another
    connection is switching or recovering the same new file (two loads starting at once); the
    Rust writer retries the same way (``rust/data/sqlite.rs``, ``retry_busy``).
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.05)


_busy_ms: ContextVar[int | None] = ContextVar("tallyclerk_busy_ms", default=None)


@contextmanager
def busy_timeout(ms: int) -> Iterator[None]:
    """SQLite: a transaction begun in this block (on this thread) waits at most ``ms`` for the
    write lock, instead of the engine's busy timeout (the lease heartbeats' short wait)."""
    token = _busy_ms.set(ms)
    try:
        yield
    finally:
        _busy_ms.reset(token)


def begin_immediate(run: Callable[[str], object], default_ms: int) -> None:
    """``BEGIN IMMEDIATE`` through ``run(sql)``, under :func:`busy_timeout`'s wait if one
    is set (then the connection's own busy timeout, ``default_ms``, is restored)."""
    ms = _busy_ms.get()
    if ms is None:
        run("BEGIN IMMEDIATE")
        return
    run(f"PRAGMA busy_timeout={int(ms)}")
    try:
        run("BEGIN IMMEDIATE")
    finally:
        run(f"PRAGMA busy_timeout={int(default_ms)}")
