"""Manifest statements compiled for a caller's :class:`~tallyclerk.audit.SqlExecutor`.

The unit of work runs on the caller's connection (the Rust ``SqliteWriter``, a DuckDB or
``sqlite3`` connection, or a SQLAlchemy connection), which speaks plain SQL with positional
parameters: ``?`` for SQLite and DuckDB, ``%s`` for psycopg. Each function returns a
:class:`~tallyclerk.audit.compiled.CompiledSql` for ``dialect_name``:

* ``"sqlite"`` and ``"duckdb"``: from the ahead-of-time catalogue
  (:mod:`tallyclerk.audit.sqlgen_lite`), importing no SQLAlchemy (issue 16.1);
* any other dialect (``"postgresql"``): compiled by SQLAlchemy Core
  (:mod:`tallyclerk.audit.sqlgen_core`, imported on first use), which refuses a dialect the
  audit store does not support.

The statements have one definition, the Core builders of :mod:`~tallyclerk.audit.sqlgen_core`:
the catalogue is compiled from them (:mod:`tallyclerk.audit.statements`) and
``tests/audit/test_sqlgen_lite.py`` compares the two, function by function. Identifiers,
including the target table's name, are always quoted; values are always parameters, in their
*storage* form (timestamps through :func:`ts`).
"""

from __future__ import annotations

from types import ModuleType

from tallyclerk.audit import sqlgen_lite
from tallyclerk.audit.compiled import FILE_ID_COLUMN, CompiledSql, check_identifier, ts

__all__ = [
    "FILE_ID_COLUMN",
    "CompiledSql",
    "abandon_staged_sql",
    "check_identifier",
    "delete_rows_sql",
    "fenced_commit_sql",
    "insert_events_sql",
    "insert_rejects_sql",
    "insert_schema_sql",
    "retarget_sql",
    "retire_loaded_sql",
    "schema_version_sql",
    "supersede_sql",
    "ts",
]

_LITE = frozenset({"sqlite", "duckdb"})


def _source(dialect_name: str) -> ModuleType:
    if dialect_name in _LITE:
        return sqlgen_lite
    from tallyclerk.audit import sqlgen_core  # SQLAlchemy: PostgreSQL only

    return sqlgen_core


def delete_rows_sql(dialect_name: str, target_table: str) -> CompiledSql:
    """``DELETE FROM "target" WHERE _tc_file_id = :file_id``."""
    result: CompiledSql = _source(dialect_name).delete_rows_sql(dialect_name, target_table)
    return result


def _fixed(name: str, dialect_name: str) -> CompiledSql:
    result: CompiledSql = getattr(_source(dialect_name), name)(dialect_name)
    return result


def supersede_sql(dialect_name: str) -> CompiledSql:
    """Mark an earlier attempt cleaned by ``new_id`` (``loaded`` becomes ``replaced``)."""
    return _fixed("supersede_sql", dialect_name)


def fenced_commit_sql(dialect_name: str) -> CompiledSql:
    """Finish a claim: ``UPDATE ... WHERE id AND claim_token AND status = 'loading'``."""
    return _fixed("fenced_commit_sql", dialect_name)


def insert_rejects_sql(dialect_name: str) -> CompiledSql:
    """One reject row (parameters named as ``tallyclerk_rejects``' columns)."""
    return _fixed("insert_rejects_sql", dialect_name)


def insert_events_sql(dialect_name: str) -> CompiledSql:
    """One event row: ``type, batch_id, file_id, payload, created_at, correlation_id``."""
    return _fixed("insert_events_sql", dialect_name)


def retire_loaded_sql(dialect_name: str) -> CompiledSql:
    """A replace's swap: the table's ``loaded`` files become ``replaced``."""
    return _fixed("retire_loaded_sql", dialect_name)


def retarget_sql(dialect_name: str) -> CompiledSql:
    """A replace's swap: the shadow table's files now name the table."""
    return _fixed("retarget_sql", dialect_name)


def abandon_staged_sql(dialect_name: str) -> CompiledSql:
    """An abandoned replace: the files loaded into its shadow table become ``failed``."""
    return _fixed("abandon_staged_sql", dialect_name)


def insert_schema_sql(dialect_name: str) -> CompiledSql:
    """One ``tallyclerk_schemas`` row."""
    return _fixed("insert_schema_sql", dialect_name)


def schema_version_sql(dialect_name: str) -> CompiledSql:
    """The highest stored schema version of ``:table`` (NULL when none)."""
    return _fixed("schema_version_sql", dialect_name)
