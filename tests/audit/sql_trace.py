"""Runs the ``tallyclerk`` command with every SQL statement it sends written, with its
parameters, to the JSON-lines file named by ``TC_SQL_TRACE`` (for ``test_query_plans.py``,
which explains each one): ``python3 -m tests.audit.sql_trace load ...``.

Both audit paths are recorded: statements sent through SQLAlchemy (PostgreSQL, a migration)
by an engine event, and those sent on plain ``sqlite3`` connections (the SQLite audit store,
:class:`~tallyclerk.audit.liteengine.LiteEngine`) through a connection class that records
``execute`` on the connection and its cursors.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

import sqlalchemy as sa

_path = os.environ["TC_SQL_TRACE"]


def _record(dialect: str, statement: str, parameters: Any) -> None:
    params = list(parameters) if isinstance(parameters, (list, tuple)) else parameters
    with open(_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"dialect": dialect, "sql": statement, "params": params},
                           default=str) + "\n")


def _trace(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
           executemany: bool) -> None:
    if not executemany:
        _record(conn.dialect.name, statement, parameters)


class _TracingCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        _record("sqlite", sql, parameters)
        return super().execute(sql, parameters)


class _TracingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _TracingCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)


def _connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    kwargs.setdefault("factory", _TracingConnection)
    return _real_connect(*args, **kwargs)


_real_connect = sqlite3.connect

if __name__ == "__main__":
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _trace)
    sqlite3.connect = _connect
    from tallyclerk.cli import main

    sys.argv[0] = "tallyclerk"
    sys.exit(main())
