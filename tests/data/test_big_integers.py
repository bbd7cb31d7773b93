"""Integers beyond 64 bits: an integer field whose minimum/maximum lies beyond 64 bits is a
*big* field, stored exactly where the database can (PostgreSQL ``numeric``, DuckDB ``HUGEINT``)
and rejected with the reason where it cannot (SQLite); a field without such a bound keeps the
64-bit range everywhere. Real CLI, real databases, and the API."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tallyclerk import TableSchema
from tallyclerk.errors import SchemaError
from tests.clirun import env_for, run_cli

BIG = "12345678901234567890123"
SCHEMA = {"fields": [
    {"name": "id", "type": "integer"},
    {"name": "n", "type": "integer",
     "constraints": {"minimum": 0, "maximum": "100000000000000000000000000000"}},
    {"name": "small", "type": "integer"},
]}
CSV = (f"id,n,small\n1,{BIG},1\n2,5,2\n3,-1,3\n4,100000000000000000000000000001,4\n"
       f"5,9223372036854775808,5\n6,7,9223372036854775808\n")
BEYOND = "is beyond 64 bits, which this database cannot store exactly"


def _load(tmp_path: Path, url: str) -> dict[str, Any]:
    (tmp_path / "in.csv").write_text(CSV)
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    res = run_cli("load", "in.csv", "--table", "t", "--schema", "s.json", "--into", url,
                  "--audit", f"sqlite:///{tmp_path / 'audit.db'}", "--json",
                  cwd=tmp_path, env=env_for())
    assert res.code == 0, res.err
    report: dict[str, Any] = res.json()
    return report


def _reasons(tmp_path: Path) -> dict[int, str]:
    with sqlite3.connect(tmp_path / "audit.db") as con:
        return dict(con.execute("SELECT line, reason FROM tallyclerk_rejects"))


def test_sqlite_rejects_beyond_64_bits_with_the_reason(tmp_path: Path) -> None:
    report = _load(tmp_path, f"sqlite:///{tmp_path / 'out.db'}")
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (6, 1, 5)
    with sqlite3.connect(tmp_path / "out.db") as con:
        assert con.execute("SELECT id, n, typeof(n) FROM t").fetchall() == [(2, 5, "integer")]
    reasons = _reasons(tmp_path)
    assert BEYOND in reasons[2] and BEYOND in reasons[6]
    assert "less than the minimum 0" in reasons[4]
    assert "out of the 64-bit integer range" in reasons[7]  # not a big field


def test_postgres_stores_them_exactly_in_numeric(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    report = _load(tmp_path, pg_url)
    assert (report["rows_written"], report["rows_rejected"]) == (3, 3)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, n, pg_typeof(n)::text, pg_typeof(small)::text FROM t ORDER BY id"
            ).fetchall()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, Decimal(BIG), "numeric", "bigint"),
        (2, Decimal(5), "numeric", "bigint"),
        (5, Decimal("9223372036854775808"), "numeric", "bigint"),
    ]
    reasons = _reasons(tmp_path)
    assert "more than the maximum" in reasons[5]
    assert "out of the 64-bit integer range" in reasons[7]


def test_duckdb_stores_them_exactly_in_hugeint(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    report = _load(tmp_path, f"duckdb:///{tmp_path / 'out.duckdb'}")
    assert (report["rows_written"], report["rows_rejected"]) == (3, 3)
    con = duckdb.connect(str(tmp_path / "out.duckdb"))
    try:
        rows = con.execute("SELECT id, n, typeof(n) FROM t ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [(1, int(BIG), "HUGEINT"), (2, 5, "HUGEINT"),
                    (5, 9223372036854775808, "HUGEINT")]


def test_validate_judges_by_the_target(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    args = ([str(tmp_path / "in.csv")],)
    on_pg = tallyclerk.validate(*args, schema=str(tmp_path / "s.json"), into=pg_url)
    on_sqlite = tallyclerk.validate(*args, schema=str(tmp_path / "s.json"),
                                    into=f"sqlite:///{tmp_path / 'x.db'}")
    assert (on_pg.rows_rejected, on_sqlite.rows_rejected) == (3, 5)


@pytest.mark.parametrize("bound", [1e30, "1" + "0" * 40, "12x"])
def test_bounds_beyond_128_bits_or_inexact_are_schema_errors(bound: object) -> None:
    doc = {"fields": [{"name": "n", "type": "integer", "constraints": {"maximum": bound}}]}
    with pytest.raises(SchemaError, match='"n"'):
        TableSchema.from_json(json.dumps(doc))


def test_a_big_field_is_marked_in_the_schema_fields() -> None:
    fields = TableSchema.from_json(json.dumps(SCHEMA)).fields()
    assert [f["big"] for f in fields] == [False, True, False]
