"""``status``, ``rejects`` and ``demo`` end to end."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import assert_one_line_error, count_rows, query, tallyclerk


def test_status_reports_latest_and_named_batch(work: Path) -> None:
    first = tallyclerk("load", "a.csv", "--table", "t", "--json", cwd=work).json()
    # another table: t remembers the text columns it was first loaded with
    second = tallyclerk("load", "b.csv", "--table", "t2", "--schema", "schema.json", "--json",
                        cwd=work).json()
    latest = tallyclerk("status", "--json", cwd=work)
    assert latest.code == 0
    assert latest.json()["batch_id"] == second["batch_id"]
    assert latest.json()["files"] == second["files"]
    named = tallyclerk("status", "--batch", first["batch_id"], "--json", cwd=work).json()
    assert named["batch_id"] == first["batch_id"] and named["rows_written"] == 5
    text = tallyclerk("status", cwd=work)
    assert text.code == 0 and second["batch_id"] in text.out and "b.csv" in text.out
    listing = tallyclerk("status", "--list", "--json", cwd=work)
    assert listing.code == 0 and len(listing.json()["batches"]) == 2


def test_status_errors(work: Path) -> None:
    assert_one_line_error(tallyclerk("status", cwd=work))  # no database yet
    tallyclerk("load", "a.csv", "--table", "t", cwd=work)
    assert_one_line_error(tallyclerk("status", "--batch", "nope", cwd=work))


def test_a_negative_limit_is_a_usage_error(work: Path) -> None:
    # it reached the SQL as LIMIT -1: no limit on SQLite, an error on PostgreSQL
    assert tallyclerk("load", "a.csv", "--table", "t", cwd=work).code == 0
    for command in (["rejects"], ["status", "--list"], ["status", "--events"]):
        r = tallyclerk(*command, "--limit", "-1", cwd=work)
        assert_one_line_error(r)
        assert "--limit" in r.err
    assert tallyclerk("status", "--list", "--limit", "0", cwd=work).code == 0


def test_status_with_separate_audit_store(work: Path) -> None:
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", "sqlite:///data.db",
                   "--audit", "sqlite:///audit.db", "--json", cwd=work)
    assert r.code == 0, r.err
    assert query(work / "data.db", 'SELECT count(*) FROM "t"') == [(5,)]
    assert query(work / "audit.db", "SELECT count(*) FROM tallyclerk_files") == [(1,)]
    s = tallyclerk("status", "--into", "sqlite:///data.db", "--audit", "sqlite:///audit.db",
                   "--json", cwd=work)
    assert s.code == 0 and s.json()["batch_id"] == r.json()["batch_id"]


def test_rejects_lists_file_line_and_reason(work: Path) -> None:
    tallyclerk("load", "a.csv", "b.csv", "--table", "t", "--schema", "schema.json", cwd=work)
    r = tallyclerk("rejects", "--json", cwd=work)
    assert r.code == 0
    rows = r.json()["rejects"]
    assert [(x["path"], x["line"], x["column"]) for x in rows] == [
        ("b.csv", 3, "amount"), ("b.csv", 6, "amount")
    ]
    assert all(x["reason"] for x in rows)
    assert tallyclerk("rejects", "--file", "a.csv", "--json", cwd=work).json()["rejects"] == []
    text = tallyclerk("rejects", cwd=work)
    assert "REASON" in text.out and "b.csv" in text.out


def test_demo_runs_twice(tmp_path: Path) -> None:
    first = tallyclerk("demo", "--dir", "d", cwd=tmp_path)
    assert first.code == 0, first.err
    assert "Rejected rows" in first.out and "orders-2026-01.csv" in first.out
    db = tmp_path / "d" / "demo.db"
    (loaded,) = query(db, 'SELECT count(*) FROM "orders"')[0]
    (rejected,) = query(db, "SELECT count(*) FROM tallyclerk_rejects")[0]
    assert loaded > 0 and rejected >= 8
    second = tallyclerk("demo", "--dir", "d", "--json", cwd=tmp_path)
    assert second.code == 0
    assert {f["status"] for f in second.json()["files"]} == {"skipped"}
    assert query(db, 'SELECT count(*) FROM "orders"')[0][0] == loaded  # nothing doubled
    again = tallyclerk("demo", "--dir", "d", cwd=tmp_path)
    assert "already loaded" in again.out
    fresh = tallyclerk("demo", "--dir", "d", "--fresh", "--json", cwd=tmp_path)
    assert {f["status"] for f in fresh.json()["files"]} == {"loaded"}
    assert query(db, 'SELECT count(*) FROM "orders"')[0][0] == loaded


def test_demo_data_is_deterministic(tmp_path: Path) -> None:
    from tallyclerk.cli.demo import generate

    a = {k: p.read_bytes() for k, p in generate(tmp_path / "a").items()}
    b = {k: p.read_bytes() for k, p in generate(tmp_path / "b").items()}
    assert a == b


def test_internal_error_is_one_line_unless_debug(work: Path) -> None:
    plugin = work / "boom_plugin.py"
    plugin.write_text(
        "from tallyclerk.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def tallyclerk_transform_batch(batch, context):\n"
        "    raise KeyError('boom')\n",
        encoding="utf-8",
    )
    from tests.cli.conftest import env_for

    env = env_for()
    env["PYTHONPATH"] = f"{work}:{env['PYTHONPATH']}"
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "boom_plugin", cwd=work, env=env)
    assert r.code == 70
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("tallyclerk: error: internal error: KeyError")
    assert "Traceback" not in r.err
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "boom_plugin", "--debug", cwd=work,
                   env=env)
    assert r.code == 70 and "Traceback" in r.err
    # the file was recorded as failed, nothing half-written
    assert count_rows(work / "tallyclerk.db", "t") == 0
    s = tallyclerk("status", "--json", cwd=work).json()
    assert s["files"][0]["status"] == "failed"
