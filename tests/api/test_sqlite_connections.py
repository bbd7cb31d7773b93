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
import sqlite3
import time
from pathlib import Path

import tallyclerk
from tallyclerk.errors import FlushTimeout
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


def test_events_recorded_during_a_files_transaction_wait_for_it_not_in_sqlite(
    tmp_path: Path,
) -> None:
    """An application's AuditLog on the file a load in the same process is writing: the events
    it records while a file's transaction runs are written once it ends, however long it runs.

    The log may wait 20 ms for SQLite's write lock and never retries, so an event writer that
    waited for the load's transaction in SQLite's busy handler would dead-letter its batches.
    """
    db = tmp_path / "t.db"
    paths = [write_csv(tmp_path / f"{k}.csv", [(i, f"n{i}", i) for i in range(k, k + 1000)])
             for k in (0, 1000)]
    log = tallyclerk.AuditLog(f"sqlite:///{db}",
                              settings={"busy_timeout_ms": 20, "max_retries": 0,
                                        "linger_ms": 1})
    recorded = 0

    def progress(p: LoadProgress) -> None:
        nonlocal recorded
        log.record("progress", rows=p.rows_read)
        recorded += 1
        time.sleep(0.01)  # the file's transaction outlasts the log's busy timeout many times

    try:
        report = tallyclerk.load([str(p) for p in paths], table="t", into=f"sqlite:///{db}",
                                 progress=progress, settings={"batch_rows": 50})
        assert report.status == "succeeded"
        log.flush(timeout=30)
        assert log.dead_lettered == 0
    finally:
        log.close()
    con = sqlite3.connect(db)
    try:
        (n,) = con.execute(
            "SELECT count(*) FROM tallyclerk_events WHERE type = 'progress'").fetchone()
    finally:
        con.close()
    assert recorded > 40
    assert n == recorded


def test_flush_inside_the_files_own_transaction_says_so_instead_of_waiting(
    tmp_path: Path,
) -> None:
    """``flush()`` from code running inside a file's transaction (a progress callback, a hook)
    on the same file cannot succeed before that transaction ends: it raises at once."""
    db = tmp_path / "t.db"
    path = write_csv(tmp_path / "a.csv", [(i, f"n{i}", i) for i in range(500)])
    errors: list[str] = []
    with tallyclerk.AuditLog(f"sqlite:///{db}") as log:

        def progress(p: LoadProgress) -> None:
            if p.files_done == 0 and not errors:  # between record batches: inside the file
                log.record("inside", rows=p.rows_read)
                try:
                    log.flush(timeout=60)
                except FlushTimeout as exc:
                    errors.append(str(exc))

        report = tallyclerk.load([str(path)], table="t", into=f"sqlite:///{db}",
                                 progress=progress, settings={"batch_rows": 100})
        assert report.status == "succeeded"
        log.flush(timeout=30)  # outside it: written
        assert log.dead_lettered == 0
    assert len(errors) == 1 and "own transaction" in errors[0]
