"""Helpers for the Python API tests: real CSV files, real SQLite databases, in this process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import SCHEMA

__all__ = ["SCHEMA", "Footprint", "count_rows", "write_csv"]


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> Path:
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count_rows(db: Path, table: str) -> int:
    con = sqlite3.connect(db)
    try:
        found = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) if found else 0
    finally:
        con.close()


def _fds() -> dict[int, str]:
    """This process's open file descriptors and what they point at (Linux /proc)."""
    out: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed between listdir and readlink (the listdir's own fd)
            continue
    return out


class Footprint:
    """Threads, open files and signal handlers of the process, to compare before and after."""

    def __init__(self) -> None:
        self.threads = {t.ident for t in threading.enumerate()}
        self.fds = _fds()
        self.handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def new_threads(self) -> list[str]:
        return [t.name for t in threading.enumerate() if t.ident not in self.threads]

    def new_fds(self, under: Path) -> list[str]:
        """Files opened since, under ``under`` (the databases and sources of the test)."""
        now = _fds()
        return sorted(t for fd, t in now.items()
                      if self.fds.get(fd) != t and t.startswith(str(under)))

    def changed_handlers(self) -> dict[int, Any]:
        return {s: h for s, h in ((s, signal.getsignal(s)) for s in self.handlers)
                if h is not self.handlers[s]}


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A schema, a clean file (5 rows) and a file with two bad rows (6 rows)."""
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    write_csv(tmp_path / "a.csv", [(i, f"a{i}", i) for i in range(1, 6)])
    rows: list[tuple[Any, ...]] = [(i, f"b{i}", i) for i in range(6, 12)]
    rows[1] = (7, "b7", "NaN-ish")
    rows[4] = (10, "b10", -5)
    write_csv(tmp_path / "b.csv", rows)
    return tmp_path
