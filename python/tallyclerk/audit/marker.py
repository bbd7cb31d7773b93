"""The load marker: a row in the *target* database that says a file's data transaction committed.

When the audit store is another database than the target, a file's rows commit first (in the
target) and its manifest row second (in the audit store). A process killed between the two
leaves a ``loading`` manifest row whose rows may or may not be in the target: an *uncertain*
file (:mod:`tallyclerk.audit.uncertain`). To make that decidable, the pipeline writes one row
into ``_tc_loads`` **in the file's own target transaction**, so the marker exists exactly when
the rows do: ``claim_token`` (the claim that wrote it; the key, since a file id is unique only
within one audit store and one target database may serve several stores' tables), ``file_id``,
the table, the file's counts (read, written, rejected, inserted, updated, bytes) and its write
mode.
``tallyclerk repair`` (and a re-run, before it claims anything) reads it back.

When the audit store shares the target database no marker is written: the manifest row itself
commits with the rows, and there is no window.

Statements use the executor's positional style: ``%s`` for PostgreSQL, ``?`` for SQLite and
DuckDB; the table names are fixed or checked identifiers, always quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from tallyclerk.audit import sqlgen
from tallyclerk.audit.types import FileClaim, FileResult
from tallyclerk.protocols import SqlExecutor

__all__ = [
    "MARKER_TABLE",
    "Marker",
    "count_rows",
    "mark_in",
    "read",
    "remove_in",
    "supported",
    "table_exists",
]

MARKER_TABLE = "_tc_loads"
_DIALECTS = ("sqlite", "postgresql", "duckdb")

_CREATE = (
    f'CREATE TABLE IF NOT EXISTS "{MARKER_TABLE}" ('
    "claim_token VARCHAR(64) PRIMARY KEY, file_id BIGINT NOT NULL, "
    "target_table VARCHAR(255) NOT NULL, mode VARCHAR(16) NOT NULL, "
    "rows_read BIGINT NOT NULL, rows_written BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, "
    "rows_inserted BIGINT, rows_updated BIGINT, bytes_read BIGINT NOT NULL, "
    "schema_version INTEGER)"
)
_COLUMNS = ("file_id", "claim_token", "target_table", "mode", "rows_read", "rows_written",
            "rows_rejected", "rows_inserted", "rows_updated", "bytes_read", "schema_version")


@dataclass(frozen=True)
class Marker:
    """One ``_tc_loads`` row: a committed data transaction of claim ``file_id``."""

    file_id: int
    claim_token: str
    target_table: str
    mode: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_inserted: int | None
    rows_updated: int | None
    bytes_read: int
    schema_version: int | None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _mark(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


def supported(ex: SqlExecutor | None) -> TypeGuard[SqlExecutor]:
    """Whether a marker can be written through ``ex`` (a SQLite, PostgreSQL or DuckDB one)."""
    return ex is not None and ex.dialect_name in _DIALECTS


def mark_in(ex: SqlExecutor, claim: FileClaim, result: FileResult, mode: str) -> None:
    """In the file's target transaction: record that this claim's rows commit with it."""
    d = ex.dialect_name
    if d == "postgresql":
        # concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog: serialise
        # it like the sink's table creation (released at the end of the transaction)
        ex.query("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tallyclerk:{MARKER_TABLE}",))
    ex.execute(_CREATE)
    m = _mark(d)
    ex.execute(
        f'INSERT INTO "{MARKER_TABLE}" ({", ".join(_COLUMNS)}) '
        f"VALUES ({', '.join([m] * len(_COLUMNS))})",
        (claim.file_id, claim.token, claim.table, mode, result.rows_read, result.rows_written,
         result.rows_rejected, result.rows_inserted, result.rows_updated, result.bytes_read,
         result.schema_version),
    )


def table_exists(ex: SqlExecutor, name: str) -> bool:
    """Whether the target database has a table ``name`` (in the current schema)."""
    if ex.dialect_name == "sqlite":
        return bool(ex.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (name,)))
    m = _mark(ex.dialect_name)
    return bool(ex.query(
        "SELECT 1 FROM information_schema.tables WHERE table_name = "
        f"{m} AND table_schema = current_schema()", (name,)))


def read(ex: SqlExecutor, file_id: int, token: str) -> Marker | None:
    """The marker of claim ``token`` of file ``file_id``; else another claim's marker of that
    file id (the caller reports it); None when neither committed (or no marker table)."""
    if not table_exists(ex, MARKER_TABLE):
        return None
    m = _mark(ex.dialect_name)
    rows = ex.query(
        f'SELECT {", ".join(_COLUMNS)} FROM "{MARKER_TABLE}" WHERE claim_token = {m} '
        f"UNION ALL SELECT {', '.join(_COLUMNS)} FROM \"{MARKER_TABLE}\" "
        f"WHERE file_id = {m} AND claim_token <> {m}", (token, file_id, token))
    if not rows:
        return None
    r = next((row for row in rows if str(row[1]) == token), rows[0])
    return Marker(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), int(r[6]),
                  None if r[7] is None else int(r[7]), None if r[8] is None else int(r[8]),
                  int(r[9]), None if r[10] is None else int(r[10]))


def count_rows(ex: SqlExecutor, table: str, file_id: int) -> int:
    """Rows of ``table`` tagged ``_tc_file_id = file_id`` (0 when the table does not exist)."""
    sqlgen.check_identifier(table)
    if not table_exists(ex, table):
        return 0
    rows = ex.query(
        f"SELECT count(*) FROM {_quote(table)} WHERE {_quote(sqlgen.FILE_ID_COLUMN)} = "
        f"{_mark(ex.dialect_name)}", (file_id,))
    return int(rows[0][0])


def remove_in(ex: SqlExecutor, table: str, file_id: int, token: str, *, rows: bool) -> int:
    """In one target transaction: delete the claim's rows (``rows``) and its marker; returns
    how many rows were deleted."""
    deleted = 0
    if rows:
        sqlgen.check_identifier(table)
        if table_exists(ex, table):
            deleted = count_rows(ex, table, file_id)
            compiled = sqlgen.delete_rows_sql(ex.dialect_name, table)
            ex.execute(compiled.sql, (file_id,))
    if table_exists(ex, MARKER_TABLE):
        ex.execute(f'DELETE FROM "{MARKER_TABLE}" WHERE claim_token = {_mark(ex.dialect_name)}',
                   (token,))
    return deleted
