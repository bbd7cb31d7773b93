"""The plain-``sqlite3`` audit engine and its transaction runner do what SQLAlchemy's do: the
same pragmas, ``BEGIN IMMEDIATE``, commit and rollback, the short busy wait of the heartbeats,
the same schema for a new store, retries of transient errors, and no SQLAlchemy import."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.sqlitebusy import busy_timeout
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.dburl import parse_url
from tallyclerk.errors import AuditStoreError, ConfigError, TransientRepositoryError
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import gate_for

NOW = datetime(2026, 12, 7, 4, 30, tzinfo=timezone.utc)


def _lite(path: Path, **settings: Any) -> LiteEngine:
    return LiteEngine(parse_url(f"sqlite:///{path}"), Settings(**settings))


@pytest.fixture()
def lite(tmp_path: Path) -> Iterator[LiteEngine]:
    engine = _lite(tmp_path / "audit.db")
    try:
        yield engine
    finally:
        engine.dispose()


def _schema(path: Path) -> set[tuple[str, str, str]]:
    """The store's schema, without the work list's table: importing ``audit.worklist`` (any
    test module of the same process may) adds it to the models' ``MetaData``, so Core's
    ``create_all`` then creates it too; the work list creates it itself wherever it runs."""
    conn = sqlite3.connect(path)
    try:
        return {(str(t), str(n), " ".join(str(s).split())) for t, n, s, tbl in conn.execute(
            "SELECT type, name, sql, tbl_name FROM sqlite_master WHERE sql IS NOT NULL")
            if tbl != "tallyclerk_work"}
    finally:
        conn.close()


def _version_row(path: Path) -> tuple[Any, ...]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT id, version, typeof(updated_at) "
                           "FROM tallyclerk_schema_version").fetchall()
        return tuple(row)
    finally:
        conn.close()


def test_a_new_store_gets_the_schema_sqlalchemy_creates(tmp_path: Path,
                                                        lite: LiteEngine) -> None:
    core_path = tmp_path / "core.db"
    core = create_audit_engine(parse_url(f"sqlite:///{core_path}"), Settings())
    try:
        assert ensure_schema(core) == 2
    finally:
        core.dispose()
    assert ensure_schema_lite(lite) == 2
    assert _schema(Path(lite.path)) == _schema(core_path)
    assert _version_row(Path(lite.path)) == _version_row(core_path) == ((1, 2, "integer"),)
    # and again: a current store is left as it is
    assert ensure_schema_lite(lite) == 2
    assert _version_row(Path(lite.path)) == ((1, 2, "integer"),)


def test_a_store_sqlalchemy_made_is_current(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    core = create_audit_engine(parse_url(f"sqlite:///{path}"), Settings())
    try:
        ensure_schema(core)
    finally:
        core.dispose()
    lite = _lite(path)
    try:
        assert ensure_schema_lite(lite) == 2
    finally:
        lite.dispose()


@pytest.mark.parametrize("change", [
    "DROP INDEX ix_tallyclerk_files_unsealed",
    "ALTER TABLE tallyclerk_files DROP COLUMN column_changes",
    "UPDATE tallyclerk_schema_version SET version = 1",
    "DELETE FROM tallyclerk_schema_version",
])
def test_a_store_that_needs_a_migration_is_left_to_sqlalchemy(lite: LiteEngine,
                                                               change: str) -> None:
    assert ensure_schema_lite(lite) == 2
    conn = sqlite3.connect(lite.path, isolation_level=None)
    try:
        conn.execute(change)
    finally:
        conn.close()
    before = _schema(Path(lite.path))
    assert ensure_schema_lite(lite) is None
    assert _schema(Path(lite.path)) == before  # nothing changed: the migrations decide


def test_a_newer_store_is_refused_with_sqlalchemys_message(tmp_path: Path,
                                                          lite: LiteEngine) -> None:
    ensure_schema_lite(lite)
    conn = sqlite3.connect(lite.path, isolation_level=None)
    try:
        conn.execute("UPDATE tallyclerk_schema_version SET version = 99")
    finally:
        conn.close()
    with pytest.raises(AuditStoreError) as lite_error:
        ensure_schema_lite(lite)
    core = create_audit_engine(parse_url(f"sqlite:///{lite.path}"), Settings())
    try:
        with pytest.raises(AuditStoreError) as core_error:
            ensure_schema(core)
    finally:
        core.dispose()
    assert str(lite_error.value) == str(core_error.value)


def test_in_memory_and_other_dialects_are_refused() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        LiteEngine(parse_url("sqlite://"), Settings())
    with pytest.raises(ConfigError, match="SQLite"):
        LiteEngine(parse_url("postgresql://u@h/db"), Settings())


def test_connections_get_the_engines_pragmas(tmp_path: Path) -> None:
    lite = _lite(tmp_path / "a.db", busy_timeout_ms=1234, synchronous="FULL")
    try:
        with lite.begin() as conn:
            got = [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in
                   ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")]
            assert conn.isolation_level is None
    finally:
        lite.dispose()
    assert got == ["wal", 1234, 2, 1]


def _other(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=0, isolation_level=None)


def test_begin_takes_the_write_lock_up_front_and_commits(lite: LiteEngine) -> None:
    ensure_schema_lite(lite)
    other = _other(lite.path)
    try:
        with lite.begin() as conn:
            assert conn.in_transaction
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO tallyclerk_chain_head VALUES (1, 0, 'h')")
        assert other.execute("SELECT count(*) FROM tallyclerk_chain_head").fetchone()[0] == 1
    finally:
        other.close()


def test_a_raising_block_is_rolled_back(lite: LiteEngine) -> None:
    ensure_schema_lite(lite)
    with pytest.raises(RuntimeError, match="boom"), lite.begin() as conn:
        conn.execute("INSERT INTO tallyclerk_chain_head VALUES (1, 0, 'h')")
        raise RuntimeError("boom")
    with lite.begin() as conn:
        assert conn.execute("SELECT count(*) FROM tallyclerk_chain_head").fetchone()[0] == 0


def test_raw_gives_the_connection_outside_a_transaction_for_its_turn(
        lite: LiteEngine) -> None:
    ensure_schema_lite(lite)
    freed = threading.Event()

    def wait_for_the_turn() -> None:
        with lite.raw():
            freed.set()

    with lite.raw() as conn:
        assert not conn.in_transaction
        conn.execute("INSERT INTO tallyclerk_chain_head VALUES (1, 0, 'h')")  # autocommits
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO tallyclerk_chain_head VALUES (2, 0, 'h')")
        waiter = threading.Thread(target=wait_for_the_turn)
        waiter.start()
        assert not freed.wait(0.05)  # the turn is taken
    # left open above: rolled back when the turn ended
    waiter.join(5.0)
    assert freed.is_set()
    with lite.begin() as conn:
        assert conn.execute("SELECT id FROM tallyclerk_chain_head").fetchall() == [(1,)]


def test_busy_timeout_shortens_the_wait_for_one_transaction(lite: LiteEngine) -> None:
    ensure_schema_lite(lite)
    other = _other(lite.path)
    try:
        other.execute("BEGIN IMMEDIATE")
        with busy_timeout(0), pytest.raises(sqlite3.OperationalError, match="locked"):
            with lite.begin():
                pass
        other.execute("ROLLBACK")
        with lite.begin() as conn:  # the engine's own wait is back
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == \
                Settings().busy_timeout_ms
    finally:
        other.close()


@pytest.mark.parametrize("kind", ["core", "dbapi"])
def test_the_runners_retry_a_locked_store_then_give_up(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "audit.db"
    settings = Settings(busy_timeout_ms=0, max_retries=2, backoff_initial_ms=1,
                        backoff_max_ms=1)
    sleeps: list[float] = []
    runner: Any
    if kind == "core":
        engine: Any = create_audit_engine(parse_url(f"sqlite:///{path}"), settings)
        ensure_schema(engine)
        runner = TransactionRunner(engine, settings, label="t", sleep=sleeps.append)
    else:
        engine = LiteEngine(parse_url(f"sqlite:///{path}"), settings)
        ensure_schema_lite(engine)
        runner = LiteTransactionRunner(engine, settings, label="t", sleep=sleeps.append,
                                       gate=gate_for(str(path)))
    other = _other(str(path))
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientRepositoryError, match="database is locked"):
            runner.run(lambda repo: repo.count_events(), what="count")
        assert len(sleeps) == 2
        other.execute("ROLLBACK")
        assert runner.run(lambda repo: repo.add_event(type="x", created_at=NOW),
                          what="add") == 1
        assert runner.run(lambda repo: repo.count_events(), what="count") == 1
    finally:
        other.close()
        engine.dispose()


def test_the_lite_runner_waits_for_the_files_gate(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    settings = Settings(max_retries=0)
    engine = LiteEngine(parse_url(f"sqlite:///{path}"), settings)
    ensure_schema_lite(engine)
    gate = gate_for(str(path))
    runner = LiteTransactionRunner(engine, settings, label="t", gate=gate, gate_timeout_s=0.01)
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:  # another thread's turn (the gate is reentrant for its holder)
        with gate.turn(1.0):
            taken.set()
            done.wait(5.0)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(5.0)
        with pytest.raises(TransientRepositoryError, match="database is locked"):
            runner.run(lambda repo: repo.count_events(), what="count")
        done.set()
        holder.join(5.0)
        assert runner.run(lambda repo: repo.count_events(), what="count") == 0
    finally:
        done.set()
        engine.dispose()


def test_the_lite_path_imports_no_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "import tallyclerk.audit.dbapi_executor, tallyclerk.audit.sqlgen_lite\n"
        "import tallyclerk.audit.repo_protocol\n"
        "from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite\n"
        "from tallyclerk.audit.txn import LiteTransactionRunner\n"
        "from tallyclerk.dburl import parse_url\n"
        "from tallyclerk.settings import Settings\n"
        f"e = LiteEngine(parse_url('sqlite:///{tmp_path / 'x.db'}'), Settings())\n"
        "assert ensure_schema_lite(e) == 2\n"
        "r = LiteTransactionRunner(e, Settings(), label='t')\n"
        "r.run(lambda repo: repo.add_batch(batch_id='b' * 32, target_table='t', "
        "started_at=datetime.now(timezone.utc), host='h', pid=1, user=None, options={}), "
        "what='add')\n"
        "assert r.run(lambda repo: repo.latest_batch(), what='read').id == 'b' * 32\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
