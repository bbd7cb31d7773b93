"""The databases the write-mode tests load into: where to load, how to read the table back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

CUSTOMERS_SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "customer_id", "type": "integer"},
        {"name": "name", "type": "string"},
        {"name": "tier", "type": "string"},
    ],
    "primaryKey": ["customer_id"],
}


@dataclass
class Target:
    """``into`` and ``audit`` URLs, and a reader of the target database."""

    name: str
    into: str
    audit: str | None
    _query: Callable[[str], list[tuple[Any, ...]]]

    def args(self) -> list[str]:
        out = ["--into", self.into]
        if self.audit is not None:
            out += ["--audit", self.audit]
        return out

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._query(sql)

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """(customer_id, name, tier) ordered by customer_id."""
        return [tuple(r) for r in self.query(
            f'SELECT customer_id, name, tier FROM "{table}" ORDER BY customer_id')]

    def tables(self) -> set[str]:
        return {str(r[0]) for r in self.query(_TABLES[self.name.split("-")[0]])}

    def manifest(self) -> list[tuple[Any, ...]]:
        """(path basename, target_table, status, rows_written, rows_inserted, rows_updated)."""
        audit_query = self._audit_query()
        rows = audit_query(
            "SELECT path, target_table, status, rows_written, rows_inserted, rows_updated "
            "FROM tallyclerk_files ORDER BY id"
        )
        return [(Path(r[0]).name, *r[1:]) for r in rows]

    def _audit_query(self) -> Callable[[str], list[tuple[Any, ...]]]:
        if self.audit is None and self.into.startswith("duckdb:///"):
            return sqlite_reader(Path(self.into.removeprefix("duckdb:///") + ".audit.db"))
        if self.audit is None:
            return self._query
        return sqlite_reader(Path(self.audit.removeprefix("sqlite:///")))


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    "duckdb": "SELECT table_name FROM information_schema.tables",
}


def sqlite_reader(db: Path) -> Callable[[str], list[tuple[Any, ...]]]:
    def run(sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(db, timeout=30)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    return run


def sqlalchemy_reader(url: str) -> Callable[[str], list[tuple[Any, ...]]]:
    def run(sql: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql)]
        finally:
            engine.dispose()

    return run


def sqlite_target(tmp: Path, *, separate_audit: bool = False) -> Target:
    db = tmp / "warehouse.db"
    audit = f"sqlite:///{tmp / 'audit.db'}" if separate_audit else None
    name = "sqlite-separate" if separate_audit else "sqlite"
    return Target(name, f"sqlite:///{db}", audit, sqlite_reader(db))


def sqlalchemy_sqlite_target(tmp: Path) -> Target:
    """The generic SQLAlchemy sink on SQLite (a URL with a query string skips the fast path)."""
    db = tmp / "generic.db"
    return Target("sqlite-generic", f"sqlite:///{db}?timeout=5", f"sqlite:///{tmp / 'audit.db'}",
                  sqlite_reader(db))


def postgres_target(url: str) -> Target:
    return Target("postgres", url, None, sqlalchemy_reader(url))


def duckdb_reader(db: Path) -> Callable[[str], list[tuple[Any, ...]]]:
    def run(sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()

    return run


def duckdb_target(tmp: Path) -> Target:
    """A DuckDB file; its audit store is the default SQLite file beside it."""
    db = tmp / "warehouse.duckdb"
    return Target("duckdb", f"duckdb:///{db}", None, duckdb_reader(db))
