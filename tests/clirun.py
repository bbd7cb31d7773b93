"""Running the real ``tallyclerk`` command in a subprocess, and reading the SQLite files it wrote.

Shared by the CLI, operations and reliability suites.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The small schema most CLI tests load with: an id, a name, a non-negative amount.
SCHEMA: dict[str, Any] = {
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


def env_for(*import_paths: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no inherited ``TALLYCLERK_*`` variables, the package
    sources and ``import_paths`` (e.g. test plugins for ``-p``) importable, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "python"), str(ROOT), *map(str, import_paths)]
        + [p for p in [env.get("PYTHONPATH")] if p]
    )
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "tallyclerk.cli", *args]


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> Result:
    proc = subprocess.run(
        cli_argv(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()
