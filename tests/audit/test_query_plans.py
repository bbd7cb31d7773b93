"""Every statement a load and ``status`` send to a large ledger uses an index (issue 16).

A store gets one real load and then 20,000 generated manifest rows (``tests/ledger_rows.py``) and
target rows;
a new file is loaded, the same file loaded again (skipped) and ``status`` run, through the CLI
with a wrapper (``tests/audit/sql_trace.py``) recording every SQL statement sent through
SQLAlchemy. Each recorded
statement that reads or changes a ledger table is explained on the same database; a plan that
scans ``tallyclerk_files`` or ``tallyclerk_batches`` whole fails the test, naming the statement.
The target table's delete by ``_tc_file_id`` (``--force``, the re-run of a crashed file) must
use the index the sinks create on it.
``benches/bench_ledger_growth.py`` measures the consequence (flat cost up to 1,000,000 rows).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tallyclerk.audit import sqlgen
from tests import ledger_rows
from tests.clirun import ROOT, env_for, run_cli

LEDGER = ("tallyclerk_files", "tallyclerk_batches")


def _statements(trace: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows
            if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", r["sql"], re.I)
            and any(t in r["sql"] for t in LEDGER)]


def _run(tmp_path: Path, url: str) -> list[dict[str, Any]]:
    trace = tmp_path / "trace.jsonl"
    env = env_for(ROOT, TC_SQL_TRACE=str(trace))
    seed = tmp_path / "seed.csv"
    seed.write_text("id,name\n1,a\n", encoding="utf-8")
    assert run_cli("load", str(seed), "--table", "feed", "--into", url, cwd=tmp_path,
                   env=env).code == 0
    # the target table as the generated ledger has it: rows of 20,000 files (before ANALYZE;
    # on a 1-row table of narrow typed columns a scan is rightly the cheaper plan)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 20000) INSERT INTO feed (id, name, _tc_file_id) "
                "SELECT i + 100, 'x', -i FROM n")
    finally:
        engine.dispose()
    ledger_rows.grow(url, 20_000)
    trace.unlink(missing_ok=True)
    new = tmp_path / "new.csv"
    new.write_text("id,name\n2,b\n3,c\n", encoding="utf-8")
    for args in (("load", str(new), "--table", "feed", "--into", url),
                 ("load", str(new), "--table", "feed", "--into", url),
                 ("status", "--into", url)):
        proc = subprocess.run([sys.executable, "-m", "tests.audit.sql_trace", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    found = _statements(trace)
    assert found, "the trace plugin recorded no ledger statement: the test would prove nothing"
    return found


def test_sqlite_ledger_statements_use_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = sa.create_engine(url)
    scans = []
    try:
        with engine.connect() as conn:
            for st in _run(tmp_path, url):
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + st["sql"],
                                            tuple(st["params"] or ())).fetchall()
                text = " | ".join(str(row[-1]) for row in plan)
                if re.search(r"\bSCAN ({})\b(?! USING)".format("|".join(LEDGER)), text):
                    scans.append(f"{st['sql']}\n    plan: {text}")
            # --force and the re-run of a crashed file delete a file's rows by _tc_file_id
            delete = sqlgen.delete_rows_sql("sqlite", "feed").sql
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + delete, (1,)).fetchall()
            text = " | ".join(str(row[-1]) for row in plan)
            if "INDEX" not in text:
                scans.append(f"{delete}\n    plan: {text}")
    finally:
        engine.dispose()
    assert not scans, "full scans of the ledger:\n" + "\n".join(scans)


@pytest.mark.postgres
def test_postgres_ledger_statements_use_indexes(tmp_path: Path, pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    scans = []
    try:
        statements = _run(tmp_path, pg_url)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            for st in statements:
                params = st["params"]
                plan = conn.exec_driver_sql("EXPLAIN " + st["sql"],
                                            params if isinstance(params, dict)
                                            else tuple(params or ())).fetchall()
                text = " | ".join(str(row[0]) for row in plan)
                if re.search(r"Seq Scan on ({})\b".format("|".join(LEDGER)), text):
                    scans.append(f"{st['sql']}\n    plan: {text}")
            conn.exec_driver_sql("SET enable_seqscan = off")  # a 3-row table: is there an index?
            delete = sqlgen.delete_rows_sql("postgresql", "feed").sql
            plan = conn.exec_driver_sql("EXPLAIN " + delete, (1,)).fetchall()
            text = " | ".join(str(row[0]) for row in plan)
            if "Index" not in text:
                scans.append(f"{delete}\n    plan: {text}")
    finally:
        engine.dispose()
    assert not scans, "full scans of the ledger:\n" + "\n".join(scans)
