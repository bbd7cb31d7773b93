"""The file ledger's own transactions (replaces, uncertain files, schema versions, a failed
file's outcome) run alike on both repositories: ``FileLedger`` on the SQLAlchemy Core runner
and on the ``sqlite3`` runner (``LiteEngine`` + ``LiteTransactionRunner``) returns the same
values and leaves the same ledger bytes; the repository reads they use
(``stale_shadow_tables``, ``loading_files``) send the SQL text Core sends."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.audit.claims import Claims
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.ledger import FileLedger, RepositoryRunner
from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.repo_protocol import Repository
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.audit.types import FileClaim, FileResult, RejectRow, StoredSchema
from tallyclerk.dburl import parse_url
from tallyclerk.errors import LeaseLost
from tallyclerk.settings import Settings
from tests.audit.test_repository_parity import _Recorder, _stores

NOW = datetime(2001, 2, 3, 4, 5, 6, 654321, tzinfo=timezone.utc)  # long before any test run
PAST = NOW - timedelta(hours=1)
FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)  # a lease that never expires
TABLES = ("tallyclerk_batches", "tallyclerk_files", "tallyclerk_rejects", "tallyclerk_events",
          "tallyclerk_schemas")
DONE, RUNNING, REMOTE = "d" * 32, "r" * 32, "u" * 32
SHADOW = "_tc_replace_people_1"


def _seed(repo: Repository) -> dict[str, int]:
    """Batches and manifest rows for every read of the ledger: a finished replace never
    swapped in (its shadow's files loaded), a running one, and ``loading`` rows of a batch
    whose audit store is another database (one with a dead owner: uncertain)."""
    repo.add_batch(batch_id=DONE, target_table="people", started_at=NOW, host="h", pid=1,
                   user=None, options={"mode": "replace"})
    repo.update_batch(DONE, status="failed", finished_at=NOW)
    repo.add_batch(batch_id=RUNNING, target_table="people", started_at=NOW, host="h", pid=2,
                   user=None, options={})
    repo.add_batch(batch_id=REMOTE, target_table="events", started_at=NOW, host="h", pid=3,
                   user="u", options={"data_target": "sqlite:/data/t.db", "n": {"1": [2]}})
    ids: dict[str, int] = {}

    def add(name: str, batch: str, table: str, status: str, **extra: Any) -> None:
        row = repo.add_file(batch_id=batch, path=f"/d/{name}.csv", size=10, mtime=1.5,
                            fingerprint=f"fp-{name}", target_table=table, status=status,
                            started_at=NOW, **extra)
        ids[name] = row.id

    add("s1", DONE, SHADOW, "loaded", rows_read=4, rows_written=4, finished_at=NOW)
    add("s2", DONE, SHADOW, "loaded", rows_read=2, rows_written=2, finished_at=NOW)
    add("s3", DONE, "_tcXreplaceXpeople", "loaded")  # LIKE's escaped underscores
    add("live", RUNNING, "_tc_replace_people_2", "loaded")
    add("gone", REMOTE, "events", "loading", claim_token="t" * 32, owner="h:3",
        lease_expires_at=PAST)
    add("held", REMOTE, "events", "loading", claim_token="k" * 32, owner="elsewhere:4",
        lease_expires_at=FUTURE)
    add("mine", RUNNING, "people", "loading", claim_token="m" * 32, owner="h:2",
        lease_expires_at=FUTURE)
    return ids


def _reads(repo: Repository) -> list[Any]:
    out: list[Any] = [repo.stale_shadow_tables("people"), repo.stale_shadow_tables("nope")]
    for table in (None, "events", "people"):
        for path in (None, "/d/gone.csv", "/d/none.csv"):
            out.append(sorted(repo.loading_files(table=table, path=path),
                              key=lambda r: r[0].id))
    return out


def test_ledger_reads_return_the_same_and_send_core_sql(tmp_path: Path) -> None:
    results: dict[str, list[Any]] = {}
    sent: dict[str, list[str]] = {}
    for store in _stores(tmp_path):
        log: list[str] = []
        try:
            with store.begin() as repo:
                _seed(repo)
            if store.kind == "core":
                from sqlalchemy import event

                def record(_c: Any, _cur: Any, statement: str, *_rest: Any,
                           _log: list[str] = log) -> None:
                    _log.append(statement)

                event.listen(store.engine, "before_cursor_execute", record)
            with store.begin() as repo:
                if store.kind == "dbapi":
                    repo.connection = _Recorder(repo.connection, log)
                results[store.kind] = _reads(repo)
        finally:
            store.engine.dispose()
        sent[store.kind] = [s for s in log if not s.startswith(("BEGIN", "PRAGMA", "COMMIT"))]
    assert results["core"] == results["dbapi"]
    stale, _, every, *_ = results["core"]
    assert stale == [SHADOW]  # not the running batch's, not the unescaped look-alike
    assert [r[0].path for r in every] == ["/d/gone.csv", "/d/held.csv", "/d/mine.csv"]
    assert every[0][1] == {"data_target": "sqlite:/data/t.db", "n": {"1": [2]}}
    assert len(sent["core"]) == len(sent["dbapi"]) == 11
    assert sent["core"] == sent["dbapi"]


def _runners(tmp_path: Path) -> list[tuple[str, RepositoryRunner, Any]]:
    settings = Settings()
    core_engine = create_audit_engine(parse_url(f"sqlite:///{tmp_path / 'core.db'}"), settings)
    ensure_schema(core_engine)
    lite_engine = LiteEngine(parse_url(f"sqlite:///{tmp_path / 'dbapi.db'}"), settings)
    assert ensure_schema_lite(lite_engine) is not None
    return [
        ("core", TransactionRunner(core_engine, settings, label="core"), core_engine),
        ("dbapi", LiteTransactionRunner(lite_engine, settings, label="dbapi"), lite_engine),
    ]


def _ledger_scenario(runner: RepositoryRunner) -> list[Any]:
    claims = Claims(host="h", pid=2, lease_s=60.0)
    ledger = FileLedger(runner, claims, accumulator=lambda _b: None, check_open=lambda: None)
    ids = runner.run(_seed, what="seed")
    out: list[Any] = [ids]
    out.append(ledger.table_schema("people"))
    for version, fp in ((1, "a"), (2, "b"), (2, "b")):  # the last: the same again, a no-op
        ledger.record_schema(StoredSchema(
            table="people", version=version, schema_json=f'{{"v": {version}}}',
            fingerprint=f"sha256:{fp}", reason="r", created_at=NOW + timedelta(seconds=version),
            batch_id=RUNNING, file_id=ids["live"]))
    out.append(ledger.table_schema("people"))
    out.append(ledger.table_schema_history("people"))
    out.append(ledger.table_schema_history("other"))
    out.append(ledger.stale_shadows("people"))
    out.append(ledger.abandon_replace(SHADOW, "interrupted replace"))
    out.append(ledger.stale_shadows("people"))
    ledger.swap_done("_tc_replace_people_2", "people")
    found = ledger.uncertain_files()
    out.append([u.as_dict() for u in found])
    out.append([u.file_id for u in ledger.uncertain_files(table="events", path="/d/gone.csv")])
    out.append(ledger.uncertain_files(table="people"))
    result = FileResult(rows_read=3, rows_written=3, rows_rejected=0, bytes_read=30)
    out.append(ledger.settle_uncertain(found[0], "loaded", result, "target has its rows"))
    out.append(ledger.settle_uncertain(found[0], "loaded", result, "again"))  # settled
    out.append(ledger.uncertain_files())
    mine = runner.run(lambda repo: repo.get_file(ids["mine"]), what="read")
    assert mine is not None
    claim = FileClaim(  # the claim this process (h:2) holds
        file_id=mine.id, batch_id=mine.batch_id, path=mine.path, table=mine.target_table,
        fingerprint=mine.fingerprint, size=mine.size, mtime=mine.mtime, attempt=mine.attempt,
        token=str(mine.claim_token))
    failed = FileResult(rows_read=2, rows_written=0, rows_rejected=1, bytes_read=9,
                        rows_rolled_back=1, first_error_line=2, error="bad", error_class="E")
    ledger.finish_file(claim, "failed", failed, [RejectRow(1, 2, "age", "type", "x", "a,x")])
    with pytest.raises(LeaseLost) as lost:
        ledger.finish_file(claim, "loaded", result)  # no longer held: it failed
    out.append(str(lost.value))
    out.append(runner.run(lambda repo: repo.files_of_batch(REMOTE), what="read"))
    out.append(runner.run(lambda repo: repo.files_of_batch(RUNNING), what="read"))
    out.append(runner.run(lambda repo: repo.get_batch(REMOTE), what="read"))
    return out


def _dump(path: Path, window: tuple[int, int]) -> dict[str, list[tuple[Any, ...]]]:
    """Every ledger row with each value's storage class; timestamps the ledger took from the
    clock during the test (``finished_at`` of a finish) as ``<now>``."""
    conn = sqlite3.connect(path)
    try:
        return {t: [tuple(("<now>", "int") if isinstance(v, int) and window[0] <= v <= window[1]
                          else (v, type(v).__name__) for v in row)
                    for row in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")]
                for t in TABLES}
    finally:
        conn.close()


def _clocked(value: Any, window: tuple[int, int]) -> Any:
    """``value`` with the datetimes the ledger took from the clock as ``<now>``."""
    if isinstance(value, datetime):
        return "<now>" if window[0] <= value.timestamp() * 1e6 <= window[1] else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)._make(_clocked(v, window) for v in value)
    if isinstance(value, (list, tuple)):
        return type(value)(_clocked(v, window) for v in value)
    if isinstance(value, dict):
        return {k: _clocked(v, window) for k, v in value.items()}
    return value


def ids_of(result: list[Any]) -> dict[str, int]:
    ids: dict[str, int] = result[0]
    return ids


def test_file_ledger_on_both_runners(tmp_path: Path) -> None:
    since_us = time.time_ns() // 1000
    results = {}
    for kind, runner, engine in _runners(tmp_path):
        try:
            results[kind] = _ledger_scenario(runner)
        finally:
            engine.dispose()
    window = (since_us, time.time_ns() // 1000 + 1)  # what the ledger took from the clock
    core, dbapi = _clocked(results["core"], window), _clocked(results["dbapi"], window)
    for i, (a, b) in enumerate(zip(core, dbapi, strict=True)):
        assert a == b, f"result {i} differs"
    assert _dump(tmp_path / "core.db", window) == _dump(tmp_path / "dbapi.db", window)
    # what the scenario did, once (so that neither side can agree on doing nothing)
    assert core[1] is None and core[2].version == 2 and len(core[3]) == 2 and core[4] == []
    assert core[5] == [SHADOW] and core[6] == 2 and core[7] == []  # two shadow files failed
    assert [u["path"] for u in core[8]] == ["/d/gone.csv"] and core[9] == [ids_of(core)["gone"]]
    assert core[10] == [] and core[11] is True and core[12] is False and core[13] == []
    assert str(ids_of(core)["mine"]) in core[14]  # the lost lease names the claim
    remote = {f.path: f.status for f in core[15]}
    assert remote == {"/d/gone.csv": "loaded", "/d/held.csv": "loading"}
    assert {f.path: f.status for f in core[16]}["/d/mine.csv"] == "failed"
    assert core[17].status == "failed" and core[17].error_class == "Interrupted"


@pytest.mark.postgres
def test_file_ledger_on_postgresql_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    """The same scenario through the Core runner on PostgreSQL returns what it returns on
    SQLite (the new repository reads included: ``LIKE ... ESCAPE``, the options as JSONB)."""
    since_us = time.time_ns() // 1000
    settings = Settings()
    results = []
    for url in (pg_url, f"sqlite:///{tmp_path / 'core.db'}"):
        engine = create_audit_engine(parse_url(url), settings)
        try:
            ensure_schema(engine)
            results.append(_ledger_scenario(TransactionRunner(engine, settings, label="pg")))
        finally:
            engine.dispose()
    window = (since_us, time.time_ns() // 1000 + 1)
    on_pg, on_sqlite = (_clocked(r, window) for r in results)
    for i, (a, b) in enumerate(zip(on_pg, on_sqlite, strict=True)):
        assert a == b, f"result {i} differs"
    assert on_pg[6] == 2 and [u["path"] for u in on_pg[8]] == ["/d/gone.csv"]
