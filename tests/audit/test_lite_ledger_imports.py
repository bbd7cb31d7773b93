"""On the SQLite audit path (``LiteEngine``, ``LiteTransactionRunner``, ``DbapiRepository``)
the ledger's modules run without importing SQLAlchemy: a fresh process imports ledger,
uncertain, claims, marker, schemas, sqlgen, events and eventlog, claims and finishes files,
records schemas, reads replaces and uncertain files, writes a marker and events, and no
``sqlalchemy`` module is loaded (issue 16.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MODULES = ("ledger", "uncertain", "claims", "marker", "schemas", "sqlgen", "events",
           "eventlog")

_SCRIPT = '''
import json, sys
from datetime import datetime, timezone
from tallyclerk.audit import claims, eventlog, events, ledger, marker, schemas, sqlgen, uncertain
from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.txn import LiteTransactionRunner
from tallyclerk.audit.types import FileClaim, FileResult, RejectRow, StoredSchema
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import gate_for

path, data = sys.argv[1], sys.argv[2]
settings = Settings(linger_ms=5)
engine = LiteEngine(parse_url("sqlite:///" + path), settings)
assert ensure_schema_lite(engine)
runner = LiteTransactionRunner(engine, settings, label="x", gate=gate_for(engine.path))
who = claims.Claims(host="h", pid=1, lease_s=60.0)
fl = ledger.FileLedger(runner, who, accumulator=lambda b: None, check_open=lambda: None)
now = datetime.now(timezone.utc)
runner.run(lambda r: r.add_batch(batch_id="b" * 32, target_table="t", started_at=now,
                                 host="h", pid=1, user=None, options={}), what="batch")
claim = runner.run(lambda r: who.decide(r, batch_id="b" * 32, path=data, table="t",
                                        fingerprint="fp", size=1, mtime=0.0, force=False),
                   what="claim")
assert isinstance(claim, FileClaim), claim
result = FileResult(rows_read=2, rows_written=1, rows_rejected=1, bytes_read=9)

def commit(repo):
    ex = repo.executor()
    fl.prepare_file_in(ex, claim, "t")
    fl.add_rejects_in(ex, claim, [RejectRow(2, 3, "a", "type", "bad", "x")])
    ex.execute('CREATE TABLE IF NOT EXISTS "t" (a INTEGER, "_tc_file_id" INTEGER)')
    marker.mark_in(ex, claim, result, "append")
    fl.commit_file_in(ex, claim, result)
    fl.record_schema_in(ex, StoredSchema(table="t", version=1, schema_json="{}",
                                         fingerprint=schemas.fingerprint("{}"), reason="first",
                                         created_at=now, batch_id="b" * 32,
                                         file_id=claim.file_id))
    return fl.schema_version_in(ex, "t"), marker.read(ex, claim.file_id, claim.token)

version, mark = runner.run(commit, what="commit")
log = eventlog.EventLog(engine, settings, label="x")
log.record("loaded", batch_id="b" * 32, file_id=claim.file_id)
log.flush(10)
assert log.close(5)
out = {
    "version": version, "marked": mark is not None,
    "schema": fl.table_schema("t").version, "history": len(fl.table_schema_history("t")),
    "shadows": fl.stale_shadows("t"), "uncertain": fl.uncertain_files(),
    "delete": sqlgen.delete_rows_sql("duckdb", "t").sql,
    "sqlalchemy": sorted(m for m in sys.modules if m.startswith("sqlalchemy")),
}
engine.dispose()
print(json.dumps(out))
'''


def test_the_lite_ledger_path_imports_no_sqlalchemy(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\nx\n")
    db = tmp_path / "audit.db"
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(db), str(data)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["sqlalchemy"] == []
    assert out == {"version": 1, "marked": True, "schema": 1, "history": 1, "shadows": [],
                   "uncertain": [], "delete": 'DELETE FROM "t" WHERE "t"._tc_file_id = ?',
                   "sqlalchemy": []}
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT status, rows_read, rows_written, rows_rejected "
                            "FROM tallyclerk_files").fetchall() == [("loaded", 2, 1, 1)]
        assert conn.execute("SELECT count(*) FROM tallyclerk_rejects").fetchone() == (1,)
        assert conn.execute("SELECT type FROM tallyclerk_events").fetchall() == [("loaded",)]
    finally:
        conn.close()


def test_each_module_alone_imports_no_sqlalchemy() -> None:
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}:\n"
            "    importlib.import_module('tallyclerk.audit.' + m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
