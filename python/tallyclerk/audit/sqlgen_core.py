"""Manifest statements built with SQLAlchemy Core: the one definition of every statement
:mod:`tallyclerk.audit.sqlgen` serves.

The unit of work runs on the caller's connection (the Rust ``SqliteWriter``, a DuckDB or
``sqlite3`` connection, or a SQLAlchemy connection), which speaks plain SQL with positional
parameters. The statements are built with SQLAlchemy Core, compiled once per dialect and
statement shape (``?`` for SQLite, ``%s`` for psycopg), and cached. Identifiers, including
the target table's name, are always quoted by the dialect's identifier preparer; values are
always parameters.

Callers use :mod:`tallyclerk.audit.sqlgen`, which imports this module only for PostgreSQL:
the SQLite and DuckDB texts come from the ahead-of-time catalogue
(:mod:`tallyclerk.audit.sqlgen_lite`), which :mod:`tallyclerk.audit.statements` compiles from
the builders here (``tests/audit/test_sqlgen_lite.py`` compares them).

Values are passed in their *storage* form (the executor applies no SQLAlchemy type
processing): timestamps through :func:`ts`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy import (
    Table,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    null,
    quoted_name,
    select,
    table,
    update,
)
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, TableClause

from tallyclerk.audit.compiled import FILE_ID_COLUMN, CompiledSql, check_identifier, ts
from tallyclerk.audit.models import files, rejects
from tallyclerk.errors import ConfigError

__all__ = [
    "FILE_ID_COLUMN",
    "CompiledSql",
    "check_identifier",
    "delete_rows_sql",
    "abandon_staged_sql",
    "insert_events_sql",
    "fenced_commit_sql",
    "insert_rejects_sql",
    "insert_schema_sql",
    "retarget_sql",
    "retire_loaded_sql",
    "schema_version_sql",
    "supersede_sql",
    "ts",
]


def _postgresql() -> Dialect:
    # imported when a PostgreSQL store is used: the dialect's package (with asyncpg's dialect
    # and asyncio) is about 35 ms of a SQLite process's start-up
    from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

    return pg_psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]


_DIALECTS: dict[str, Callable[[], Dialect]] = {
    "sqlite": lambda: pysqlite.dialect(),
    "postgresql": _postgresql,
    # a DuckDB target's executor deletes an interrupted load's rows: "..." quoting, ? params
    "duckdb": lambda: pysqlite.dialect(),
}

_cache: dict[tuple[str, ...], CompiledSql] = {}
_dialects: dict[str, Dialect] = {}
_lock = threading.Lock()


def _dialect(name: str) -> Dialect:
    dialect = _dialects.get(name)
    if dialect is None:
        factory = _DIALECTS.get(name)
        if factory is None:
            raise ConfigError(f"the audit store does not support the {name!r} dialect")
        dialect = _dialects[name] = factory()
    return dialect


def _compiled(
    key: tuple[str, ...], dialect_name: str, build: Callable[[], ClauseElement]
) -> CompiledSql:
    found = _cache.get(key)
    if found is not None:
        return found
    with _lock:
        compiled = build().compile(dialect=_dialect(dialect_name))
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        result = _cache[key] = CompiledSql(str(compiled), names)
        return result


def _light(typed: Table) -> TableClause:
    # Untyped table clauses: no RETURNING, no bind casts; values arrive in storage form.
    return table(typed.name, *(column(c.name) for c in typed.columns))


_files = _light(files)
_rejects = _light(rejects)


def delete_rows_sql(dialect_name: str, target_table: str) -> CompiledSql:
    """``DELETE FROM "target" WHERE _tc_file_id = :file_id``."""
    check_identifier(target_table)

    def build() -> ClauseElement:
        target = table(quoted_name(target_table, quote=True), column(FILE_ID_COLUMN))
        return delete(target).where(target.c[FILE_ID_COLUMN] == bindparam("file_id"))

    return _compiled(("delete_rows", dialect_name, target_table), dialect_name, build)


def supersede_sql(dialect_name: str) -> CompiledSql:
    """Mark an earlier attempt cleaned by ``new_id`` (``loaded`` becomes ``replaced``)."""

    def build() -> ClauseElement:
        status = _files.c.status
        return (
            update(_files)
            .where(_files.c.id == bindparam("old_id"))
            .values(
                status=case((status == bindparam("loaded"), bindparam("replaced")), else_=status),
                cleaned_by=bindparam("new_id"),
            )
        )

    return _compiled(("supersede", dialect_name), dialect_name, build)


def fenced_commit_sql(dialect_name: str) -> CompiledSql:
    """Finish a claim: ``UPDATE ... WHERE id AND claim_token AND status = 'loading'``."""

    def build() -> ClauseElement:
        c = _files.c
        return (
            update(_files)
            .where(c.id == bindparam("file_id"))
            .where(c.claim_token == bindparam("token"))
            .where(c.status == bindparam("from_status"))
            .values(
                status=bindparam("status"),
                rows_read=bindparam("rows_read"),
                rows_written=bindparam("rows_written"),
                rows_rejected=bindparam("rows_rejected"),
                rows_rolled_back=bindparam("rows_rolled_back"),
                bytes_read=bindparam("bytes_read"),
                first_error_line=bindparam("first_error_line"),
                rows_inserted=bindparam("rows_inserted"),
                rows_updated=bindparam("rows_updated"),
                finished_at=bindparam("finished_at"),
                duration_s=bindparam("duration_s"),
                error=bindparam("error"),
                error_class=bindparam("error_class"),
                schema_version=bindparam("schema_version"),
                column_changes=bindparam("column_changes"),
                lease_expires_at=null(),
            )
        )

    return _compiled(("fenced_commit", dialect_name), dialect_name, build)


_REJECT_COLUMNS: Sequence[str] = (
    "file_id",
    "batch_id",
    "record_number",
    "line",
    "column_name",
    "rule",
    "reason",
    "raw",
    "masked",
)


def insert_rejects_sql(dialect_name: str) -> CompiledSql:
    """One reject row; parameters in the order of :data:`_REJECT_COLUMNS`."""

    def build() -> ClauseElement:
        return insert(_rejects).values({name: bindparam(name) for name in _REJECT_COLUMNS})

    return _compiled(("insert_rejects", dialect_name), dialect_name, build)


EVENT_COLUMNS: Sequence[str] = (
    "type",
    "batch_id",
    "file_id",
    "payload",
    "created_at",
    "correlation_id",
)


def insert_events_sql(dialect_name: str) -> CompiledSql:
    """One event row; parameters in the order of :data:`EVENT_COLUMNS`."""

    def build() -> ClauseElement:
        events = table("tallyclerk_events", *(column(name) for name in EVENT_COLUMNS))
        return insert(events).values({name: bindparam(name) for name in EVENT_COLUMNS})

    return _compiled(("insert_events", dialect_name), dialect_name, build)


def retire_loaded_sql(dialect_name: str) -> CompiledSql:
    """A replace's swap: the table's ``loaded`` files become ``replaced``."""

    def build() -> ClauseElement:
        c = _files.c
        return (
            update(_files)
            .where(c.target_table == bindparam("table"))
            .where(c.status == bindparam("loaded"))
            .values(status=bindparam("replaced"))
        )

    return _compiled(("retire_loaded", dialect_name), dialect_name, build)


def retarget_sql(dialect_name: str) -> CompiledSql:
    """A replace's swap: the shadow table's files now name the table."""

    def build() -> ClauseElement:
        c = _files.c
        return (
            update(_files)
            .where(c.target_table == bindparam("shadow"))
            .values(target_table=bindparam("table"))
        )

    return _compiled(("retarget", dialect_name), dialect_name, build)


def abandon_staged_sql(dialect_name: str) -> CompiledSql:
    """An abandoned replace: the files loaded into its shadow table become ``failed``."""

    def build() -> ClauseElement:
        c = _files.c
        return (
            update(_files)
            .where(c.target_table == bindparam("shadow"))
            .where(c.status == bindparam("loaded"))
            .values(
                status=bindparam("failed"),
                rows_written=bindparam("zero"),
                rows_rolled_back=c.rows_written,
                rows_inserted=null(),
                rows_updated=null(),
                error=bindparam("error"),
                error_class=bindparam("error_class"),
            )
        )

    return _compiled(("abandon_staged", dialect_name), dialect_name, build)


SCHEMA_COLUMNS: Sequence[str] = (
    "target_table",
    "version",
    "schema_json",
    "fingerprint",
    "created_at",
    "batch_id",
    "file_id",
    "reason",
)


def insert_schema_sql(dialect_name: str) -> CompiledSql:
    """One ``tallyclerk_schemas`` row; parameters in the order of :data:`SCHEMA_COLUMNS`."""

    def build() -> ClauseElement:
        schemas = table("tallyclerk_schemas", *(column(name) for name in SCHEMA_COLUMNS))
        return insert(schemas).values({name: bindparam(name) for name in SCHEMA_COLUMNS})

    return _compiled(("insert_schema", dialect_name), dialect_name, build)


def schema_version_sql(dialect_name: str) -> CompiledSql:
    """The highest stored schema version of ``:table`` (NULL when none)."""

    def build() -> ClauseElement:
        schemas = table("tallyclerk_schemas", column("target_table"), column("version"))
        return select(func.max(schemas.c.version)).where(
            schemas.c.target_table == bindparam("table")
        )

    return _compiled(("schema_version", dialect_name), dialect_name, build)
