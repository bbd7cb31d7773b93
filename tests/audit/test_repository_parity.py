"""The two audit repositories (SQLAlchemy Core, plain ``sqlite3``) are interchangeable: the same
calls return the same values and leave the same bytes in the ledger tables, for every method,
and they refuse the same bad input with the same errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tallyclerk.audit.dbapi_executor import DbapiExecutor
from tallyclerk.audit.dbapi_repository import DbapiRepository
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.audit.reports import batch_report
from tallyclerk.audit.schemas import current_version_in, record_in
from tallyclerk.audit.types import RejectRow, StoredSchema
from tallyclerk.dburl import parse_url
from tallyclerk.errors import PermanentRepositoryError
from tallyclerk.settings import Settings
from tests.audit.repos import IMPLEMENTATIONS, Repo, Store

NOW = datetime(2026, 12, 7, 4, 0, 0, 123456, tzinfo=timezone.utc)
B1, B2 = "a" * 32, "b" * 32
TABLES = ("tallyclerk_batches", "tallyclerk_files", "tallyclerk_rejects", "tallyclerk_events",
          "tallyclerk_schemas")


def _stores(tmp_path: Path) -> list[Store]:
    out = []
    for kind in IMPLEMENTATIONS:
        path = tmp_path / f"{kind}.db"
        engine = create_audit_engine(parse_url(f"sqlite:///{path}"), Settings())
        ensure_schema(engine)
        out.append(Store(kind, engine, str(path)))
    return out


def _dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every ledger row as stored, with each value's SQLite storage class."""
    conn = sqlite3.connect(path)
    try:
        return {t: [tuple((v, type(v).__name__) for v in row)
                    for row in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")]
                for t in TABLES}
    finally:
        conn.close()


def _scenario(repo: Repo) -> list[Any]:
    """Every repository method, in the order a batch uses them; what each returned."""
    out: list[Any] = []
    repo.add_batch(batch_id=B1, target_table="people", started_at=NOW, host="h", pid=7,
                   user="u", options={"force": False, "nested": {"1": [1, 2]}, 3: "int key"})
    repo.add_batch(batch_id=B2, target_table="people", started_at=NOW + timedelta(seconds=1),
                   host="other", pid=8, user=None, options={})
    repo.lock_identity("people", "fp1")

    def add(status: str, fp: str = "fp1", **extra: Any) -> Any:
        return repo.add_file(batch_id=B1, path=f"/d/{fp}.csv", size=10, mtime=1.25,
                             fingerprint=fp, target_table="people", status=status,
                             started_at=NOW, **extra)

    loaded = add("loaded", rows_read=3, rows_written=3, rows_inserted=3, rows_updated=0,
                 finished_at=NOW, duration_s=0.5, column_changes={"added": ["x"]})
    out.append(loaded)
    out.append(add("failed", cleaned_by=loaded.id, error="boom", error_class="E"))
    out.append(add("failed", attempt=3))
    out.append(add("skipped", earlier_batch_id=B1, earlier_file_id=loaded.id))
    out.append(add("loading", claim_token="t" * 32, owner="h:7", lease_expires_at=NOW))
    out.append(repo.add_files([
        dict(batch_id=B1, path="/d/m1.csv", size=1, mtime=0.0, fingerprint="m1",
             target_table="people", status="loading", started_at=NOW, claim_token="c1",
             owner="h:7", object_url="s3://b/k", object_etag="e", object_version="v"),
        dict(batch_id=B1, path="/d/m2.csv", size=2, mtime=0.5, fingerprint="m2",
             target_table="people", status="loading", started_at=NOW, claim_token="c2",
             owner="h:7", object_url=None, object_etag=None, object_version=None),
    ]))
    out.append(repo.add_files([]))
    out.append(repo.get_file(loaded.id))
    out.append(repo.get_file(10_000))
    out.append(repo.claim_candidates("people", "fp1"))
    out.append(repo.claim_history("people", "fp1"))
    out.append(repo.claim_history_of("people", ["fp1", "m2"]))
    out.append(repo.count_attempts("people", "fp1"))
    out.append(repo.files_of_identity("people", "fp1"))
    out.append(repo.file_status_counts(B1))
    out.append(repo.renew_leases(B1, owner="h:7", until=NOW + timedelta(minutes=1)))
    out.append(repo.drop_unstarted_claims([(loaded.id + 5, "c1"), (loaded.id + 6, "wrong")]))
    out.append(repo.fail_loading_file(loaded.id, error="x", error_class="X", finished_at=NOW))
    out.append(repo.release_batch_files(B1, error="gone", error_class="G", finished_at=NOW,
                                        keep=[loaded.id + 6]))
    out.append(repo.release_batch_files(B2, error="none", error_class="G", finished_at=NOW))
    out.append(repo.add_rejects(file_id=loaded.id, batch_id=B1, rejects=[
        RejectRow(2, 3, "age", "type", "not an integer", "x,abc"),
        RejectRow(1, 2, None, "row-length", "3 fields", "a,b,c", masked=True),
    ]))
    out.append(repo.list_rejects())
    out.append(repo.list_rejects(path="/d/fp1.csv", batch_id=B1, limit=1))
    out.append(repo.list_rejects(path="/d/nope.csv"))
    for i, kind in enumerate(("a", "b", "a")):
        out.append(repo.add_event(type=kind, created_at=NOW + timedelta(microseconds=i),
                                  batch_id=B1 if i else None, file_id=loaded.id,
                                  payload={"i": i, "big": 2**62} if i != 1 else None,
                                  correlation_id=f"c{i}"))
    for batch in (None, B1):
        for kind in (None, "a"):
            for limit in (None, 1):
                for newest in (False, True):
                    out.append(repo.list_events(batch_id=batch, type=kind, limit=limit,
                                                newest=newest))
    out.append(repo.count_events())
    out.append(repo.update_batch(B1, only_if_status="succeeded", status="failed"))
    out.append(repo.update_batch(B1, only_if_status="running", status="succeeded",
                                 finished_at=NOW, files_loaded=1, rows_read=3,
                                 options={"after": True}, error_message=None))
    out.append(repo.update_batch(B2, only_if_unsealed=True, user="v", timeout_kind="idle"))
    out.append(repo.update_batch("nope", status="failed"))
    out.append(repo.running_batches_on_host("other"))
    out.append(repo.running_batches_on_host("h"))
    out.append(repo.get_batch(B1))
    out.append(repo.list_batches(1))
    out.append(repo.list_batches())
    out.append(repo.latest_batch())
    ex = (DbapiExecutor(repo.connection) if isinstance(repo, DbapiRepository)
          else SqlAlchemyExecutor(repo.connection))
    out.append(repo.latest_schema("people"))
    for version in (1, 2):
        out.append(current_version_in(ex, "people"))
        record_in(ex, StoredSchema(
            table="people", version=version, schema_json=f'{{"fields": [{version}]}}',
            fingerprint=f"sha256:{version}", reason="first" if version == 1 else "evolve",
            created_at=NOW + timedelta(seconds=version), batch_id=B1, file_id=loaded.id))
    out.append(repo.latest_schema("people"))
    out.append(repo.latest_schema("other"))
    out.append(repo.schema_history("people"))
    out.append(repo.schema_history("other"))
    out.append(batch_report(repo, B1))  # reports.py reads through the protocol only
    out.append(batch_report(repo, None))
    out.append(batch_report(repo, "nope"))
    return out


def test_every_method_returns_and_stores_the_same(tmp_path: Path) -> None:
    results, dumps = [], []
    for store in _stores(tmp_path):
        try:
            with store.begin() as repo:
                results.append(_scenario(repo))
            dumps.append(_dump(store.path))
        finally:
            store.engine.dispose()
    core, dbapi = results
    assert len(core) == len(dbapi)
    for i, (a, b) in enumerate(zip(core, dbapi, strict=True)):
        assert a == b, f"result {i} differs"
        assert type(a) is type(b) or isinstance(a, list), f"result {i}: {type(a)} {type(b)}"
    assert dumps[0] == dumps[1]
    assert all(dumps[0][t] for t in TABLES)  # the scenario wrote every table


_BAD_CALLS: list[tuple[str, Callable[[Repo], Any], str]] = [
    ("naive timestamp", lambda r: r.add_event(type="x", created_at=datetime(2026, 1, 1)),
     "ValueError: naive datetime"),
    ("unknown column", lambda r: r.update_batch(B1, nope=1),
     "CompileError: Unconsumed column names: nope"),
    ("a later row lacks a key", lambda r: r.add_files([
        dict(batch_id=B1, path="p", size=1, mtime=0.0, fingerprint="f", target_table="t",
             status="loading", started_at=NOW, owner="o"),
        dict(batch_id=B1, path="q", size=1, mtime=0.0, fingerprint="g", target_table="t",
             status="loading", started_at=NOW)]),
     "InvalidRequestError: A value is required for bind parameter 'owner', in parameter group 1"),
    ("naive lease", lambda r: r.renew_leases(B1, owner="o", until=datetime(2026, 1, 1)),
     "ValueError: naive datetime"),
]


@pytest.mark.parametrize(("label", "call", "message"), _BAD_CALLS, ids=[c[0] for c in _BAD_CALLS])
def test_bad_input_is_refused_alike(tmp_path: Path, label: str, call: Callable[[Repo], Any],
                                    message: str) -> None:
    for store in _stores(tmp_path):
        try:
            with store.connect() as repo:
                with pytest.raises(PermanentRepositoryError) as info:
                    call(repo)
                assert str(info.value).startswith(message), (store.kind, str(info.value))
        finally:
            store.engine.dispose()


_BATCH_VALUES = {
    "status": st.sampled_from(["running", "succeeded", "failed"]),
    "finished_at": st.none() | st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc)),
    "files_loaded": st.integers(0, 2**31 - 1),
    "rows_read": st.integers(0, 2**63 - 1),
    "error_message": st.none() | st.text(max_size=20),
    "options": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                               max_size=3),
    "user": st.none() | st.text(max_size=10),
    "chain_hash": st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({}, optional=_BATCH_VALUES).filter(bool),
       only_if_status=st.none() | st.sampled_from(["running", "failed"]),
       only_if_unsealed=st.booleans())
def test_update_batch_sets_the_same_columns(tmp_path_factory: pytest.TempPathFactory,
                                            values: dict[str, Any], only_if_status: str | None,
                                            only_if_unsealed: bool) -> None:
    tmp = tmp_path_factory.mktemp("upd")
    outcomes, dumps = [], []
    for store in _stores(tmp):
        try:
            with store.begin() as repo:
                repo.add_batch(batch_id=B1, target_table="t", started_at=NOW, host="h", pid=1,
                               user=None, options={})
            try:
                with store.begin() as repo:
                    outcomes.append(repo.update_batch(
                        B1, only_if_status=only_if_status, only_if_unsealed=only_if_unsealed,
                        **values))
            except PermanentRepositoryError as exc:  # e.g. an integer JSON cannot hold
                outcomes.append((type(exc), str(exc)))
            dumps.append(_dump(store.path))
        finally:
            store.engine.dispose()
    assert outcomes[0] == outcomes[1]
    assert dumps[0] == dumps[1]


class _Recorder:
    """A ``sqlite3`` connection that records the SQL the DB-API repository sends."""

    def __init__(self, conn: sqlite3.Connection, sent: list[str]) -> None:
        self._conn, self._sent = conn, sent

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self._sent.append(sql)
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        self._sent.append(sql)
        return self._conn.executemany(sql, params)


def _insert_table(sql: str) -> str:
    return sql.split()[2]


def test_reads_updates_and_deletes_send_the_sql_core_sends(tmp_path: Path) -> None:
    """Statement by statement, the DB-API path sends the SQL text Core compiles (so SQLite
    plans them alike, indexes included); INSERTs name every column on the DB-API path, so
    only their tables are compared. Core's empty ``IN ()`` is its own text."""
    from sqlalchemy import event

    sent: dict[str, list[str]] = {}
    for store in _stores(tmp_path):
        log: list[str] = []
        sent[store.kind] = log
        try:
            if store.kind == "core":
                def record(_c: Any, _cur: Any, statement: str, *_rest: Any,
                           _log: list[str] = log) -> None:
                    _log.append(statement)

                event.listen(store.engine, "before_cursor_execute", record)
            with store.begin() as repo:
                if store.kind == "dbapi":
                    repo.connection = _Recorder(repo.connection, log)
                _scenario(repo)
        finally:
            store.engine.dispose()
    core = [s for s in sent["core"] if not s.startswith(("BEGIN", "PRAGMA", "COMMIT"))]
    dbapi = sent["dbapi"]
    assert len(core) == len(dbapi)
    assert sum(not s.startswith("INSERT") for s in core) >= 40  # the scenario's reads and writes
    for i, (a, b) in enumerate(zip(core, dbapi, strict=True)):
        if a.startswith("INSERT"):
            assert _insert_table(a) == _insert_table(b), i
        elif "SELECT 1 FROM (SELECT 1) WHERE 1!=1" in a:  # Core's empty IN list
            assert b == a.replace("SELECT 1 FROM (SELECT 1) WHERE 1!=1", "NULL"), i
        else:
            assert a == b, f"statement {i}"
