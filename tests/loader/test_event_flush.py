"""When the audit store shares the target database, the events recorded before a file are
committed before the file's transaction takes the write lock (the event writer must not wait
out the whole file in SQLite's busy handler)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pluggy

from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import load, registered, write_csv


class SeesEvents:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.seen: list[set[str]] = []

    @hookimpl
    def tallyclerk_rows_written(self, context: Any, rows: int, seconds: float) -> None:
        # a second connection, inside the file's still open transaction: WAL readers see
        # what is committed
        con = sqlite3.connect(self.db, timeout=0)
        try:
            self.seen.append({t for (t,) in con.execute("SELECT type FROM tallyclerk_events")})
        finally:
            con.close()


def test_events_before_a_file_are_committed_before_its_rows(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    src = write_csv(tmp_path / "a.csv", [(i, f"n{i}", 1.0) for i in range(50)])
    spy = SeesEvents(db)
    with registered(pm, spy):
        report = load(pm, [src], db)
    assert report["rows_written"] == 50
    assert spy.seen, "no batch was written"
    assert {"batch_started", "file_started"} <= spy.seen[0]
    assert "file_loaded" not in spy.seen[0]
