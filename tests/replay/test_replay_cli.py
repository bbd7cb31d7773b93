"""``tallyclerk replay`` through the real CLI: fixed schemas, re-runs, SIGKILL, masked rejects."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import env_for, query, run_cli

STRICT: dict[str, Any] = {"fields": [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "integer", "constraints": {"maximum": 10}},
]}
FIXED: dict[str, Any] = {"fields": [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "integer", "constraints": {"maximum": 100}},
]}
ROWS = 40  # ids 1..40; amount = id: 1..10 pass STRICT, 11..40 pass FIXED; ids 37.. are "x"


def _write(tmp: Path) -> None:
    lines = ["id,name,amount"]
    for i in range(1, ROWS + 1):
        lines.append(f"{i},n{i},{'x' if i > 36 else i}")
    (tmp / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp / "strict.json").write_text(json.dumps(STRICT), encoding="utf-8")
    (tmp / "fixed.json").write_text(json.dumps(FIXED), encoding="utf-8")


def tc(tmp: Path, *args: str, **env: str) -> Any:
    return run_cli(*args, "--into", "sqlite:///t.db", cwd=tmp, env=env_for(**env))


def _load(tmp: Path) -> None:
    _write(tmp)
    r = tc(tmp, "load", "data.csv", "--table", "t", "--schema", "strict.json", "--json")
    assert r.code == 0, r.err
    assert r.json()["files"][0]["rows_rejected"] == 30


def _ids(tmp: Path) -> list[int]:
    return [row[0] for row in query(tmp / "t.db", "SELECT id FROM t ORDER BY id")]


def test_a_fixed_schema_loads_the_rejects_once_and_the_ledger_says_so(tmp_path: Path) -> None:
    _load(tmp_path)
    assert _ids(tmp_path) == list(range(1, 11))
    r = tc(tmp_path, "replay", "--table", "t", "--schema", "fixed.json", "--json")
    assert r.code == 0, r.err
    report = r.json()
    assert (report["records_loaded"], report["records_rejected"]) == (26, 4)
    (batch,) = report["batches"]
    assert _ids(tmp_path) == list(range(1, 37))
    # which rows: the replay's file claim tags them
    (replay_file,) = {rec["replay_file_id"] for rec in report["records"]}
    tagged = query(tmp_path / "t.db", "SELECT min(id), max(id), count(*) FROM t "
                                      "WHERE _tc_file_id = ?", (replay_file,))
    assert tagged == [(11, 36, 26)]
    again = [rec for rec in report["records"] if rec["outcome"] == "rejected"]
    assert [rec["line"] for rec in again] == [38, 39, 40, 41]
    assert all("integer" in rec["reason"] for rec in again)

    # rejects: every old reject says it was replayed, by which batch
    rejects = tc(tmp_path, "rejects", "--file", "data.csv", "--json").json()["rejects"]
    assert len(rejects) == 30
    assert {x["replayed_by_batch"] for x in rejects} == {batch}
    assert sum(x["replay_outcome"] == "loaded" for x in rejects) == 26
    assert all(x["replayed_at"] for x in rejects)
    text = tc(tmp_path, "rejects", "--file", "data.csv").out
    assert f"loaded by {batch}" in text and f"rejected again by {batch}" in text
    # status: the last batch is the replay; the file's history lists it
    status = tc(tmp_path, "status", "--json").json()
    assert status["batch_id"] == batch and status["files"][0]["rows_written"] == 26
    history = tc(tmp_path, "status", "--file", "data.csv", "--json").json()["history"]
    assert [h["replay"] for h in history] == [False, True]
    assert tc(tmp_path, "verify").code == 0  # the chain still holds

    # twice: nothing doubled; only the 4 still failing are tried again
    second = tc(tmp_path, "replay", "--table", "t", "--schema", "fixed.json", "--json")
    assert second.code == 0, second.err
    assert (second.json()["records_loaded"], second.json()["records_rejected"]) == (0, 4)
    assert _ids(tmp_path) == list(range(1, 37))


def test_nothing_to_replay(tmp_path: Path) -> None:
    _load(tmp_path)
    r = tc(tmp_path, "replay", "--batch", "no-such-batch")
    assert r.code == 0, r.err
    assert "no rejected rows to replay" in r.out


@pytest.mark.parametrize("point", ["batch-written", "before-data-commit", "replay-before-mark"])
@pytest.mark.parametrize("separate_audit", [False, True])
def test_a_replay_killed_then_run_again_loads_each_row_once(
    tmp_path: Path, point: str, separate_audit: bool
) -> None:
    _write(tmp_path)
    audit = ["--audit", "sqlite:///a.db"] if separate_audit else []
    r = tc(tmp_path, "load", "data.csv", "--table", "t", "--schema", "strict.json", *audit)
    assert r.code == 0, r.err
    args = ["replay", "--schema", "fixed.json", "--json", *audit]
    killed = tc(tmp_path, *args, TALLYCLERK_FAULT=f"{point}:kill")
    assert killed.code == -signal.SIGKILL, killed.err
    committed = _ids(tmp_path) == list(range(1, 37))
    assert committed == (point == "replay-before-mark")
    if not committed:
        assert _ids(tmp_path) == list(range(1, 11))
    rerun = tc(tmp_path, *args)
    assert rerun.code == 0, rerun.err
    assert rerun.json()["records_loaded"] + rerun.json()["records_rejected"] == 30
    assert _ids(tmp_path) == list(range(1, 37))  # each row once
    third = tc(tmp_path, *args)
    assert third.json()["records_loaded"] == 0
    assert _ids(tmp_path) == list(range(1, 37))
    audit_db = tmp_path / ("a.db" if separate_audit else "t.db")
    marked = query(audit_db, "SELECT count(*) FROM tallyclerk_rejects r JOIN tallyclerk_files f "
                             "ON f.id = r.file_id WHERE f.path = 'data.csv' AND "
                             "r.replayed_by_batch IS NOT NULL")
    assert marked == [(30,)]


def test_masked_rejects_are_refused_per_row_and_counted(tmp_path: Path) -> None:
    _write(tmp_path)
    strict = dict(STRICT, fields=[dict(f) for f in STRICT["fields"]])
    strict["fields"][2]["sensitive"] = True
    (tmp_path / "strict.json").write_text(json.dumps(strict), encoding="utf-8")
    r = tc(tmp_path, "load", "data.csv", "--table", "t", "--schema", "strict.json")
    assert r.code == 0, r.err
    assert query(tmp_path / "t.db", "SELECT count(*) FROM tallyclerk_rejects WHERE masked")[0][0]
    r = tc(tmp_path, "replay", "--schema", "fixed.json", "--json")
    assert r.code == 0, r.err
    report = r.json()
    assert report["records_masked"] == 30 and report["records_loaded"] == 0
    assert all(rec["outcome"] == "masked" and "cannot be replayed" in rec["reason"]
               for rec in report["records"])
    assert _ids(tmp_path) == list(range(1, 11))
    text = tc(tmp_path, "replay", "--schema", "fixed.json")
    assert "30 masked (cannot be replayed)" in text.out and "masked:" in text.out
