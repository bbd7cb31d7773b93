"""Fault injection through the real CLI: a sink failing on its Nth call, a competing writer
holding SQLite's write lock, a full database, a dropped PostgreSQL connection, the retry and
circuit-breaker settings, and the fault points of :mod:`tallyclerk.faults`.

Every case ends with the documented exit code and a clear message, never a traceback; nothing
is lost (a run without the fault afterwards loads every row exactly once) and nothing is marked
``loaded`` that is not in the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.util import (
    check_exactly_once,
    check_report,
    cli_argv,
    env_for,
    expected_ids,
    query,
    tallyclerk,
    write_dataset,
    write_schema,
)

FILES = 5
ROWS = 1_000
TABLE = "events"

FAST_RETRY = {
    "TALLYCLERK_BACKOFF_INITIAL_MS": "5",
    "TALLYCLERK_BACKOFF_MAX_MS": "20",
}


@pytest.fixture()
def data(tmp_path: Path) -> list[Path]:
    write_schema(tmp_path)
    return write_dataset(tmp_path, FILES, ROWS)


def load_args(paths: list[Path], *extra: str, audit: bool = False) -> list[str]:
    args = ["load", *[p.name for p in paths], "--table", TABLE, "--into", "sqlite:///data.db",
            "--schema", "schema.json", "--batch-rows", "250", "--json", *extra]
    if audit:
        args += ["--audit", "sqlite:///audit.db"]
    return args


def loaded_manifest_agrees(db: Path) -> None:
    """Nothing marked loaded that is not in the table (and no row of an unloaded file)."""
    loaded = dict(query(db, "SELECT id, rows_written FROM tallyclerk_files "
                            "WHERE status = 'loaded'"))
    per_file = dict(query(db, f'SELECT _tc_file_id, count(*) FROM "{TABLE}" GROUP BY 1')) \
        if query(db, "SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)) else {}
    assert per_file == {k: v for k, v in loaded.items() if v}, (loaded, per_file)


def finish_and_check(tmp_path: Path, paths: list[Path], audit: bool = False) -> None:
    """Run again without the fault: every row exactly once."""
    r = tallyclerk(*load_args(paths, audit=audit), cwd=tmp_path)
    assert r.code == 0, r.err
    check_report(r.json())
    audit_db = tmp_path / ("audit.db" if audit else "data.db")
    check_exactly_once(tmp_path / "data.db", audit_db, TABLE, paths, ROWS)


def no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


# --- a sink that fails on the Nth call ---------------------------------------------------------


def test_transient_failure_once_is_retried_and_loads_everything(
    tmp_path: Path, data: list[Path]
) -> None:
    calls = tmp_path / "calls"
    env = env_for(TC_FAIL_AT="6", TC_FAIL_TRANSIENT="1", TC_CALLS_FILE=str(calls), **FAST_RETRY)
    r = tallyclerk(*load_args(data, "-p", "tc_faulty_sink"), cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    no_traceback(r.err)
    assert "transient failure" in r.err and "injected sink failure on write call 6" in r.err
    report = r.json()
    check_report(report)
    assert [f["status"] for f in report["files"]] == ["loaded"] * FILES
    # file 2 was written twice (its first attempt rolled back at call 6): 4 batches per file
    assert len(calls.read_text().split()) == FILES * 4 + 2
    check_exactly_once(tmp_path / "data.db", tmp_path / "data.db", TABLE, data, ROWS)


def test_permanent_failure_once_fails_that_file_only(tmp_path: Path, data: list[Path]) -> None:
    env = env_for(TC_FAIL_AT="6", TC_FAIL_TRANSIENT="0", **FAST_RETRY)
    r = tallyclerk(*load_args(data, "-p", "tc_faulty_sink"), cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    report = r.json()
    check_report(report)
    assert [f["status"] for f in report["files"]] == ["loaded", "failed", "loaded", "loaded",
                                                      "loaded"]
    failed = report["files"][1]
    assert failed["rows_written"] == 0
    assert "injected sink failure on write call 6" in failed["error"]
    loaded_manifest_agrees(tmp_path / "data.db")
    finish_and_check(tmp_path, data)


def test_failing_from_n_on_retries_then_opens_the_breaker(
    tmp_path: Path, data: list[Path]
) -> None:
    calls = tmp_path / "calls"
    env = env_for(TC_FAIL_AT="5", TC_FAIL_UNTIL="always", TC_CALLS_FILE=str(calls),
                  TALLYCLERK_MAX_RETRIES="2", TALLYCLERK_BREAKER_THRESHOLD="3",
                  TALLYCLERK_BREAKER_COOLDOWN_S="3600", **FAST_RETRY)
    r = tallyclerk(*load_args(data, "-p", "tc_faulty_sink"), cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    report = r.json()
    check_report(report)
    statuses = [f["status"] for f in report["files"]]
    assert statuses == ["loaded"] + ["failed"] * (FILES - 1)
    assert "injected sink failure" in report["files"][1]["error"]
    # file 2: three attempts (one try, two retries) -> three consecutive failures: open;
    # the later files fail fast without touching the sink
    for f in report["files"][2:]:
        assert "circuit breaker open" in f["error"], f
    assert len(calls.read_text().split()) == 4 + 3
    loaded_manifest_agrees(tmp_path / "data.db")
    assert query(tmp_path / "data.db",
                 "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == [(0,)]
    finish_and_check(tmp_path, data)


def test_breaker_half_opens_after_the_cooldown_and_closes_on_success(
    tmp_path: Path, data: list[Path]
) -> None:
    calls = tmp_path / "calls"
    # write calls 1-3 fail (no retries): files 1 and 2 fail and open the breaker (threshold
    # 2); after the (tiny) cool-down a trial goes through: call 3 fails and re-opens it, the
    # next trial (call 4) succeeds and closes it; the files after it load normally
    env = env_for(TC_FAIL_AT="1", TC_FAIL_UNTIL="3", TC_CALLS_FILE=str(calls),
                  TALLYCLERK_MAX_RETRIES="0", TALLYCLERK_BREAKER_THRESHOLD="2",
                  TALLYCLERK_BREAKER_COOLDOWN_S="0.001")
    r = tallyclerk(*load_args(data, "-p", "tc_faulty_sink"), cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    report = r.json()
    check_report(report)
    files = report["files"]
    statuses = [f["status"] for f in files]
    assert statuses[:2] == ["failed", "failed"]
    assert statuses[-1] == "loaded"
    first_loaded = statuses.index("loaded")
    assert statuses[first_loaded:] == ["loaded"] * (FILES - first_loaded)
    for f in files[:first_loaded]:
        assert "injected sink failure" in f["error"] or "circuit breaker open" in f["error"], f
    assert sum("injected sink failure" in (f["error"] or "") for f in files) == 3
    loaded_manifest_agrees(tmp_path / "data.db")
    finish_and_check(tmp_path, data)


# --- fault points: transient and permanent failures at the commit boundary ---------------------


@pytest.mark.parametrize("audit", [False, True], ids=["same-db", "separate-audit"])
def test_transient_fault_before_commit_is_retried(
    tmp_path: Path, data: list[Path], audit: bool
) -> None:
    env = env_for(TALLYCLERK_FAULT="before-data-commit:transient@3", **FAST_RETRY)
    r = tallyclerk(*load_args(data, audit=audit), cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    no_traceback(r.err)
    assert "injected fault at before-data-commit" in r.err
    check_exactly_once(tmp_path / "data.db", tmp_path / ("audit.db" if audit else "data.db"),
                       TABLE, data, ROWS)


def test_permanent_fault_before_commit_fails_the_file(tmp_path: Path, data: list[Path]) -> None:
    env = env_for(TALLYCLERK_FAULT="before-data-commit:raise@3")
    r = tallyclerk(*load_args(data), cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    files = r.json()["files"]
    assert [f["status"] for f in files] == ["loaded", "loaded", "failed", "loaded", "loaded"]
    assert "injected fault" in files[2]["error"]
    loaded_manifest_agrees(tmp_path / "data.db")
    finish_and_check(tmp_path, data)


# --- database is locked: a competing writer ----------------------------------------------------

HOLDER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("PRAGMA journal_mode=WAL")
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("COMMIT")
"""


def hold_write_lock(db: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 0


def prime(tmp_path: Path, paths: list[Path], audit: bool) -> None:
    """Load the first file, so both databases exist with their tables."""
    r = tallyclerk(*load_args(paths[:1], audit=audit), cwd=tmp_path)
    assert r.code == 0, r.err


@pytest.mark.parametrize("audit", [False, True], ids=["audit-store-locked", "data-db-locked"])
def test_locked_database_is_retried_until_the_writer_releases(
    tmp_path: Path, data: list[Path], audit: bool
) -> None:
    prime(tmp_path, data, audit)
    holder = hold_write_lock(tmp_path / "data.db")
    env = env_for(TALLYCLERK_BUSY_TIMEOUT_MS="50", TALLYCLERK_MAX_RETRIES="1000",
                  TALLYCLERK_BACKOFF_INITIAL_MS="10", TALLYCLERK_BACKOFF_MAX_MS="50")
    loader = subprocess.Popen(cli_argv(*load_args(data, audit=audit)), cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert loader.stderr is not None
        seen = []
        for line in loader.stderr:  # wait until the loader reports the lock and backs off
            seen.append(line)
            if "locked" in line and ("retry" in line or "retrying" in line):
                break
        else:
            pytest.fail(f"the loader never reported the lock: {''.join(seen)}")
    finally:
        release(holder)
    out, err = loader.communicate(timeout=120)
    assert loader.returncode == 0, "".join(seen) + err
    no_traceback("".join(seen) + err)
    check_report(json.loads(out))
    check_exactly_once(tmp_path / "data.db", tmp_path / ("audit.db" if audit else "data.db"),
                       TABLE, data, ROWS)


def test_lock_held_too_long_on_the_audit_store_stops_with_exit_3(
    tmp_path: Path, data: list[Path]
) -> None:
    prime(tmp_path, data, audit=False)
    holder = hold_write_lock(tmp_path / "data.db")
    env = env_for(TALLYCLERK_BUSY_TIMEOUT_MS="20", TALLYCLERK_MAX_RETRIES="2", **FAST_RETRY)
    try:
        r = tallyclerk(*load_args(data), cwd=tmp_path, env=env)
    finally:
        release(holder)
    assert r.code == 3, r.err
    no_traceback(r.err)
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("tallyclerk: error: ") and "locked" in last, r.err
    # the last line names the store and how often it was tried, not only the driver's words
    assert "audit store sqlite:///data.db: gave up trying to " in last, r.err
    assert "after 3 attempt(s)" in last, r.err
    loaded_manifest_agrees(tmp_path / "data.db")
    finish_and_check(tmp_path, data)


def test_lock_held_too_long_on_the_data_db_fails_the_files_with_exit_1(
    tmp_path: Path, data: list[Path]
) -> None:
    prime(tmp_path, data, audit=True)
    holder = hold_write_lock(tmp_path / "data.db")
    env = env_for(TALLYCLERK_BUSY_TIMEOUT_MS="20", TALLYCLERK_MAX_RETRIES="2", **FAST_RETRY)
    try:
        r = tallyclerk(*load_args(data, audit=True), cwd=tmp_path, env=env)
    finally:
        release(holder)
    assert r.code == 1, r.err
    no_traceback(r.err)
    files = r.json()["files"]
    assert files[0]["status"] == "skipped"
    for f in files[1:]:
        assert f["status"] == "failed"
        assert "locked" in f["error"] or "circuit breaker open" in f["error"], f
    assert query(tmp_path / "audit.db", "SELECT count(*) FROM tallyclerk_files "
                 "WHERE status = 'loaded'") == [(1,)]
    finish_and_check(tmp_path, data, audit=True)


# --- a full disk ----------------------------------------------------------------------------------


def test_full_database_fails_the_file_and_marks_nothing_loaded(
    tmp_path: Path, data: list[Path]
) -> None:
    (tmp_path / "big").mkdir()
    write_dataset(tmp_path / "big", 1, 40_000)
    env = env_for(TC_MAX_PAGES="120")
    r = tallyclerk("load", data[0].name, "big/part-000.csv", "--table", TABLE, "--into",
                   "sqlite:///data.db", "--schema", "schema.json", "--json", "-p", "tc_small_db",
                   cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    report = r.json()
    check_report(report)
    assert [f["status"] for f in report["files"]] == ["loaded", "failed"]
    assert "database or disk is full" in report["files"][1]["error"]
    assert "file big/part-000.csv failed (SinkError)" in r.err  # logged at error level
    db = tmp_path / "data.db"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT status FROM tallyclerk_files WHERE path = 'big/part-000.csv'") == [
        ("failed",)
    ]
    loaded_manifest_agrees(db)
    # the disk "grows": without the limit the file loads
    again = tallyclerk("load", data[0].name, "big/part-000.csv", "--table", TABLE, "--into",
                       "sqlite:///data.db", "--schema", "schema.json", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    assert [f["status"] for f in again.json()["files"]] == ["skipped", "loaded"]
    loaded_manifest_agrees(db)


# --- a dropped connection (PostgreSQL) -----------------------------------------------------------


def test_dropped_postgresql_connection_is_retried(
    tmp_path: Path, data: list[Path], pg_url: str
) -> None:
    drops = tmp_path / "drops"
    libpq_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    env = env_for(TC_ADMIN_URL=libpq_url, TC_DROP_LOG=str(drops), **FAST_RETRY)
    args = ["load", *[p.name for p in data], "--table", TABLE, "--into", pg_url, "--schema",
            "schema.json", "--batch-rows", "250", "--json", "-p", "tc_drop_conn"]
    r = tallyclerk(*args, cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    no_traceback(r.err)
    assert drops.read_text().split() == ["terminated", "1"], r.err
    assert "transient failure" in r.err
    password = pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in r.err and password not in r.out
    check_report(r.json())
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(libpq_url) as conn:
        got = [row[0] for row in conn.execute(f'SELECT id FROM "{TABLE}" ORDER BY id')]
        loaded = conn.execute("SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded'"
                              ).fetchone()
    assert got == expected_ids(data)
    assert loaded == (FILES,)


def test_breaker_opening_during_a_files_retries_keeps_the_cause(
    tmp_path: Path, data: list[Path]
) -> None:
    env = env_for(TC_FAIL_AT="1", TC_FAIL_UNTIL="always", TALLYCLERK_MAX_RETRIES="5",
                  TALLYCLERK_BREAKER_THRESHOLD="3", TALLYCLERK_BREAKER_COOLDOWN_S="3600",
                  **FAST_RETRY)
    r = tallyclerk(*load_args(data[:1], "-p", "tc_faulty_sink"), cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    no_traceback(r.err)
    (f,) = r.json()["files"]
    assert "circuit breaker open" in f["error"], f
    assert "last error: injected sink failure on write call 3" in f["error"], f
