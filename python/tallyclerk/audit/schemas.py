"""The remembered schemas of target tables (``tallyclerk_schemas``): read, history, record.

A table's schema is versioned: version 1 is the schema its first file was loaded with (given
with ``--schema``, inferred, or the header's text columns); each evolution (columns added under
``--columns evolve``, a wider ``--schema``) is the next version. A version is recorded in the
transaction of the file that introduced it when the audit store shares the data's database
(:func:`record_in`), so a rolled-back file leaves no version behind; otherwise right after the
file's data commit (the sinks add missing columns idempotently, so a crash in between is
repaired by the next load).
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from tallyclerk.audit import sqlgen
from tallyclerk.audit.rows import TableSchemaVersion
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.audit.types import StoredSchema, stored_schema
from tallyclerk.digest import sha256
from tallyclerk.protocols import SqlExecutor

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Connection

__all__ = ["current_version_in", "fingerprint", "history", "latest", "record_in"]


def fingerprint(schema_json: str) -> str:
    """``sha256:<hex>`` of the schema's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(json.loads(schema_json), sort_keys=True, separators=(",", ":"))
    return "sha256:" + str(sha256(canonical.encode("utf-8")).hexdigest())


def _stored(row: TableSchemaVersion) -> StoredSchema:
    return stored_schema(row)


def latest(connection: Connection, table: str) -> StoredSchema | None:
    """The table's current (highest) schema version, or None when none is stored.

    On a SQLAlchemy connection (``AuditRepository.latest_schema``; the units of work call the
    repository's method, which the DB-API repository serves from the catalogue's
    ``schema_latest``, compiled from :func:`_latest_stmt`)."""
    with wrap_db_errors():
        row = connection.execute(_latest_stmt(), {"table": table}).first()
    return None if row is None else _stored(TableSchemaVersion._make(row))


@functools.cache
def _latest_stmt() -> Select[Any]:
    """Built once (every file reads its table's schema: issue 16.4)."""
    from sqlalchemy import bindparam, select

    from tallyclerk.audit.models import table_schemas as t

    return select(t).where(t.c.target_table == bindparam("table")).order_by(
        t.c.version.desc()).limit(1)


def history(connection: Connection, table: str) -> list[StoredSchema]:
    """Every version of the table's schema, oldest first (on a SQLAlchemy connection, as
    :func:`latest`)."""
    from sqlalchemy import select

    from tallyclerk.audit.models import table_schemas as t

    with wrap_db_errors():
        rows = connection.execute(
            select(t).where(t.c.target_table == table).order_by(t.c.version)
        ).all()
    return [_stored(TableSchemaVersion._make(r)) for r in rows]


def record_in(ex: SqlExecutor, schema: StoredSchema) -> None:
    """Insert one version on the caller's connection (inside its transaction).

    A second writer of the same (table, version) breaks the unique index: the caller's
    transaction fails and its file is retried or failed, never committed on a stale schema.
    """
    dialect = ex.dialect_name
    stmt = sqlgen.insert_schema_sql(dialect)
    values: dict[str, Any] = {
        "target_table": schema.table,
        "version": schema.version,
        "schema_json": schema.schema_json,
        "fingerprint": schema.fingerprint,
        "created_at": sqlgen.ts(dialect, schema.created_at),
        "batch_id": schema.batch_id,
        "file_id": schema.file_id,
        "reason": schema.reason,
    }
    ex.execute(stmt.sql, stmt.params(values))


def current_version_in(ex: SqlExecutor, table: str, *, serialize: bool = True) -> int:
    """The table's highest schema version (0: none), read inside the caller's transaction.

    With ``serialize``, on PostgreSQL a transaction-scoped advisory lock on the table's name
    comes first, so two transactions that would record a version take turns and the second
    reads the first's (SQLite's ``BEGIN IMMEDIATE`` already serializes writers). Without it
    (a file that records no version checks the one it was planned on) no lock is taken, so
    the files of several workers still load at once.
    """
    if serialize and ex.dialect_name == "postgresql":
        ex.query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext(%s))) AS locked",
                 ["tallyclerk:schema:" + table])
    stmt = sqlgen.schema_version_sql(ex.dialect_name)
    rows = ex.query(stmt.sql, stmt.params({"table": table}))
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
