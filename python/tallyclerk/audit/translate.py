"""The one place database errors become :class:`~tallyclerk.errors.RepositoryError` subclasses.

:func:`wrap_db_errors` wraps every repository operation, transaction and event write. It knows
SQLAlchemy's wrapped exceptions and the raw DBAPI ones (``sqlite3``, psycopg) the event writer
sees, and sorts them into:

* :class:`~tallyclerk.errors.TransientRepositoryError`: retrying the transaction may succeed,
  as :func:`tallyclerk.dberrors.is_transient` decides for every sink and the audit store
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

from tallyclerk.dberrors import is_transient, psycopg_class, sqlstate
from tallyclerk.dburl import mask_secrets
from tallyclerk.errors import (
    DuplicateKeyError,
    IntegrityError,
    PermanentRepositoryError,
    RepositoryError,
    TransientRepositoryError,
)

__all__ = ["classify", "db_errors", "wrap_db_errors"]

_UNIQUE_SQLSTATE = "23505"

_psycopg = psycopg_class


def _sa(name: str) -> tuple[type[Exception], ...]:
    """``sqlalchemy.exc.<name>`` once SQLAlchemy is imported, else nothing: such an exception
    cannot exist before (the SQLite audit path without SQLAlchemy never imports it)."""
    module = sys.modules.get("sqlalchemy.exc")
    found = getattr(module, name, None) if module is not None else None
    return (found,) if isinstance(found, type) and issubclass(found, Exception) else ()


def db_errors() -> tuple[type[Exception], ...]:
    """The database exceptions to catch: sqlite3's, and SQLAlchemy's and psycopg's when
    loaded."""
    return (sqlite3.Error, *_sa("SQLAlchemyError"), *_psycopg("Error"))


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return mask_secrets(f"{type(orig).__name__}: {text}")


def classify(exc: BaseException) -> RepositoryError | None:
    """The repository error for a database exception, or None if ``exc`` is not one."""
    if isinstance(exc, RepositoryError):
        return exc
    orig: BaseException = exc
    if isinstance(exc, _sa("DBAPIError")):
        wrapped = getattr(exc, "orig", None)
        orig = wrapped if isinstance(wrapped, BaseException) else exc
    elif isinstance(exc, (*_sa("DisconnectionError"), *_sa("TimeoutError"))):
        return TransientRepositoryError(_describe(exc))
    elif not isinstance(exc, (sqlite3.Error, *_psycopg("Error"))):
        if isinstance(exc, _sa("SQLAlchemyError")):
            return PermanentRepositoryError(_describe(exc))
        return None

    message = _describe(exc)
    if is_transient(exc):
        return TransientRepositoryError(message)
    state = sqlstate(orig)
    lowered = str(orig).lower()
    integrity: tuple[type[Exception], ...] = (sqlite3.IntegrityError, *_psycopg("IntegrityError"))
    is_integrity = isinstance(orig, integrity) or isinstance(exc, _sa("IntegrityError"))
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
