"""Runs the ``tallyclerk`` command with every SQL statement sent through SQLAlchemy written,
with its parameters, to the JSON-lines file named by ``TC_SQL_TRACE`` (for
``test_query_plans.py``, which explains each one):
``python3 -m tests.audit.sql_trace load ...``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import sqlalchemy as sa

_path = os.environ["TC_SQL_TRACE"]


def _trace(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
           executemany: bool) -> None:
    if executemany:
        return
    params = list(parameters) if isinstance(parameters, (list, tuple)) else parameters
    with open(_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"dialect": conn.dialect.name, "sql": statement,
                            "params": params}, default=str) + "\n")


if __name__ == "__main__":
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _trace)
    from tallyclerk.cli import main

    sys.argv[0] = "tallyclerk"
    sys.exit(main())
