"""Helpers for the end-to-end CLI tests: the real command in a subprocess, real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import ROOT, SCHEMA, Result, env_for, query, run_cli

__all__ = ["ROOT", "SCHEMA", "Result", "env_for", "query", "tallyclerk"]


def tallyclerk(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> Result:
    return run_cli(*args, cwd=cwd, env=env or env_for(), timeout=timeout)


def probe(code: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
          flags: tuple[str, ...] = ()) -> str:
    """``python3 [flags] -c code args`` in ``cwd``, which must exit 0: its standard output.

    ``env`` defaults to the test environment with third-party plugins left out (as the start-up
    benchmarks run); the start-up probes print what they found on their last lines.
    """
    proc = subprocess.run(
        [sys.executable, *flags, "-c", code, *args], cwd=cwd,
        env=env if env is not None else env_for(TALLYCLERK_LOAD_PLUGINS=""),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> Path:
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count_rows(db: Path, table: str) -> int:
    """Rows in ``table``; 0 when a rolled-back first load left no table at all."""
    con = sqlite3.connect(db)
    try:
        found = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) if found else 0
    finally:
        con.close()


def assert_one_line_error(r: Result, code: int = 2) -> None:
    assert r.code == code, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("tallyclerk: error: "), r.err
    assert "Traceback" not in r.err


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A working directory with a schema, a clean file and a file with two bad rows."""
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    write_csv(tmp_path / "a.csv", [(i, f"a{i}", i) for i in range(1, 6)])
    rows: list[tuple[Any, ...]] = [(i, f"b{i}", i) for i in range(6, 12)]
    rows[1] = (7, "b7", "NaN-ish")
    rows[4] = (10, "b10", -5)
    write_csv(tmp_path / "b.csv", rows)
    return tmp_path
