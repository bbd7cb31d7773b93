"""Structured logging end to end: the real command in a subprocess, real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.cli.conftest import env_for, tallyclerk, write_csv


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be one JSON object


def files(tmp_path: Path) -> tuple[Path, Path]:
    good = write_csv(tmp_path / "good.csv", [(1, "a", 1.5), (2, "b", 2.5)])
    broken = tmp_path / "broken.csv"
    broken.write_text('id,name,amount\n1,"never closed,2\n', encoding="utf-8")
    return good, broken


def test_json_logs_carry_batch_file_and_correlation_ids(tmp_path: Path) -> None:
    good, broken = files(tmp_path)
    r = tallyclerk("--log-format", "json", "--correlation-id", "run-42", "load", "good.csv",
                   "broken.csv", "--table", "t", "--into", "sqlite:///t.db", "--json",
                   "--log-level", "info", cwd=tmp_path)
    assert r.code == 1, r.err
    records = json_lines(r.err)
    assert records and all({"ts", "level", "logger", "msg"} <= set(rec) for rec in records)
    batch_id = r.json()["batch_id"]
    pipeline = [rec for rec in records if rec["logger"] == "tallyclerk.pipeline"]
    assert pipeline and all(rec["batch_id"] == batch_id for rec in pipeline)
    assert all(rec["correlation_id"] == "run-42" for rec in records if "batch_id" in rec)
    [loaded] = [rec for rec in pipeline if "good.csv loaded" in rec["msg"]]
    assert isinstance(loaded["file_id"], int)
    # the failure: error level, with its exception class, naming the file and the line
    [failed] = [rec for rec in pipeline if rec["level"] == "error"]
    assert failed["error_class"] == "SourceError"
    assert "broken.csv" in failed["msg"] and "line 2" in failed["msg"]
    assert isinstance(failed["file_id"], int) and failed["file_id"] != loaded["file_id"]
    # the audit events of the run carry the same correlation id
    con = sqlite3.connect(tmp_path / "t.db")
    try:
        ids = {row[0] for row in con.execute(
            "SELECT correlation_id FROM tallyclerk_events WHERE batch_id = ?", (batch_id,))}
    finally:
        con.close()
    assert ids == {"run-42"}


def test_a_correlation_id_per_run_by_default(tmp_path: Path) -> None:
    good, _broken = files(tmp_path)
    r = tallyclerk("load", "good.csv", "--table", "t", "--into", "sqlite:///t.db",
                   "--log-format", "json", "--log-level", "info", cwd=tmp_path)
    assert r.code == 0, r.err
    ids = {rec.get("correlation_id") for rec in json_lines(r.err) if "batch_id" in rec}
    assert len(ids) == 1 and None not in ids


def test_environment_sets_format_level_and_correlation_id(tmp_path: Path) -> None:
    files(tmp_path)
    env = env_for(TALLYCLERK_LOG_FORMAT="json", TALLYCLERK_LOG_LEVEL="info",
                  TALLYCLERK_CORRELATION_ID="from-env")
    r = tallyclerk("load", "good.csv", "--table", "t", "--into", "sqlite:///t.db", cwd=tmp_path,
                   env=env)
    assert r.code == 0, r.err
    records = json_lines(r.err)
    assert any(rec["level"] == "info" for rec in records)
    assert {rec["correlation_id"] for rec in records if "batch_id" in rec} == {"from-env"}
    # a flag wins over the environment
    r = tallyclerk("load", "good.csv", "--table", "t2", "--into", "sqlite:///t.db",
                   "--log-format", "text", cwd=tmp_path, env=env)
    assert r.code == 0 and "batch_id=" in r.err and "correlation_id=from-env" in r.err


def test_text_logs_and_default_level(tmp_path: Path) -> None:
    files(tmp_path)
    quiet = tallyclerk("load", "good.csv", "--table", "t", "--into", "sqlite:///t.db",
                       cwd=tmp_path)
    assert quiet.code == 0 and quiet.err == ""  # WARNING by default: nothing to say
    r = tallyclerk("load", "broken.csv", "--table", "t", "--into", "sqlite:///t.db",
                   cwd=tmp_path)
    assert r.code == 1
    [line] = [ln for ln in r.err.splitlines() if " ERROR tallyclerk.pipeline " in ln]
    assert "batch_id=" in line and "file_id=" in line and "(SourceError)" in line


def test_bad_log_settings_are_usage_errors(tmp_path: Path) -> None:
    r = tallyclerk("status", cwd=tmp_path, env=env_for(TALLYCLERK_LOG_FORMAT="xml"))
    assert r.code == 2 and r.err.startswith("tallyclerk: error: TALLYCLERK_LOG_FORMAT")
    r = tallyclerk("status", "--log-level", "loud", cwd=tmp_path)
    assert r.code == 2 and "Traceback" not in r.err and len(r.err.splitlines()) == 1


def test_an_error_that_stops_the_command_is_logged_with_its_class(tmp_path: Path) -> None:
    files(tmp_path)
    r = tallyclerk("load", "good.csv", "--table", "t", "--log-format", "json",
                   "--audit", "sqlite:////nonexistent-dir/sub/audit.db", cwd=tmp_path)
    assert r.code == 3
    *logged, last = r.err.strip().splitlines()
    assert last.startswith("tallyclerk: error: ")  # the one line for people, last
    errors = [json.loads(line) for line in logged if line.startswith("{")]
    assert [(e["level"], e["logger"]) for e in errors] == [("error", "tallyclerk.cli")]
    assert errors[0]["error_class"].endswith("RepositoryError")
