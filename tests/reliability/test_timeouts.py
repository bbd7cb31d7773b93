"""Timeouts: a database that does not answer ends the command within the configured connect and
read timeouts with a clear error and the documented exit code (never a hang).

* connecting: a local socket that accepts and never replies (a thread listening on
  127.0.0.1:0) as a PostgreSQL URL, for ``load`` (as the sink, and as the audit store) and
  ``status``; ``connect_timeout_s`` is libpq's ``connect_timeout``;
* reading: a real server whose target table is locked by another session, so the loader's
  statements never get an answer; ``read_timeout_s`` is the server's ``statement_timeout``.

No wall-clock assertion: the subprocess timeout (generous) is the only bound checked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.util import env_for, tallyclerk

SECRET = "n0t-in-output"
FAST = {
    "TALLYCLERK_CONNECT_TIMEOUT_S": "1",
    "TALLYCLERK_READ_TIMEOUT_S": "1",
    "TALLYCLERK_MAX_RETRIES": "1",
    "TALLYCLERK_BACKOFF_INITIAL_MS": "5",
    "TALLYCLERK_BACKOFF_MAX_MS": "10",
}
LIMIT_S = 90  # generous: ~2 attempts x 1 s, plus start-up on a busy CI machine


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never sends a byte; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    server.settimeout(0.1)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)  # held open, never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()
    assert accepted, "the silent server was never contacted"


def _csv(directory: Path) -> None:
    (directory / "a.csv").write_text("id,name\n1,x\n2,y\n", encoding="utf-8")


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    assert SECRET not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tallyclerk: error: "), err
    return last


def test_load_into_a_silent_server_fails_the_file_on_the_connect_timeout(
    tmp_path: Path, silent_server: int
) -> None:
    _csv(tmp_path)
    url = f"postgresql://u:{SECRET}@127.0.0.1:{silent_server}/db"
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", url, "--audit",
                   "sqlite:///audit.db", "--json", cwd=tmp_path, env=env_for(**FAST),
                   timeout=LIMIT_S)
    assert r.code == 1, r.err  # the file failed; the audit store recorded it
    assert SECRET not in r.out + r.err and "Traceback" not in r.err
    (f,) = r.json()["files"]
    assert f["status"] == "failed"
    assert "timeout" in f["error"] and "u:***@127.0.0.1" in f["error"], f


def test_load_with_a_silent_audit_store_stops_with_exit_3(
    tmp_path: Path, silent_server: int
) -> None:
    _csv(tmp_path)
    url = f"postgresql://u:{SECRET}@127.0.0.1:{silent_server}/db"
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", url, "--json", cwd=tmp_path,
                   env=env_for(**FAST), timeout=LIMIT_S)
    assert r.code == 3, r.err
    assert r.out == ""
    assert "timeout" in _one_line_error(r.err)


def test_status_against_a_silent_server_stops_with_exit_3(
    tmp_path: Path, silent_server: int
) -> None:
    url = f"postgresql://u:{SECRET}@127.0.0.1:{silent_server}/db"
    r = tallyclerk("status", "--into", url, cwd=tmp_path, env=env_for(**FAST), timeout=LIMIT_S)
    assert r.code == 3, r.err
    assert "timeout" in _one_line_error(r.err)


def test_statement_that_gets_no_answer_ends_on_the_read_timeout(
    tmp_path: Path, pg_url: str
) -> None:
    psycopg = pytest.importorskip("psycopg")
    _csv(tmp_path)
    first = tallyclerk("load", "a.csv", "--table", "t", "--into", pg_url, "--audit",
                       "sqlite:///audit.db", cwd=tmp_path)
    assert first.code == 0, first.err
    (tmp_path / "b.csv").write_text("id,name\n3,z\n", encoding="utf-8")
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as locker:
        locker.execute('LOCK TABLE "t" IN ACCESS EXCLUSIVE MODE')  # held until the block ends
        r = tallyclerk("load", "b.csv", "--table", "t", "--into", pg_url, "--audit",
                       "sqlite:///audit.db", "--json", cwd=tmp_path, env=env_for(**FAST),
                       timeout=LIMIT_S)
        locker.rollback()
    assert r.code == 1, r.err
    assert "Traceback" not in r.err
    (f,) = r.json()["files"]
    assert f["status"] == "failed" and "timeout" in f["error"], f
    again = tallyclerk("load", "b.csv", "--table", "t", "--into", pg_url, "--audit",
                       "sqlite:///audit.db", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    with psycopg.connect(libpq) as conn:
        assert conn.execute('SELECT count(*) FROM "t"').fetchone() == (3,)


def test_audit_store_that_gets_no_answer_ends_on_the_read_timeout(
    tmp_path: Path, pg_url: str
) -> None:
    psycopg = pytest.importorskip("psycopg")
    _csv(tmp_path)
    first = tallyclerk("load", "a.csv", "--table", "t", "--into", pg_url, cwd=tmp_path)
    assert first.code == 0, first.err
    (tmp_path / "b.csv").write_text("id,name\n3,z\n", encoding="utf-8")
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as locker:
        locker.execute("LOCK TABLE tallyclerk_files IN ACCESS EXCLUSIVE MODE")
        r = tallyclerk("load", "b.csv", "--table", "t", "--into", pg_url, "--json",
                       cwd=tmp_path, env=env_for(**FAST), timeout=LIMIT_S)
        locker.rollback()
    assert r.code == 3, r.err
    assert "timeout" in _one_line_error(r.err)
    again = tallyclerk("load", "b.csv", "--table", "t", "--into", pg_url, "--json",
                       cwd=tmp_path)
    assert again.code == 0, again.err
