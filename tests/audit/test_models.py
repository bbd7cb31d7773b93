"""Tables and schema: UTC timestamps, JSON, the partial unique indexes, schema versions, and the
row types read back (their fields are the tables' columns)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from tallyclerk.audit import rows
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.models import (
    SCHEMA_VERSION,
    batches,
    files,
    from_epoch_us,
    metadata,
    schema_version,
    to_epoch_us,
)
from tallyclerk.dburl import parse_url
from tallyclerk.errors import AuditStoreError, ConfigError
from tallyclerk.settings import Settings


def _batch(batch_id: str = "b" * 32, when: datetime | None = None) -> dict[str, Any]:
    return dict(
        id=batch_id,
        target_table="t",
        status="running",
        started_at=when or datetime.now(timezone.utc),
        host="h",
        pid=1,
        user=None,
        options={"k": [1, "x"], "n": None},
    )


def _file(batch_id: str, status: str, fingerprint: str = "xxh3-128:1") -> dict[str, Any]:
    return dict(
        batch_id=batch_id,
        path="f.csv",
        size=1,
        mtime=0.0,
        fingerprint=fingerprint,
        target_table="t",
        status=status,
        started_at=datetime.now(timezone.utc),
    )


def test_every_table_is_prefixed() -> None:
    assert all(name.startswith("tallyclerk_") for name in metadata.tables)


@pytest.mark.parametrize("row_type", [rows.Batch, rows.FileManifest, rows.RejectRecord,
                                      rows.AuditEvent, rows.TableSchemaVersion])
def test_row_types_are_the_tables_columns_in_order(row_type: type[Any]) -> None:
    spec = rows.SPECS[row_type]
    table = metadata.tables[spec.table]
    assert row_type._fields == tuple(c.name for c in table.columns)
    kinds = {c.name: type(c.type).__name__ for c in table.columns}
    assert {n for n, k in kinds.items() if k == "UTCDateTime"} == spec.datetimes
    assert {n for n, k in kinds.items() if k == "JSONText"} == spec.json
    assert {n for n, k in kinds.items() if k == "Boolean"} == spec.booleans


def test_rows_from_storage_equal_rows_from_core(engine: Engine, db_url: str) -> None:
    """A row read through SQLAlchemy's column types and the same row read as stored (a plain
    sqlite3 cursor) make equal row objects."""
    import sqlite3

    with engine.begin() as conn:
        conn.execute(insert(batches).values(**_batch()))
        conn.execute(insert(files).values(**_file("b" * 32, "loaded"),
                                          column_changes={"added": ["x"]}))
        core = [rows.Batch._make(conn.execute(select(batches)).one()),
                rows.FileManifest._make(conn.execute(select(files)).one())]
    raw = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    try:
        stored = [rows.from_storage(rows.Batch, raw.execute("SELECT * FROM tallyclerk_batches")
                                    .fetchone()),
                  rows.from_storage(rows.FileManifest, raw.execute("SELECT * FROM "
                                                                   "tallyclerk_files").fetchone())]
    finally:
        raw.close()
    assert stored == core
    assert core[1].column_changes == {"added": ["x"]} and core[1].rows_rolled_back == 0


def test_timestamps_round_trip_as_aware_utc(engine: Engine) -> None:
    cet = timezone(timedelta(hours=1))
    when = datetime(2026, 11, 22, 17, 30, 0, 123456, tzinfo=cet)
    with engine.begin() as conn:
        conn.execute(insert(batches).values(**_batch(when=when)))
    with engine.connect() as s:
        got = rows.Batch._make(s.execute(select(batches)).one())
        assert got.started_at == when
        assert got.started_at.tzinfo == timezone.utc
        assert got.started_at.hour == 16
        assert got.options == {"k": [1, "x"], "n": None}
        # SQLite stores integer microseconds since the epoch
        raw = s.execute(text("SELECT started_at FROM tallyclerk_batches")).scalar_one()
        assert raw == to_epoch_us(when)
        assert from_epoch_us(raw) == when


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    from sqlalchemy.exc import StatementError

    with engine.connect() as s, pytest.raises(StatementError, match="naive datetime"):
        s.execute(insert(batches).values(**_batch(when=datetime(2026, 1, 1))))


def test_only_one_loaded_and_one_loading_row_per_identity(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with engine.begin() as s:
        s.execute(insert(batches).values(**_batch()))
        s.execute(insert(files), [_file("b" * 32, "loaded"), _file("b" * 32, "loading")])
        s.execute(insert(files), [_file("b" * 32, "failed"), _file("b" * 32, "failed")])
        s.execute(insert(files), [_file("b" * 32, "skipped"), _file("b" * 32, "replaced")])
    for status in ("loaded", "loading"):
        with pytest.raises(IntegrityError), engine.begin() as s:
            s.execute(insert(files).values(**_file("b" * 32, status)))
    with engine.begin() as s:  # another table or content is another identity
        s.execute(insert(files).values(**_file("b" * 32, "loaded", fingerprint="xxh3-128:2")))
    with engine.begin() as s:  # superseding frees the slot
        s.execute(update(files).where(files.c.status == "loaded",
                                      files.c.fingerprint == "xxh3-128:1")
                  .values(status="replaced"))
        s.execute(insert(files).values(**_file("b" * 32, "loaded")))


def test_partial_indexes_render_for_postgresql() -> None:
    table = files
    ddl = [str(CreateIndex(i).compile(dialect=postgresql.dialect())) for i in table.indexes]
    assert any("UNIQUE" in d and "WHERE status = 'loaded'" in d for d in ddl)
    assert any("UNIQUE" in d and "WHERE status = 'loading'" in d for d in ddl)
    created = str(CreateTable(table).compile(dialect=postgresql.dialect()))
    assert "TIMESTAMP WITH TIME ZONE" in created


def test_schema_version_is_recorded_once(engine: Engine, db_url: str) -> None:
    assert ensure_schema(engine) == SCHEMA_VERSION  # second start: no error, same version
    with engine.connect() as s:
        found = s.execute(select(schema_version.c.id, schema_version.c.version)).all()
    assert [tuple(r) for r in found] == [(1, SCHEMA_VERSION)]
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_newer_schema_in_the_database_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(AuditStoreError, match="newer than this tallyclerk"):
        ensure_schema(engine)


def test_older_schema_runs_the_migration_hook(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tallyclerk.audit import engine as engine_module

    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION - 1))
    monkeypatch.delitem(engine_module.MIGRATIONS, SCHEMA_VERSION - 1, raising=False)
    with pytest.raises(AuditStoreError, match="no migration"):
        ensure_schema(engine)
    ran: list[int] = []
    monkeypatch.setitem(
        engine_module.MIGRATIONS, SCHEMA_VERSION - 1, lambda conn: ran.append(SCHEMA_VERSION - 1)
    )
    assert ensure_schema(engine) == SCHEMA_VERSION
    assert ran == [SCHEMA_VERSION - 1]
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalar_one() == SCHEMA_VERSION


def test_version_1_store_gains_the_rejects_masked_column(engine: Engine) -> None:
    """Schema version 1 had no ``tallyclerk_rejects.masked``: opening it migrates, and the
    rejects stored before read as not masked."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tallyclerk_rejects")
        conn.exec_driver_sql(
            "CREATE TABLE tallyclerk_rejects (id INTEGER PRIMARY KEY, file_id INTEGER, "
            "batch_id VARCHAR(32), record_number BIGINT, line BIGINT, column_name TEXT, "
            "rule VARCHAR(64), reason TEXT, raw TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO tallyclerk_rejects VALUES (1, 1, 'b', 1, 2, 'c', 'type', 'r', 'x')"
        )
        conn.execute(update(schema_version).values(version=1))
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT raw, masked FROM tallyclerk_rejects").all()
    assert [(raw, bool(masked)) for raw, masked in rows] == [("x", False)]


def test_sqlite_connections_use_wal_and_begin_immediate(engine: Engine, tmp_path: Path) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == Settings().busy_timeout_ms
    # BEGIN IMMEDIATE takes the write lock at once: a second writer cannot begin
    other = create_audit_engine(
        parse_url(f"sqlite:///{tmp_path / 'audit.db'}"), Settings(busy_timeout_ms=0)
    )
    try:
        with engine.begin() as conn:
            conn.execute(insert(schema_version).values(id=2, version=0,
                                                      updated_at=datetime.now(timezone.utc)))
            from sqlalchemy.exc import OperationalError

            with pytest.raises(OperationalError, match="locked"), other.begin() as c2:
                c2.exec_driver_sql("SELECT 1")
            conn.rollback()
    finally:
        other.dispose()


def test_in_memory_sqlite_is_refused_for_the_store() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        create_audit_engine(parse_url("sqlite://"), Settings())


def test_version_1_store_is_migrated_to_rolled_back_counts(tmp_path: Path) -> None:
    """A version 1 store counted a failed file's every row as rejected; the migration keeps
    its stored rejects as rejected and moves the rest to rows_rolled_back."""
    import sqlite3

    db = tmp_path / "v1.db"
    engine = create_audit_engine(parse_url(f"sqlite:///{db}"), Settings())
    ensure_schema(engine)
    engine.dispose()
    with sqlite3.connect(db) as conn:  # turn the fresh store back into a version 1 store
        conn.execute("DROP VIEW tallyclerk_lineage")
        for tbl in ("tallyclerk_files", "tallyclerk_batches"):
            conn.execute(f"ALTER TABLE {tbl} DROP COLUMN rows_rolled_back")
        conn.execute("UPDATE tallyclerk_schema_version SET version = 1")
        conn.execute(
            "INSERT INTO tallyclerk_batches (id, target_table, status, started_at, files_started,"
            " files_loaded, files_skipped, files_failed, rows_read, rows_written, rows_rejected,"
            " bytes_read, host, pid, options) VALUES"
            " ('b1', 't', 'partial', 0, 2, 1, 0, 1, 15, 4, 11, 0, 'h', 1, '{}')"
        )
        for fid, status, read, written, rejected in ((1, "loaded", 5, 4, 1),
                                                     (2, "failed", 10, 0, 10)):
            conn.execute(
                "INSERT INTO tallyclerk_files (id, batch_id, path, size, mtime, fingerprint,"
                " target_table, status, rows_read, rows_written, rows_rejected, bytes_read,"
                " attempt, started_at) VALUES (?, 'b1', ?, 0, 0, ?, 't', ?, ?, ?, ?, 0, 1, 0)",
                (fid, f"f{fid}.csv", f"fp{fid}", status, read, written, rejected),
            )
        conn.executemany(
            "INSERT INTO tallyclerk_rejects (file_id, batch_id, record_number, line, rule,"
            " reason, raw) VALUES (?, 'b1', ?, ?, 'type', 'bad', 'x')",
            [(1, 1, 2), (2, 1, 2), (2, 2, 3), (2, 3, 4)],
        )
    engine = create_audit_engine(parse_url(f"sqlite:///{db}"), Settings())
    try:
        assert ensure_schema(engine) == SCHEMA_VERSION
        with engine.connect() as conn:
            file_rows = conn.exec_driver_sql(
                "SELECT id, rows_read, rows_written, rows_rejected, rows_rolled_back"
                " FROM tallyclerk_files ORDER BY id").all()
            batch = conn.exec_driver_sql(
                "SELECT rows_read, rows_written, rows_rejected, rows_rolled_back"
                " FROM tallyclerk_batches").one()
    finally:
        engine.dispose()
    assert [tuple(f) for f in file_rows] == [(1, 5, 4, 1, 0), (2, 10, 0, 3, 7)]
    assert tuple(batch) == (15, 4, 4, 7)
