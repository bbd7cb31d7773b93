"""AuditService over real SQLite files: batch lifecycle, exactly-once claims, the unit of work,
timeouts, leases, the write-behind event log, retries and shutdown."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService, FileClaim, FileResult, FileSkip, RejectRow
from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.audit.models import AuditEvent, FileManifest
from tallyclerk.errors import (
    BatchCancelled,
    ConfigError,
    LeaseLost,
    QueueClosed,
    RepositoryError,
    SourceError,
    TransientRepositoryError,
)
from tallyclerk.settings import Settings
from tests.audit import workers
from tests.audit.workers import TARGET, load_in_writer

DEAD_PID = 2**22 + 12345  # above the default pid_max: never a live process


def _write(path: Path, *lines: str) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def _create_target(db_path: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{TARGET}" (v TEXT, _tc_file_id INTEGER)')


def _target_rows(db_path: str) -> list[tuple[str, int]]:
    with sqlite3.connect(db_path) as conn:
        return sorted(conn.execute(f'SELECT v, _tc_file_id FROM "{TARGET}"').fetchall())


def _manifest(db_path: str) -> list[FileManifest]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(FileManifest).order_by(FileManifest.id)))
    finally:
        engine.dispose()


def _set_file(db_path: str, file_id: int, **values: Any) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s, s.begin():
            s.execute(update(FileManifest).where(FileManifest.id == file_id).values(**values))
    finally:
        engine.dispose()


@pytest.fixture()
def db_path(tmp_path: Path) -> str:
    path = str(tmp_path / "tc.db")
    return path


@pytest.fixture()
def svc(db_path: str) -> Iterator[AuditService]:
    with AuditService(f"sqlite:///{db_path}", settings=Settings()) as service:
        _create_target(db_path)
        yield service


@pytest.fixture()
def writer(db_path: str, svc: AuditService) -> Iterator[SqliteWriter]:
    w = SqliteWriter(db_path)
    yield w
    w.close()


# --- batch lifecycle and reports -----------------------------------------------------------------


def test_load_skip_and_report(svc: AuditService, writer: SqliteWriter, tmp_path: Path,
                              db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1", "2")
    b = _write(tmp_path / "b.csv", "3")
    batch = svc.start_batch(TARGET, {"force": False, "path": tmp_path})
    acc = svc.accumulator(batch)
    assert [s.batch_id for s in svc.active_batches()] == [batch]
    for path in (a, b):
        claim = svc.claim_file(batch, path, TARGET)
        assert isinstance(claim, FileClaim)
        assert claim.replaces == () and claim.attempt == 1
        n = load_in_writer(svc, writer, claim)
        acc.add_file_event(_loaded(), rows_read=n, rows_written=n)
    report = svc.finish_batch(batch)
    assert report == {
        "batch_id": batch, "status": "succeeded", "table": TARGET,
        "rows_read": 3, "rows_written": 3, "rows_rejected": 0,
        "files": [
            {"path": a, "status": "loaded", "rows_read": 2, "rows_written": 2,
             "rows_rejected": 0, "error": None},
            {"path": b, "status": "loaded", "rows_read": 1, "rows_written": 1,
             "rows_rejected": 0, "error": None},
        ],
    }
    assert svc.active_batches() == []
    with pytest.raises(KeyError):
        svc.accumulator(batch)

    # a re-run skips both, naming the earlier batch; a copy of a's content is the same file
    copy = _write(tmp_path / "copy-of-a.csv", "1", "2")
    again = svc.start_batch(TARGET, {})
    for path in (a, b, copy):
        skip = svc.claim_file(again, path, TARGET)
        assert isinstance(skip, FileSkip)
        assert skip.earlier_batch_id == batch
        assert skip.reason == f"already loaded by batch {batch}"
    report = svc.finish_batch(again)
    assert [f["status"] for f in report["files"]] == ["skipped"] * 3
    assert _target_rows(db_path) == sorted([("1", 1), ("2", 1), ("3", 2)])
    assert svc.batch_report() == report  # the latest
    assert svc.batch_report("nope") == {}
    listed = svc.list_batches()
    assert [x["batch_id"] for x in listed] == [again, batch]
    assert listed[1]["files"] == 2 and listed[1]["rows_read"] == 3
    assert listed[1]["started_at"].endswith("+00:00")


def _loaded() -> Any:
    from tallyclerk import FileEvent

    return FileEvent.LOADED


def test_force_replaces_the_earlier_load(svc: AuditService, writer: SqliteWriter,
                                         tmp_path: Path, db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "x", "y")
    first = svc.start_batch(TARGET, {})
    claim = svc.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    load_in_writer(svc, writer, claim)
    svc.finish_batch(first)

    second = svc.start_batch(TARGET, {"force": True})
    forced = svc.claim_file(second, a, TARGET, force=True)
    assert isinstance(forced, FileClaim)
    assert forced.replaces == (claim.file_id,)
    assert forced.attempt == 2
    load_in_writer(svc, writer, forced)
    report = svc.finish_batch(second)
    assert _target_rows(db_path) == [("x", forced.file_id), ("y", forced.file_id)]
    statuses = {m.id: (m.status, m.cleaned_by) for m in _manifest(db_path)}
    assert statuses[claim.file_id] == ("replaced", forced.file_id)
    assert statuses[forced.file_id] == ("loaded", None)
    # 'replaced' never shows in a report: the first batch still loaded the file
    assert svc.batch_report(first)["files"][0]["status"] == "loaded"
    assert report["files"][0]["status"] == "loaded"


def test_failed_file_and_rejects(svc: AuditService, tmp_path: Path, db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1", "bad")
    batch = svc.start_batch(TARGET, {})
    claim = svc.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    rejects = [RejectRow(2, 3, "v", "type", "not a number", "bad")]
    svc.finish_file(claim, "failed",
                    FileResult(2, 0, 2, 8, first_error_line=3, error="too many rejects",
                               error_class="RejectLimit"), rejects)
    report = svc.finish_batch(batch)
    assert report["status"] == "failed"
    assert report["files"][0]["status"] == "failed"
    assert report["files"][0]["error"] == "too many rejects"
    assert svc.list_rejects(path=a) == [{
        "path": a, "batch_id": batch, "file_id": claim.file_id, "record_number": 2, "line": 3,
        "column": "v", "rule": "type", "reason": "not a number", "raw": "bad",
    }]
    assert svc.list_rejects(batch_id="other") == []
    # the failed attempt is retried by the next run, listed in replaces (its rows, if any)
    retry = svc.start_batch(TARGET, {})
    again = svc.claim_file(retry, a, TARGET)
    assert isinstance(again, FileClaim)
    assert again.replaces == (claim.file_id,) and again.attempt == 2
    svc.finish_batch(retry)


def test_partial_status_and_inconsistent_counts(svc: AuditService, writer: SqliteWriter,
                                                tmp_path: Path) -> None:
    batch = svc.start_batch(TARGET, {})
    good = svc.claim_file(batch, _write(tmp_path / "g.csv", "1"), TARGET)
    bad = svc.claim_file(batch, _write(tmp_path / "b.csv", "2"), TARGET)
    assert isinstance(good, FileClaim) and isinstance(bad, FileClaim)
    load_in_writer(svc, writer, good)
    from tallyclerk.errors import InternalError

    with pytest.raises(InternalError, match="rows_read"):
        svc.finish_file(bad, "loaded", FileResult(5, 1, 1, 0))
    with pytest.raises(ValueError, match="loaded or failed"):
        svc.finish_file(bad, "skipped", FileResult(0, 0, 0, 0))
    svc.finish_file(bad, "failed", FileResult(1, 0, 1, 2, error="boom", error_class="X"))
    assert svc.finish_batch(batch)["status"] == "partial"


def test_rejects_in_the_unit_of_work(svc: AuditService, writer: SqliteWriter,
                                     tmp_path: Path) -> None:
    a = _write(tmp_path / "a.csv", "1")
    batch = svc.start_batch(TARGET, {})
    claim = svc.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    writer.begin()
    svc.add_rejects_in(writer, claim, [RejectRow(2, 2, None, "row-length", "2 fields", "1,2")])
    svc.commit_file_in(writer, claim, FileResult(2, 1, 1, 6))
    writer.rollback()  # the caller's transaction rolls back: neither rejects nor 'loaded'
    assert svc.list_rejects(batch_id=batch) == []
    load_in_writer(svc, writer, claim)
    svc.finish_batch(batch)


def test_sqlalchemy_executor_unit_of_work(svc: AuditService, tmp_path: Path,
                                          db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1")
    batch = svc.start_batch(TARGET, {})
    claim = svc.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            ex = SqlAlchemyExecutor(conn)
            assert ex.dialect_name == "sqlite"
            svc.prepare_file_in(ex, claim, TARGET)
            assert ex.executemany(f'INSERT INTO "{TARGET}" VALUES (?, ?)', [("1", claim.file_id)])
            assert ex.executemany("SELECT 1", []) == 0
            svc.commit_file_in(ex, claim, FileResult(1, 1, 0, 2))
            assert ex.query("SELECT status FROM tallyclerk_files WHERE id = ?",
                            [claim.file_id]) == [("loaded",)]
    finally:
        engine.dispose()
    assert _target_rows(db_path) == [("1", claim.file_id)]
    svc.finish_batch(batch)


def test_identifiers_are_quoted(svc: AuditService, writer: SqliteWriter, tmp_path: Path,
                                db_path: str) -> None:
    evil = 'x"; DROP TABLE tallyclerk_files; --'
    with sqlite3.connect(db_path) as conn:
        conn.execute('CREATE TABLE "x""; DROP TABLE tallyclerk_files; --" (v, _tc_file_id)')
    batch = svc.start_batch(evil, {})
    a = _write(tmp_path / "a.csv", "1")
    first = svc.claim_file(batch, a, evil)
    assert isinstance(first, FileClaim)
    forced = svc.claim_file(batch, a, evil, force=True)
    assert isinstance(forced, FileSkip)  # the first claim is live
    writer.begin()
    svc.prepare_file_in(writer, FileClaim(**{**first.__dict__, "replaces": (first.file_id,)}),
                        evil)
    writer.commit()
    assert len(_manifest(db_path)) == 2
    with pytest.raises(ConfigError):
        svc.claim_file(batch, a, "bad\x00name")
    svc.finish_batch(batch)


def test_claim_errors(svc: AuditService, tmp_path: Path) -> None:
    batch = svc.start_batch(TARGET, {})
    with pytest.raises(SourceError) as info:
        svc.claim_file(batch, str(tmp_path / "missing.csv"), TARGET)
    assert info.value.path == str(tmp_path / "missing.csv")
    with pytest.raises(KeyError):
        svc.claim_file("no-such-batch", str(tmp_path), TARGET)
    svc.accumulator(batch).cancel("stop")
    with pytest.raises(BatchCancelled, match="stop"):
        svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
    assert svc.finish_batch(batch)["status"] == "cancelled"


def test_finish_batch_status_rules(svc: AuditService) -> None:
    b1 = svc.start_batch(TARGET, {})
    assert svc.finish_batch(b1, error=KeyboardInterrupt())["status"] == "cancelled"
    b2 = svc.start_batch(TARGET, {})
    svc.finish_batch(b2, error=RuntimeError("postgresql://u:hunter2@h/db unreachable"))
    listed = svc.list_batches(1)[0]
    assert listed["status"] == "failed"
    assert "hunter2" not in listed["error"] and "u:***@h" in listed["error"]
    b3 = svc.start_batch(TARGET, {})
    assert svc.finish_batch(b3, status="cancelled")["status"] == "cancelled"
    b4 = svc.start_batch(TARGET, {})
    with pytest.raises(ValueError, match="final batch status"):
        svc.finish_batch(b4, status="running")


# --- crashed and competing owners ----------------------------------------------------------------


def test_dead_owner_is_cleaned_and_replaced(svc: AuditService, writer: SqliteWriter,
                                            tmp_path: Path, db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1", "2")
    first = svc.start_batch(TARGET, {})
    claim = svc.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    # a crashed process on this host: its pid is gone
    _set_file(db_path, claim.file_id, owner=f"{os.uname().nodename}:{DEAD_PID}")
    second = svc.start_batch(TARGET, {})
    again = svc.claim_file(second, a, TARGET)
    assert isinstance(again, FileClaim)
    assert again.replaces == (claim.file_id,)
    dead = {m.id: m for m in _manifest(db_path)}[claim.file_id]
    assert dead.status == "failed"
    assert dead.error == f"interrupted: cleaned up by batch {second}"
    load_in_writer(svc, writer, again)
    with pytest.raises(LeaseLost):  # the crashed claim can never commit
        load_in_writer(svc, writer, claim)
    writer.rollback()
    assert _target_rows(db_path) == [("1", again.file_id), ("2", again.file_id)]
    assert {m.id: m.cleaned_by for m in _manifest(db_path)}[claim.file_id] == again.file_id
    svc.finish_batch(first)
    svc.finish_batch(second)


def test_live_owner_elsewhere_is_not_disturbed(svc: AuditService, tmp_path: Path,
                                               db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1")
    first = svc.start_batch(TARGET, {})
    claim = svc.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    # another host: its pid means nothing here, only the lease counts
    _set_file(db_path, claim.file_id, owner="elsewhere:1")
    second = svc.start_batch(TARGET, {})
    skip = svc.claim_file(second, a, TARGET, force=True)
    assert isinstance(skip, FileSkip)
    assert skip.reason == f"being loaded by batch {first}"
    # ... until its lease expires
    _set_file(db_path, claim.file_id,
              lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    taken = svc.claim_file(second, a, TARGET)
    assert isinstance(taken, FileClaim) and taken.replaces == (claim.file_id,)
    svc.finish_batch(first)
    svc.finish_batch(second)


def test_stalled_claim_cannot_commit_after_takeover(svc: AuditService, writer: SqliteWriter,
                                                    tmp_path: Path, db_path: str) -> None:
    a = _write(tmp_path / "a.csv", "1")
    slow = svc.start_batch(TARGET, {})
    stalled = svc.claim_file(slow, a, TARGET)
    assert isinstance(stalled, FileClaim)
    _set_file(db_path, stalled.file_id,
              lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    fast = svc.start_batch(TARGET, {})
    fresh = svc.claim_file(fast, a, TARGET)
    assert isinstance(fresh, FileClaim)
    with pytest.raises(LeaseLost, match="no longer held"):
        load_in_writer(svc, writer, stalled)
    writer.rollback()
    load_in_writer(svc, writer, fresh)
    # a failure report of the stalled claim does not overwrite its successor's state
    svc.finish_file(stalled, "failed", FileResult(1, 0, 1, 2, error="late"))
    assert _target_rows(db_path) == [("1", fresh.file_id)]
    svc.finish_batch(slow)
    svc.finish_batch(fast)


def test_renew_leases_extends_this_batch(svc: AuditService, tmp_path: Path,
                                         db_path: str) -> None:
    batch = svc.start_batch(TARGET, {})
    claim = svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
    assert isinstance(claim, FileClaim)
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    _set_file(db_path, claim.file_id, lease_expires_at=past)
    assert svc.renew_leases(batch) == 1
    (row,) = _manifest(db_path)
    assert row.lease_expires_at is not None and row.lease_expires_at > past
    assert svc.finish_batch(batch)["files"][0]["status"] == "failed"  # ended while loading


def test_heartbeat_renews_leases(tmp_path: Path) -> None:
    db = str(tmp_path / "hb.db")
    renewed = threading.Event()
    settings = Settings(lease_s=0.5, heartbeat_s=0.02)
    with AuditService(f"sqlite:///{db}", settings=settings) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
        assert isinstance(claim, FileClaim)
        first = _manifest(db)[0].lease_expires_at
        original = svc.renew_leases

        def spy(batch_id: str) -> int:
            n = original(batch_id)
            if n:
                renewed.set()
            return n

        svc.renew_leases = spy  # type: ignore[method-assign]
        assert renewed.wait(10)
        later = _manifest(db)[0].lease_expires_at
        assert first is not None and later is not None and later > first
        svc.finish_batch(batch)


def test_two_processes_racing_load_each_file_once(tmp_path: Path) -> None:
    db = str(tmp_path / "race.db")
    with AuditService(f"sqlite:///{db}", settings=Settings()):
        _create_target(db)
    paths = [_write(tmp_path / f"f{i:02d}.csv", f"row-{i}-a", f"row-{i}-b") for i in range(24)]
    # same content under another name: the same file
    paths.append(_write(tmp_path / "dup.csv", "row-3-a", "row-3-b"))
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
    rows = _target_rows(db)
    values = [v for v, _ in rows]
    assert sorted(values) == sorted(f"row-{i}-{s}" for i in range(24) for s in "ab")
    loaded = [m for m in _manifest(db) if m.status == "loaded"]
    assert len(loaded) == 24
    assert {fid for _, fid in rows} == {m.id for m in loaded}


@pytest.mark.parametrize("mode", ["same-db", "data-committed", "data-not-committed"])
def test_killed_load_is_loaded_once_on_rerun(tmp_path: Path, mode: str) -> None:
    audit_db = str(tmp_path / "audit.db")
    data_db = audit_db if mode == "same-db" else str(tmp_path / "data.db")
    with AuditService(f"sqlite:///{audit_db}", settings=Settings()):
        _create_target(data_db)
    a = _write(tmp_path / "a.csv", "1", "2", "3")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=workers.crash_worker,
        args=(audit_db, None if mode == "same-db" else data_db, a, mode == "data-committed"),
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == -9  # SIGKILL, reaped
    (crashed,) = _manifest(audit_db)
    assert crashed.status == "loading"
    expected_leftovers = 3 if mode == "data-committed" else 0
    assert len(_target_rows(data_db)) == expected_leftovers

    with AuditService(f"sqlite:///{audit_db}", settings=Settings()) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.claim_file(batch, a, TARGET)
        assert isinstance(claim, FileClaim)
        assert claim.replaces == (crashed.id,)
        w = SqliteWriter(data_db)
        lines = workers.read_lines(a)
        w.begin()
        svc.prepare_file_in(w, claim, TARGET)
        w.executemany(f'INSERT INTO "{TARGET}" VALUES (?, ?)', [(x, claim.file_id) for x in lines])
        if mode == "same-db":
            svc.commit_file_in(w, claim, FileResult(3, 3, 0, 6))
        w.commit()
        w.close()
        if mode != "same-db":
            svc.finish_file(claim, "loaded", FileResult(3, 3, 0, 6))
        report = svc.finish_batch(batch)
    assert report["files"][0]["status"] == "loaded"
    assert _target_rows(data_db) == [("1", claim.file_id), ("2", claim.file_id),
                                     ("3", claim.file_id)]


# --- timeouts ----------------------------------------------------------------------------------


def test_idle_batch_times_out_and_releases_its_files(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    fired: list[tuple[str, str]] = []
    done = threading.Event()

    def on_timeout(batch_id: str, kind: str) -> None:
        fired.append((batch_id, kind))
        done.set()

    settings = Settings(idle_timeout_s=0.05, watchdog_interval_s=0.01)
    with AuditService(f"sqlite:///{db}", settings=settings, on_batch_timeout=on_timeout) as svc:
        _create_target(db)
        batch = svc.start_batch(TARGET, {})
        claim = svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
        assert isinstance(claim, FileClaim)
        assert done.wait(10)
        assert fired == [(batch, "idle")]
        acc = svc.accumulator(batch)
        assert acc.cancelled
        with pytest.raises(BatchCancelled):
            acc.add_rows(rows_read=1)
        report = svc.batch_report(batch)
        assert report["status"] == "timed_out"
        assert report["files"][0] == {
            "path": claim.path, "status": "failed", "rows_read": 0, "rows_written": 0,
            "rows_rejected": 0, "error": "batch timed out (idle)"}
        w = SqliteWriter(db)
        with pytest.raises(LeaseLost):
            load_in_writer(svc, w, claim)
        w.rollback()
        w.close()
        # the loader ends the batch as it sees fit; timed_out stays
        assert svc.finish_batch(batch, status="failed")["status"] == "timed_out"
        assert svc.list_batches(1)[0]["timeout_kind"] == "idle"
        svc.flush()
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as s:
        types = [e.type for e in s.scalars(select(AuditEvent))]
    engine.dispose()
    assert types == ["batch_timed_out"]


def test_operation_timeout(tmp_path: Path) -> None:
    done = threading.Event()
    settings = Settings(operation_timeout_s=0.05, watchdog_interval_s=0.01)
    with AuditService(f"sqlite:///{tmp_path / 'op.db'}", settings=settings,
                      on_batch_timeout=lambda b, k: done.set()) as svc:
        batch = svc.start_batch(TARGET, {})
        acc = svc.accumulator(batch)
        while not done.is_set():  # keep it busy: only the operation timeout can fire
            acc.touch()
            done.wait(0.005)
        assert svc.get_metrics_snapshot(batch).expired == "operation"
        assert svc.finish_batch(batch)["status"] == "timed_out"


# --- events ------------------------------------------------------------------------------------


def _events(db_path: str) -> list[AuditEvent]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def test_record_writes_behind_in_order(tmp_path: Path) -> None:
    db = str(tmp_path / "ev.db")
    with AuditService(f"sqlite:///{db}", settings=Settings(linger_ms=50)) as svc:
        before = datetime.now(timezone.utc)
        payload: dict[str, Any] = {"n": 0, "path": Path("/x")}
        for i in range(2500):
            payload["n"] = i
            svc.record("tick", batch_id="b1", file_id=i, payload=payload, correlation_id="c")
        svc.record("bare")
        payload["n"] = "changed later"
        svc.flush(timeout=30)
        events = _events(db)
        stats = svc.queue_stats()
    assert [e.payload for e in events[:2]] == [{"n": 0, "path": "/x"}, {"n": 1, "path": "/x"}]
    assert len(events) == 2501 and events[-1].type == "bare" and events[-1].payload is None
    assert [e.file_id for e in events[:-1]] == list(range(2500))
    assert all(e.created_at >= before and e.correlation_id == "c" for e in events[:-1])
    assert events[0].created_at <= events[-1].created_at
    assert stats["written"] == 2501 and stats["dead_lettered"] == 0


def test_record_sync_and_synchronous_mode(tmp_path: Path) -> None:
    db = str(tmp_path / "sync.db")
    with AuditService(f"sqlite:///{db}", settings=Settings(audit_async=False)) as svc:
        svc.record("one", payload={"a": 1})
        assert len(_events(db)) == 1  # written before record() returned
        event_id = svc.record_sync("two", batch_id="b")
        assert svc.queue_stats() == {}
    assert [(e.id, e.type) for e in _events(db)] == [(1, "one"), (event_id, "two")]
    with pytest.raises(QueueClosed):
        svc.record("late")
    with pytest.raises(QueueClosed):
        svc.record_sync("late")


def test_record_after_close_raises(tmp_path: Path) -> None:
    svc = AuditService(f"sqlite:///{tmp_path / 'c.db'}", settings=Settings())
    svc.record("before")
    svc.close()
    svc.close()  # idempotent
    assert svc.closed
    with pytest.raises(QueueClosed):
        svc.record("after")
    with pytest.raises(QueueClosed):
        svc.flush()
    assert [e.type for e in _events(str(tmp_path / "c.db"))] == ["before"]


def test_close_is_bounded_when_the_database_is_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "locked.db")
    # a long busy timeout: the writer would wait a minute for the lock
    svc = AuditService(f"sqlite:///{db}", settings=Settings(busy_timeout_ms=60_000))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for i in range(10):
            svc.record("stuck", file_id=i)
        with caplog.at_level(logging.ERROR, logger="tallyclerk"):
            svc.close(timeout=0.2)
        # close() returned while the lock is still held: it did not wait for the writer
        assert holder.in_transaction
        assert svc.closed
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("did not drain" in m and "10 item(s)" in m for m in errors), errors
        with pytest.raises(QueueClosed):
            svc.record("after close")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- retries, errors and URLs ------------------------------------------------------------------


class _Signal(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    db = str(tmp_path / "retry.db")
    settings = Settings(busy_timeout_ms=0, backoff_initial_ms=5, backoff_max_ms=20,
                        max_retries=1000)
    signal = _Signal("retrying to start a batch")
    logger = logging.getLogger("tallyclerk.audit")
    logger.addHandler(signal)
    try:
        with AuditService(f"sqlite:///{db}", settings=settings) as svc:
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            result: list[str] = []
            t = threading.Thread(target=lambda: result.append(svc.start_batch(TARGET, {})))
            t.start()
            assert signal.seen.wait(10)  # it hit the lock and is retrying
            holder.execute("COMMIT")
            holder.close()
            t.join(30)
            assert result and svc.batch_report(result[0])["status"] == "running"
            svc.finish_batch(result[0])
    finally:
        logger.removeHandler(signal)


def test_transient_errors_give_up_after_max_retries(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    db = str(tmp_path / "giveup.db")
    settings = Settings(busy_timeout_ms=0, backoff_initial_ms=1, backoff_max_ms=2, max_retries=2)
    with AuditService(f"sqlite:///{db}", settings=settings) as svc:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level(logging.WARNING, logger="tallyclerk.audit"), \
                    pytest.raises(TransientRepositoryError, match="locked"):
                svc.start_batch(TARGET, {})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    levels = [r.levelno for r in caplog.records if "start a batch" in r.getMessage()]
    assert levels == [logging.WARNING, logging.WARNING, logging.ERROR]


def test_unreachable_postgresql_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://app:hunter2@127.0.0.1:1/audit"
    with caplog.at_level(logging.DEBUG), pytest.raises(RepositoryError) as info:
        AuditService(url, settings=Settings(max_retries=0, connect_timeout_s=2))
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in caplog.text


def test_url_handling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    with AuditService(url, settings=Settings()) as svc:
        assert svc.url_masked == url
        assert svc.shares_database_with(url)
        assert svc.shares_database_with(f"sqlite:///{tmp_path / 'x' / '..' / 'u.db'}")
        assert not svc.shares_database_with(f"sqlite:///{tmp_path / 'other.db'}")
        assert not svc.shares_database_with("duckdb:///whatever")
        assert not svc.shares_database_with("postgresql://u:p@h/db")
    with pytest.raises(ConfigError, match="unsupported"):
        AuditService("mysql://root:hunter2@h/db", settings=Settings())
    with pytest.raises(ConfigError, match="in-memory"):
        AuditService("sqlite://", settings=Settings())


def test_full_queue_dead_letters_instead_of_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "full.db")
    settings = Settings(queue_max_items=2, queue_put_timeout_ms=0, busy_timeout_ms=60_000)
    svc = AuditService(f"sqlite:///{db}", settings=settings)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the writer cannot write
    try:
        with caplog.at_level(logging.ERROR, logger="tallyclerk.audit"):
            for i in range(20):
                svc.record("burst", file_id=i)  # returns at once even though nothing is written
        assert svc.dead_lettered >= 20 - 2 - 1  # at most the queue plus one batch in flight
        assert any("stayed full" in r.getMessage() for r in caplog.records)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    svc.close(timeout=30)
    written = len(_events(db))
    assert written + svc.dead_lettered == 20


def test_event_writer_large_and_small_batches(tmp_path: Path) -> None:
    from tallyclerk.audit.engine import create_audit_engine, ensure_schema
    from tallyclerk.audit.events import ROWS_PER_STATEMENT, EventWriter
    from tallyclerk.dburl import parse_url

    db = str(tmp_path / "w.db")
    engine = create_audit_engine(parse_url(f"sqlite:///{db}"), Settings())
    ensure_schema(engine)
    writer = EventWriter(engine, Settings())
    try:
        big = ROWS_PER_STATEMENT * 2 + 7  # several statements, one transaction
        writer([("big", None, i, None, 1_000_000 * i, None) for i in range(big)])
        writer([("small", "b", 1, '{"a": 1}', 5, "c")])
        writer([])
    finally:
        writer.close()
        engine.dispose()
    events = _events(db)
    assert len(events) == big + 1
    assert [e.file_id for e in events[:big]] == list(range(big))
    assert events[-1].payload == {"a": 1} and events[-1].correlation_id == "c"
    assert events[1].created_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)


def test_locked_database_does_not_stall_the_watchdog(tmp_path: Path) -> None:
    db = str(tmp_path / "hb-locked.db")
    timed_out = threading.Event()
    settings = Settings(heartbeat_s=0.02, lease_s=5, busy_timeout_ms=60_000,
                        idle_timeout_s=0.3, watchdog_interval_s=0.01)
    with AuditService(f"sqlite:///{db}", settings=settings,
                      on_batch_timeout=lambda b, k: timed_out.set()) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
        assert isinstance(claim, FileClaim)
        acc = svc.accumulator(batch)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # a long data transaction holds the write lock
        try:
            # heartbeats give up quickly (they would otherwise wait a minute each), so the
            # idle timeout still fires while the lock is held
            poll = threading.Event()
            for _ in range(3000):
                if acc.cancelled:
                    break
                poll.wait(0.01)
            assert acc.cancelled
            assert holder.in_transaction
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert timed_out.wait(30)  # recorded once the lock is released
        assert svc.finish_batch(batch)["status"] == "timed_out"


def test_close_marks_unfinished_batches_failed(tmp_path: Path, db_path: str) -> None:
    svc = AuditService(f"sqlite:///{db_path}", settings=Settings())
    batch = svc.start_batch(TARGET, {})
    claim = svc.claim_file(batch, _write(tmp_path / "a.csv", "1"), TARGET)
    assert isinstance(claim, FileClaim)
    svc.close()
    with AuditService(f"sqlite:///{db_path}", settings=Settings()) as again:
        report = again.batch_report(batch)
        assert report["status"] == "failed"
        assert report["files"][0]["status"] == "failed"
        fresh = again.start_batch(TARGET, {})
        retry = again.claim_file(fresh, claim.path, TARGET)
        assert isinstance(retry, FileClaim) and retry.replaces == (claim.file_id,)
        again.finish_batch(fresh)
