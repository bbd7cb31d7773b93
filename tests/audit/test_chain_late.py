"""The hash chain stays whole for legitimate histories with stalled workers (SQLite and
PostgreSQL): a worker whose lease expired and whose batch another worker closed (and sealed)
finishes late; its ending is recorded as a chained event, not written over the sealed row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tallyclerk.audit import AuditService, FileClaim
from tallyclerk.audit.models import files
from tallyclerk.settings import Settings
from tests.audit.helpers import write_file

TABLE = "t"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("pg_url"))


def _expire_lease(url: str, file_id: int) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:  # through the table: its column type stores the time
            conn.execute(sa.update(files).where(files.c.id == file_id).values(
                lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    finally:
        engine.dispose()


def _batch(url: str, batch_id: str) -> tuple[str, str | None, str | None]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, error_message, chain_hash "
                                       "FROM tallyclerk_batches WHERE id = :i"),
                               {"i": batch_id}).one()
            return str(row[0]), row[1], row[2]
    finally:
        engine.dispose()


def test_a_worker_finishing_after_its_batch_was_closed_and_sealed(url: str,
                                                                  tmp_path: Path) -> None:
    path = write_file(tmp_path / "a.csv", "1")
    with AuditService(url, settings=Settings()) as slow_svc, \
            AuditService(url, settings=Settings()) as fast_svc:
        slow = slow_svc.start_batch(TABLE, {})
        stalled = slow_svc.ledger.claim_file(slow, path, TABLE)
        assert isinstance(stalled, FileClaim)
        _expire_lease(url, stalled.file_id)  # the slow worker stalls past its lease
        fast = fast_svc.start_batch(TABLE, {})
        fresh = fast_svc.ledger.claim_file(fast, path, TABLE)  # takes over, closes the slow batch
        assert isinstance(fresh, FileClaim) and fresh.replaces == (stalled.file_id,)
        fast_svc.finish_batch(fast)  # seals the slow batch as the fast worker closed it
        status, message, sealed = _batch(url, slow)
        assert status == "failed" and sealed is not None
        assert message is not None and f"cleaned up by batch {fast}" in message
        # the stalled worker wakes up and finishes its batch
        report = slow_svc.finish_batch(slow)
        assert report["status"] == "failed"
        assert _batch(url, slow) == (status, message, sealed)  # the sealed row is unchanged
        slow_svc.events.flush()
        slow_svc.seal()
        rep = fast_svc.verify()
        assert rep.ok, rep.as_dict()
        assert rep.broken is None and rep.unsealed == {}
        late = slow_svc.list_events(batch_id=slow, type="batch_finished_late")
        assert len(late) == 1 and late[0]["payload"]["status"] == "failed"
        assert late[0]["payload"]["closed_as"] == "failed"
