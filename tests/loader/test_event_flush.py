"""When the audit store shares the target database, a file's transaction holds SQLite's write
lock while the load records events: they wait for it in this process (not in SQLite's busy
handler, where they would run out of retries), and are all written, in order, once it ends."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pluggy

from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import load, registered, write_csv

KINDS = ("batch_started", "file_started", "file_loaded", "batch_finished")


class SlowWrites:
    @hookimpl
    def tallyclerk_rows_written(self, context: Any, rows: int, seconds: float) -> None:
        time.sleep(0.75)  # inside the file's transaction: the write lock stays held


def test_events_recorded_around_long_file_transactions_are_all_written_in_order(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    # 50 ms of busy timeout and 5 retries: an event writer waiting in SQLite's busy handler
    # would give up after about half a second, well before either transaction ends
    srcs = [write_csv(tmp_path / f"{k}.csv", [(i, f"n{i}", 1.0) for i in range(k, k + 50)])
            for k in (0, 50)]
    with registered(pm, SlowWrites()):
        report = load(pm, srcs, db, overrides={"busy_timeout_ms": 50})
    assert report["status"] == "succeeded" and report["rows_written"] == 100
    con = sqlite3.connect(db)
    try:
        types = [t for (t,) in con.execute(
            "SELECT type FROM tallyclerk_events ORDER BY id") if t in KINDS]
    finally:
        con.close()
    assert types == ["batch_started", "file_started", "file_loaded", "file_started",
                     "file_loaded", "batch_finished"]
