"""A :class:`~tallyclerk.protocols.SqlExecutor` over a plain ``sqlite3`` connection: what
:class:`~tallyclerk.audit.executor.SqlAlchemyExecutor` is to a SQLAlchemy ``Connection``, for
the SQLite audit path without SQLAlchemy (``ledger.py``, ``uncertain.py`` and ``claims.py``
hand one to ``sqlgen``'s statements). The caller owns the
transaction; this never begins, commits or rolls back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

__all__ = ["DbapiExecutor"]


class DbapiExecutor:
    """Runs ``?``-style SQL on ``connection`` inside its open transaction."""

    dialect_name = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return self.connection.executemany(sql, [tuple(r) for r in rows]).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.connection.execute(sql, tuple(params)).fetchall()]


if TYPE_CHECKING:
    from tallyclerk.protocols import SqlExecutor

    def _is_an_executor(executor: DbapiExecutor) -> SqlExecutor:
        return executor  # mypy checks the protocol
