"""``tallyclerk watch`` on PostgreSQL: two watchers sharing one folder and one audit store, and
a database outage while a watcher runs (the server stopped, files dropped, the server back).
Real processes, a real server; waits poll with generous deadlines."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import pgserver
from tests.watch.helpers import csv_file, start_watch, stop, wait_for

pytestmark = pytest.mark.postgres

FAST = ("--interval", "0.2", "--settle", "0.3")
ENV = {"TALLYCLERK_LEASE_S": "4", "TALLYCLERK_HEARTBEAT_S": "1",
       "TALLYCLERK_CONNECT_TIMEOUT_S": "2", "TALLYCLERK_BREAKER_COOLDOWN_S": "1",
       "TALLYCLERK_MAX_RETRIES": "2", "TALLYCLERK_BACKOFF_MAX_MS": "200"}


def scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    except sa.exc.DBAPIError:  # not there yet, or the server is down
        return None
    finally:
        engine.dispose()


def loaded(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded'") or 0)


def test_two_watchers_share_a_folder_without_loading_a_file_twice(tmp_path: Path,
                                                                   pg_url: str) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    args = (str(inbox), "--table", "t", "--into", pg_url, *FAST, "--json")
    watchers = [start_watch(*args, cwd=tmp_path, **ENV) for _ in range(2)]
    for k in range(12):
        csv_file(inbox / f"f{k:02}.csv", k * 1000, 1000)
    wait_for("12 files", lambda: loaded(pg_url) >= 12, proc=watchers[0],
             log=tmp_path / "watch.log")
    summaries = []
    for proc in watchers:
        code, out = stop(proc)
        assert code == 143, (tmp_path / "watch.log").read_text()[-4000:]
        summaries.append(json.loads(out))
    assert sum(s["files_loaded"] for s in summaries) == 12  # each file by one watcher
    assert scalar(pg_url, 'SELECT count(*) FROM "t"') == 12000
    assert scalar(pg_url, 'SELECT count(DISTINCT id) FROM "t"') == 12000
    assert scalar(pg_url, "SELECT count(*) FROM (SELECT fingerprint FROM tallyclerk_files "
                          "WHERE status = 'loaded' GROUP BY fingerprint "
                          "HAVING count(*) > 1) d") == 0


@pytest.fixture()
def own_server() -> Iterator[pgserver.PgServer]:
    """A cluster of this test's own, so that it can be stopped and started again."""
    try:
        server = pgserver.start()
    except pgserver.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    if server.datadir is None:
        pytest.skip("TALLYCLERK_PG_URL names a server this test cannot stop")
    try:
        yield server
    finally:
        server.stop()


def _pg_ctl(server: pgserver.PgServer, *args: str) -> None:
    assert server.bindir is not None and server.datadir is not None
    pgserver._as_postgres([str(server.bindir / "pg_ctl"), "-D", str(server.datadir), *args])


def _restart(server: pgserver.PgServer) -> None:
    assert server.datadir is not None
    base = server.datadir.parent
    opts = (f"-p {server.port} -k {base / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
    _pg_ctl(server, "-o", opts, "-l", str(base / "log"), "-w", "-t", "60", "start")


def test_database_outage_backs_off_resumes_and_loses_nothing(
    tmp_path: Path, own_server: pgserver.PgServer
) -> None:
    url = own_server.url()
    inbox = tmp_path / "in"
    inbox.mkdir()
    log = tmp_path / "watch.log"
    proc = start_watch(str(inbox), "--table", "t", "--into", url, *FAST, "--health-port", "0",
                       cwd=tmp_path, **ENV)
    csv_file(inbox / "before.csv", 0, 500)
    wait_for("the first file", lambda: loaded(url) >= 1, proc=proc, log=log)
    _pg_ctl(own_server, "-m", "fast", "-w", "stop")
    try:
        csv_file(inbox / "during1.csv", 500, 500)
        csv_file(inbox / "during2.csv", 1000, 500)
        wait_for("the outage to be noticed",
                 lambda: '"batch stopped' in log.read_text() or "failed" in log.read_text(),
                 proc=proc, log=log)
    finally:
        _restart(own_server)
    wait_for("the files dropped during the outage", lambda: loaded(url) >= 3, proc=proc, log=log)
    code, _ = stop(proc, signal.SIGTERM)
    assert code == 143
    assert scalar(url, 'SELECT count(*) FROM "t"') == 1500
    assert scalar(url, 'SELECT count(DISTINCT id) FROM "t"') == 1500
    assert scalar(url, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == 0
    assert pgserver.PASSWORD not in log.read_text()
