"""AuditService over real SQLite files: batch lifecycle, reports, claims and the unit of work."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService, FileClaim, FileResult, FileSkip, RejectRow
from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.errors import (
    BatchCancelled,
    ConfigError,
    LeaseLost,
    SourceError,
)
from tallyclerk.settings import Settings
from tests.audit.helpers import (
    DEAD_PID,
    loaded_event,
    manifest,
    set_file,
    target_rows,
    write_file,
)
from tests.audit.workers import TARGET, load_in_writer

# files loaded without the pipeline's schema contract: no version, no column changes
NO_SCHEMA = {"rows_inserted": None, "rows_updated": None, "schema_version": None,
             "columns_added": [], "columns_dropped": [], "columns_missing": []}


def test_load_skip_and_report(svc: AuditService, writer: SqliteWriter, tmp_path: Path,
                              db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1", "2")
    b = write_file(tmp_path / "b.csv", "3")
    batch = svc.start_batch(TARGET, {"force": False, "path": tmp_path})
    acc = svc.accumulator(batch)
    assert [s.batch_id for s in svc.active_batches()] == [batch]
    for path in (a, b):
        claim = svc.ledger.claim_file(batch, path, TARGET)
        assert isinstance(claim, FileClaim)
        assert claim.replaces == () and claim.attempt == 1
        n = load_in_writer(svc, writer, claim)
        acc.add_file_event(loaded_event(), rows_read=n, rows_written=n)
    report = svc.finish_batch(batch)
    assert report == {
        "batch_id": batch, "status": "succeeded", "table": TARGET,
        "rows_read": 3, "rows_written": 3, "rows_rejected": 0, "rows_rolled_back": 0,
        "files": [
            {"path": a, "status": "loaded", "rows_read": 2, "rows_written": 2,
             "rows_rejected": 0, "rows_rolled_back": 0, "error": None, **NO_SCHEMA},
            {"path": b, "status": "loaded", "rows_read": 1, "rows_written": 1,
             "rows_rejected": 0, "rows_rolled_back": 0, "error": None, **NO_SCHEMA},
        ],
    }
    assert svc.active_batches() == []
    with pytest.raises(KeyError):
        svc.accumulator(batch)

    # a re-run skips both, naming the earlier batch; a copy of a's content is the same file
    copy = write_file(tmp_path / "copy-of-a.csv", "1", "2")
    again = svc.start_batch(TARGET, {})
    for path in (a, b, copy):
        skip = svc.ledger.claim_file(again, path, TARGET)
        assert isinstance(skip, FileSkip)
        assert skip.earlier_batch_id == batch
        assert skip.reason == f"already loaded by batch {batch}"
    report = svc.finish_batch(again)
    assert [f["status"] for f in report["files"]] == ["skipped"] * 3
    assert target_rows(db_path) == sorted([("1", 1), ("2", 1), ("3", 2)])
    assert svc.batch_report() == report  # the latest
    assert svc.batch_report("nope") == {}
    listed = svc.list_batches()
    assert [x["batch_id"] for x in listed] == [again, batch]
    assert listed[1]["files"] == 2 and listed[1]["rows_read"] == 3
    assert listed[1]["started_at"].endswith("+00:00")


def test_force_replaces_the_earlier_load(svc: AuditService, writer: SqliteWriter,
                                         tmp_path: Path, db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "x", "y")
    first = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    load_in_writer(svc, writer, claim)
    svc.finish_batch(first)

    second = svc.start_batch(TARGET, {"force": True})
    forced = svc.ledger.claim_file(second, a, TARGET, force=True)
    assert isinstance(forced, FileClaim)
    assert forced.replaces == (claim.file_id,)
    assert forced.attempt == 2
    load_in_writer(svc, writer, forced)
    report = svc.finish_batch(second)
    assert target_rows(db_path) == [("x", forced.file_id), ("y", forced.file_id)]
    statuses = {m.id: (m.status, m.cleaned_by) for m in manifest(db_path)}
    assert statuses[claim.file_id] == ("replaced", forced.file_id)
    assert statuses[forced.file_id] == ("loaded", None)
    # 'replaced' never shows in a report: the first batch still loaded the file
    assert svc.batch_report(first)["files"][0]["status"] == "loaded"
    assert report["files"][0]["status"] == "loaded"


def test_failed_file_and_rejects(svc: AuditService, tmp_path: Path, db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1", "bad")
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    rejects = [RejectRow(2, 3, "v", "type", "not a number", "bad")]
    svc.ledger.finish_file(claim, "failed",
                    FileResult(2, 0, 2, 8, first_error_line=3, error="too many rejects",
                               error_class="RejectLimit"), rejects)
    report = svc.finish_batch(batch)
    assert report["status"] == "failed"
    assert report["files"][0]["status"] == "failed"
    assert report["files"][0]["error"] == "too many rejects"
    assert svc.list_rejects(path=a) == [{
        "path": a, "table": TARGET, "file_status": "failed", "rolled_back": True,
        "batch_id": batch, "file_id": claim.file_id, "record_number": 2, "line": 3,
        "column": "v", "rule": "type", "reason": "not a number", "raw": "bad", "masked": False,
        "replayed_by_batch": None, "replayed_at": None, "replay_file_id": None,
        "replay_record_number": None, "replay_outcome": None,
    }]
    assert svc.list_rejects(batch_id="other") == []
    # the failed attempt is retried by the next run, listed in replaces (its rows, if any)
    retry = svc.start_batch(TARGET, {})
    again = svc.ledger.claim_file(retry, a, TARGET)
    assert isinstance(again, FileClaim)
    assert again.replaces == (claim.file_id,) and again.attempt == 2
    svc.finish_batch(retry)


def test_partial_status_and_inconsistent_counts(svc: AuditService, writer: SqliteWriter,
                                                tmp_path: Path) -> None:
    batch = svc.start_batch(TARGET, {})
    good = svc.ledger.claim_file(batch, write_file(tmp_path / "g.csv", "1"), TARGET)
    bad = svc.ledger.claim_file(batch, write_file(tmp_path / "b.csv", "2"), TARGET)
    assert isinstance(good, FileClaim) and isinstance(bad, FileClaim)
    load_in_writer(svc, writer, good)
    from tallyclerk.errors import InternalError

    with pytest.raises(InternalError, match="rows_read"):
        svc.ledger.finish_file(bad, "loaded", FileResult(5, 1, 1, 0))
    with pytest.raises(ValueError, match="loaded or failed"):
        svc.ledger.finish_file(bad, "skipped", FileResult(0, 0, 0, 0))
    svc.ledger.finish_file(bad, "failed", FileResult(1, 0, 1, 2, error="boom", error_class="X"))
    assert svc.finish_batch(batch)["status"] == "partial"


def test_rejects_in_the_unit_of_work(svc: AuditService, writer: SqliteWriter,
                                     tmp_path: Path) -> None:
    a = write_file(tmp_path / "a.csv", "1")
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    writer.begin()
    svc.ledger.add_rejects_in(writer, claim,
                              [RejectRow(2, 2, None, "row-length", "2 fields", "1,2")])
    svc.ledger.commit_file_in(writer, claim, FileResult(2, 1, 1, 6))
    writer.rollback()  # the caller's transaction rolls back: neither rejects nor 'loaded'
    assert svc.list_rejects(batch_id=batch) == []
    load_in_writer(svc, writer, claim)
    svc.finish_batch(batch)


def test_sqlalchemy_executor_unit_of_work(svc: AuditService, tmp_path: Path,
                                          db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1")
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, a, TARGET)
    assert isinstance(claim, FileClaim)
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            ex = SqlAlchemyExecutor(conn)
            assert ex.dialect_name == "sqlite"
            svc.ledger.prepare_file_in(ex, claim, TARGET)
            assert ex.executemany(f'INSERT INTO "{TARGET}" VALUES (?, ?)', [("1", claim.file_id)])
            assert ex.executemany("SELECT 1", []) == 0
            svc.ledger.commit_file_in(ex, claim, FileResult(1, 1, 0, 2))
            assert ex.query("SELECT status FROM tallyclerk_files WHERE id = ?",
                            [claim.file_id]) == [("loaded",)]
    finally:
        engine.dispose()
    assert target_rows(db_path) == [("1", claim.file_id)]
    svc.finish_batch(batch)


def test_identifiers_are_quoted(svc: AuditService, writer: SqliteWriter, tmp_path: Path,
                                db_path: str) -> None:
    evil = 'x"; DROP TABLE tallyclerk_files; --'
    with sqlite3.connect(db_path) as conn:
        conn.execute('CREATE TABLE "x""; DROP TABLE tallyclerk_files; --" (v, _tc_file_id)')
    batch = svc.start_batch(evil, {})
    a = write_file(tmp_path / "a.csv", "1")
    first = svc.ledger.claim_file(batch, a, evil)
    assert isinstance(first, FileClaim)
    forced = svc.ledger.claim_file(batch, a, evil, force=True)
    assert isinstance(forced, FileSkip)  # the first claim is live
    writer.begin()
    svc.ledger.prepare_file_in(
        writer, FileClaim(**{**first.__dict__, "replaces": (first.file_id,)}), evil)
    writer.commit()
    assert len(manifest(db_path)) == 2
    with pytest.raises(ConfigError):
        svc.ledger.claim_file(batch, a, "bad\x00name")
    svc.finish_batch(batch)


def test_claim_errors(svc: AuditService, tmp_path: Path) -> None:
    batch = svc.start_batch(TARGET, {})
    with pytest.raises(SourceError) as info:
        svc.ledger.claim_file(batch, str(tmp_path / "missing.csv"), TARGET)
    assert info.value.path == str(tmp_path / "missing.csv")
    with pytest.raises(KeyError):
        svc.ledger.claim_file("no-such-batch", str(tmp_path), TARGET)
    svc.accumulator(batch).cancel("stop")
    with pytest.raises(BatchCancelled, match="stop"):
        svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
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


def test_dead_owner_is_cleaned_and_replaced(svc: AuditService, writer: SqliteWriter,
                                            tmp_path: Path, db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1", "2")
    first = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    # a crashed process on this host: its pid is gone
    set_file(db_path, claim.file_id, owner=f"{os.uname().nodename}:{DEAD_PID}")
    second = svc.start_batch(TARGET, {})
    again = svc.ledger.claim_file(second, a, TARGET)
    assert isinstance(again, FileClaim)
    assert again.replaces == (claim.file_id,)
    dead = {m.id: m for m in manifest(db_path)}[claim.file_id]
    assert dead.status == "failed"
    assert dead.error == f"interrupted: cleaned up by batch {second}"
    load_in_writer(svc, writer, again)
    with pytest.raises(LeaseLost):  # the crashed claim can never commit
        load_in_writer(svc, writer, claim)
    writer.rollback()
    assert target_rows(db_path) == [("1", again.file_id), ("2", again.file_id)]
    assert {m.id: m.cleaned_by for m in manifest(db_path)}[claim.file_id] == again.file_id
    svc.finish_batch(first)
    svc.finish_batch(second)


def test_live_owner_elsewhere_is_not_disturbed(svc: AuditService, tmp_path: Path,
                                               db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1")
    first = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(first, a, TARGET)
    assert isinstance(claim, FileClaim)
    # another host: its pid means nothing here, only the lease counts
    set_file(db_path, claim.file_id, owner="elsewhere:1")
    second = svc.start_batch(TARGET, {})
    skip = svc.ledger.claim_file(second, a, TARGET, force=True)
    assert isinstance(skip, FileSkip)
    assert skip.reason == f"being loaded by batch {first}"
    # ... until its lease expires
    set_file(db_path, claim.file_id,
              lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    taken = svc.ledger.claim_file(second, a, TARGET)
    assert isinstance(taken, FileClaim) and taken.replaces == (claim.file_id,)
    svc.finish_batch(first)
    svc.finish_batch(second)


def test_stalled_claim_cannot_commit_after_takeover(svc: AuditService, writer: SqliteWriter,
                                                    tmp_path: Path, db_path: str) -> None:
    a = write_file(tmp_path / "a.csv", "1")
    slow = svc.start_batch(TARGET, {})
    stalled = svc.ledger.claim_file(slow, a, TARGET)
    assert isinstance(stalled, FileClaim)
    set_file(db_path, stalled.file_id,
              lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    fast = svc.start_batch(TARGET, {})
    fresh = svc.ledger.claim_file(fast, a, TARGET)
    assert isinstance(fresh, FileClaim)
    with pytest.raises(LeaseLost, match="no longer held"):
        load_in_writer(svc, writer, stalled)
    writer.rollback()
    load_in_writer(svc, writer, fresh)
    # a failure report of the stalled claim does not overwrite its successor's state
    svc.ledger.finish_file(stalled, "failed", FileResult(1, 0, 1, 2, error="late"))
    assert target_rows(db_path) == [("1", fresh.file_id)]
    svc.finish_batch(slow)
    svc.finish_batch(fast)


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


def test_close_marks_unfinished_batches_failed(tmp_path: Path, db_path: str) -> None:
    svc = AuditService(f"sqlite:///{db_path}", settings=Settings())
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
    assert isinstance(claim, FileClaim)
    svc.close()
    with AuditService(f"sqlite:///{db_path}", settings=Settings()) as again:
        report = again.batch_report(batch)
        assert report["status"] == "failed"
        assert report["files"][0]["status"] == "failed"
        fresh = again.start_batch(TARGET, {})
        retry = again.ledger.claim_file(fresh, claim.path, TARGET)
        assert isinstance(retry, FileClaim) and retry.replaces == (claim.file_id,)
        again.finish_batch(fresh)
