"""The statements of :mod:`tallyclerk.audit.sqlgen` for SQLite (and DuckDB, which takes the
same text) from the ahead-of-time catalogue: the same functions, the same
:class:`~tallyclerk.audit.compiled.CompiledSql` results, no SQLAlchemy (issue 16.1).
:mod:`tallyclerk.audit.sqlgen` serves these two dialects from here.
``tests/audit/test_sqlgen_lite.py`` compares every function with the Core builders'
(:mod:`~tallyclerk.audit.sqlgen_core`), ``delete_rows_sql`` over generated table names."""

from __future__ import annotations

from tallyclerk.audit.catalogue import STATEMENTS
from tallyclerk.audit.compiled import (
    FILE_ID_COLUMN,
    CompiledSql,
    check_identifier,
    quote_identifier,
    ts,
)
from tallyclerk.errors import ConfigError

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

_DIALECTS = frozenset({"sqlite", "duckdb"})
_PLACEHOLDER = '"__tc_target_table__"'  # statements.TABLE_PLACEHOLDER, quoted
_cache: dict[str, CompiledSql] = {}


def _fixed(dialect_name: str, name: str) -> CompiledSql:
    if dialect_name not in _DIALECTS:
        raise ConfigError(f"the SQLite audit path does not serve the {dialect_name!r} dialect")
    found = _cache.get(name)
    if found is None:
        sql, names, consts = STATEMENTS[f"sqlgen:{name}"]
        assert not consts, name
        found = _cache[name] = CompiledSql(sql, names)
    return found


def delete_rows_sql(dialect_name: str, target_table: str) -> CompiledSql:
    """``DELETE FROM "target" WHERE _tc_file_id = :file_id``."""
    template = _fixed(dialect_name, "delete_rows")
    quoted = quote_identifier(target_table)
    return CompiledSql(template.sql.replace(_PLACEHOLDER, quoted), template.names)


def supersede_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "supersede")


def fenced_commit_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "fenced_commit")


def insert_rejects_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "insert_rejects")


def insert_events_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "insert_events")


def retire_loaded_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "retire_loaded")


def retarget_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "retarget")


def abandon_staged_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "abandon_staged")


def insert_schema_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "insert_schema")


def schema_version_sql(dialect_name: str) -> CompiledSql:
    return _fixed(dialect_name, "schema_version")
