"""``tallyclerk.AuditLog``: the write-behind event log for applications, through its public API,
into real SQLite (and PostgreSQL) audit stores, read back with ``tallyclerk status --events``."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tallyclerk import AuditLog, FlushTimeout, QueueClosed
from tests.api.conftest import Footprint, write_csv
from tests.clirun import env_for, run_cli


def _events(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT id, type, payload, created_at, correlation_id FROM tallyclerk_events "
            "ORDER BY id").fetchall()
    finally:
        con.close()


def test_record_then_flush_commits_with_the_time_of_the_call(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog(f"sqlite:///{db}", correlation_id="req-7") as log:
        before = time.time()
        log.record("order_paid", order=42, amount="9.90")
        log.record("heartbeat")
        after = time.time()
        time.sleep(0.05)  # later than the calls: created_at must not be the write's time
        log.flush()
        rows = _events(db)  # a second connection sees them: committed
    assert [(r[1], r[4]) for r in rows] == [("order_paid", "req-7"), ("heartbeat", "req-7")]
    import json

    assert json.loads(rows[0][2]) == {"order": 42, "amount": "9.90"}
    assert rows[1][2] is None
    created = [r[3] / 1e6 for r in rows]  # stored as epoch microseconds
    assert all(before - 0.001 <= c <= after + 0.001 for c in created), (before, created, after)


def test_close_drains_and_use_after_close_raises_queue_closed(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    before = Footprint()
    log = AuditLog(f"sqlite:///{db}")
    for i in range(5000):
        log.record("tick", i=i)
    log.close()
    assert len(_events(db)) == 5000 and log.dead_lettered == 0
    assert log.closed
    with pytest.raises(QueueClosed):
        log.record("late")
    with pytest.raises(QueueClosed):
        log.flush()
    log.close()  # idempotent
    with pytest.raises(QueueClosed):
        with log:
            pass
    assert before.new_threads() == []
    assert before.new_fds(tmp_path) == []
    assert before.changed_handlers() == {}


def test_flush_timeout_leaves_the_events_queued(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog(f"sqlite:///{db}", settings={"busy_timeout_ms": 5000}) as log:
        log.record("first")
        log.flush()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer must wait
        try:
            log.record("second")
            with pytest.raises(FlushTimeout):
                log.flush(timeout=0.05)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        log.flush()
    assert [r[1] for r in _events(db)] == ["first", "second"]


def test_a_permanent_failure_is_dead_lettered_at_once_a_busy_store_is_retried(
        tmp_path: Path) -> None:
    """The event queue retries what may succeed (the one classification of database errors)
    and dead-letters what cannot at once: a backoff of minutes would otherwise hold every
    event behind the bad batch, and then lose it anyway."""
    db = tmp_path / "audit.db"
    slow_retries = {"max_retries": 5, "backoff_initial_ms": 60_000, "backoff_max_ms": 60_000,
                    "busy_timeout_ms": 1}
    with AuditLog(f"sqlite:///{db}", settings=slow_retries) as log:
        log.record("first")
        log.flush()
        con = sqlite3.connect(db)
        con.execute("ALTER TABLE tallyclerk_events RENAME TO moved")  # no such table: permanent
        con.commit()
        log.record("lost")
        log.flush(timeout=30)  # returns without waiting out a retry
        assert (log.dead_lettered, log.stats()["retried"]) == (1, 0)
        con.execute("ALTER TABLE moved RENAME TO tallyclerk_events")
        con.commit()
        con.close()
        log.record("after")
        log.flush(timeout=30)
    assert [r[1] for r in _events(db)] == ["first", "after"]

    db2 = tmp_path / "busy.db"
    quick = {"max_retries": 50, "backoff_initial_ms": 5, "backoff_max_ms": 20,
             "busy_timeout_ms": 1}
    with AuditLog(f"sqlite:///{db2}", settings=quick) as log:
        log.record("first")
        log.flush()
        blocker = sqlite3.connect(db2, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # database is locked: transient, retried
        log.record("second")
        time.sleep(0.2)
        blocker.execute("ROLLBACK")
        blocker.close()
        log.flush(timeout=30)
        assert log.dead_lettered == 0 and log.stats()["retried"] >= 1
    assert [r[1] for r in _events(db2)] == ["first", "second"]


def test_eight_threads_lose_nothing_and_keep_each_threads_order(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    threads_n, per_thread = 8, 100_000
    # the queue's bound and put timeout decide when a database far behind costs events
    # (dead-lettered, counted): a generous timeout here, so a busy test machine cannot turn
    # back-pressure into drops; what is tested is that the queue loses and reorders nothing
    log = AuditLog(f"sqlite:///{db}", settings={"queue_put_timeout_ms": 60_000})
    start = threading.Barrier(threads_n)

    def produce(t: int) -> None:
        start.wait()
        record = log.record
        for i in range(per_thread):
            record("seq", t=t, i=i)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.flush()
    log.close()
    assert log.dead_lettered == 0
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT json_extract(payload, '$.t'), json_extract(payload, '$.i') "
            "FROM tallyclerk_events ORDER BY id").fetchall()
    finally:
        con.close()
    assert len(rows) == threads_n * per_thread
    by_thread: dict[int, list[int]] = {}
    for t, i in rows:
        by_thread.setdefault(t, []).append(i)
    assert sorted(by_thread) == list(range(threads_n))
    for t, seq in by_thread.items():
        assert seq == list(range(per_thread)), f"thread {t}: lost or reordered events"


payloads = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k.isidentifier()),
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
              st.text(max_size=30), st.lists(st.integers(-100, 100), max_size=4)),
    max_size=5,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.text(min_size=1, max_size=20), fields=payloads)
def test_any_json_payload_round_trips(tmp_path: Path, kind: str, fields: dict[str, Any]) -> None:
    import json

    db = tmp_path / "roundtrip.db"
    with AuditLog(f"sqlite:///{db}") as log:
        log.record(kind, **fields)
        log.flush()
        row = _events(db)[-1]
    assert row[1] == kind
    assert (None if row[2] is None else json.loads(row[2])) == (fields or None)


def test_values_json_cannot_hold_are_stored_as_text(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog(f"sqlite:///{db}") as log:
        log.record("odd", where=tmp_path, n=1)
    import json

    assert json.loads(_events(db)[0][2]) == {"where": str(tmp_path), "n": 1}


def test_app_events_and_the_loaders_show_in_status_events(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    write_csv(tmp_path / "a.csv", [(1, "a", 1), (2, "b", 2)])
    report = tallyclerk.load(tmp_path / "a.csv", table="t", into=f"sqlite:///{db}")
    with AuditLog(f"sqlite:///{db}") as log:
        log.record("order_paid", order=42)
    env = env_for()
    r = run_cli("status", "--events", "--json", "--into", f"sqlite:///{db}", cwd=tmp_path,
                env=env)
    assert r.code == 0, r.err
    events = r.json()["events"]
    assert events[0]["type"] == "order_paid" and events[0]["payload"] == {"order": 42}
    types = {e["type"] for e in events}
    assert {"batch_started", "file_loaded", "batch_finished"} <= types
    assert any(e["batch_id"] == report.batch_id for e in events)
    only = run_cli("status", "--events", "--type", "order_paid", "--into", f"sqlite:///{db}",
                   cwd=tmp_path, env=env)
    assert only.code == 0, only.err
    lines = only.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED_AT", "TYPE"]
    assert len(lines) == 2 and "order_paid" in lines[1] and '{"order":42}' in lines[1]


def test_bad_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(tallyclerk.ConfigError):
        AuditLog("mysql://u:pw@h/db")
    with pytest.raises(tallyclerk.ConfigError):
        AuditLog("sqlite:///:memory:")


def test_postgresql(pg_url: str) -> None:
    import sqlalchemy as sa

    with AuditLog(pg_url) as log:
        for i in range(300):
            log.record("pg", i=i)
        log.flush()
        engine = sa.create_engine(pg_url)
        try:
            with engine.connect() as conn:
                got = conn.exec_driver_sql(
                    "SELECT payload::json->>'i' FROM tallyclerk_events ORDER BY id").scalars().all()
        finally:
            engine.dispose()
    assert [int(x) for x in got] == list(range(300))
