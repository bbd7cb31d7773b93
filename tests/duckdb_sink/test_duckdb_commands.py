"""Every command that reads the audit store finds a DuckDB target's (the SQLite file beside it,
``PATH.audit.db``) from ``--into duckdb:///PATH`` alone, as ``load``, ``status`` and
``rejects`` do: ``verify``, ``schema``, ``validate --table``, ``health``, ``watch``, and the
Python API's ``table_schema``, ``verify`` and ``file_history``."""

from __future__ import annotations

import os
from pathlib import Path

import tallyclerk
from tests.clirun import env_for, run_cli

INTO = "duckdb:///w.duckdb"


def test_commands_find_the_audit_store_beside_a_duckdb_file(tmp_path: Path) -> None:
    env = env_for()
    inbox = tmp_path / "in"
    inbox.mkdir()
    first = inbox / "a.csv"
    first.write_text("id,amount\n1,2.5\n2,3\n", encoding="utf-8")
    os.utime(first, (1_000_000_000, 1_000_000_000))  # settled long ago
    # watch (which used the DuckDB URL as its audit store: exit 2 before)
    r = run_cli("watch", "in", "--table", "t", "--into", INTO, "--once", "--json",
                cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert r.json()["files_loaded"] == 1
    assert (tmp_path / "w.duckdb.audit.db").exists()

    r = run_cli("verify", "--into", INTO, "--json", cwd=tmp_path, env=env)
    assert r.code == 0 and r.json()["ok"] is True and r.json()["links"] > 0, r.err
    r = run_cli("schema", "t", "--into", INTO, "--json", cwd=tmp_path, env=env)
    assert r.code == 0 and r.json()["version"] == 1, r.err
    assert [f["type"] for f in r.json()["schema"]["fields"]] == ["integer", "number"]
    # validate --table: the remembered schema and the already-loaded lookup
    bad = tmp_path / "b.csv"
    bad.write_text("id,amount\nx,1\n", encoding="utf-8")
    r = run_cli("validate", "in/a.csv", str(bad), "--table", "t", "--into", INTO, "--json",
                cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    files = r.json()["files"]
    assert [(f["would_skip"], f["rows_rejected"]) for f in files] == [(True, 0), (False, 1)]
    r = run_cli("health", "--into", INTO, "--json", cwd=tmp_path, env=env)
    assert r.code == 0 and r.json()["healthy"] is True, r.out + r.err
    r = run_cli("health", "--into", "duckdb:///nope.duckdb", "--json", cwd=tmp_path, env=env)
    assert r.code == 1 and "no such database file" in r.out

    into = f"duckdb:///{tmp_path / 'w.duckdb'}"
    schema = tallyclerk.table_schema("t", into=into)
    assert schema is not None and schema["version"] == 1
    assert tallyclerk.verify(into).ok
    history = tallyclerk.file_history("in/a.csv", audit=into)  # the path as loaded
    assert [h["status"] for h in history] == ["loaded"], history
