"""Every statement the SQLAlchemy-free SQLite audit path sends, built with SQLAlchemy Core.

This module is the *generator* of :mod:`tallyclerk.audit.catalogue`: it builds each statement
of :class:`~tallyclerk.audit.dbapi_repository.DbapiRepository` (and the DDL of the audit
tables) from the Core tables of :mod:`tallyclerk.audit.models`, compiles it for SQLite with
positional (``?``) parameters, and writes the results as a plain Python module, so that a
SQLite process can run them without importing SQLAlchemy while ``models.py`` stays the one
definition. ``tests/audit/test_catalogue.py`` compiles them again and compares.

Regenerate after changing the models or a statement here::

    PYTHONPATH=python python3 -m tallyclerk.audit.statements > python/tallyclerk/audit/catalogue.py

A statement's parameters are either the caller's (named in its entry, in positional order;
``expanding`` ones are lists rendered as ``?, ?, ...`` at execution) or constants the compiler
bound (literal statuses, ``OFFSET 0``), which the catalogue records with their values. Caller
values are passed in *storage* form (no SQLAlchemy type processing): the DB-API repository
converts them.
"""

from __future__ import annotations

import pprint
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from tallyclerk.audit import lineage, models, replay_statements, repository, schemas, sqlgen_core
from tallyclerk.audit.models import batches, events, files, rejects

__all__ = ["TABLES", "build_all", "compile_entry", "ddl", "render_module"]

TABLES: tuple[Table, ...] = (
    models.batches,
    models.chain_head,
    models.events,
    models.schema_version,
    models.table_schemas,
    models.files,
    models.rejects,
)
"""The audit store's own tables in creation order (``metadata.sorted_tables`` order, without
tables other modules add to the same ``MetaData``, such as the work list's)."""

_DIALECT = pysqlite.dialect()
_POSTGRESQL = psycopg.dialect()  # type: ignore[no-untyped-call]

Entry = tuple[str, tuple[str, ...], dict[str, Any]]
"""A compiled statement: SQL, the caller's parameter names in positional order (constants
included, by name), and the constants' values."""


def compile_entry(stmt: ClauseElement, caller: tuple[str, ...] = ()) -> Entry:
    """``stmt`` compiled for SQLite: its SQL, positional names, and bound constants."""
    compiled = stmt.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    consts: dict[str, Any] = {}
    for name in names:
        if name in caller:
            continue
        value = compiled.params[name]
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise TypeError(f"constant {name}={value!r} needs type processing")
        consts[name] = value
    unknown = set(caller) - set(names)
    if unknown:
        raise ValueError(f"parameters {sorted(unknown)} do not occur in {compiled}")
    return str(compiled), names, consts


def _insert_columns(table: Table) -> list[str]:
    """The columns an INSERT names: all but an autoincremented integer key."""
    return [c.name for c in table.columns
            if not (c.primary_key and c.autoincrement is True)]


def _insert(table: Table, returning: bool) -> Entry:
    names = _insert_columns(table)
    stmt = insert(table).values({name: bindparam(name) for name in names})
    if returning:
        return compile_entry(stmt.returning(table.c.id), tuple(names))
    return compile_entry(stmt, tuple(names))


def _candidates(fingerprint: Any) -> ClauseElement:
    return (
        select(files)
        .where(files.c.target_table == bindparam("table"))
        .where(fingerprint)
        .where(or_(
            files.c.status == "loading",
            files.c.status == "loaded",
            and_(files.c.status == "failed", files.c.cleaned_by.is_(None)),
        ))
        .order_by(files.c.id)
        .with_for_update()
    )


def _history(fingerprint: Any) -> ClauseElement:
    return (
        select(files)
        .where(files.c.target_table == bindparam("table"))
        .where(fingerprint)
        .where(files.c.status != "skipped", files.c.status != "pending")
        .order_by(files.c.id)
        .with_for_update()
    )


_ONE_FP = files.c.fingerprint == bindparam("fingerprint")
_MANY_FP = files.c.fingerprint.in_(bindparam("fingerprints", expanding=True))

_FAIL_VALUES: dict[str, Any] = {
    "status": "failed",
    "error": bindparam("error"),
    "error_class": bindparam("error_class"),
    "finished_at": bindparam("finished_at"),
    "lease_expires_at": None,
}


def _list_rejects(path: bool, batch: bool, limit: bool) -> Entry:
    stmt = select(rejects, files).join(files, files.c.id == rejects.c.file_id)
    caller: tuple[str, ...] = ()
    if path:
        stmt, caller = stmt.where(files.c.path == bindparam("path")), (*caller, "path")
    if batch:
        stmt = stmt.where(rejects.c.batch_id == bindparam("batch_id"))
        caller = (*caller, "batch_id")
    stmt = stmt.order_by(rejects.c.file_id, rejects.c.record_number, rejects.c.id)
    if limit:
        stmt, caller = stmt.limit(bindparam("limit")), (*caller, "limit")
    return compile_entry(stmt, caller)


def _list_events(batch: bool, kind: bool, limit: bool, newest: bool) -> Entry:
    stmt = select(events).order_by(events.c.id.desc() if newest else events.c.id)
    caller: tuple[str, ...] = ()
    if batch:
        stmt = stmt.where(events.c.batch_id == bindparam("batch_id"))
        caller = (*caller, "batch_id")
    if kind:
        stmt, caller = stmt.where(events.c.type == bindparam("type")), (*caller, "type")
    if limit:
        stmt, caller = stmt.limit(bindparam("limit")), (*caller, "limit")
    return compile_entry(stmt, caller)


def _update_batch_where(only_if_status: bool, only_if_unsealed: bool) -> Entry:
    """The WHERE part of ``update_batch`` (its SET part is the caller's columns, assembled at
    execution from :data:`QUOTED` in table order, as SQLAlchemy orders them)."""
    stmt = update(batches).where(batches.c.id == bindparam("batch_id"))
    caller: tuple[str, ...] = ("batch_id",)
    if only_if_status:
        stmt = stmt.where(batches.c.status == bindparam("only_if_status"))
        caller = (*caller, "only_if_status")
    if only_if_unsealed:
        stmt = stmt.where(batches.c.chain_hash.is_(None))
    sql, names, consts = compile_entry(stmt.values(status=bindparam("__set__")),
                                       (*caller, "__set__"))
    head, where = sql.split(" WHERE ", 1)
    assert head == "UPDATE tallyclerk_batches SET status=?", head
    return " WHERE " + where, names[1:], consts


def _flags(n: int) -> Iterator[tuple[bool, ...]]:
    for i in range(2**n):
        yield tuple(bool(i >> bit & 1) for bit in range(n))


def _key(name: str, flags: tuple[bool, ...]) -> str:
    return f"{name}:" + "".join("1" if f else "0" for f in flags)


SQLGEN: dict[str, Callable[[str], sqlgen_core.CompiledSql]] = {
    "supersede": sqlgen_core.supersede_sql,
    "fenced_commit": sqlgen_core.fenced_commit_sql,
    "insert_rejects": sqlgen_core.insert_rejects_sql,
    "insert_events": sqlgen_core.insert_events_sql,
    "retire_loaded": sqlgen_core.retire_loaded_sql,
    "retarget": sqlgen_core.retarget_sql,
    "abandon_staged": sqlgen_core.abandon_staged_sql,
    "insert_schema": sqlgen_core.insert_schema_sql,
    "schema_version": sqlgen_core.schema_version_sql,
}
"""``audit/sqlgen_core.py``'s fixed statements, by catalogue name (``sqlgen:<name>``)."""

TABLE_PLACEHOLDER = "__tc_target_table__"
"""The table name ``sqlgen:delete_rows`` is compiled with (replaced, quoted, at execution)."""


def build_all() -> dict[str, Entry]:
    """Every statement of the DB-API repository, by name (variants ``name:flags``)."""
    fixed: dict[str, Callable[[], Entry]] = {
        "insert_batch": lambda: _insert(batches, returning=False),
        "get_batch": lambda: compile_entry(
            select(batches).where(batches.c.id == bindparam("batch_id")), ("batch_id",)),
        "list_batches": lambda: compile_entry(
            select(batches).order_by(batches.c.started_at.desc(), batches.c.id.desc())
            .limit(bindparam("limit")), ("limit",)),
        # the literal (not a parameter) lets SQLite use the partial index of running batches
        "running_batches_on_host": lambda: compile_entry(
            select(batches).where(text("tallyclerk_batches.status = 'running'"),
                                  batches.c.host == bindparam("host")), ("host",)),
        "claim_candidates": lambda: compile_entry(
            _candidates(_ONE_FP), ("table", "fingerprint")),
        "claim_history": lambda: compile_entry(_history(_ONE_FP), ("table", "fingerprint")),
        "claim_history_of": lambda: compile_entry(
            _history(_MANY_FP), ("table", "fingerprints")),
        "count_attempts": lambda: compile_entry(
            select(func.count()).select_from(files)
            .where(files.c.target_table == bindparam("table"))
            .where(files.c.fingerprint == bindparam("fingerprint"))
            .where(files.c.status != "skipped", files.c.status != "pending"),
            ("table", "fingerprint")),
        "insert_file": lambda: _insert(files, returning=True),
        "get_file": lambda: compile_entry(
            select(files).where(files.c.id == bindparam("file_id")), ("file_id",)),
        "fail_loading_file": lambda: compile_entry(
            update(files).where(files.c.id == bindparam("file_id"), files.c.status == "loading")
            .values(_FAIL_VALUES), ("file_id", "error", "error_class", "finished_at")),
        "loading_ids_of_batch": lambda: compile_entry(
            select(files.c.id).where(files.c.batch_id == bindparam("batch_id"),
                                     files.c.status == "loading"), ("batch_id",)),
        "fail_loading_files": lambda: compile_entry(
            update(files).where(files.c.id.in_(bindparam("ids", expanding=True)),
                                files.c.status == "loading")
            .values(_FAIL_VALUES), ("ids", "error", "error_class", "finished_at")),
        "drop_unstarted_claim": lambda: compile_entry(
            delete(files).where(files.c.id == bindparam("file_id"),
                                files.c.claim_token == bindparam("token"),
                                files.c.status == "loading"), ("file_id", "token")),
        "renew_leases": lambda: compile_entry(
            update(files).where(files.c.batch_id == bindparam("batch_id"),
                                files.c.status == "loading",
                                files.c.owner == bindparam("owner"))
            .values(lease_expires_at=bindparam("until")), ("batch_id", "owner", "until")),
        "files_of_batch": lambda: compile_entry(
            select(files).where(files.c.batch_id == bindparam("batch_id"))
            .order_by(files.c.id), ("batch_id",)),
        "file_status_counts": lambda: compile_entry(
            select(files.c.status, func.count())
            .where(files.c.batch_id == bindparam("batch_id")).group_by(files.c.status),
            ("batch_id",)),
        "files_of_identity": lambda: compile_entry(
            select(files).where(files.c.target_table == bindparam("table"))
            .where(files.c.fingerprint == bindparam("fingerprint")).order_by(files.c.id),
            ("table", "fingerprint")),
        "insert_reject": lambda: _insert(rejects, returning=False),
        "insert_event": lambda: _insert(events, returning=True),
        "count_events": lambda: compile_entry(select(func.count()).select_from(events)),
        # the target tables' schemas (schemas.latest, schemas.history)
        "schema_latest": lambda: compile_entry(schemas._latest_stmt(), ("table",)),
        "schema_history": lambda: compile_entry(
            select(models.table_schemas)
            .where(models.table_schemas.c.target_table == bindparam("table"))
            .order_by(models.table_schemas.c.version), ("table",)),
        # the ledger's reads (AuditRepository's builders are the definition)
        "stale_shadows": lambda: compile_entry(repository.stale_shadows_stmt(), ("table",)),
        # the store's schema version (engine.ensure_schema)
        "schema_version_get": lambda: compile_entry(
            select(models.schema_version.c.version).where(models.schema_version.c.id == 1)),
        "schema_version_insert": lambda: compile_entry(
            insert(models.schema_version).values(id=1, version=bindparam("version"),
                                                 updated_at=bindparam("updated_at")),
            ("version", "updated_at")),
    }
    found = {name: build() for name, build in fixed.items()}
    # the statements audit/sqlgen_core.py compiles for a caller's executor (its builders are the
    # definition); delete_rows with a placeholder table, quoted at execution
    for name, build_sql in SQLGEN.items():
        compiled = build_sql("sqlite")
        found[f"sqlgen:{name}"] = (compiled.sql, compiled.names, {})
    delete_rows = sqlgen_core.delete_rows_sql("sqlite", TABLE_PLACEHOLDER)
    found["sqlgen:delete_rows"] = (delete_rows.sql, delete_rows.names, {})
    for flags in _flags(3):
        found[_key("list_rejects", flags)] = _list_rejects(*flags)
    for flags in _flags(4):
        found[_key("list_events", flags)] = _list_events(*flags)
    for flags in _flags(2):
        found[_key("update_batch_where", flags)] = _update_batch_where(*flags)
    for flags in _flags(2):
        caller = tuple(n for n, f in zip(("table", "path"), flags, strict=True) if f)
        found[_key("loading_files", flags)] = compile_entry(
            repository.loading_files_stmt(*flags), caller)
    # tallyclerk replay (audit/replay_statements.py is the definition)
    for flags in _flags(3):
        caller = tuple(n for n, f in zip(("batch_id", "path", "table"), flags, strict=True) if f)
        found[_key("replay_rejects", flags)] = compile_entry(
            replay_statements.rejects_to_replay(*flags), caller)
    for name, caller in replay_statements.CALLER.items():
        found[f"replay_{name}"] = compile_entry(getattr(replay_statements, name)(), caller)
    return found


def ddl() -> tuple[str, ...]:
    """``CREATE TABLE`` and ``CREATE INDEX`` of the audit tables for SQLite, in order."""
    out: list[str] = []
    for table in TABLES:
        out.append(str(CreateTable(table).compile(dialect=_DIALECT)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            out.append(str(CreateIndex(index).compile(dialect=_DIALECT)).strip())
    return tuple(out)


def views() -> tuple[str, ...]:
    """The views an audit store has (``tallyclerk_lineage``), created when missing."""
    return (f"CREATE VIEW IF NOT EXISTS {lineage.VIEW} AS {lineage._SELECT}",)


def indexes() -> dict[str, tuple[str, ...]]:
    """Each table's index names (a store lacking one needs the additive migration)."""
    return {t.name: tuple(sorted(str(i.name) for i in t.indexes)) for t in TABLES}


def quoted(dialect: Dialect = _DIALECT) -> dict[str, dict[str, str]]:
    """Each table's column names as ``dialect``'s identifier preparer writes them (SQLite's
    by default; ``QUOTED_POSTGRESQL`` is PostgreSQL's, for the hash chain's raw SQL, which
    runs on both: PostgreSQL quotes more reserved words, such as ``user``)."""
    prep = dialect.identifier_preparer
    return {t.name: {c.name: prep.format_column(c) for c in t.columns} for t in TABLES}


def quoted_postgresql() -> dict[str, dict[str, str]]:
    """:func:`quoted` for PostgreSQL (every driver shares its identifier preparer)."""
    return quoted(_POSTGRESQL)


def defaults() -> dict[str, dict[str, Any]]:
    """Each table's Python-side scalar column defaults (what Core adds to an INSERT)."""
    out: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        found: dict[str, Any] = {}
        for column in table.columns:
            default = column.default
            if default is None:
                continue
            if not default.is_scalar:
                raise TypeError(f"{table.name}.{column.name}: only scalar defaults are supported")
            found[column.name] = default.arg  # type: ignore[attr-defined]
        out[table.name] = found
    return out


_HEADER = '''"""GENERATED by ``python -m tallyclerk.audit.statements``: do not edit.

The statements of the SQLAlchemy-free SQLite audit path, compiled by SQLAlchemy for SQLite
from :mod:`tallyclerk.audit.models` (see :mod:`tallyclerk.audit.statements`;
``tests/audit/test_catalogue.py`` checks this file against a fresh compilation).
This module imports nothing.
"""

# ruff: noqa: E501

from __future__ import annotations

from typing import Any, Final

'''


def render_module() -> str:
    """The text of :mod:`tallyclerk.audit.catalogue`."""

    def block(name: str, kind: str, value: Any) -> str:
        return f"{name}: Final[{kind}] = " + pprint.pformat(value, width=100,
                                                           sort_dicts=False) + "\n"

    return (
        _HEADER
        + f"SCHEMA_VERSION: Final = {models.SCHEMA_VERSION}\n\n"
        + block("DDL", "tuple[str, ...]", ddl()) + "\n"
        + block("VIEWS", "tuple[str, ...]", views()) + "\n"
        + block("INDEXES", "dict[str, tuple[str, ...]]", indexes()) + "\n"
        + block("QUOTED", "dict[str, dict[str, str]]", quoted()) + "\n"
        + block("QUOTED_POSTGRESQL", "dict[str, dict[str, str]]", quoted_postgresql()) + "\n"
        + block("DEFAULTS", "dict[str, dict[str, Any]]", defaults()) + "\n"
        + block("STATEMENTS",
                "dict[str, tuple[str, tuple[str, ...], dict[str, Any]]]", build_all())
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_module())
