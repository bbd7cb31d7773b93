"""The replay's audit-store operations on plain ``sqlite3`` (the SQLite path, no SQLAlchemy)
return what the Core ones return and store the same bytes, on two copies of one real store;
and a replay into SQLite imports no SQLAlchemy."""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tallyclerk
from tallyclerk.audit.engine import create_audit_engine
from tallyclerk.audit.liteengine import LiteEngine
from tallyclerk.audit.replay_store import CoreReplayStore, LiteReplayStore
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tests.clirun import env_for

SCHEMA = {"fields": [{"name": "id", "type": "integer"},
                     {"name": "v", "type": "integer", "constraints": {"minimum": 0}}]}
NOW = datetime(2026, 12, 7, 6, 30, 1, 234567, tzinfo=timezone.utc)


def _store(tmp_path: Path) -> Path:
    """A real store: two files loaded into two tables, with rejects."""
    db = tmp_path / "t.db"
    for name, table, text in (("a.csv", "t", "id,v\n1,1\n2,-2\n3,x\n4,-4\n"),
                              ("b.csv", "u", "id,v\n5,-5\n6,6\n")):
        src = tmp_path / name
        src.write_text(text, encoding="utf-8")
        tallyclerk.load(src, table=table, into=f"sqlite:///{db}", schema=SCHEMA)
    return db


def _rejects_bytes(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(tallyclerk_rejects)")]
        sel = ", ".join(f"{c}, typeof({c})" for c in cols)
        return [tuple(r) for r in con.execute(f"SELECT {sel} FROM tallyclerk_rejects ORDER BY id")]
    finally:
        con.close()


def test_both_stores_read_and_mark_alike(tmp_path: Path) -> None:
    db = _store(tmp_path)
    lite_db, core_db = tmp_path / "lite.db", tmp_path / "core.db"
    shutil.copy(db, lite_db)
    shutil.copy(db, core_db)
    lite_engine = LiteEngine(parse_url(f"sqlite:///{lite_db}"), Settings())
    core_engine = create_audit_engine(parse_url(f"sqlite:///{core_db}"), Settings())
    lite, core = LiteReplayStore(lite_engine), CoreReplayStore(core_engine)
    try:
        everything = lite.rejects(batch_id=None, path=None, table=None)
        assert len(everything) == 4, everything
        batches = {f.batch_id for _, f, _ in everything}
        paths = {f.path for _, f, _ in everything}
        for batch_id, path, table in itertools.product(
                [None, *sorted(batches), "nope"], [None, *sorted(paths)], [None, "t", "u"]):
            got = lite.rejects(batch_id=batch_id, path=path, table=table)
            assert got == core.rejects(batch_id=batch_id, path=path, table=table), \
                (batch_id, path, table)
        _, f, options = everything[0]
        assert options is not None and isinstance(options, dict)
        assert lite.loaded_claim(f.target_table, f.fingerprint) == \
            core.loaded_claim(f.target_table, f.fingerprint) == (f.id, f.batch_id)
        assert lite.loaded_claim("t", "no such print") is None
        assert core.loaded_claim("t", "no such print") is None
        # mark: the first file's rejects as replayed by the second file's claim (its own
        # reject: record 1 failed again), one record already marked, one empty record
        other = next(f2 for _, f2, _ in everything if f2.id != f.id)
        ids = [[r.id] for r, f1, _ in everything if f1.id == f.id]
        records = [*ids, [], ids[0]]
        assert lite.mark(other.id, other.batch_id, NOW, records) == \
            core.mark(other.id, other.batch_id, NOW, records)
        assert _rejects_bytes(lite_db) == _rejects_bytes(core_db)
        assert lite.rejects(batch_id=None, path=None, table=None) == \
            core.rejects(batch_id=None, path=None, table=None)
    finally:
        lite_engine.dispose()
        core_engine.dispose()


PROBE = """
import sys
import tallyclerk
schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "v", "type": "integer"}]}
report = tallyclerk.replay(table="t", into=sys.argv[1], schema=schema)
assert report.as_dict()["records_loaded"] == 2, report.records
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")))
"""


def test_a_replay_into_sqlite_imports_no_sqlalchemy(tmp_path: Path) -> None:
    db = _store(tmp_path)
    proc = subprocess.run([sys.executable, "-c", PROBE, f"sqlite:///{db}"], cwd=tmp_path,
                          env=env_for(TALLYCLERK_LOAD_PLUGINS=""), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []
