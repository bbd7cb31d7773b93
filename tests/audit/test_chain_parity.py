"""The hash chain (``chain.seal``/``verify``) and ``lineage.file_history`` on both audit
repositories (SQLAlchemy Core and plain ``sqlite3``): the same ledger sealed through either gets
the same links and head, byte for byte, through the same SQL statements; ``verify`` reports the
same on both, whole or tampered with; the hashes are those of the chain before the port."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from tallyclerk.audit import catalogue, chain, lineage, models
from tallyclerk.audit.dbapi_executor import DbapiExecutor
from tallyclerk.audit.dbapi_repository import DbapiRepository
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.schemas import record_in
from tallyclerk.audit.types import RejectRow, StoredSchema
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tests.audit.repos import IMPLEMENTATIONS, Repo, Store, dbapi_connect

NOW = datetime(2026, 12, 7, 5, 0, 0, 654321, tzinfo=timezone.utc)
B1, B2, B3 = "a" * 32, "b" * 32, "c" * 32

GOLDEN_HEAD = (24, "cfb0d682b78835945f80d8c04de874d7d4b3853c2861e5a956f61771d33afe06")
"""The head of :func:`_build`'s ledger sealed by the chain before the port (c9015ed, on Core):
the port must not change a hash (existing ledgers must verify)."""


def _store(tmp_path: Path, kind: str, name: str | None = None) -> Store:
    path = tmp_path / f"{name or kind}.db"
    engine = create_audit_engine(parse_url(f"sqlite:///{path}"), Settings())
    ensure_schema(engine)
    return Store(kind, engine, str(path))


@pytest.fixture()
def stores(tmp_path: Path) -> Iterator[list[Store]]:
    out = [_store(tmp_path, kind) for kind in IMPLEMENTATIONS]
    try:
        yield out
    finally:
        for store in out:
            store.engine.dispose()


def _round_one(repo: Repo) -> None:
    """A finished batch with a file of every kind (final or not), rejects, events, schemas."""
    repo.add_batch(batch_id=B1, target_table="people", started_at=NOW, host="h", pid=7,
                   user="u", options={"force": False, 3: "int key", "é": [1, 2**62]})
    repo.add_batch(batch_id=B2, target_table="people", started_at=NOW + timedelta(seconds=1),
                   host="other", pid=8, user=None, options={})

    def add(status: str, fp: str, table: str = "people", **extra: Any) -> Any:
        return repo.add_file(batch_id=B1, path=f"/d/{fp}.csv", size=10, mtime=1.25,
                             fingerprint=fp, target_table=table, status=status,
                             started_at=NOW, **extra)

    loaded = add("loaded", "fp1", rows_read=3, rows_written=2, rows_rejected=1,
                 finished_at=NOW, duration_s=0.5, column_changes={"added": ["x"]})
    add("failed", "fp1", cleaned_by=loaded.id, error="boom\n\"quoted\"", error_class="E")
    add("failed", "fp3", attempt=3, finished_at=NOW, lease_expires_at=NOW)
    add("skipped", "fp1", earlier_batch_id=B1, earlier_file_id=loaded.id)
    add("loading", "fp4", claim_token="t" * 32, owner="h:7", lease_expires_at=NOW)
    add("loaded", "fp5", table="_tc_replace_people")  # a replace's shadow: not final yet
    old = add("replaced", "fp6", finished_at=NOW)
    add("loaded", "fp6", finished_at=NOW + timedelta(seconds=2))
    repo.update_batch(B1, status="succeeded", finished_at=NOW + timedelta(seconds=3),
                      files_loaded=2, rows_read=3)
    repo.add_rejects(file_id=loaded.id, batch_id=B1, rejects=[
        RejectRow(2, 3, "age", "type", "not an integer", "x,abc"),
        RejectRow(1, 2, None, "row-length", "3 fields", "a,b,c", masked=True),
    ])
    for i, kind in enumerate(("batch_started", "file_loaded", "note")):
        repo.add_event(type=kind, created_at=NOW + timedelta(microseconds=i),
                       batch_id=B1 if i else None, file_id=old.id if i == 2 else None,
                       payload={"i": i, "text": "ünï"} if i != 1 else None,
                       correlation_id=f"c{i}")
    record_in(repo.executor(), StoredSchema(
        table="people", version=1, schema_json='{"fields": [{"name": "id"}]}',
        fingerprint="sha256:1", reason="first", created_at=NOW, batch_id=B1,
        file_id=loaded.id))


def _round_two(repo: Repo) -> None:
    """After a seal: the running batch ends, its rows and more events arrive."""
    repo.add_batch(batch_id=B3, target_table="t2", started_at=NOW + timedelta(seconds=9),
                   host="h", pid=9, user="someone", options={"mode": "append"})
    f = repo.add_file(batch_id=B2, path="/e/1.jsonl", size=1, mtime=0.0, fingerprint="g1",
                      target_table="people", status="failed", started_at=NOW,
                      finished_at=NOW, error="gone", error_class="G")
    repo.update_batch(B2, status="failed", finished_at=NOW + timedelta(seconds=10),
                      files_failed=1, error_message="gone")
    repo.add_rejects(file_id=f.id, batch_id=B2, rejects=[
        RejectRow(i, i + 1, "c", "required", "missing", f"row {i}") for i in range(1, 6)])
    for i in range(4):
        repo.add_event(type="tick", created_at=NOW + timedelta(seconds=20 + i), batch_id=B2,
                       payload={"n": i})


def _build(store: Store, seal: Callable[[Repo], int] = chain.seal) -> list[int]:
    """The ledger of both rounds on ``store``, sealed after each; how many rows each sealed."""
    sealed = []
    for write in (_round_one, _round_two):
        with store.begin() as repo:
            write(repo)
        with store.begin() as repo:
            sealed.append(seal(repo))
    return sealed


def _links(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the chained tables (all columns, with storage classes) and the head."""
    conn = sqlite3.connect(path)
    try:
        out = {t: [tuple((v, type(v).__name__) for v in row)
                   for row in conn.execute(f"SELECT * FROM {t} ORDER BY id")]
               for t in chain.TABLES}
        out["head"] = conn.execute("SELECT * FROM tallyclerk_chain_head").fetchall()
        return out
    finally:
        conn.close()


def _head(path: str) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    try:
        seq, digest = conn.execute("SELECT seq, hash FROM tallyclerk_chain_head").fetchone()
        return int(seq), str(digest)
    finally:
        conn.close()


def _raw(repo: Repo) -> sqlite3.Connection:
    if isinstance(repo, DbapiRepository):
        return repo.connection
    raw = repo.connection.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _verify_with(store: Store, since_anchor: str | None = None) -> dict[str, Any]:
    with store.connect() as repo:
        return chain.verify(repo, since_anchor=since_anchor).as_dict()


@pytest.mark.parametrize("seal_rows", [2, 5000])
def test_both_repositories_seal_the_same_links(stores: list[Store], seal_rows: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # rounds of 2 rows: a seal reads and links a table in several rounds
    monkeypatch.setattr(chain, "_SEAL_ROWS", seal_rows)
    sealed = [_build(store) for store in stores]
    core, dbapi = (_links(store.path) for store in stores)
    assert sealed[0] == sealed[1]
    assert sealed[0][0] > 0 and sealed[0][1] > 0
    assert core == dbapi
    # the final rows are linked, the others (the loading file, the shadow table's file, the
    # running batch) are not
    unsealed = {t: [r[0][0] for r in rows if r[-1][0] is None]
                for t, rows in core.items() if t != "head"}
    assert unsealed == {"tallyclerk_batches": [B3], "tallyclerk_files": [5, 6],
                        "tallyclerk_rejects": [], "tallyclerk_events": [],
                        "tallyclerk_schemas": []}
    assert _head(stores[0].path) == (sum(sealed[0]), core["head"][0][2])
    assert _head(stores[0].path) == GOLDEN_HEAD
    for store in stores:
        report = _verify_with(store)
        assert report["ok"] and report["links"] == sum(sealed[0])
        assert report["unsealed"] == {}  # what is not linked is not final either


def test_the_same_statements_reach_sqlite(stores: list[Store]) -> None:
    """The SQL each sends, statement by statement with its values, as SQLite traces it."""
    traces: list[list[str]] = []
    for store in stores:
        with store.begin() as repo:
            _round_one(repo)
        sent: list[str] = []
        for step in (chain.seal, lambda r: chain.verify(r, since_anchor="0" * 64),
                     lambda r: lineage.file_history(r, "/d/fp1.csv")):
            with store.begin() as repo:
                _raw(repo).set_trace_callback(sent.append)
                try:
                    step(repo)
                finally:
                    _raw(repo).set_trace_callback(None)
        traces.append(sent)
    assert traces[0] == traces[1]
    assert any("UPDATE tallyclerk_events SET chain_seq" in s for s in traces[0])
    assert any("FROM tallyclerk_schemas WHERE chain_seq IS NOT NULL" in s for s in traces[0])


def _old_select_list(dialect: Any, table: str) -> str:
    """The SELECT list the chain composed before the port: the models' columns, quoted by
    SQLAlchemy's identifier preparer of the dialect."""
    names = [c.name for c in models.metadata.tables[table].columns]
    cols = ["id"] + [n for n in names if n not in chain._NOT_HASHED and n != "id"]
    return ", ".join(str(dialect.identifier_preparer.quote(c)) for c in cols)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()],
                         ids=["sqlite", "postgresql"])
def test_the_sql_text_is_the_chain_s_before_the_port(dialect: Any) -> None:
    name = dialect.name
    assert chain.TABLES == (models.batches.name, models.files.name, models.rejects.name,
                            models.events.name, models.table_schemas.name)
    mark = "%s" if name == "postgresql" else "?"
    for table in chain.TABLES:
        cols = _old_select_list(dialect, table)
        assert chain._select_unsealed_sql(name, table) == (
            f"SELECT {cols} FROM {table} WHERE chain_hash IS NULL AND {chain._FINAL[table]} "
            f"ORDER BY id LIMIT {chain._SEAL_ROWS}"
            + (" FOR UPDATE" if name == "postgresql" and table == "tallyclerk_batches" else ""))
        assert chain._select_sealed_sql(name, table) == (
            f"SELECT chain_seq, chain_hash, {cols} FROM {table} "
            "WHERE chain_seq IS NOT NULL ORDER BY chain_seq")
        assert chain._update_link_sql(name, table) == (
            f"UPDATE {table} SET chain_seq = {mark}, chain_hash = {mark} WHERE id = {mark}")
    assert chain._update_head_sql(name) == (
        f"UPDATE tallyclerk_chain_head SET seq = {mark}, hash = {mark} WHERE id = 1")
    # PostgreSQL quotes `user` (a reserved word), SQLite does not
    batch_cols = chain._select_unsealed_sql(name, "tallyclerk_batches")
    assert (', "user", ' in batch_cols) == (name == "postgresql")


def test_the_catalogue_quotes_as_each_dialect_does() -> None:
    for dialect, quoted in ((sqlite.dialect(), catalogue.QUOTED),
                            (postgresql.psycopg.dialect(), catalogue.QUOTED_POSTGRESQL)):
        for table in chain.TABLES:
            assert list(quoted[table]) == [c.name for c in models.metadata.tables[table].columns]
            assert quoted[table] == {c: dialect.identifier_preparer.quote(c)
                                     for c in quoted[table]}
    assert catalogue.QUOTED_POSTGRESQL["tallyclerk_batches"]["user"] == '"user"'
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        chain._select_sealed_sql("mysql", "tallyclerk_batches")


def test_a_ledger_sealed_by_one_verifies_through_the_other(stores: list[Store]) -> None:
    for store in stores:
        _build(store)
    for store in stores:  # each file through both implementations
        core, dbapi = _reports_of(store.path, lambda p: None)
        assert core == dbapi and core["ok"] and core["unsealed"] == {}


def test_file_history_is_the_same_on_both(stores: list[Store]) -> None:
    histories = []
    for store in stores:
        with store.begin() as repo:
            _round_one(repo)
            first = repo.add_file(batch_id=B2, path="/r/replay", size=1, mtime=0.0,
                                  fingerprint="replay:x", target_table="people",
                                  status="loaded", started_at=NOW)
            _raw(repo).execute("UPDATE tallyclerk_rejects SET replay_file_id = ?",
                               (first.id,))
        with store.begin() as repo:
            histories.append([lineage.file_history(repo, p)
                              for p in ("/d/fp1.csv", "/d/fp6.csv", "/nope")])
    assert histories[0] == histories[1]
    fp1, fp6, nope = histories[0]
    assert [h["status"] for h in fp1] == ["loaded", "failed", "skipped", "loaded"]
    assert fp1[-1]["replay"] is True and fp1[0]["started_at"] == NOW.isoformat()
    assert [h["status"] for h in fp6] == ["replaced", "loaded"] and nope == []


def test_create_view_on_a_dbapi_connection(tmp_path: Path) -> None:
    conn = dbapi_connect(str(tmp_path / "v.db"))
    try:
        for sql in catalogue.DDL:
            conn.execute(sql)
        lineage.create_view(DbapiExecutor(conn))
        lineage.create_view(DbapiExecutor(conn))  # present: left alone
        (sql,), = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (lineage.VIEW,)).fetchall()
        assert sql == catalogue.VIEWS[0].replace(" IF NOT EXISTS", "")
        assert conn.execute(f"SELECT count(*) FROM {lineage.VIEW}").fetchone() == (0,)
    finally:
        conn.close()


# --- tampered ledgers -------------------------------------------------------------------------

def _sql(path: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _ids(path: str, table: str) -> list[int | str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            f"SELECT id FROM {table} WHERE chain_seq IS NOT NULL ORDER BY chain_seq")]
    finally:
        conn.close()


_CONTENT = {
    "tallyclerk_batches": ["rows_read", "status", "user", "options", "finished_at"],
    "tallyclerk_files": ["rows_written", "path", "status", "error", "finished_at"],
    "tallyclerk_rejects": ["line", "reason", "raw", "masked"],
    "tallyclerk_events": ["type", "payload", "created_at", "batch_id"],
    "tallyclerk_schemas": ["schema_json", "version", "fingerprint"],
}
_ALL = {t: [c for c in catalogue.QUOTED[t] if c not in ("id", "chain_seq", "chain_hash")]
        for t in chain.TABLES}

Tamper = Callable[[str], None]


def _edit(table: str, column: str, value: Any, nth: int) -> Tamper:
    def apply(path: str) -> None:
        ids = _ids(path, table)
        if not ids:
            return
        row = ids[nth % len(ids)]
        _sql(path, (f'UPDATE {table} SET "{column}" = ? WHERE id = ?', (value, row)))
    return apply


def _delete(table: str, nth: int) -> Tamper:
    def apply(path: str) -> None:
        ids = _ids(path, table)
        if not ids:
            return
        _sql(path, (f"DELETE FROM {table} WHERE id = ?", (ids[nth % len(ids)],)))
    return apply


def _swap(table: str, nth: int) -> Tamper:
    """Two rows of ``table`` exchange their content (keeping ids and links)."""
    def apply(path: str) -> None:
        ids = _ids(path, table)
        if not ids:
            return
        a, b = ids[nth % len(ids)], ids[(nth + 1) % len(ids)]
        cols = ", ".join(f'"{c}"' for c in _ALL[table])
        sets = ", ".join(f'"{c}" = ?' for c in _ALL[table])
        conn = sqlite3.connect(path)
        try:
            ra = conn.execute(f"SELECT {cols} FROM {table} WHERE id = ?", (a,)).fetchone()
            rb = conn.execute(f"SELECT {cols} FROM {table} WHERE id = ?", (b,)).fetchone()
            conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*rb, a))
            conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*ra, b))
            conn.commit()
        finally:
            conn.close()
    return apply


def _link(table: str, nth: int, column: str, value: Any) -> Tamper:
    return _edit(table, column, value, nth)


NAMED: dict[str, tuple[Tamper, str, str]] = {
    "edited row": (_edit("tallyclerk_files", "rows_written", 1000, 0),
                   "tallyclerk_files", "edited"),
    "edited user": (_edit("tallyclerk_batches", "user", "mallory", 0),
                    "tallyclerk_batches", "edited"),
    "deleted row": (_delete("tallyclerk_rejects", 0), "tallyclerk_", "missing"),
    "swapped rows": (_swap("tallyclerk_rejects", 3), "tallyclerk_rejects", "swapped"),
    "deleted head": (lambda p: _sql(p, ("DELETE FROM tallyclerk_chain_head", ())),
                     "tallyclerk_chain_head", "head row is missing"),
    "cut tail": (_delete("tallyclerk_events", -1), "tallyclerk_chain_head", "ends at"),
    "renumbered": (_link("tallyclerk_events", 1, "chain_seq", 1), "tallyclerk_", "twice"),
    "replaced, not cleaned": (_edit("tallyclerk_files", "status", "replaced", -2),
                              "tallyclerk_files", "cleaned_by"),
}


@pytest.fixture(scope="module")
def sealed_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ledger of both rounds, sealed (through Core and DB-API alike: tested above)."""
    store = _store(tmp_path_factory.mktemp("ledger"), "dbapi")
    try:
        _build(store)
    finally:
        store.engine.dispose()
    yield store.path


def _reports_of(ledger: str, tamper: Tamper, anchor: str | None = None) -> list[dict[str, Any]]:
    """``verify`` of a tampered copy of ``ledger`` through each implementation."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = str(Path(tmp) / "t.db")
        source, target = sqlite3.connect(ledger), sqlite3.connect(copy)
        try:  # with what the ledger's write-ahead log holds
            source.backup(target)
        finally:
            source.close()
            target.close()
        tamper(copy)
        out = []
        for kind in IMPLEMENTATIONS:
            engine = create_audit_engine(parse_url(f"sqlite:///{copy}"), Settings())
            try:
                out.append(_verify_with(Store(kind, engine, copy), anchor))
            finally:
                engine.dispose()
        return out


@pytest.mark.parametrize("case", sorted(NAMED))
def test_verify_reports_the_same_tampering_on_both(sealed_ledger: str, case: str) -> None:
    tamper, table, what = NAMED[case]
    core, dbapi = _reports_of(sealed_ledger, tamper, anchor=_head(sealed_ledger)[1])
    assert core == dbapi
    assert core["ok"] is False
    assert core["broken"]["table"].startswith(table) and what in core["broken"]["what"], core


def test_verify_of_a_whole_ledger_and_an_anchor(sealed_ledger: str) -> None:
    whole = _reports_of(sealed_ledger, lambda p: None, anchor=_head(sealed_ledger)[1])
    assert whole[0] == whole[1] and whole[0]["ok"] and whole[0]["anchor_found"] is True
    unknown = _reports_of(sealed_ledger, lambda p: None, anchor="f" * 64)
    assert unknown[0] == unknown[1] and unknown[0]["anchor_found"] is False


@st.composite
def _tampers(draw: st.DrawFn) -> list[Tamper]:
    out: list[Tamper] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["edit", "delete", "swap", "seq", "hash", "head"]))
        table = draw(st.sampled_from(chain.TABLES))
        nth = draw(st.integers(0, 20))
        if kind == "edit":
            column = draw(st.sampled_from(_ALL[table]))
            value = draw(st.none() | st.integers(-3, 10**6) | st.text(max_size=6))
            out.append(_edit(table, column, value, nth))
        elif kind == "delete":
            out.append(_delete(table, nth))
        elif kind == "swap":
            out.append(_swap(table, nth))
        elif kind == "seq":
            out.append(_edit(table, "chain_seq", draw(st.none() | st.integers(0, 40)), nth))
        elif kind == "hash":
            out.append(_edit(table, "chain_hash", draw(st.none() | st.just("0" * 64)), nth))
        else:
            value = draw(st.integers(0, 40))
            out.append(lambda p, v=value: _sql(p, ("UPDATE tallyclerk_chain_head SET seq = ?",
                                                   (v,))))
    return out


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tampers=_tampers())
def test_any_tampering_is_reported_alike(sealed_ledger: str, tampers: list[Tamper]) -> None:
    def apply(path: str) -> None:
        for tamper in tampers:
            try:
                tamper(path)
            except sqlite3.IntegrityError:
                continue  # a value the schema refuses (NOT NULL, a key): not applied

    core, dbapi = _reports_of(sealed_ledger, apply)
    assert core == dbapi


def test_chain_and_lineage_import_no_sqlalchemy() -> None:
    code = ("import sys\n"
            "import tallyclerk.audit.chain, tallyclerk.audit.lineage\n"
            "import tallyclerk.audit.liteengine, tallyclerk.audit.txn\n"
            "import tallyclerk.audit.dbapi_repository, tallyclerk.audit.dbapi_executor\n"
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.postgres
def test_the_chain_on_postgresql(pg_url: str) -> None:
    """The same ledger on PostgreSQL (Core): quoted as the server's dialect quotes (``"user"``),
    sealed and verified through the repository, tampering named; ``file_history`` as on
    SQLite."""
    engine = create_audit_engine(parse_url(pg_url), Settings())
    try:
        ensure_schema(engine)
        prep = engine.dialect.identifier_preparer
        assert all(catalogue.QUOTED_POSTGRESQL[t] == {c: prep.quote(c) for c in cols}
                   for t, cols in catalogue.QUOTED.items())
        store = Store("core", engine, "")
        assert _build(store) == [13, 11]
        with store.connect() as repo:
            assert repo.dialect_name == "postgresql"
            report = chain.verify(repo).as_dict()
            history = lineage.file_history(repo, "/d/fp1.csv")
        assert report["ok"] and report["links"] == 24 and report["unsealed"] == {}
        assert [h["status"] for h in history] == ["loaded", "failed", "skipped"]
        assert history[0]["started_at"] is not None
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE tallyclerk_batches SET \"user\" = 'mallory' WHERE id = %s", (B1,))
        with store.connect() as repo:
            broken = chain.verify(repo).broken
        assert broken is not None and (broken.table, broken.row_id) == ("tallyclerk_batches", B1)
        assert "edited" in broken.what
    finally:
        engine.dispose()
