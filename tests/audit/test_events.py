"""The write-behind event log, bounded shutdown, retries of transient errors, and passwords that
never show."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.audit import AuditService
from tallyclerk.errors import (
    QueueClosed,
    RepositoryError,
    TransientRepositoryError,
)
from tallyclerk.settings import Settings
from tests.audit.helpers import read_events
from tests.audit.workers import TARGET


def test_record_writes_behind_in_order(tmp_path: Path) -> None:
    db = str(tmp_path / "ev.db")
    with AuditService(f"sqlite:///{db}", settings=Settings(linger_ms=50)) as svc:
        before = datetime.now(timezone.utc)
        payload: dict[str, Any] = {"n": 0, "path": Path("/x")}
        for i in range(2500):
            payload["n"] = i
            svc.events.record("tick", batch_id="b1", file_id=i, payload=payload, correlation_id="c")
        svc.events.record("bare")
        payload["n"] = "changed later"
        svc.events.flush(timeout=30)
        events = read_events(db)
        stats = svc.events.stats()
    assert [e.payload for e in events[:2]] == [{"n": 0, "path": "/x"}, {"n": 1, "path": "/x"}]
    assert len(events) == 2501 and events[-1].type == "bare" and events[-1].payload is None
    assert [e.file_id for e in events[:-1]] == list(range(2500))
    assert all(e.created_at >= before and e.correlation_id == "c" for e in events[:-1])
    assert events[0].created_at <= events[-1].created_at
    assert stats["written"] == 2501 and stats["dead_lettered"] == 0


def test_record_sync_and_synchronous_mode(tmp_path: Path) -> None:
    db = str(tmp_path / "sync.db")
    with AuditService(f"sqlite:///{db}", settings=Settings(audit_async=False)) as svc:
        svc.events.record("one", payload={"a": 1})
        assert len(read_events(db)) == 1  # written before record() returned
        event_id = svc.events.record_sync("two", batch_id="b")
        assert svc.events.stats() == {}
    assert [(e.id, e.type) for e in read_events(db)] == [(1, "one"), (event_id, "two")]
    with pytest.raises(QueueClosed):
        svc.events.record("late")
    with pytest.raises(QueueClosed):
        svc.events.record_sync("late")


def test_record_after_close_raises(tmp_path: Path) -> None:
    svc = AuditService(f"sqlite:///{tmp_path / 'c.db'}", settings=Settings())
    svc.events.record("before")
    svc.close()
    svc.close()  # idempotent
    assert svc.closed
    with pytest.raises(QueueClosed):
        svc.events.record("after")
    with pytest.raises(QueueClosed):
        svc.events.flush()
    assert [e.type for e in read_events(str(tmp_path / "c.db"))] == ["before"]


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
            svc.events.record("stuck", file_id=i)
        with caplog.at_level(logging.ERROR, logger="tallyclerk"):
            svc.close(timeout=0.2)
        # close() returned while the lock is still held: it did not wait for the writer
        assert holder.in_transaction
        assert svc.closed
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("did not drain" in m and "10 item(s)" in m for m in errors), errors
        with pytest.raises(QueueClosed):
            svc.events.record("after close")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


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
                svc.events.record("burst", file_id=i)  # returns at once, nothing is written
        assert svc.events.dead_lettered >= 20 - 2 - 1  # at most the queue plus one batch in flight
        assert any("stayed full" in r.getMessage() for r in caplog.records)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    svc.close(timeout=30)
    written = len(read_events(db))
    assert written + svc.events.dead_lettered == 20


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
    events = read_events(db)
    assert len(events) == big + 1
    assert [e.file_id for e in events[:big]] == list(range(big))
    assert events[-1].payload == {"a": 1} and events[-1].correlation_id == "c"
    assert events[1].created_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)


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
