"""Connection pragmas are retried while SQLite answers "database is locked" without waiting."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tallyclerk.audit.engine import _retry_busy


class FlakyCursor:
    """A cursor whose first ``busy`` executions fail as SQLite does during a WAL switch."""

    def __init__(self, busy: int, message: str = "database is locked") -> None:
        self.busy, self.message, self.calls = busy, message, 0

    def execute(self, sql: str) -> Any:
        self.calls += 1
        if self.calls <= self.busy:
            raise sqlite3.OperationalError(self.message)
        return self


def test_a_busy_pragma_is_retried_until_it_succeeds() -> None:
    cursor = FlakyCursor(busy=3)
    _retry_busy(cursor, "PRAGMA journal_mode=WAL", 5.0)  # type: ignore[arg-type]
    assert cursor.calls == 4


def test_it_gives_up_after_the_busy_timeout() -> None:
    cursor = FlakyCursor(busy=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _retry_busy(cursor, "PRAGMA journal_mode=WAL", 0.02)  # type: ignore[arg-type]
    assert cursor.calls > 1


def test_other_errors_are_not_retried() -> None:
    cursor = FlakyCursor(busy=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _retry_busy(cursor, "PRAGMA journal_mode=WAL", 5.0)  # type: ignore[arg-type]
    assert cursor.calls == 1
