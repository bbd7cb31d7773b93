"""NaN is stored where the database keeps it (PostgreSQL, DuckDB) and rejected, with the
reason, where it would silently become NULL (SQLite): real CLI, real databases, and the API."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tests.clirun import env_for, run_cli

SCHEMA = {"fields": [{"name": "id", "type": "integer"}, {"name": "x", "type": "number"}]}
CSV = "id,x\n1,1.5\n2,NaN\n3,nan\n4,-INF\n"


def _files(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))


def _cli_load(tmp_path: Path, url: str) -> dict[str, Any]:
    _files(tmp_path)
    res = run_cli("load", "in.csv", "--table", "t", "--schema", "s.json", "--into", url,
                  "--audit", f"sqlite:///{tmp_path / 'audit.db'}", "--json",
                  cwd=tmp_path, env=env_for())
    assert res.code == 0, res.err
    report: dict[str, Any] = res.json()
    return report


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def test_sqlite_rejects_nan_with_the_reason(tmp_path: Path) -> None:
    report = _cli_load(tmp_path, f"sqlite:///{tmp_path / 'out.db'}")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (4, 2, 2)
    with sqlite3.connect(tmp_path / "out.db") as con:
        rows = con.execute("SELECT id, x FROM t ORDER BY id").fetchall()
    assert rows == [(1, 1.5), (4, -math.inf)]
    with sqlite3.connect(tmp_path / "audit.db") as con:
        reasons = [r[0] for r in con.execute("SELECT reason FROM tallyclerk_rejects")]
    assert len(reasons) == 2
    assert all("NaN, which SQLite would store as NULL" in r for r in reasons), reasons


def test_postgres_stores_nan(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    report = _cli_load(tmp_path, pg_url)
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (4, 4, 0)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, x FROM t ORDER BY id").fetchall()
            kind = conn.exec_driver_sql(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 't' AND column_name = 'x'").scalar()
    finally:
        engine.dispose()
    assert kind == "double precision"
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert rows[0][1] == 1.5 and _is_nan(rows[1][1]) and _is_nan(rows[2][1])
    assert rows[3][1] == -math.inf


def test_postgres_through_the_api_and_validate(tmp_path: Path, pg_url: str) -> None:
    _files(tmp_path)
    report = tallyclerk.load([tmp_path / "in.csv"], table="t", into=pg_url,
                             audit=f"sqlite:///{tmp_path / 'audit.db'}",
                             schema=tmp_path / "s.json")
    assert (report.rows_written, report.rows_rejected) == (4, 0)
    checked = tallyclerk.validate([str(tmp_path / "in.csv")], into=pg_url,
                                  schema=str(tmp_path / "s.json"))
    assert checked.files[0]["rows_rejected"] == 0
    against_sqlite = tallyclerk.validate([str(tmp_path / "in.csv")],
                                         schema=str(tmp_path / "s.json"),
                                         into=f"sqlite:///{tmp_path / 'x.db'}")
    assert against_sqlite.files[0]["rows_rejected"] == 2


def test_duckdb_stores_nan(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    report = _cli_load(tmp_path, f"duckdb:///{tmp_path / 'out.duckdb'}")
    assert (report["rows_written"], report["rows_rejected"]) == (4, 0)
    con = duckdb.connect(str(tmp_path / "out.duckdb"))
    try:
        rows = con.execute("SELECT id, x FROM t ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows[0] == (1, 1.5) and _is_nan(rows[1][1]) and _is_nan(rows[2][1])
    assert rows[3] == (4, -math.inf)
