"""What SQLAlchemy's pool did for the audit store that :class:`LiteEngine` must do too: a
connection found closed is dropped and the transaction retried on a new one (as the pool
invalidates it), and ``dispose()`` while another thread's transaction is open waits for that
transaction (or, with ``close=False``, leaves the connection to its holder)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.dburl import parse_url
from tallyclerk.errors import PermanentRepositoryError
from tallyclerk.settings import Settings

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)


def _driver_connection(kind: str, repo: Any) -> sqlite3.Connection:
    if kind == "core":
        conn = repo.connection.connection.dbapi_connection
    else:
        conn = repo.connection
    assert isinstance(conn, sqlite3.Connection)
    return conn


def _events(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute("SELECT type FROM tallyclerk_events ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["core", "dbapi"])
def test_a_closed_connection_is_reopened_and_the_transaction_retried(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "audit.db"
    settings = Settings(max_retries=2, backoff_initial_ms=1, backoff_max_ms=1)
    sleeps: list[float] = []
    engine: Any
    runner: Any
    if kind == "core":
        engine = create_audit_engine(parse_url(f"sqlite:///{path}"), settings)
        ensure_schema(engine)
        runner = TransactionRunner(engine, settings, label="t", sleep=sleeps.append)
    else:
        engine = LiteEngine(parse_url(f"sqlite:///{path}"), settings)
        assert ensure_schema_lite(engine) == 2
        runner = LiteTransactionRunner(engine, settings, label="t", sleep=sleeps.append)
    seen: list[sqlite3.Connection] = []

    def work(repo: Any) -> int:
        conn = _driver_connection(kind, repo)
        seen.append(conn)
        if len(seen) == 1:
            repo.add_event(type="lost", created_at=NOW)
            conn.close()  # the connection goes away mid-transaction
        return int(repo.add_event(type="kept", created_at=NOW))

    try:
        assert runner.run(work, what="add an event") == 1
        assert len(seen) == 2 and seen[0] is not seen[1] and len(sleeps) == 1
        assert _events(path) == ["kept"]  # the first attempt's row went with its connection
        # the new connection is the engine's from now on
        assert runner.run(lambda repo: repo.count_events(), what="count") == 1
    finally:
        engine.dispose()


def test_other_programming_errors_are_not_retried(tmp_path: Path) -> None:
    settings = Settings(max_retries=2, backoff_initial_ms=1, backoff_max_ms=1)
    engine = LiteEngine(parse_url(f"sqlite:///{tmp_path / 'audit.db'}"), settings)
    ensure_schema_lite(engine)
    runner = LiteTransactionRunner(engine, settings, label="t", sleep=lambda _s: None)
    attempts: list[int] = []

    def work(repo: Any) -> None:
        attempts.append(1)
        repo.connection.execute("SELECT ?", (1, 2))  # wrong number of bindings

    try:
        with pytest.raises(PermanentRepositoryError, match="ProgrammingError"):
            runner.run(work, what="bad statement")
        assert attempts == [1]
    finally:
        engine.dispose()


def _holding(engine: LiteEngine) -> tuple[threading.Thread, threading.Event, threading.Event,
                                          list[Any]]:
    """A thread in a transaction of ``engine`` (a row inserted), until ``release`` is set."""
    inside, release = threading.Event(), threading.Event()
    held: list[Any] = []

    def hold() -> None:
        try:
            with engine.begin() as conn:
                held.append(conn)
                conn.execute("INSERT INTO tallyclerk_events (type, created_at) VALUES (?, ?)",
                             ("held", 1))
                inside.set()
                release.wait(10.0)
            held.append("committed")
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            held.append(exc)
            inside.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10.0)
    return thread, inside, release, held


def test_dispose_waits_for_a_transaction_open_on_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    engine = LiteEngine(parse_url(f"sqlite:///{path}"), Settings())
    ensure_schema_lite(engine)
    thread, _, release, held = _holding(engine)
    disposed = threading.Event()

    def dispose() -> None:
        engine.dispose()
        disposed.set()

    disposer = threading.Thread(target=dispose)
    try:
        disposer.start()
        assert not disposed.wait(0.3)  # it waits for the transaction's turn
        release.set()
        thread.join(10.0)
        disposer.join(10.0)
        assert disposed.is_set() and held[1] == "committed", held
        assert _events(path) == ["held"]  # the transaction was not cut short
        with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
            held[0].execute("SELECT 1")  # closed by dispose, after its turn
        with engine.begin() as conn:  # the next turn opens a new connection
            assert conn is not held[0]
            assert conn.execute("SELECT count(*) FROM tallyclerk_events").fetchone()[0] == 1
    finally:
        release.set()
        thread.join(10.0)
        disposer.join(10.0)
        engine.dispose()


@pytest.mark.parametrize("how", [{"close": False}, {"timeout": 0.05}])
def test_dispose_without_close_or_past_its_timeout_leaves_the_connection_to_its_holder(
    tmp_path: Path, how: dict[str, Any]
) -> None:
    path = tmp_path / "audit.db"
    engine = LiteEngine(parse_url(f"sqlite:///{path}"), Settings())
    ensure_schema_lite(engine)
    thread, _, release, held = _holding(engine)
    try:
        engine.dispose(**how)  # returns while the transaction is open
        assert thread.is_alive()
        held[0].execute("SELECT 1")  # still usable by its holder
        release.set()
        thread.join(10.0)
        assert held[1] == "committed", held
        assert _events(path) == ["held"]
        with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
            held[0].execute("SELECT 1")  # closed when its turn ended
        with engine.begin() as conn:
            assert conn is not held[0]
    finally:
        release.set()
        thread.join(10.0)
        engine.dispose()
