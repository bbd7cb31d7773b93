"""Executors: something that runs SQL inside the caller's open transaction.

:class:`SqlExecutor` is the protocol (defined once, in :mod:`tallyclerk.protocols`); the audit
service runs its manifest statements through one so a file's rows and its manifest row commit
in the same transaction. :class:`SqlAlchemyExecutor` adapts a SQLAlchemy ``Connection`` (the
generic sink); the Rust ``SqliteWriter`` is adapted by the SQLite sink.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from tallyclerk.protocols import SqlExecutor

__all__ = ["SqlAlchemyExecutor", "SqlExecutor"]


class SqlAlchemyExecutor:
    """A :class:`SqlExecutor` over a SQLAlchemy ``Connection`` (uses ``exec_driver_sql``).

    SQL uses the driver's positional style: ``?`` for SQLite, ``%s`` for psycopg. The caller
    owns the transaction; this never begins, commits or rolls back.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect_name: str = connection.dialect.name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.exec_driver_sql(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return self.connection.exec_driver_sql(sql, [tuple(r) for r in rows]).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.connection.exec_driver_sql(sql, tuple(params))]
