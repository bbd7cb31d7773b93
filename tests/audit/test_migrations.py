"""An audit store written by an older tallyclerk is brought up to date by the next load.

The store of 0.1.0 (schema version 1) is simulated on a real file: a current store with a
nullable column and an index removed and its version set back to 1. The next ``load`` must add
both back, record the current version and load normally; a store from a newer tallyclerk is
refused with a clear message (exit 3, nothing loaded).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tallyclerk.audit.models import SCHEMA_VERSION
from tests.clirun import env_for, run_cli


def _load(tmp_path: Path, db: Path, name: str, rows: str) -> int:
    src = tmp_path / name
    src.write_text("id,name\n" + rows, encoding="utf-8")
    return run_cli("load", str(src), "--table", "t", "--into", f"sqlite:///{db}",
                   cwd=tmp_path, env=env_for()).code


def test_a_version_1_store_gets_the_missing_columns_and_indexes(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert _load(tmp_path, db, "a.csv", "1,a\n") == 0
    con = sqlite3.connect(db)
    con.execute("DROP VIEW tallyclerk_lineage")  # version 1 had no view
    con.execute("DROP INDEX ix_tallyclerk_batches_running")
    con.execute("ALTER TABLE tallyclerk_files DROP COLUMN cleaned_by")
    con.execute("UPDATE tallyclerk_schema_version SET version = 1")
    con.commit()
    con.close()

    assert _load(tmp_path, db, "b.csv", "2,b\n") == 0

    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version FROM tallyclerk_schema_version").fetchone() == (
            SCHEMA_VERSION,)
        columns = {r[1] for r in con.execute("PRAGMA table_info(tallyclerk_files)")}
        assert "cleaned_by" in columns
        indexes = {r[1] for r in con.execute("PRAGMA index_list(tallyclerk_batches)")}
        assert "ix_tallyclerk_batches_running" in indexes
        assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        con.close()


def test_a_store_without_chained_schema_versions_gets_them_sealed(tmp_path: Path) -> None:
    """A store of an earlier 0.2.0 build (schema versions outside the chain) gets the columns
    and index, and its existing schema versions are sealed by the next load; verify passes."""
    db = tmp_path / "dev.db"
    src = tmp_path / "a.csv"
    src.write_text("id,name\n1,a\n", encoding="utf-8")
    # nothing sealed yet (as in a store whose chain never saw its schema versions)
    first = run_cli("load", str(src), "--table", "t", "--into", f"sqlite:///{db}",
                    cwd=tmp_path, env=env_for(TALLYCLERK_AUDIT_CHAIN="0"))
    assert first.code == 0, first.err
    con = sqlite3.connect(db)
    con.execute("DROP INDEX ix_tallyclerk_schemas_unsealed")
    con.execute("ALTER TABLE tallyclerk_schemas DROP COLUMN chain_seq")
    con.execute("ALTER TABLE tallyclerk_schemas DROP COLUMN chain_hash")
    con.commit()
    con.close()

    assert _load(tmp_path, db, "b.csv", "2,b\n") == 0

    con = sqlite3.connect(db)
    try:
        indexes = {r[1] for r in con.execute("PRAGMA index_list(tallyclerk_schemas)")}
        assert "ix_tallyclerk_schemas_unsealed" in indexes
        assert con.execute("SELECT count(*) FROM tallyclerk_schemas WHERE chain_hash IS NULL"
                           ).fetchone() == (0,)
    finally:
        con.close()
    verify = run_cli("verify", "--into", f"sqlite:///{db}", cwd=tmp_path, env=env_for())
    assert verify.code == 0, verify.out + verify.err


def test_a_store_from_a_newer_tallyclerk_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    assert _load(tmp_path, db, "a.csv", "1,a\n") == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE tallyclerk_schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    src = tmp_path / "b.csv"
    src.write_text("id,name\n2,b\n", encoding="utf-8")
    result = run_cli("load", str(src), "--table", "t", "--into", f"sqlite:///{db}",
                     cwd=tmp_path, env=env_for())
    assert result.code == 3
    assert "newer than this tallyclerk" in result.err
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        con.close()


PROBE = """
import sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")))
"""


def _probe_load(tmp_path: Path, db: Path, name: str, rows: str) -> list[str]:
    """A load through the Python API in a fresh process: the SQLAlchemy modules it imported."""
    import subprocess
    import sys

    src = tmp_path / name
    src.write_text("id,name\n" + rows, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", PROBE, str(src), f"sqlite:///{db}"],
                          cwd=tmp_path, env=env_for(TALLYCLERK_LOAD_PLUGINS=""),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_only_a_store_that_needs_a_migration_imports_sqlalchemy(tmp_path: Path) -> None:
    """The SQLite audit store is plain sqlite3; an older store is migrated by SQLAlchemy's
    one implementation (imported for that load only), then loads like any other."""
    db = tmp_path / "old.db"
    assert _probe_load(tmp_path, db, "a.csv", "1,a\n") == []  # a new store
    con = sqlite3.connect(db)
    con.execute("DROP VIEW tallyclerk_lineage")
    con.execute("ALTER TABLE tallyclerk_files DROP COLUMN cleaned_by")
    con.execute("UPDATE tallyclerk_schema_version SET version = 1")
    con.commit()
    con.close()

    assert "sqlalchemy.engine" in _probe_load(tmp_path, db, "b.csv", "2,b\n")  # migrated
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version FROM tallyclerk_schema_version").fetchone() == (
            SCHEMA_VERSION,)
        assert "cleaned_by" in {r[1] for r in con.execute("PRAGMA table_info(tallyclerk_files)")}
        assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        con.close()
    assert _probe_load(tmp_path, db, "c.csv", "3,c\n") == []  # current again: no SQLAlchemy
