"""The watchdog: idle and operation timeouts, lease heartbeats, and a locked database that must
not stall either."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from tallyclerk import SqliteWriter, TableSchema
from tallyclerk.audit import AuditService, FileClaim
from tallyclerk.audit.models import events
from tallyclerk.builtins.sqlite_sink import SqliteSink
from tallyclerk.errors import (
    BatchCancelled,
    LeaseLost,
)
from tallyclerk.settings import Settings
from tests.audit.helpers import (
    create_target,
    manifest,
    set_file,
    write_file,
)
from tests.audit.workers import TARGET, load_in_writer


def test_renew_leases_extends_this_batch(svc: AuditService, tmp_path: Path,
                                         db_path: str) -> None:
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
    assert isinstance(claim, FileClaim)
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    set_file(db_path, claim.file_id, lease_expires_at=past)
    assert svc.renew_leases(batch) == 1
    (row,) = manifest(db_path)
    assert row.lease_expires_at is not None and row.lease_expires_at > past
    assert svc.finish_batch(batch)["files"][0]["status"] == "failed"  # ended while loading


def test_heartbeat_renews_leases(tmp_path: Path) -> None:
    db = str(tmp_path / "hb.db")
    renewed = threading.Event()
    settings = Settings(lease_s=0.5, heartbeat_s=0.02)
    with AuditService(f"sqlite:///{db}", settings=settings) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
        assert isinstance(claim, FileClaim)
        first = manifest(db)[0].lease_expires_at
        original = svc.renew_leases

        def spy(batch_id: str) -> int:
            n = original(batch_id)
            if n:
                renewed.set()
            return n

        svc.renew_leases = spy  # type: ignore[method-assign]
        assert renewed.wait(10)
        later = manifest(db)[0].lease_expires_at
        assert first is not None and later is not None and later > first
        svc.finish_batch(batch)


def test_idle_batch_times_out_and_releases_its_files(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    fired: list[tuple[str, str]] = []
    done = threading.Event()

    def on_timeout(batch_id: str, kind: str) -> None:
        fired.append((batch_id, kind))
        done.set()

    # long enough that a loaded machine cannot time the batch out between start and claim
    settings = Settings(idle_timeout_s=0.5, watchdog_interval_s=0.01)
    with AuditService(f"sqlite:///{db}", settings=settings, on_batch_timeout=on_timeout) as svc:
        create_target(db)
        batch = svc.start_batch(TARGET, {})
        claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
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
            "rows_rejected": 0, "rows_rolled_back": 0, "rows_inserted": None, "rows_updated": None,
            "error": "batch timed out (idle)", "schema_version": None, "columns_added": [],
            "columns_dropped": [], "columns_missing": []}
        w = SqliteWriter(db)
        with pytest.raises(LeaseLost):
            load_in_writer(svc, w, claim)
        w.rollback()
        w.close()
        # the loader ends the batch as it sees fit; timed_out stays
        assert svc.finish_batch(batch, status="failed")["status"] == "timed_out"
        assert svc.list_batches(1)[0]["timeout_kind"] == "idle"
        svc.events.flush()
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        types = [str(t) for t in conn.execute(select(events.c.type)).scalars()]
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


def test_locked_database_does_not_stall_the_watchdog(tmp_path: Path) -> None:
    db = str(tmp_path / "hb-locked.db")
    timed_out = threading.Event()
    settings = Settings(heartbeat_s=0.02, lease_s=5, busy_timeout_ms=60_000,
                        idle_timeout_s=0.3, watchdog_interval_s=0.01)
    with AuditService(f"sqlite:///{db}", settings=settings,
                      on_batch_timeout=lambda b, k: timed_out.set()) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
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


def test_heartbeat_during_this_process_data_transaction_renews_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The load's own transaction on the audit store's file holds the write lock: a heartbeat
    does not wait for it (nor fail against it); the renewal runs the moment it ends."""
    db = str(tmp_path / "own.db")
    settings = Settings(lease_s=5, heartbeat_s=0.02)
    beats = threading.Event()
    with AuditService(f"sqlite:///{db}", settings=settings) as svc:
        batch = svc.start_batch(TARGET, {})
        claim = svc.ledger.claim_file(batch, write_file(tmp_path / "a.csv", "1"), TARGET)
        assert isinstance(claim, FileClaim)
        sink = SqliteSink(db)
        sink.prepare(TARGET, TableSchema.from_json(
            '{"fields": [{"name": "v", "type": "string"}]}'))
        fw = sink.begin_file(claim)  # the file's transaction: SQLite's write lock held
        try:
            original = svc.renew_leases

            def spy(batch_id: str) -> int:
                beats.set()
                return original(batch_id)

            svc.renew_leases = spy  # type: ignore[method-assign]
            held = manifest(db)[0].lease_expires_at
            assert not beats.wait(0.5)  # 25 heartbeats: none reached the database
            assert manifest(db)[0].lease_expires_at == held
        finally:
            fw.rollback()  # the renewal owed runs here, on this thread
            sink.close()
        assert beats.is_set()
        renewed = manifest(db)[0].lease_expires_at
        assert held is not None and renewed is not None and renewed > held
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        svc.finish_batch(batch)
