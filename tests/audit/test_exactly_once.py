"""Exactly-once across real processes: two workers racing over the same files, and a worker
killed by SIGKILL (inside its transaction, or between the data commit and the audit record)
whose file a re-run loads once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService, FileClaim, FileResult
from tallyclerk.settings import Settings
from tests.audit import workers
from tests.audit.helpers import (
    create_target,
    manifest,
    target_rows,
    write_file,
)
from tests.audit.workers import TARGET


def test_two_processes_racing_load_each_file_once(tmp_path: Path) -> None:
    db = str(tmp_path / "race.db")
    with AuditService(f"sqlite:///{db}", settings=Settings()):
        create_target(db)
    paths = [write_file(tmp_path / f"f{i:02d}.csv", f"row-{i}-a", f"row-{i}-b") for i in range(24)]
    # same content under another name: the same file
    paths.append(write_file(tmp_path / "dup.csv", "row-3-a", "row-3-b"))
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=workers.race_worker, args=(db, paths, go, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sum(o[1] for o in outcomes) == 24  # every distinct content loaded exactly once
    assert sum(o[2] for o in outcomes) == 2 * 25 - 24
    rows = target_rows(db)
    values = [v for v, _ in rows]
    assert sorted(values) == sorted(f"row-{i}-{s}" for i in range(24) for s in "ab")
    loaded = [m for m in manifest(db) if m.status == "loaded"]
    assert len(loaded) == 24
    assert {fid for _, fid in rows} == {m.id for m in loaded}


@pytest.mark.parametrize("mode", ["same-db", "data-committed", "data-not-committed"])
def test_killed_load_is_loaded_once_on_rerun(tmp_path: Path, mode: str) -> None:
    audit_db = str(tmp_path / "audit.db")
    data_db = audit_db if mode == "same-db" else str(tmp_path / "data.db")
    with AuditService(f"sqlite:///{audit_db}", settings=Settings()):
        create_target(data_db)
    a = write_file(tmp_path / "a.csv", "1", "2", "3")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=workers.crash_worker,
        args=(audit_db, None if mode == "same-db" else data_db, a, mode == "data-committed"),
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == -9  # SIGKILL, reaped
    (crashed,) = manifest(audit_db)
    assert crashed.status == "loading"
    expected_leftovers = 3 if mode == "data-committed" else 0
    assert len(target_rows(data_db)) == expected_leftovers

    with AuditService(f"sqlite:///{audit_db}", settings=Settings()) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.ledger.claim_file(batch, a, TARGET)
        assert isinstance(claim, FileClaim)
        assert claim.replaces == (crashed.id,)
        w = SqliteWriter(data_db)
        lines = workers.read_lines(a)
        w.begin()
        svc.ledger.prepare_file_in(w, claim, TARGET)
        w.executemany(f'INSERT INTO "{TARGET}" VALUES (?, ?)', [(x, claim.file_id) for x in lines])
        if mode == "same-db":
            svc.ledger.commit_file_in(w, claim, FileResult(3, 3, 0, 6))
        w.commit()
        w.close()
        if mode != "same-db":
            svc.ledger.finish_file(claim, "loaded", FileResult(3, 3, 0, 6))
        report = svc.finish_batch(batch)
    assert report["files"][0]["status"] == "loaded"
    assert target_rows(data_db) == [("1", claim.file_id), ("2", claim.file_id),
                                     ("3", claim.file_id)]
