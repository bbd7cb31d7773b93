"""Helpers for the end-to-end CLI tests: the real command in a subprocess, real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "name", "type": "string"},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
    ]
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def env_for(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "python"), str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    env.update(extra)
    return env


def tallyclerk(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "tallyclerk.cli", *args],
        cwd=cwd, env=env or env_for(), capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> Path:
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


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
