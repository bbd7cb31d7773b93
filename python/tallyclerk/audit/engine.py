"""The audit store's engine and schema: created once at start-up, never in the hot path.

SQLite: every pooled connection is put in WAL mode with the configured busy timeout and
``synchronous``, foreign keys on, and the driver's own transaction handling off
(``isolation_level = None``); SQLAlchemy's ``begin`` then emits ``BEGIN IMMEDIATE``, so a write
transaction takes the database's write lock up front (no deadlock-prone lock upgrade) and two
processes claiming the same file are serialized. The pool holds one connection: the service's
transactions, its lease heartbeats and its event writer take turns at it (and at the file's
:class:`~tallyclerk.sqlitegate.FileGate`), so a load opens the file twice, this connection and
the data sink's. PostgreSQL: psycopg 3 with a connect timeout
(``connect_timeout_s``), a statement timeout (``read_timeout_s``) and pre-ping.

:func:`ensure_schema` creates the tables and checks ``tallyclerk_schema_version``: a newer
version than this code knows is an :class:`~tallyclerk.errors.AuditStoreError`; an older one
runs the registered migrations.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import create_engine, event, insert, inspect, select, update
from sqlalchemy.engine import Connection, Engine

from tallyclerk.audit import lineage
from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.audit.migrations import recount_rolled_back
from tallyclerk.audit.models import SCHEMA_VERSION, metadata
from tallyclerk.audit.models import schema_version as version_table
from tallyclerk.audit.sqlitebusy import (
    begin_immediate,
    busy_timeout,
    connection_pragmas,
    retry_busy,
)
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.dburl import DbUrl
from tallyclerk.errors import AuditStoreError, ConfigError
from tallyclerk.settings import Settings

__all__ = [
    "MIGRATIONS",
    "busy_timeout",
    "create_audit_engine",
    "ensure_schema",
    "schema_version",
]

log = logging.getLogger("tallyclerk.audit")

def add_missing(conn: Connection) -> None:
    """The additive migration: columns and indexes the models have and the store lacks.

    Every change of the audit schema since version 1 only adds nullable (or defaulted) columns,
    tables and indexes, so one migration brings any older store up to date: missing tables
    are created by ``create_all`` afterwards; here each existing table gets its missing columns
    (``ALTER TABLE ... ADD COLUMN``, names quoted by the dialect) and indexes.
    """
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    ddl = conn.dialect.ddl_compiler(conn.dialect, None)  # type: ignore[arg-type]
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise AuditStoreError(
                    f"cannot add the required column {table.name}.{column.name} to an existing "
                    "audit store (a migration must give it a value)"
                )
            kind = column.type.compile(dialect=conn.dialect)
            default = ddl.get_column_default_string(column)
            if default is not None:  # existing rows get the default, and NOT NULL holds
                kind += f" DEFAULT {default}" + ("" if column.nullable else " NOT NULL")
            conn.exec_driver_sql(
                f"ALTER TABLE {preparer.format_table(table)} "
                f"ADD COLUMN {preparer.format_column(column)} {kind}"
            )
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)


def _from_v1(conn: Connection) -> None:
    add_missing(conn)
    recount_rolled_back(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    version: add_missing for version in range(1, SCHEMA_VERSION)
}
MIGRATIONS[1] = _from_v1
"""``MIGRATIONS[n](connection)`` upgrades a store from version ``n`` to ``n + 1``."""


def create_audit_engine(db: DbUrl, settings: Settings) -> Engine:
    """The engine of the audit store at ``db`` (see the module docstring for what it sets)."""
    if db.dialect == "sqlite":
        if db.in_memory:
            raise ConfigError(
                "the audit store needs a database file or server, not an in-memory SQLite "
                "database"
            )
        busy_s = settings.busy_timeout_ms / 1000.0
        engine = create_engine(
            db.url,
            connect_args={"timeout": busy_s},
            # one connection, taken in turns (its users hold the file's gate first, so a
            # wait here is one transaction of theirs at most)
            pool_size=1,
            max_overflow=0,
            pool_timeout=2 * busy_s + 1.0,
        )
        _configure_sqlite(engine, settings)
        return engine
    return create_engine(
        db.url,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(1, round(settings.connect_timeout_s)),
            # a server that stops answering (a lock never released, a stalled backend) ends
            # each statement after read_timeout_s instead of hanging the loader
            "options": f"-c statement_timeout={max(1, round(settings.read_timeout_s * 1000))}",
        },
    )


_retry_busy = retry_busy  # the former name (tests/audit/test_engine_busy.py)


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    pragmas = connection_pragmas(settings)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        assert isinstance(dbapi_connection, sqlite3.Connection)
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                retry_busy(cursor, pragma, settings.busy_timeout_ms / 1000.0)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        begin_immediate(connection.exec_driver_sql, int(settings.busy_timeout_ms))


def schema_version(connection: Connection) -> int | None:
    """The stored schema version, or None when the store has no version table yet."""
    if not inspect(connection).has_table(version_table.name):
        return None
    stmt = select(version_table.c.version).where(version_table.c.id == 1)
    return connection.execute(stmt).scalar()


def ensure_schema(engine: Engine) -> int:
    """Create missing tables, check and record the schema version; returns the version.

    Runs in one write transaction, so processes starting together do not race.

    Raises:
        AuditStoreError: the store was written by a newer tallyclerk, or a migration is missing.
    """
    with wrap_db_errors(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # CREATE TABLE is not safe against a concurrent creator: workers starting together
            # (on one or several machines) take turns
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('tallyclerk:schema'))")
        found = schema_version(conn)
        if found is not None and found > SCHEMA_VERSION:
            raise AuditStoreError(
                f"the audit store has schema version {found}, newer than this tallyclerk "
                f"understands ({SCHEMA_VERSION}); upgrade tallyclerk"
            )
        version = found
        while version is not None and version < SCHEMA_VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise AuditStoreError(
                    f"no migration from audit schema version {version} to {version + 1}"
                )
            log.info("migrating the audit store from schema version %d", version)
            migrate(conn)
            version += 1
        if found == SCHEMA_VERSION == 2:
            # 0.2.0 is unreleased and every change of its schema is additive: a store made by
            # an earlier 0.2.0 development build gets the columns and indexes added since
            add_missing(conn)
        metadata.create_all(conn)
        lineage.create_view(SqlAlchemyExecutor(conn))
        now = datetime.now(timezone.utc)
        if found is None:
            conn.execute(
                insert(version_table).values(id=1, version=SCHEMA_VERSION, updated_at=now)
            )
        elif found != SCHEMA_VERSION:
            conn.execute(
                update(version_table)
                .where(version_table.c.id == 1)
                .values(version=SCHEMA_VERSION, updated_at=now)
            )
    return SCHEMA_VERSION
