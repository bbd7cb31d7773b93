"""The one place that decides whether a database error is transient (retrying may succeed) or
permanent, for every sink, the audit store and the Rust writer's errors.

Transient:

* SQLite busy or locked (``database is locked``, ``database table is locked``,
  ``database is busy``); the Rust writer (``tallyclerk.SqliteWriter``, the SQLite sink) sets
  ``SinkError.transient`` for SQLITE_BUSY and SQLITE_LOCKED, the same two answers;
* a PostgreSQL SQLSTATE of :data:`TRANSIENT_SQLSTATES` or of class ``08`` (connection
  exception), and any psycopg ``OperationalError`` (the connection is unusable);
* a connection SQLAlchemy invalidated, a disconnection, a pool timeout;
* DuckDB: a transaction conflict (``TransactionException``) or a file lock held by another
  process (``IOException`` "Could not set lock");
* for drivers tallyclerk does not know (a SQLAlchemy sink on another database), an
  ``OperationalError`` whose message names a lock, a deadlock, a serialization failure, a
  timeout or the connection.

A statement timeout (``57014``, psycopg's ``QueryCanceled``, an ``OperationalError``) is
transient: the retries are bounded (``max_retries`` with backoff; a file's by the batch's
watchdog too).
"""

from __future__ import annotations

import sqlite3
import sys

__all__ = ["TRANSIENT_SQLSTATES", "is_transient", "psycopg_class", "sqlstate"]

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
"""Serialization failure, deadlock, lock not available, query canceled (statement timeout),
admin shutdown, crash shutdown, cannot connect now; and the whole class ``08`` (connection)."""

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_OTHER_DRIVER_MARKERS = (
    "database is locked",
    "database table is locked",
    "deadlock",
    "could not serialize",
    "serialization failure",
    "connection",
    "server closed",
    "timeout",
    "busy",
)


_DUCKDB_MARKERS = ("conflict", "could not set lock", "lock on file")


def _loaded_class(module_name: str, name: str) -> tuple[type[Exception], ...]:
    module = sys.modules.get(module_name)
    cls = getattr(module, name, None) if module is not None else None
    return (cls,) if isinstance(cls, type) and issubclass(cls, Exception) else ()


def psycopg_class(name: str) -> tuple[type[Exception], ...]:
    """``psycopg.<name>`` if psycopg is loaded, else nothing (a psycopg exception can only
    exist once psycopg has been imported, so a SQLite-only process never pays for it)."""
    return _loaded_class("psycopg", name)


def _sa_class(name: str) -> tuple[type[Exception], ...]:
    """``sqlalchemy.exc.<name>`` if SQLAlchemy is loaded, else nothing (as psycopg's)."""
    return _loaded_class("sqlalchemy.exc", name)


def sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the transaction that raised ``exc`` may succeed (see the module doc).

    ``exc`` may be a SQLAlchemy error (its driver error is looked at), a ``sqlite3`` or psycopg
    error, or a tallyclerk error carrying ``transient`` (the Rust writer's ``SinkError``).
    """
    if isinstance(exc, (*_sa_class("DisconnectionError"), *_sa_class("TimeoutError"))):
        return True
    if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        lowered_duck = str(exc).lower()
        return type(exc).__name__ == "TransactionException" or any(
            m in lowered_duck for m in _DUCKDB_MARKERS)
    orig: BaseException = exc
    if isinstance(exc, _sa_class("DBAPIError")):
        if getattr(exc, "connection_invalidated", False):
            return True
        driver_error = getattr(exc, "orig", None)
        if isinstance(driver_error, BaseException):
            orig = driver_error
    elif not isinstance(exc, (sqlite3.Error, *_sa_class("SQLAlchemyError"),
                              *psycopg_class("Error"))):
        flag = getattr(exc, "transient", None)
        return bool(flag) if isinstance(flag, bool) else False
    state = sqlstate(orig)
    if state is not None and (state in TRANSIENT_SQLSTATES or state.startswith("08")):
        return True
    lowered = str(orig).lower()
    if isinstance(orig, sqlite3.OperationalError):
        return any(m in lowered for m in _SQLITE_BUSY)
    if isinstance(orig, psycopg_class("OperationalError")):
        return True
    if isinstance(orig, (sqlite3.Error, *psycopg_class("Error"))):
        return False
    return isinstance(exc, _sa_class("OperationalError")) and any(
        m in lowered for m in _OTHER_DRIVER_MARKERS)
