"""``tallyclerk health`` end to end: real SQLite files, a real silent TCP server, PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tallyclerk.audit.models import SCHEMA_VERSION
from tests.cli.conftest import Result, tallyclerk, write_csv


def health(tmp_path: Path, *args: str) -> Result:
    # a generous subprocess timeout: the command must end by itself well before it
    return tallyclerk("health", "--json", *args, cwd=tmp_path, timeout=120)


@pytest.fixture()
def loaded_db(tmp_path: Path) -> Path:
    write_csv(tmp_path / "a.csv", [(1, "a", 1)])
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", "sqlite:///data.db", cwd=tmp_path)
    assert r.code == 0, r.err
    return tmp_path / "data.db"


def test_healthy_sqlite(tmp_path: Path, loaded_db: Path) -> None:
    r = health(tmp_path, "--into", "sqlite:///data.db")
    assert r.code == 0, r.out + r.err
    report = r.json()
    assert report["healthy"] is True
    audit, sink = report["checks"]
    assert (audit["name"], audit["ok"], audit["schema_version"]) == (
        "audit", True, SCHEMA_VERSION)
    assert (sink["name"], sink["ok"], sink["reason"]) == ("sink", True, None)
    text = tallyclerk("health", "--into", "sqlite:///data.db", cwd=tmp_path)
    assert text.code == 0 and text.out.rstrip().endswith("healthy")
    assert f"schema version {SCHEMA_VERSION}" in text.out


def test_missing_database_is_unhealthy_and_not_created(tmp_path: Path) -> None:
    r = health(tmp_path, "--into", "sqlite:///nothing-here.db")
    assert r.code == 1
    report = r.json()
    assert report["healthy"] is False
    assert all("no such database file" in c["reason"] for c in report["checks"])
    assert not (tmp_path / "nothing-here.db").exists()
    assert "ERROR tallyclerk.health" in r.err  # logged at error level too


def test_sink_without_audit_tables_with_a_separate_audit_store(
    tmp_path: Path, loaded_db: Path
) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "plain.db")
    con.execute("CREATE TABLE x (a)")
    con.close()
    r = health(tmp_path, "--into", "sqlite:///plain.db", "--audit", "sqlite:///data.db")
    assert r.code == 0, r.out
    # the plain database is no audit store
    r = health(tmp_path, "--into", "sqlite:///data.db", "--audit", "sqlite:///plain.db")
    assert r.code == 1
    audit = r.json()["checks"][0]
    assert audit["ok"] is False and "not an audit store" in audit["reason"]


def test_not_a_database_file(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    r = health(tmp_path, "--into", "sqlite:///junk.db")
    assert r.code == 1
    assert "not a database" in r.json()["checks"][1]["reason"]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable, even for root (immutable attribute), or skip saying why."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i is unavailable: {done.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_database_is_unhealthy(tmp_path: Path, loaded_db: Path) -> None:
    with read_only(loaded_db):
        r = health(tmp_path, "--into", "sqlite:///data.db")
    assert r.code == 1, r.out
    reasons = [c["reason"] for c in r.json()["checks"]]
    assert all(reason and "readonly" in reason for reason in reasons), reasons


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_a_server_that_never_answers_fails_within_the_timeouts(
    tmp_path: Path, loaded_db: Path, silent_server: int
) -> None:
    url = f"postgresql://loader:s3cret-pw@127.0.0.1:{silent_server}/warehouse"
    r = health(tmp_path, "--into", url, "--audit", "sqlite:///data.db",
               "--connect-timeout", "1", "--read-timeout", "1")
    assert r.code == 1, r.out + r.err
    audit, sink = r.json()["checks"]
    assert audit["ok"] is True
    assert sink["ok"] is False
    assert "timeout" in sink["reason"] or "no answer within" in sink["reason"], sink
    assert sink["url"] == f"postgresql://loader:***@127.0.0.1:{silent_server}/warehouse"
    assert "s3cret-pw" not in r.out + r.err


def test_bad_url_is_a_usage_error(tmp_path: Path) -> None:
    r = health(tmp_path, "--into", "mysql://u:pw@host/db")
    assert r.code == 2 and "pw@" not in r.err and "Traceback" not in r.err


@pytest.mark.postgres
def test_healthy_postgresql(tmp_path: Path, pg_url: str) -> None:
    from tallyclerk.audit import AuditService

    AuditService(pg_url).close()  # creates the audit schema
    r = health(tmp_path, "--into", pg_url, "--connect-timeout", "10", "--read-timeout", "10")
    assert r.code == 0, r.out + r.err
    audit, sink = r.json()["checks"]
    assert audit["schema_version"] == SCHEMA_VERSION and sink["ok"] is True
    password = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in r.out + r.err
