"""Which statements of a load and ``status`` scan a ledger table whole (issue 16).

Shared by ``tests/audit/test_query_plans.py`` (a 20,000-file ledger) and
``benches/bench_ledger_growth.py`` (1,000,000 files): :func:`traced` runs CLI commands through
``tests/audit/sql_trace.py``, which records every SQL statement sent through SQLAlchemy;
:func:`full_scans` explains each recorded statement that reads or changes a ledger table on
the same database (SQLite: ``EXPLAIN QUERY PLAN``; PostgreSQL: ``EXPLAIN``) and, for the target
table, the delete by ``_tc_file_id`` (``--force``, the re-run of a crashed file), and returns
the statements whose plan scans a ledger table whole or deletes without an index.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LEDGER = ("tallyclerk_files", "tallyclerk_batches")


def traced(commands: Sequence[Sequence[str]], *, cwd: Path, env: dict[str, str],
           trace: Path) -> list[dict[str, Any]]:
    """Run each CLI command with the SQL trace; the recorded ledger statements."""
    trace.unlink(missing_ok=True)
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "tests.audit.sql_trace", *args],
                              cwd=cwd, env={**env, "TC_SQL_TRACE": str(trace)},
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"tallyclerk {' '.join(args)} failed: {proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows
            if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", r["sql"], re.I)
            and any(t in r["sql"] for t in LEDGER)]


def _params(params: Any) -> Any:
    return params if isinstance(params, dict) else tuple(params or ())


def full_scans(url: str, statements: list[dict[str, Any]], target: str) -> list[str]:
    """The statements (with their plans) that scan a ledger table whole, and the delete of a
    file's rows from ``target`` by ``_tc_file_id`` if it uses no index."""
    import sqlalchemy as sa

    from tallyclerk.audit import sqlgen

    engine = sa.create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            sqlite = engine.dialect.name == "sqlite"
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            scan = (r"\bSCAN ({})\b(?! USING)" if sqlite else r"Seq Scan on ({})\b").format(
                "|".join(LEDGER))
            for st in statements:
                plan = conn.exec_driver_sql(explain + st["sql"], _params(st["params"]))
                text = " | ".join(str(row[-1] if sqlite else row[0]) for row in plan)
                if re.search(scan, text):
                    found.append(f"{st['sql']}\n    plan: {text}")
            if not sqlite:  # a small target table: is there an index at all?
                conn.exec_driver_sql("SET enable_seqscan = off")
            delete = sqlgen.delete_rows_sql(engine.dialect.name, target).sql
            plan = conn.exec_driver_sql(explain + delete, (1,))
            text = " | ".join(str(row[-1] if sqlite else row[0]) for row in plan)
            if not re.search(r"\bINDEX\b" if sqlite else r"\bIndex\b", text):
                found.append(f"{delete}\n    plan: {text}")
    finally:
        engine.dispose()
    return found
