"""The PostgreSQL COPY sink: the sink conformance suite, and the CLI end to end on a real server
(exactly-once: a re-run skips, ``--force`` replaces; a file's rows and manifest commit together)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tallyclerk import modes
from tallyclerk.builtins import postgres_sink
from tallyclerk.testing import SinkConformance
from tests.pgserver import PASSWORD

pytestmark = pytest.mark.postgres

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "amount", "type": "number"},
        {"name": "ok", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "note", "type": "string"},
    ]
}


class TestPostgresSink(SinkConformance):
    plugin = postgres_sink
    foreign_urls = ("nosuchscheme://host/db", "sqlite:///x.db", "mysql://u:p@localhost/db")

    @pytest.fixture()
    def url(self, pg_url: str) -> str:
        return pg_url


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tallyclerk.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, **(env or {})},
    )


def write_files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "a.csv"
    a.write_text(
        "id,amount,ok,day,at,note\n"
        "1,1.5,true,2026-01-02,2026-01-02T03:04:05Z,\"tab\tand \\ backslash\"\n"
        "2,-2,false,2026-02-03,2026-02-03T00:00:00,\"multi\nline\"\n"
        "x,1,true,2026-01-01,2026-01-01T00:00:00Z,bad id\n"
        "4,,,,,\n",
        encoding="utf-8",
    )
    b = tmp_path / "b.csv"
    b.write_text("id,amount,ok,day,at,note\n10,1e3,0,2020-02-29,2020-02-29T23:59:59.5Z,ü\n",
                 encoding="utf-8")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    return [a, b]


def test_cli_loads_with_copy_exactly_once(pg_url: str, tmp_path: Path) -> None:
    a, b = write_files(tmp_path)
    into = pg_url.replace("postgresql+psycopg://", "postgresql://")
    args = ["load", str(a), str(b), "--table", "Orders 2026", "--into", into,
            "--schema", "schema.json", "--json"]
    first = cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert PASSWORD not in first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert [f["status"] for f in report["files"]] == ["loaded", "loaded"]
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (5, 4, 1)

    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT id, amount, ok, day, at, note, _tc_file_id FROM "Orders 2026" ORDER BY id'
            )).all()
            types = dict(conn.execute(sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'Orders 2026'")).all())
            manifest = conn.execute(sa.text(
                "SELECT id, path, status FROM tallyclerk_files ORDER BY id")).all()
        assert types == {"id": "bigint", "amount": "double precision", "ok": "boolean",
                         "day": "date", "at": "timestamp with time zone", "note": "text",
                         "_tc_file_id": "bigint"}
        assert [r[0] for r in rows] == [1, 2, 4, 10]
        assert rows[0][5] == "tab\tand \\ backslash" and rows[1][5] == "multi\nline"
        assert rows[2][1:6] == (None, None, None, None, None)
        assert rows[3][1] == 1000.0 and rows[3][2] is False and str(rows[3][3]) == "2020-02-29"
        assert rows[1][4].isoformat() == "2026-02-03T00:00:00+00:00"  # no zone: read as UTC
        ids = {Path(p).name: i for i, p, s in manifest if s == "loaded"}
        assert {r[6] for r in rows[:3]} == {ids["a.csv"]} and rows[3][6] == ids["b.csv"]

        again = cli(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert [f["status"] for f in json.loads(again.stdout)["files"]] == ["skipped", "skipped"]

        forced = cli(*args, "--force", cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert [f["status"] for f in json.loads(forced.stdout)["files"]] == ["loaded", "loaded"]
        with engine.connect() as conn:
            count = conn.execute(sa.text('SELECT count(*) FROM "Orders 2026"')).scalar()
            per_file = conn.execute(sa.text(
                'SELECT f.path, count(*) FROM "Orders 2026" t JOIN tallyclerk_files f '
                "ON f.id = t._tc_file_id AND f.status = 'loaded' GROUP BY f.path")).all()
        assert count == 4
        assert sorted((Path(p).name, n) for p, n in per_file) == [("a.csv", 3), ("b.csv", 1)]
    finally:
        engine.dispose()


def test_a_table_made_before_the_file_id_index_gets_it(pg_url: str, tmp_path: Path) -> None:
    """A target table created by a tallyclerk that did not index ``_tc_file_id`` (simulated by
    dropping the index) gets the index with the next load into it, so ``--force`` and the
    re-run of a crashed file delete by it (issue 16)."""
    a, b = write_files(tmp_path)
    into = pg_url.replace("postgresql+psycopg://", "postgresql://")
    base = ["--table", "Orders 2026", "--into", into, "--schema", "schema.json", "--json"]
    index = modes.file_id_index_name("Orders 2026")
    engine = sa.create_engine(pg_url)

    def indexes() -> list[str]:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'Orders 2026'"))]

    try:
        first = cli("load", str(a), *base, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert indexes() == [index]
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP INDEX "{index}"')
        assert indexes() == []
        second = cli("load", str(b), *base, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert [f["status"] for f in json.loads(second.stdout)["files"]] == ["loaded"]
        assert indexes() == [index]
        with engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in conn.exec_driver_sql(
                'EXPLAIN DELETE FROM "Orders 2026" WHERE _tc_file_id = 1'))
        assert index in plan
    finally:
        engine.dispose()


def test_cli_without_psycopg_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ImportError('psycopg is blocked for this test')\n")
    r = cli("load", "a.csv", "--table", "t", "--into", "postgresql://u:hunter2@127.0.0.1:1/db",
            cwd=tmp_path, env={"PYTHONPATH": str(blocker)})
    assert r.returncode == 2, r.stderr
    assert "psycopg" in r.stderr and "Traceback" not in r.stderr
    assert "hunter2" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


ODD_VALUES = ["tab\there", "back\\slash", "new\nline", "cr\rlf\r\n", "\\N", "N", "", None,
              "ünï 🙂", "'quote\"", "\\.", "end\\"]


def test_copy_round_trips_every_odd_text_value(pg_url: str) -> None:
    from tallyclerk import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.builtins.postgres_sink import PostgresSink

    schema = TableSchema.from_json(json.dumps({"fields": [
        {"name": "i", "type": "integer"}, {"name": "s", "type": "string"},
        {"name": "b", "type": "boolean"}, {"name": "x", "type": "number"}]}))
    n = len(ODD_VALUES)
    batch = RecordBatch.from_rows(
        ["i", "s", "b", "x"],
        [[str(k), v, ["true", "false", None][k % 3], ["1.5", "-INF", "INF", None][k % 4]]
         for k, v in enumerate(ODD_VALUES)],
        list(range(1, n + 1)), list(range(2, n + 2)))
    batch.validate(schema)
    batch.reject(1, "s", "custom", "a plugin said no")
    sink = PostgresSink(pg_url)
    try:
        sink.prepare("odd", schema)
        fw = sink.begin_file(FileClaim(file_id=7, batch_id="b", path="p", table="odd",
                                       fingerprint="f", size=0, mtime=0.0, attempt=1, token="t",
                                       replaces=()))
        assert fw.write(batch) == n - 1
        assert fw.executor is not None and fw.executor.query("SELECT 1") == [(1,)]
        assert fw.write(batch) == n - 1  # a new COPY after the statement
        fw.commit()
    finally:
        sink.close()
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            got = conn.execute(sa.text("SELECT i, s, b, x, _tc_file_id FROM odd ORDER BY i")).all()
    finally:
        engine.dispose()
    numbers = [1.5, float("-inf"), float("inf"), None]
    expected = [(k, v or None, [True, False, None][k % 3], numbers[k % 4], 7)  # "" is missing
                for k, v in enumerate(ODD_VALUES) if k != 1]
    assert sorted(tuple(r) for r in got) == sorted(expected + expected)
