"""The audit store's engine, file gate, transaction runners and schema, chosen by its URL.

* SQLite: :class:`~tallyclerk.audit.liteengine.LiteEngine` (plain ``sqlite3``, one connection
  taken in turns), :class:`~tallyclerk.audit.txn.LiteTransactionRunner` and the DB-API
  repository; **no SQLAlchemy import** (issue 16.1), except for a store that needs a
  migration: :func:`ensure_schema` then runs SQLAlchemy's
  :func:`tallyclerk.audit.engine.ensure_schema` once, on an engine of its own, and disposes it.
* Any other database (PostgreSQL): SQLAlchemy Core, as before
  (:func:`~tallyclerk.audit.engine.create_audit_engine`,
  :class:`~tallyclerk.audit.txn.TransactionRunner`, the Core repository).

The audit service, :class:`tallyclerk.AuditLog` and ``tallyclerk replay`` open their store
through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.dburl import DbUrl
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import FileGate, gate_for, gate_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["AuditEngine", "Runner", "dispose", "ensure_schema", "gate", "open_engine", "runner"]

AuditEngine = Union["Engine", LiteEngine]
"""An audit store's engine: a :class:`LiteEngine` on SQLite, a SQLAlchemy ``Engine`` else."""

Runner = TransactionRunner | LiteTransactionRunner
"""The transaction runner of an :data:`AuditEngine`."""


def open_engine(db: DbUrl, settings: Settings) -> AuditEngine:
    """The engine of the audit store at ``db`` (nothing is connected yet).

    Raises:
        ConfigError: an in-memory SQLite database.
    """
    if db.dialect == "sqlite":
        return LiteEngine(db, settings)
    from tallyclerk.audit.engine import create_audit_engine

    return create_audit_engine(db, settings)


def gate(engine: AuditEngine) -> FileGate | None:
    """This process's turn at the engine's SQLite file (None for a server database)."""
    if isinstance(engine, LiteEngine):
        return gate_for(engine.path)
    return gate_of(engine)


def runner(engine: AuditEngine, settings: Settings, **kwargs: Any) -> Runner:
    """A transaction runner of ``engine`` (keyword arguments: the runner's)."""
    if isinstance(engine, LiteEngine):
        return LiteTransactionRunner(engine, settings, **kwargs)
    return TransactionRunner(engine, settings, **kwargs)


def ensure_schema(engine: AuditEngine) -> int:
    """Create or check the audit schema (one write transaction); the schema version.

    On SQLite a new or current store needs no SQLAlchemy; an older store (or one of a 0.2.0
    development build) is migrated by SQLAlchemy's implementation, the one there is.

    Raises:
        AuditStoreError: the store was written by a newer tallyclerk, or a migration is missing.
    """
    if isinstance(engine, LiteEngine):
        version = ensure_schema_lite(engine)
        if version is not None:
            return version
    from tallyclerk.audit import engine as core  # SQLAlchemy: a server, or a migration

    if not isinstance(engine, LiteEngine):
        return core.ensure_schema(engine)
    migrating = core.create_audit_engine(engine.db, engine.settings)
    try:
        return core.ensure_schema(migrating)
    finally:
        migrating.dispose()


def dispose(engine: AuditEngine, *, close: bool = True, timeout: float | None = None) -> None:
    """Release the engine's connections (``close=False``: a connection still in use by another
    thread is left to it, not closed under it). A :class:`LiteEngine` waits at most
    ``timeout`` seconds for another thread's turn (then leaves the connection to it); a
    SQLAlchemy engine never waits."""
    if isinstance(engine, LiteEngine):
        engine.dispose(close=close, timeout=timeout)
    else:
        engine.dispose(close=close)
