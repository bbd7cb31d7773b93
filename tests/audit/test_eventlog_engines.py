"""The audit event log on both SQLite engines: a SQLAlchemy ``Engine`` and a ``LiteEngine``
(plain ``sqlite3``, no SQLAlchemy). Events are written in order and the queue drains; a
locked database is retried until it frees, losing nothing; a data transaction holding the
file's turn makes the writer wait for it (the same gate as the runner's); large batches span
several statements in one transaction."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tallyclerk.audit.eventlog import EventLog
from tallyclerk.audit.events import ROWS_PER_STATEMENT, EventWriter, event_store
from tallyclerk.dburl import parse_url
from tallyclerk.errors import FlushTimeout
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import gate_for

ENGINES = ("core", "lite")


def _engine(kind: str, path: Path, settings: Settings) -> Any:
    db = parse_url(f"sqlite:///{path}")
    if kind == "core":
        from tallyclerk.audit.engine import create_audit_engine, ensure_schema

        core = create_audit_engine(db, settings)
        ensure_schema(core)
        return core
    from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite

    lite = LiteEngine(db, settings)
    assert ensure_schema_lite(lite) is not None
    return lite


@pytest.fixture(params=ENGINES)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _events(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, type, batch_id, file_id, payload, created_at, "
                            "correlation_id FROM tallyclerk_events ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    path = tmp_path / f"{kind}.db"
    engine = _engine(kind, path, Settings())
    try:
        yield engine, path
    finally:
        engine.dispose()


def test_events_are_written_in_order_and_the_queue_drains(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "ev.db"
    engine = _engine(kind, path, Settings())
    log = EventLog(engine, Settings(linger_ms=20), label="ev")
    try:
        for i in range(1500):
            log.record("tick", batch_id="b", file_id=i, payload={"i": i}, correlation_id="c")
        log.record("bare")
        log.flush(timeout=30)
        stats = log.stats()
    finally:
        assert log.close(timeout=10)
        engine.dispose()
    rows = _events(path)
    assert len(rows) == 1501 and stats["written"] == 1501 and stats["dead_lettered"] == 0
    assert [r[3] for r in rows[:-1]] == list(range(1500))
    assert [orjson.loads(r[4]) for r in rows[:2]] == [{"i": 0}, {"i": 1}]
    assert rows[-1][1:5] == ("bare", None, None, None)
    assert log.dead_lettered == 0


def test_a_locked_database_is_retried_and_nothing_is_lost(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    settings = Settings(busy_timeout_ms=0, backoff_initial_ms=5, backoff_max_ms=20,
                        max_retries=1000, linger_ms=5)
    engine = _engine(kind, path, settings)
    log = EventLog(engine, settings, label="locked")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write lock
        for i in range(50):
            log.record("held", file_id=i)
        deadline = time.monotonic() + 20
        while log.stats()["retried"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.stats()["retried"] >= 2  # it met the lock, and tried again
        assert _events(path) == []
        holder.execute("COMMIT")
        log.flush(timeout=30)
    finally:
        holder.close()
        assert log.close(timeout=10)
        engine.dispose()
    assert [r[3] for r in _events(path)] == list(range(50))
    assert log.dead_lettered == 0


def test_the_writer_waits_for_a_data_transaction_s_turn(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    engine = _engine(kind, path, Settings())
    log = EventLog(engine, Settings(linger_ms=5), label="gate")
    gate = gate_for(str(path))
    assert event_store(engine).gate is gate  # the runner's gate: one per file
    taken, release = threading.Event(), threading.Event()

    def data_transaction() -> None:
        gate.acquire(data=True)
        taken.set()
        release.wait(30)
        gate.release()

    holder = threading.Thread(target=data_transaction)
    holder.start()
    try:
        assert taken.wait(10)
        log.record("waits")
        with pytest.raises(FlushTimeout):
            log.flush(timeout=0.3)  # not written while the turn is held
        assert _events(path) == []
        release.set()
        holder.join(10)
        log.flush(timeout=30)
    finally:
        release.set()
        holder.join(10)
        assert log.close(timeout=10)
        engine.dispose()
    assert [r[1] for r in _events(path)] == ["waits"]


def test_large_and_small_batches(store: tuple[Any, Path]) -> None:
    engine, path = store
    writer = EventWriter(engine, Settings())
    try:
        big = ROWS_PER_STATEMENT * 2 + 7  # several statements, one transaction
        writer([("big", None, i, None, 1_000_000 * i, None) for i in range(big)])
        writer([("small", "b", 1, '{"a": 1}', 5, "c")])
        writer([])
    finally:
        writer.close()
    rows = _events(path)
    assert len(rows) == big + 1 and writer.rows == big + 1 and writer.batches == 2
    assert [r[3] for r in rows[:big]] == list(range(big))
    assert rows[-1][1:] == ("small", "b", 1, '{"a": 1}', 5, "c")
    assert rows[1][5] == 1_000_000  # epoch microseconds, as stored


def test_the_lite_event_log_imports_no_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite\n"
        "from tallyclerk.audit.eventlog import EventLog\n"
        "from tallyclerk.dburl import parse_url\n"
        "from tallyclerk.settings import Settings\n"
        f"e = LiteEngine(parse_url('sqlite:///' + {str(tmp_path / 'x.db')!r}), Settings())\n"
        "assert ensure_schema_lite(e)\n"
        "log = EventLog(e, Settings(linger_ms=5), label='x')\n"
        "log.record('one', payload={'a': 1}); log.flush(10); assert log.close(5)\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert [r[1] for r in _events(tmp_path / "x.db")] == ["one"]
