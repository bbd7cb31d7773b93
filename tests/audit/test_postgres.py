"""The audit store on a real PostgreSQL server: the same tables, claims, fenced unit of work and
event writer as on SQLite (psycopg 3, ``%s`` parameters, ``timestamptz``)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from tallyclerk.audit import AuditService, FileClaim, FileResult, FileSkip, RejectRow
from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.audit.models import events as event_rows
from tallyclerk.audit.rows import AuditEvent
from tallyclerk.errors import LeaseLost
from tallyclerk.settings import Settings
from tests.pgserver import PASSWORD

pytestmark = pytest.mark.postgres

TARGET = "Target Rows"


def _load(svc: AuditService, url: str, claim: FileClaim, lines: list[str]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            ex = SqlAlchemyExecutor(conn)
            assert ex.dialect_name == "postgresql"
            svc.ledger.prepare_file_in(ex, claim, TARGET)
            ex.executemany(f'INSERT INTO "{TARGET}" (v, _tc_file_id) VALUES (%s, %s)',
                           [(line, claim.file_id) for line in lines])
            svc.ledger.add_rejects_in(ex, claim, [RejectRow(9, 10, "v", "type", "bad", "x")])
            svc.ledger.commit_file_in(ex, claim, FileResult(len(lines) + 1, len(lines), 1, 10))
    finally:
        engine.dispose()


def test_lifecycle_on_postgresql(pg_url: str, tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE TABLE "{TARGET}" (v TEXT, _tc_file_id INTEGER)'))
    a = tmp_path / "a.csv"
    a.write_text("1\n2\n")
    with caplog.at_level(logging.DEBUG), AuditService(pg_url, settings=Settings()) as svc:
        assert PASSWORD not in svc.url_masked and "***" in svc.url_masked
        assert svc.shares_database_with(pg_url.replace("postgresql+psycopg", "postgresql"))
        first = svc.start_batch(TARGET, {"n": 1})
        claim = svc.ledger.claim_file(first, str(a), TARGET)
        assert isinstance(claim, FileClaim)
        _load(svc, pg_url, claim, ["1", "2"])
        svc.events.record("file_loaded", batch_id=first, file_id=claim.file_id, payload={"rows": 2})
        event_id = svc.events.record_sync("checkpoint", batch_id=first)
        report = svc.finish_batch(first)
        assert report["status"] == "succeeded"
        assert report["files"][0]["status"] == "loaded"

        second = svc.start_batch(TARGET, {})
        skip = svc.ledger.claim_file(second, str(a), TARGET)
        assert isinstance(skip, FileSkip) and skip.earlier_batch_id == first
        forced = svc.ledger.claim_file(second, str(a), TARGET, force=True)
        assert isinstance(forced, FileClaim) and forced.replaces == (claim.file_id,)
        with pytest.raises(LeaseLost):
            _load(svc, pg_url, claim, ["stale"])  # the old claim is long finished
        _load(svc, pg_url, forced, ["1", "2"])
        svc.finish_batch(second)
        assert svc.batch_report(first)["files"][0]["status"] == "loaded"
        assert len(svc.list_rejects(batch_id=second)) == 1
        svc.events.flush(timeout=30)
    assert PASSWORD not in caplog.text
    with engine.connect() as conn:
        rows = conn.execute(text(f'SELECT v, _tc_file_id FROM "{TARGET}" ORDER BY v')).all()
    assert [tuple(r) for r in rows] == [("1", forced.file_id), ("2", forced.file_id)]
    with engine.connect() as conn:
        events = [AuditEvent._make(r)
                  for r in conn.execute(select(event_rows).order_by(event_rows.c.id))]
    engine.dispose()
    assert {e.type for e in events} == {"file_loaded", "checkpoint"}
    assert event_id in {e.id for e in events}
    assert all(e.created_at.tzinfo == timezone.utc for e in events)
    assert all(e.created_at <= datetime.now(timezone.utc) for e in events)
