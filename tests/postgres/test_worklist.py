"""The work list on a real server: SKIP LOCKED takes, leases, take-over rules and fencing.

Leases are moved into the past with SQL instead of waiting for them to expire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tallyclerk.audit.worklist import WorkList
from tallyclerk.errors import ConfigError
from tallyclerk.settings import Settings

pytestmark = pytest.mark.postgres

SETTINGS = Settings(lease_s=30.0, heartbeat_s=5.0)


@pytest.fixture()
def lists(pg_url: str) -> Iterator[tuple[WorkList, WorkList, sa.Engine]]:
    a = WorkList(pg_url, settings=SETTINGS, owner="host-a:1")
    b = WorkList(pg_url, settings=SETTINGS, owner="host-b:2")
    engine = sa.create_engine(pg_url)
    try:
        yield a, b, engine
    finally:
        a.close()
        b.close()
        engine.dispose()


def expire(engine: sa.Engine, table: str, item_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET lease_expires_at = now() - interval '1 second' "
                             "WHERE id = :i"), {"i": item_id})


def test_takes_skip_locked_rows_and_never_share_one(
    lists: tuple[WorkList, WorkList, sa.Engine],
) -> None:
    a, b, engine = lists
    a.register("L", "t", ["x.csv", "y.csv", "z.csv"])
    b.register("L", "t", ["y.csv", "w.csv"])  # another host: only the new path is added
    assert a.progress("L") == (0, 4, 0)
    with engine.connect() as conn, conn.begin():
        # another worker's take is in flight: the first row is locked
        locked = conn.execute(sa.text(
            "SELECT path FROM tallyclerk_work WHERE load_id = 'L' ORDER BY seq, id LIMIT 1 "
            "FOR UPDATE")).scalar_one()
        first = b.take("L", "batch-b")  # does not wait for the lock
        assert first is not None and first.path != locked
    taken = [first.path]
    while (item := a.take("L", "batch-a")) is not None:
        taken.append(item.path)
    assert sorted(taken) == ["w.csv", "x.csv", "y.csv", "z.csv"]
    assert a.remaining("L") == 4


def test_a_dead_holder_is_taken_over_once_its_leases_expire(
    lists: tuple[WorkList, WorkList, sa.Engine],
) -> None:
    a, b, engine = lists
    a.register("L", "t", ["x.csv"])
    held = a.take("L", "batch-a")
    assert held is not None and b.take("L", "batch-b") is None  # leased
    with engine.begin() as conn:  # a's manifest claim of the file, still leased
        conn.execute(sa.text(
            "INSERT INTO tallyclerk_batches (id, target_table, status, started_at, host, pid, "
            "options, files_started, files_loaded, files_skipped, files_failed, rows_read, "
            "rows_written, rows_rejected, bytes_read) VALUES ('batch-a', 't', 'running', now(), "
            "'host-a', 1, '{}', 0, 0, 0, 0, 0, 0, 0, 0)"))
        file_id = conn.execute(sa.text(
            "INSERT INTO tallyclerk_files (batch_id, path, size, mtime, fingerprint, "
            "target_table, status, rows_read, rows_written, rows_rejected, bytes_read, attempt, "
            "started_at, lease_expires_at, claim_token, owner) VALUES ('batch-a', 'x.csv', 1, 0, "
            "'fp', 't', 'loading', 0, 0, 0, 0, 1, now(), now() + interval '1 hour', 'tok', "
            "'host-a:1') RETURNING id")).scalar_one()
    assert a.started(held, file_id)
    expire(engine, "tallyclerk_work", held.id)
    assert b.take("L", "batch-b") is None  # the manifest claim is still live
    expire(engine, "tallyclerk_files", file_id)
    over = b.take("L", "batch-b")
    assert over is not None and over.id == held.id and over.token != held.token

    # the old holder wakes up: every update it tries is fenced off
    assert not a.finish(held, "loaded", file_id=file_id)
    assert not a.release(held)
    assert a.renew("L") == 0
    assert b.renew("L") == 1
    assert b.finish(over, "failed", file_id=None, error="x.csv: boom")
    report = b.report("L", "t", ["x.csv", "never.csv"], unfinished="not loaded")
    assert [f["status"] for f in report["files"]] == ["failed", "failed"]
    assert [f["error"] for f in report["files"]] == ["x.csv: boom", "not loaded"]
    assert report["status"] == "failed" and report["batch_id"] == "L"
    assert a.remaining("L") == 0


def test_load_ids_are_checked() -> None:
    from tallyclerk.audit.worklist import check_load_id

    assert check_load_id("orders-2026-11-22.a:1") == "orders-2026-11-22.a:1"
    for bad in ("", "x" * 65, "two words", "semi;colon", "ünï"):
        with pytest.raises(ConfigError):
            check_load_id(bad)
