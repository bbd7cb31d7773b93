"""The one place database errors become :class:`~tallyclerk.errors.RepositoryError` subclasses.

:func:`wrap_db_errors` wraps every repository operation, transaction and event write. It knows
SQLAlchemy's wrapped exceptions and the raw DBAPI ones (``sqlite3``, psycopg) the event writer
sees, and sorts them into:

* :class:`~tallyclerk.errors.TransientRepositoryError`: retrying the transaction may succeed
  (SQLite busy/locked, PostgreSQL serialization failure 40001, deadlock 40P01, lock timeout
  55P03, a lost or invalidated connection, a pool timeout);
* :class:`~tallyclerk.errors.DuplicateKeyError` / :class:`~tallyclerk.errors.IntegrityError`:
  a constraint said no;
* :class:`~tallyclerk.errors.PermanentRepositoryError`: anything else.

Messages never carry a password (:func:`tallyclerk.dburl.mask_secrets`).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from tallyclerk.dburl import mask_secrets
from tallyclerk.errors import (
    DuplicateKeyError,
    IntegrityError,
    PermanentRepositoryError,
    RepositoryError,
    TransientRepositoryError,
)

__all__ = ["classify", "db_errors", "wrap_db_errors"]

_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
_UNIQUE_SQLSTATE = "23505"
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")

_BASE_ERRORS: tuple[type[Exception], ...] = (sa_exc.SQLAlchemyError, sqlite3.Error)


def _psycopg(name: str) -> tuple[type[Exception], ...]:
    """``psycopg.<name>`` if psycopg is loaded, else nothing.

    A psycopg exception can only exist once psycopg has been imported (by the PostgreSQL sink or
    SQLAlchemy's dialect), so a SQLite-only load never pays for importing it.
    """
    module = sys.modules.get("psycopg")
    cls = getattr(module, name, None) if module is not None else None
    return (cls,) if isinstance(cls, type) and issubclass(cls, Exception) else ()


def db_errors() -> tuple[type[Exception], ...]:
    """The database exceptions to catch: SQLAlchemy's, sqlite3's, and psycopg's when loaded."""
    return _BASE_ERRORS + _psycopg("Error")


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else None


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return mask_secrets(f"{type(orig).__name__}: {text}")


def classify(exc: BaseException) -> RepositoryError | None:
    """The repository error for a database exception, or None if ``exc`` is not one."""
    if isinstance(exc, RepositoryError):
        return exc
    orig: BaseException = exc
    invalidated = False
    if isinstance(exc, sa_exc.DBAPIError):
        invalidated = bool(exc.connection_invalidated)
        orig = exc.orig if isinstance(exc.orig, BaseException) else exc
    elif isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return TransientRepositoryError(_describe(exc))
    elif not isinstance(exc, (sqlite3.Error, *_psycopg("Error"))):
        if isinstance(exc, sa_exc.SQLAlchemyError):
            return PermanentRepositoryError(_describe(exc))
        return None

    message = _describe(exc)
    state = _sqlstate(orig)
    lowered = str(orig).lower()
    if invalidated or (state is not None and state in _TRANSIENT_SQLSTATES):
        return TransientRepositoryError(message)
    if isinstance(orig, sqlite3.OperationalError) and any(m in lowered for m in _SQLITE_BUSY):
        return TransientRepositoryError(message)
    if isinstance(orig, _psycopg("OperationalError")):
        return TransientRepositoryError(message)
    if state is not None and state.startswith("08"):  # connection exception class
        return TransientRepositoryError(message)
    integrity: tuple[type[Exception], ...] = (sqlite3.IntegrityError, *_psycopg("IntegrityError"))
    is_integrity = isinstance(orig, integrity) or isinstance(exc, sa_exc.IntegrityError)
    if is_integrity:
        if state == _UNIQUE_SQLSTATE or "unique constraint" in lowered:
            return DuplicateKeyError(message)
        return IntegrityError(message)
    return PermanentRepositoryError(message)


@contextmanager
def wrap_db_errors() -> Iterator[None]:
    """Re-raise database exceptions inside the block as :class:`RepositoryError` subclasses."""
    try:
        yield
    except db_errors() as exc:
        translated = classify(exc)
        if translated is None or translated is exc:
            raise
        raise translated from exc
