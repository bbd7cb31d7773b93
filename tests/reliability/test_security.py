"""Security through the CLI: identifiers from users and data are quoted or refused (never
formatted into SQL), passwords in database URLs never reach logs, reports, ``status`` output or
error messages, and report paths are shown as given."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tallyclerk.audit.models import metadata
from tests.reliability.util import Result, env_for, query, tallyclerk

# what the audit store may hold (every model's table: which models are loaded depends on what
# this process imported, e.g. the PostgreSQL work list), and what every store must hold
AUDIT_TABLES = set(metadata.tables) | {"tallyclerk_lineage", "sqlite_sequence"}
LEDGER = {"tallyclerk_batches", "tallyclerk_files", "tallyclerk_rejects", "tallyclerk_events"}


def _exactly(db: Path, table: str) -> None:
    """The database holds the ledger, ``table`` by its exact name, and nothing else."""
    found = _objects(db)
    assert found - AUDIT_TABLES == {table}  # the exact name, nothing injected
    assert LEDGER <= found  # nothing dropped
SECRET = "s3cret-PW_x9"


def _objects(db: Path) -> set[str]:
    return {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type IN "
                                    "('table', 'view', 'trigger')")}


def _csv(directory: Path, name: str = "a.csv", header: str = "id,name") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{header}\n1,x\n2,y\n", encoding="utf-8")
    return path


HOSTILE_TABLES = [
    'x"; DROP TABLE tallyclerk_files; --',
    "t'); DELETE FROM tallyclerk_batches; --",
    'a"b',
    "[brackets]",
    "`backticks`",
    "ünï ☃ table",
    "semi;colon",
]
REFUSED_TABLES = [
    ("", "must not be empty"),
    (" padded ", "invalid table name"),
    ("sqlite_master", "reserved"),
    ("sqlite_x", "reserved"),
    ("tallyclerk_files", "reserved"),
    ("tallyclerk_anything", "reserved"),
    ("x" * 300, "too long"),
]


@pytest.mark.parametrize("table", HOSTILE_TABLES)
def test_hostile_table_name_is_created_exactly_and_quoted(tmp_path: Path, table: str) -> None:
    _csv(tmp_path)
    r = tallyclerk("load", "a.csv", "--table", table, "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.json()["table"] == table
    db = tmp_path / "d.db"
    _exactly(db, table)
    assert query(db, 'SELECT count(*) FROM "' + table.replace('"', '""') + '"') == [(2,)]
    assert query(db, "SELECT count(*) FROM tallyclerk_batches") == [(1,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize(("table", "why"), REFUSED_TABLES, ids=[t[:20] or "empty"
                                                                 for t, _ in REFUSED_TABLES])
def test_unusable_table_name_is_refused_with_exit_2(tmp_path: Path, table: str, why: str) -> None:
    _csv(tmp_path)
    r = tallyclerk("load", "a.csv", "--table", table, "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert r.code == 2, (r.out, r.err)
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tallyclerk: error: ") and why in lines[0]
    db = tmp_path / "d.db"
    assert not db.exists() or _objects(db) <= AUDIT_TABLES


@pytest.mark.parametrize("into", ["sqlite:///d.db", "sqlite:///d.db?timeout=5"],
                         ids=["sqlite-sink", "sqlalchemy-sink"])
def test_table_name_differing_only_in_case_is_refused_not_doubled(
    tmp_path: Path, into: str
) -> None:
    """SQLite table names ignore ASCII case; the manifest's do not (regression: the same file
    loaded into ``orders`` after ``Orders`` doubled every row of the table)."""
    _csv(tmp_path)
    first = tallyclerk("load", "a.csv", "--table", "Orders", "--into", into, cwd=tmp_path)
    assert first.code == 0, first.err
    again = tallyclerk("load", "a.csv", "--table", "orders", "--into", into, cwd=tmp_path)
    assert again.code == 2, again.err
    assert "'Orders'" in again.err.strip().splitlines()[-1]
    assert query(tmp_path / "d.db", 'SELECT count(*) FROM "Orders"') == [(2,)]


def test_hostile_headers_cannot_reach_the_audit_tables(tmp_path: Path) -> None:
    header = '"x"" TEXT); DROP TABLE tallyclerk_files; --","y]; DELETE FROM tallyclerk_batches"'
    _csv(tmp_path, header=header)
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert r.code == 0, r.err
    db = tmp_path / "d.db"
    _exactly(db, "t")
    cols = [row[1] for row in query(db, 'PRAGMA table_info("t")')]
    assert cols == ['x" TEXT); DROP TABLE tallyclerk_files; --',
                    "y]; DELETE FROM tallyclerk_batches", "_tc_file_id"]
    assert query(db, "SELECT status FROM tallyclerk_files") == [("loaded",)]


# --- passwords ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _no_secret(r: Result, secret: str = SECRET) -> None:
    assert secret not in r.out and secret not in r.err, (r.out, r.err)
    assert "Traceback" not in r.err


FAST = {"TALLYCLERK_CONNECT_TIMEOUT_S": "1", "TALLYCLERK_MAX_RETRIES": "1",
        "TALLYCLERK_BACKOFF_INITIAL_MS": "5", "TALLYCLERK_BACKOFF_MAX_MS": "10"}


@pytest.mark.parametrize("where", ["into", "audit", "both"])
def test_password_masked_when_the_server_is_unreachable(tmp_path: Path, where: str) -> None:
    _csv(tmp_path)
    url = f"postgresql://loader:{SECRET}@127.0.0.1:{_closed_port()}/warehouse"
    into = url if where in ("into", "both") else "sqlite:///d.db"
    args = ["load", "a.csv", "--table", "t", "--into", into, "--log-format", "json",
            "--log-level", "debug", "--audit", url if where != "into" else "sqlite:///a.db"]
    r = tallyclerk(*args, cwd=tmp_path, env=env_for(**FAST))
    _no_secret(r)
    expected = 1 if where == "into" else 3  # a file failed / the audit store is unreachable
    assert r.code == expected, r.err
    assert "loader:***@127.0.0.1" in r.err
    for command in ("status", "rejects"):
        s = tallyclerk(command, "--into", url, "--json", cwd=tmp_path, env=env_for(**FAST))
        _no_secret(s)
        assert s.code == 3, s.err
        assert s.err.strip().splitlines()[-1].startswith("tallyclerk: error: ")


def test_password_masked_with_a_real_server(tmp_path: Path, pg_url: str) -> None:
    password = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(password) >= 6
    _csv(tmp_path)
    _csv(tmp_path, "bad.csv", header="id,id")  # a failed file: its error is in the report
    env = env_for()
    load = tallyclerk("load", "a.csv", "bad.csv", "--table", "t", "--into", pg_url,
                      "--log-format", "json", "--log-level", "debug", cwd=tmp_path, env=env)
    _no_secret(load, password)
    assert load.code == 1, load.err
    assert "***" in load.out  # the summary names the target with its password masked
    for args in (["status"], ["status", "--json"], ["rejects", "--json"]):
        r = tallyclerk(*args, "--into", pg_url, "--log-level", "debug", cwd=tmp_path, env=env)
        assert r.code == 0, r.err
        _no_secret(r, password)
    wrong = pg_url.replace(f":{password}@", f":{SECRET}@")
    bad = tallyclerk("load", "a.csv", "--table", "t", "--into", wrong, "--log-level", "debug",
                     cwd=tmp_path, env=env_for(**FAST))
    _no_secret(bad)
    assert bad.code == 3, bad.err


# --- paths as given ------------------------------------------------------------------------------


def test_report_paths_are_shown_as_given(tmp_path: Path) -> None:
    _csv(tmp_path / "sub", "a.csv")
    _csv(tmp_path / "other", "b.csv", header="id,name\n3,z")
    absolute = str(tmp_path / "other" / "b.csv")
    given = ["sub/a.csv", absolute, "./sub/../missing.csv"]
    r = tallyclerk("load", *given, "--table", "t", "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert r.code == 1, r.err
    assert [f["path"] for f in r.json()["files"]] == given
    s = tallyclerk("status", "--into", "sqlite:///d.db", "--json", cwd=tmp_path)
    assert s.code == 0, s.err
    # a path that was never claimed (missing) is in the load's report, not in the manifest
    assert [f["path"] for f in s.json()["files"]] == given[:2]
    text = tallyclerk("status", "--into", "sqlite:///d.db", cwd=tmp_path)
    assert "sub/a.csv" in text.out and str(tmp_path / "sub") not in text.out
