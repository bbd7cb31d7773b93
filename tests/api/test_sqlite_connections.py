"""How many connections one process opens to one SQLite file during a load.

The issue's bound is two (the Rust writer's and one for the audit store), so that nothing in
the process waits in SQLite's busy handler on a lock the same process holds. Measured through
the public API: ``tallyclerk.load()`` into SQLite with the audit store in the same file,
counting this process's file descriptors on the database file from the progress callback
(called on the loading thread between record batches, while the file's transaction is open).

Before issue 12's consolidation: four (the Rust writer, the audit store's pool, the lease
heartbeats' engine, the event writer's own connection). Now the heartbeats and the event writer
take turns at the audit store's one connection.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import tallyclerk
from tallyclerk.report import LoadProgress
from tests.api.conftest import write_csv


def _connections(db: Path) -> int:
    """File descriptors of this process on ``db`` itself (each SQLite connection has one)."""
    n = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(db):
                n += 1
        except OSError:  # closed between listdir and readlink
            continue
    return n


def test_a_load_opens_at_most_two_connections_to_its_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    paths = [write_csv(tmp_path / f"{k}.csv", [(i, f"n{i}", i) for i in range(k, k + 2000)])
             for k in (0, 2000)]
    seen: list[int] = []

    def progress(p: LoadProgress) -> None:
        seen.append(_connections(db))
        time.sleep(0.002)  # long enough for a few lease heartbeats during the load

    report = tallyclerk.load([str(p) for p in paths], table="t", into=f"sqlite:///{db}",
                             progress=progress, settings={"batch_rows": 100, "heartbeat_s": 0.05})
    assert report.status == "succeeded"
    assert len(seen) > 20
    assert max(seen) <= 2, f"up to {max(seen)} connections to {db.name} during the load"
    assert _connections(db) == 0  # and none left after it
