"""The audit repository on its own: operations on an injected connection, never a commit of its
own, and database errors translated into transient or permanent repository errors.

Every behaviour test runs against both implementations (``store`` is parametrised, see
``tests/audit/repos.py``): ``AuditRepository`` (SQLAlchemy Core) and ``DbapiRepository``
(plain ``sqlite3``, the statements of ``audit/catalogue.py``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError as SAOperationalError

from tallyclerk.audit.dbapi_repository import DbapiRepository
from tallyclerk.audit.engine import create_audit_engine
from tallyclerk.audit.repository import AuditRepository
from tallyclerk.audit.rows import FileManifest
from tallyclerk.audit.translate import classify, wrap_db_errors
from tallyclerk.audit.types import RejectRow
from tallyclerk.dburl import parse_url
from tallyclerk.errors import (
    DuplicateKeyError,
    IntegrityError,
    PermanentRepositoryError,
    TransientRepositoryError,
)
from tallyclerk.settings import Settings
from tests.audit.repos import IMPLEMENTATIONS, Repo, Store, count_rows, dbapi_connect

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
B1, B2 = "1" * 32, "2" * 32


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, engine: Engine, db_url: str) -> Store:
    return Store(str(request.param), engine, db_url.removeprefix("sqlite:///"))


def _add_batch(repo: Repo, batch_id: str = B1, when: datetime = NOW) -> None:
    repo.add_batch(
        batch_id=batch_id,
        target_table="people",
        started_at=when,
        host="h",
        pid=1,
        user="u",
        options={"force": False},
    )


def _add_file(repo: Repo, status: str, batch_id: str = B1, fp: str = "fp1",
              **extra: object) -> FileManifest:
    return repo.add_file(
        batch_id=batch_id, path=f"/data/{fp}.csv", size=10, mtime=1.5, fingerprint=fp,
        target_table="people", status=status, started_at=NOW, **extra,
    )


def test_repository_never_commits(store: Store) -> None:
    with store.connect() as repo:
        _add_batch(repo)
        _add_file(repo, "loading")
        repo.add_event(type="x", created_at=NOW)
        assert repo.count_events() == 1
    for table in ("tallyclerk_batches", "tallyclerk_files", "tallyclerk_events"):
        assert count_rows(store.path, table) == 0


def test_raw_sql_joins_the_repository_transaction(store: Store) -> None:
    """``executor()`` and ``driver_cursor()`` see the repository's uncommitted rows, write in
    its transaction (rolled back with it), and report the dialect's positional style."""
    with store.connect() as repo:
        assert repo.dialect_name == "sqlite"
        _add_batch(repo)
        ex = repo.executor()
        assert ex.dialect_name == "sqlite"
        assert ex.query("SELECT id FROM tallyclerk_batches") == [(B1,)]
        assert ex.execute("UPDATE tallyclerk_batches SET host = ? WHERE id = ?",
                          ("elsewhere", B1)) == 1
        cursor = repo.driver_cursor()
        try:
            cursor.execute("SELECT host FROM tallyclerk_batches")
            assert cursor.fetchall() == [("elsewhere",)]
            cursor.execute("INSERT INTO tallyclerk_chain_head (id, seq, hash) VALUES (1, 0, 'x')")
        finally:
            cursor.close()
        assert repo.get_batch(B1) is not None
    for table in ("tallyclerk_batches", "tallyclerk_chain_head"):
        assert count_rows(store.path, table) == 0


def test_stream_query_reads_as_iterated_in_the_transaction(store: Store) -> None:
    """``stream_query`` runs at the first ``next``, sees uncommitted rows, yields them in
    order with parameters, and several can be open at once and closed early."""
    with store.connect() as repo:
        for i in range(3):
            repo.add_event(type=f"t{i}", created_at=NOW)
        rows = repo.stream_query("SELECT id, type FROM tallyclerk_events WHERE id > ? "
                                 "ORDER BY id", (1,))
        others = repo.stream_query("SELECT type FROM tallyclerk_events ORDER BY id DESC")
        repo.add_event(type="late", created_at=NOW)  # before the first next: seen
        assert tuple(next(rows)) == (2, "t1")
        assert tuple(next(others)) == ("late",)
        assert [tuple(r) for r in rows] == [(3, "t2"), (4, "late")]
        others.close()  # early: the cursor is let go, the transaction goes on
        assert [tuple(r) for r in repo.stream_query("SELECT count(*) FROM tallyclerk_events")
                ] == [(4,)]
    assert count_rows(store.path, "tallyclerk_events") == 0


def test_batches_latest_and_update(store: Store) -> None:
    with store.begin() as repo:
        _add_batch(repo, B1, NOW)
        _add_batch(repo, B2, NOW + timedelta(seconds=1))
    with store.begin() as repo:
        latest = repo.latest_batch()
        assert latest is not None and latest.id == B2
        assert [b.id for b in repo.list_batches(10)] == [B2, B1]
        assert repo.update_batch(B1, only_if_status="succeeded", status="failed") == 0
        assert repo.update_batch(B1, only_if_status="running", status="timed_out") == 1
        got = repo.get_batch(B1)
        assert got is not None and got.status == "timed_out"
        assert got.options == {"force": False}
        assert repo.get_batch("nope") is None


def test_claim_candidates_and_attempts(store: Store) -> None:
    with store.begin() as repo:
        _add_batch(repo)
        loaded = _add_file(repo, "loaded")
        failed = _add_file(repo, "failed")
        _add_file(repo, "failed", cleaned_by=loaded.id)  # cleaned: no longer a candidate
        _add_file(repo, "skipped")
        _add_file(repo, "replaced")
        loading = _add_file(repo, "loading")
        _add_file(repo, "loaded", fp="other")
        got = [r.id for r in repo.claim_candidates("people", "fp1")]
        assert got == [loaded.id, failed.id, loading.id]
        assert repo.count_attempts("people", "fp1") == 5
        assert repo.claim_candidates("elsewhere", "fp1") == []


def test_fail_release_and_renew(store: Store) -> None:
    with store.begin() as repo:
        _add_batch(repo)
        a = _add_file(repo, "loading", fp="a", owner="h:1", lease_expires_at=NOW)
        b = _add_file(repo, "loading", fp="b", owner="h:2", lease_expires_at=NOW)
        c = _add_file(repo, "loaded", fp="c")
        later = NOW + timedelta(minutes=5)
        assert repo.renew_leases(B1, owner="h:1", until=later) == 1
        assert repo.fail_loading_file(c.id, error="x", error_class="X", finished_at=NOW) is False
        assert repo.fail_loading_file(a.id, error="gone", error_class="X", finished_at=NOW)
        released = repo.release_batch_files(B1, error="timed out", error_class="T", finished_at=NOW)
        assert released == [b.id]
        rows = {r.id: r for r in repo.files_of_batch(B1)}
        assert rows[a.id].status == "failed" and rows[a.id].error == "gone"
        assert rows[a.id].lease_expires_at is None
        assert rows[b.id].status == "failed" and rows[b.id].error == "timed out"
        assert rows[c.id].status == "loaded"


def test_rejects_are_listed_by_path_and_batch(store: Store) -> None:
    with store.begin() as repo:
        _add_batch(repo)
        f1 = _add_file(repo, "loaded", fp="one").id
        f2 = _add_file(repo, "loaded", fp="two").id
        repo.add_rejects(file_id=f2, batch_id=B1, rejects=[
            RejectRow(3, 4, "age", "type", "not an integer", "x,abc"),
        ])
        n = repo.add_rejects(file_id=f1, batch_id=B1, rejects=[
            RejectRow(2, 3, None, "row-length", "3 fields, expected 2", "a,b,c"),
            RejectRow(1, 2, "age", "minimum", "-1 < 0", "y,-1"),
        ])
        assert n == 2
        assert repo.add_rejects(file_id=f1, batch_id=B1, rejects=[]) == 0
    with store.connect() as repo:
        everything = repo.list_rejects(batch_id=B1)
        assert [(r.file_id, r.record_number) for r, _ in everything] == [
            (f1, 1), (f1, 2), (f2, 3)]
        by_path = repo.list_rejects(path="/data/two.csv")
        assert [(f.path, r.column_name, r.raw) for r, f in by_path] == [
            ("/data/two.csv", "age", "x,abc")]
        assert len(repo.list_rejects(limit=1)) == 1
        assert repo.list_rejects(batch_id=B2) == []


def test_events_keep_created_at_and_payload(store: Store) -> None:
    with store.begin() as repo:
        first = repo.add_event(type="a", created_at=NOW, batch_id=B1, payload={"n": 1},
                               correlation_id="c-1")
        second = repo.add_event(type="b", created_at=NOW + timedelta(seconds=1))
        assert second > first
    with store.connect() as repo:
        events = repo.list_events(batch_id=B1)
        assert [(e.type, e.payload, e.created_at, e.correlation_id) for e in events] == [
            ("a", {"n": 1}, NOW, "c-1")]
        assert repo.count_events() == 2


def test_duplicate_claim_is_a_duplicate_key_error(store: Store) -> None:
    with store.begin() as repo:
        _add_batch(repo)
        _add_file(repo, "loading")
    with store.connect() as repo:
        with pytest.raises(DuplicateKeyError, match="UNIQUE constraint failed"):
            _add_file(repo, "loading")


def test_foreign_key_violation_is_an_integrity_error(store: Store) -> None:
    with store.connect() as repo:
        with pytest.raises(IntegrityError) as info:
            _add_file(repo, "loading", batch_id="no-such-batch")
        assert not isinstance(info.value, DuplicateKeyError)
        assert info.value.transient is False


def test_locked_database_is_transient(store: Store, tmp_path: Path) -> None:
    impatient = Store(store.kind, create_audit_engine(
        parse_url(f"sqlite:///{tmp_path / 'audit.db'}"), Settings(busy_timeout_ms=0)
    ), store.path)
    try:
        with store.begin():  # BEGIN IMMEDIATE holds the write lock
            with impatient.connect(busy_timeout_ms=0) as repo:
                with pytest.raises(TransientRepositoryError, match="database is locked") as info:
                    _add_batch(repo)
                assert info.value.transient is True
    finally:
        impatient.engine.dispose()


def test_missing_table_is_permanent(store: Store, tmp_path: Path) -> None:
    empty = str(tmp_path / "empty.db")
    if store.kind == "dbapi":
        conn = dbapi_connect(empty)
        try:
            with pytest.raises(PermanentRepositoryError, match="no such table"):
                DbapiRepository(connection=conn).latest_batch()
        finally:
            conn.close()
        return
    bare = create_engine(f"sqlite:///{empty}")
    try:
        with bare.connect() as conn:
            with pytest.raises(PermanentRepositoryError, match="no such table"):
                AuditRepository(connection=conn).latest_batch()
    finally:
        bare.dispose()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), TransientRepositoryError),
        (sqlite3.OperationalError("database table is locked"), TransientRepositoryError),
        (sqlite3.OperationalError("no such column: x"), PermanentRepositoryError),
        (sqlite3.IntegrityError("UNIQUE constraint failed: t.a"), DuplicateKeyError),
        (sqlite3.IntegrityError("NOT NULL constraint failed: t.a"), IntegrityError),
        (SAOperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"),
                            connection_invalidated=True), TransientRepositoryError),
    ],
)
def test_classification(exc: BaseException, expected: type[BaseException]) -> None:
    got = classify(exc)
    assert type(got) is expected


def test_classification_of_postgresql_states() -> None:
    psycopg = pytest.importorskip("psycopg")
    from psycopg import errors as pg

    for cls, expected in [
        (pg.SerializationFailure, TransientRepositoryError),
        (pg.DeadlockDetected, TransientRepositoryError),
        (pg.LockNotAvailable, TransientRepositoryError),
        (pg.UniqueViolation, DuplicateKeyError),
        (pg.ForeignKeyViolation, IntegrityError),
        (pg.UndefinedTable, PermanentRepositoryError),
        (psycopg.OperationalError, TransientRepositoryError),
    ]:
        assert type(classify(cls("boom"))) is expected, cls


def test_translation_masks_passwords() -> None:
    with pytest.raises(PermanentRepositoryError) as info, wrap_db_errors():
        raise sqlite3.DatabaseError("cannot open postgresql://app:hunter2@db/x")
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), wrap_db_errors():
        raise KeyError("not a database error")
    assert classify(ValueError("x")) is None
