"""The Table Schema types beyond the first six load end to end (real CLI, real databases)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.clirun import env_for, run_cli

SCHEMA = {"fields": [
    {"name": "id", "type": "integer"},
    {"name": "year", "type": "year"},
    {"name": "ym", "type": "yearmonth"},
    {"name": "geo", "type": "geopoint"},
    {"name": "day", "type": "date", "format": "%d/%m/%Y"},
    {"name": "amount", "type": "number", "decimalChar": ",", "groupChar": "."},
]}
CSV = ('id,year,ym,geo,day,amount\n1,2024,2024-01,"1, 2",31/01/2024,"1.234,5"\n'
       "2,24,2024-13,x,2024-01-31,1.5.5\n")


def _load(tmp_path: Path, url: str) -> dict[str, object]:
    (tmp_path / "in.csv").write_text(CSV)
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    res = run_cli("load", "in.csv", "--table", "t", "--schema", "s.json", "--into", url,
                  "--audit", f"sqlite:///{tmp_path / 'audit.db'}", "--json",
                  cwd=tmp_path, env=env_for())
    assert res.code == 0, res.err
    report: dict[str, object] = res.json()
    return report


def test_sqlite(tmp_path: Path) -> None:
    report = _load(tmp_path, f"sqlite:///{tmp_path / 'out.db'}")
    assert (report["rows_written"], report["rows_rejected"]) == (1, 1)
    with sqlite3.connect(tmp_path / "out.db") as con:
        row = con.execute("SELECT year, typeof(year), ym, geo, day, amount FROM t").fetchone()
    assert row == (2024, "integer", "2024-01", "1,2", "2024-01-31", 1234.5)


def test_duckdb(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    report = _load(tmp_path, f"duckdb:///{tmp_path / 'out.duckdb'}")
    assert (report["rows_written"], report["rows_rejected"]) == (1, 1)
    con = duckdb.connect(str(tmp_path / "out.duckdb"))
    row = con.execute("SELECT year, ym, geo, CAST(day AS VARCHAR), amount FROM t").fetchone()
    assert row == (2024, "2024-01", "1,2", "2024-01-31", 1234.5)
