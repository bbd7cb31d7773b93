"""The DuckDB sink: the sink conformance suite (write modes included), Table Schema types, the
default audit store beside the file, and an interrupted append repaired exactly once."""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path
from typing import Any

import duckdb

from tallyclerk.builtins import duckdb_sink
from tallyclerk.testing import SinkConformance
from tests.clirun import env_for, query, run_cli


def _read(url: str, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


class TestDuckDbSink(SinkConformance):
    plugin = duckdb_sink
    foreign_urls = ("nosuchscheme://host/db", "sqlite:///x.db", "postgresql://u:p@h/db",
                    "duckdb:///x.duckdb?mode=x")

    def make_url(self, directory: Path) -> str:
        return f"duckdb:///{directory / 'conformance.duckdb'}"

    def read_rows(self, url: str, table: str) -> list[dict[str, Any]]:
        con = duckdb.connect(url.removeprefix("duckdb:///"))
        try:
            found = con.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_name = ?", [table]).fetchone()
            if not found or not found[0]:
                return []
            cur = con.execute(f'SELECT * FROM "{table.replace(chr(34), chr(34) * 2)}" '
                              "ORDER BY 1")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def read_columns(self, url: str, table: str) -> list[str]:
        rows = _read(url, "SELECT column_name FROM information_schema.columns WHERE "
                          f"table_name = '{table.replace(chr(39), chr(39) * 2)}' "
                          "ORDER BY ordinal_position")
        return [r[0] for r in rows]


SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer"},
        {"name": "amount", "type": "number"},
        {"name": "ok", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "note", "type": "string"},
    ]
}


def test_columns_get_the_schema_types_and_the_audit_store_sits_beside(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "a.csv").write_text(
        "id,amount,ok,day,at,note\n1,1.5,true,2026-01-02,2026-01-02T03:04:05Z,\"a, \"\"b\"\"\"\n"
        "x,1,true,2026-01-01,2026-01-01T00:00:00Z,bad id\n2,,,,,\n", encoding="utf-8")
    r = run_cli("load", "a.csv", "--table", "t", "--schema", "schema.json",
                "--into", "duckdb:///w.duckdb", "--json", cwd=tmp_path, env=env_for())
    assert r.code == 0, r.err
    assert (r.json()["rows_written"], r.json()["rows_rejected"]) == (2, 1)
    types = _read(f"duckdb:///{tmp_path / 'w.duckdb'}",
                  "SELECT column_name, data_type FROM information_schema.columns "
                  "WHERE table_name = 't' ORDER BY ordinal_position")
    assert types == [("id", "BIGINT"), ("amount", "DOUBLE"), ("ok", "BOOLEAN"),
                     ("day", "DATE"), ("at", "TIMESTAMP WITH TIME ZONE"),
                     ("note", "VARCHAR"), ("_tc_file_id", "BIGINT")]
    rows = _read(f"duckdb:///{tmp_path / 'w.duckdb'}",
                 "SELECT id, amount, ok, day, epoch(\"at\"), note FROM t ORDER BY id")
    assert rows == [(1, 1.5, True, dt.date(2026, 1, 2),
                     dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp(),
                     'a, "b"'),
                    (2, None, None, None, None, None)]
    audit = tmp_path / "w.duckdb.audit.db"
    assert query(audit, "SELECT status, rows_written FROM tallyclerk_files") == [("loaded", 2)]
    status = run_cli("status", "--into", "duckdb:///w.duckdb", "--json", cwd=tmp_path,
                     env=env_for())
    assert status.code == 0 and status.json()["status"] == "succeeded", status.err


def test_a_kill_between_data_commit_and_manifest_is_repaired_once(tmp_path: Path) -> None:
    for n in range(3):
        lines = ["id,name"] + [f"{n * 100 + i},n{i}" for i in range(100)]
        (tmp_path / f"p{n}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["load", "p0.csv", "p1.csv", "p2.csv", "--table", "t", "--into",
            "duckdb:///w.duckdb", "--json"]
    killed = run_cli(*args, cwd=tmp_path,
                     env=env_for(TALLYCLERK_FAULT="after-data-commit-before-manifest:kill@2"))
    assert killed.code == -signal.SIGKILL
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    assert _read(url, "SELECT count(*) FROM t") == [(200,)]  # p1's rows committed, manifest not
    status = run_cli("status", "--into", "duckdb:///w.duckdb", "--json", cwd=tmp_path,
                     env=env_for())
    assert status.json()["uncertain"] == 1  # shown, not silently reloaded or skipped
    rerun = run_cli(*args, cwd=tmp_path, env=env_for())
    assert rerun.code == 0, rerun.err
    # the target's load marker says p1 committed: settled as loaded (logged), then skipped
    assert "was uncertain" in rerun.err and "committed" in rerun.err
    assert [f["status"] for f in rerun.json()["files"]] == ["skipped", "skipped", "loaded"]
    assert _read(url, "SELECT count(*), count(DISTINCT id) FROM t") == [(300, 300)]
