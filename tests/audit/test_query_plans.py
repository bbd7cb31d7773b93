"""Every statement a load and ``status`` send to a large ledger uses an index (issue 16).

A store gets one real load and then 20,000 generated manifest rows (``tests/ledger_rows.py``) and
target rows;
a new file is loaded, the same file loaded again (skipped) and with ``--force`` (replaced), and
``status`` run, through the CLI
with a wrapper (``tests/audit/sql_trace.py``) recording every SQL statement sent through
SQLAlchemy. Each recorded
statement that reads or changes a ledger table is explained on the same database; a plan that
scans ``tallyclerk_files`` or ``tallyclerk_batches`` whole fails the test, naming the statement.
The target table's delete by ``_tc_file_id`` (``--force``, the re-run of a crashed file) must
use the index the sinks create on it.
``benches/bench_ledger_growth.py`` measures the consequence (flat cost up to 1,000,000 rows) and
checks the same plans on its 1,000,000-file ledgers. The tracing and explaining are in
``tests/ledger_plans.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import ledger_rows
from tests.clirun import ROOT, env_for, run_cli
from tests.ledger_plans import full_scans, traced


def _run(tmp_path: Path, url: str) -> list[dict[str, Any]]:
    env = env_for(ROOT)
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
    new = tmp_path / "new.csv"
    new.write_text("id,name\n2,b\n3,c\n", encoding="utf-8")
    load = ("load", str(new), "--table", "feed", "--into", url)
    found = traced([load, load, (*load, "--force"), ("status", "--into", url)], cwd=tmp_path,
                   env=env,
                   trace=tmp_path / "trace.jsonl")
    assert found, "the trace plugin recorded no ledger statement: the test would prove nothing"
    return found


def test_sqlite_ledger_statements_use_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    scans = full_scans(url, _run(tmp_path, url), "feed")
    assert not scans, "full scans of the ledger:\n" + "\n".join(scans)


@pytest.mark.postgres
def test_postgres_ledger_statements_use_indexes(tmp_path: Path, pg_url: str) -> None:
    statements = _run(tmp_path, pg_url)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    scans = full_scans(pg_url, statements, "feed")
    assert not scans, "full scans of the ledger:\n" + "\n".join(scans)
