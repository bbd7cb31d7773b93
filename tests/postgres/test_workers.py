"""Many workers on one PostgreSQL server: ``tallyclerk load --workers N [--load-id ID]``.

Real processes, real SIGKILL/SIGSTOP, a real server. Leases are tiny (2 s, heartbeat 0.5 s) so
a dead or stalled worker's file is taken over quickly; nothing here asserts wall-clock time:
waits poll the database with generous deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
LEASE_ENV = {"TALLYCLERK_LEASE_S": "2", "TALLYCLERK_HEARTBEAT_S": "0.5"}
DEADLINE_S = 240.0


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    return {**base, "PYTHONPATH": str(REPO), **LEASE_ENV, **extra}


def start(args: list[str], cwd: Path, **extra: str) -> subprocess.Popen[str]:
    """``tallyclerk ARGS`` in a process group of its own (a simulated machine)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tallyclerk.cli", *args], cwd=cwd, env=env(**extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"load did not finish:\n{err[-3000:]}")
    return proc.returncode, out, err


def wait_for(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture()
def db(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    try:
        yield engine
    finally:
        engine.dispose()


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        try:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        except sa.exc.ProgrammingError:  # the table does not exist yet
            return []


def make_files(directory: Path, count: int, rows_per_file: int, prefix: str = "f") -> list[Path]:
    """Files whose rows are ``(file number, row number)``: every row of the load is unique."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = directory / f"{prefix}{n:04d}.csv"
        body = "".join(f"{n},{r}\n" for r in range(rows_per_file))
        path.write_text("file_no,row_no\n" + body)
        paths.append(path)
    return paths


SCHEMA = {"fields": [{"name": "file_no", "type": "integer"}, {"name": "row_no", "type": "integer"}]}


def assert_exactly_once(engine: sa.Engine, paths: list[Path], rows_per_file: dict[str, int],
                        table: str = "events") -> None:
    """Every file loaded once (one ``loaded`` manifest row), every row once, each row tagged
    with the file id of that one loaded attempt."""
    loaded = rows(engine, "SELECT path, id FROM tallyclerk_files WHERE status = 'loaded' "
                          "AND target_table = :t", t=table)
    by_name: dict[str, list[int]] = {}
    for path, file_id in loaded:
        by_name.setdefault(Path(path).name, []).append(file_id)
    assert sorted(by_name) == sorted(p.name for p in paths)
    assert all(len(ids) == 1 for ids in by_name.values()), by_name
    per_file = dict(rows(engine, f'SELECT _tc_file_id, count(*) FROM "{table}" GROUP BY 1'))
    expected = {by_name[name][0]: n for name, n in rows_per_file.items()}
    assert per_file == expected
    dupes = rows(engine, f'SELECT file_no, row_no FROM "{table}" GROUP BY 1, 2 HAVING count(*) > 1')
    assert dupes == []
    total = rows(engine, f'SELECT count(*) FROM "{table}"')[0][0]
    assert total == sum(rows_per_file.values())


def worker_pids(engine: sa.Engine) -> set[int]:
    owners = rows(engine, "SELECT DISTINCT owner FROM tallyclerk_work WHERE status = 'taken'")
    return {int(owner.rpartition(":")[2]) for (owner,) in owners if owner}


def test_four_workers_survive_two_sigkills(pg_url: str, db: sa.Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    paths = make_files(data, 200, 200)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    proc = start(["load", *[str(p) for p in paths], "--table", "events", "--into", pg_url,
                  "--schema", "schema.json", "--workers", "4", "--json"], tmp_path)

    def two_busy_workers() -> list[int]:
        done = rows(db, "SELECT count(*) FROM tallyclerk_work WHERE status = 'done'")
        pids = worker_pids(db)
        return sorted(pids)[:2] if done and done[0][0] >= 10 and len(pids) >= 3 else []

    victims = wait_for("workers holding files", two_busy_workers)
    for pid in victims:  # frozen first, so what they hold when they die is known
        os.kill(pid, signal.SIGSTOP)
    held = rows(db, "SELECT id, takes FROM tallyclerk_work WHERE status = 'taken' AND "
                    "split_part(owner, ':', 2)::int IN (:a, :b)", a=victims[0], b=victims[1])
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    code, out, err = finish(proc)

    assert code == 0, err[-3000:]
    assert err.count("was killed by SIGKILL") == 2, err[-3000:]
    report = json.loads(out)
    assert [f["path"] for f in report["files"]] == [str(p) for p in paths]
    assert {f["status"] for f in report["files"]} == {"loaded"}
    assert (report["rows_read"], report["rows_written"]) == (40_000, 40_000)
    assert report["status"] == "succeeded" and len(report["batches"]) >= 2
    assert_exactly_once(db, paths, {p.name: 200 for p in paths})
    # the victims held work when they died; whatever they held was taken over
    assert rows(db, "SELECT count(*) FROM tallyclerk_work WHERE status <> 'done'") == [(0,)]
    # what the victims held was taken over by the survivors (a new take, then done)
    taken_over = dict(rows(db, "SELECT id, takes FROM tallyclerk_work"))
    assert all(taken_over[item] > takes for item, takes in held), (held, err[-2000:])


def test_two_hosts_share_one_load(pg_url: str, db: sa.Engine, tmp_path: Path) -> None:
    shared = tmp_path / "shared"  # the storage both machines mount
    paths = make_files(shared, 120, 300)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    args = ["load", *[str(p) for p in paths], "--table", "events", "--into", pg_url,
            "--schema", str(schema), "--workers", "2", "--load-id", "nightly-1", "--json"]
    host_dirs = [tmp_path / "host-a", tmp_path / "host-b"]
    for d in host_dirs:
        d.mkdir()
    procs = [start(args, d, TALLYCLERK_HOST=d.name) for d in host_dirs]
    results = [finish(p) for p in procs]

    for code, _out, err in results:
        assert code == 0, err[-3000:]
    reports = [json.loads(out) for _code, out, _err in results]
    for report in reports:
        assert report["batch_id"] == "nightly-1" == report["load_id"]
        assert [f["path"] for f in report["files"]] == [str(p) for p in paths]
        assert {f["status"] for f in report["files"]} == {"loaded"}
        assert report["rows_written"] == 120 * 300
    assert reports[0]["files"] == reports[1]["files"]
    assert_exactly_once(db, paths, {p.name: 300 for p in paths})
    owners = rows(db, "SELECT DISTINCT split_part(owner, ':', 1) FROM tallyclerk_files "
                      "WHERE status = 'loaded'")
    assert {o for (o,) in owners} == {"host-a", "host-b"}

    # the same command again on one host: the load is already done; a new load skips it all
    code, out, err = finish(start(args, host_dirs[0], TALLYCLERK_HOST="host-a"))
    assert code == 0, err[-3000:]
    assert {f["status"] for f in json.loads(out)["files"]} == {"loaded"}
    again = [a if a != "nightly-1" else "nightly-2" for a in args]
    code, out, err = finish(start(again, host_dirs[1], TALLYCLERK_HOST="host-b"))
    assert code == 0, err[-3000:]
    assert {f["status"] for f in json.loads(out)["files"]} == {"skipped"}
    assert_exactly_once(db, paths, {p.name: 300 for p in paths})


def test_a_dead_host_is_taken_over(pg_url: str, db: sa.Engine, tmp_path: Path) -> None:
    """Machine A dies (its whole process group is SIGKILLed mid-load): machine B, another host
    identity (so no pid checks apply, only leases), finishes every file exactly once."""
    shared = tmp_path / "shared"
    paths = make_files(shared, 150, 300)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    args = ["load", *[str(p) for p in paths], "--table", "events", "--into", pg_url,
            "--schema", str(schema), "--workers", "2", "--load-id", "l1", "--json"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    host_a = start(args, tmp_path / "a", TALLYCLERK_HOST="host-a")
    wait_for("host A to hold files", lambda: any(
        o.startswith("host-a:") for (o,) in rows(
            db, "SELECT owner FROM tallyclerk_work WHERE status = 'taken'") if o))
    host_b = start(args, tmp_path / "b", TALLYCLERK_HOST="host-b")
    wait_for("host A to finish some files", lambda: rows(
        db, "SELECT count(*) FROM tallyclerk_work WHERE status = 'done'")[0][0] >= 5)
    os.killpg(host_a.pid, signal.SIGKILL)
    host_a.communicate(timeout=30)

    code, out, err = finish(host_b)
    assert code == 0, err[-3000:]
    report = json.loads(out)
    assert {f["status"] for f in report["files"]} == {"loaded"}
    assert_exactly_once(db, paths, {p.name: 300 for p in paths})


def test_a_stalled_worker_cannot_commit(pg_url: str, db: sa.Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    paths = make_files(data, 8, 50)
    slow = data / "z-slow.csv"  # last in order: the table exists before anyone reaches it
    slow.write_text("file_no,row_no\n" + "".join(f"999,{r}\n" for r in range(600)))
    paths.append(slow)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    proc = start(["load", *[str(p) for p in paths], "--table", "events", "--into", pg_url,
                  "--schema", "schema.json", "--workers", "2", "--batch-rows", "10",
                  "-p", "tests.postgres.tc_slow_plugin", "--json"], tmp_path, TC_SLOW_S="0.05")
    marker = wait_for("a worker to start the slow file",
                      lambda: sorted(data.glob("z-slow.csv.started.*")))
    stalled = int(marker[0].read_text())
    os.kill(stalled, signal.SIGSTOP)
    try:
        def taken_over() -> bool:
            found = rows(db, "SELECT owner FROM tallyclerk_files WHERE path = :p "
                             "AND status = 'loaded'", p=str(slow))
            return bool(found) and not found[0][0].endswith(f":{stalled}")

        wait_for("another worker to load the slow file", taken_over)
    finally:
        os.kill(stalled, signal.SIGCONT)
    code, out, err = finish(proc)

    assert code == 0, err[-3000:]
    assert "LeaseLost" in err, err[-3000:]
    report = json.loads(out)
    assert {f["status"] for f in report["files"]} == {"loaded"}
    counts = {p.name: 50 for p in paths[:-1]}
    counts[slow.name] = 600
    assert_exactly_once(db, paths, counts)
    stale = rows(db, "SELECT status, error FROM tallyclerk_files WHERE path = :p "
                     "AND owner LIKE :o", p=str(slow), o=f"%:{stalled}")
    assert len(stale) == 1 and stale[0][0] == "failed"
    assert "interrupted" in stale[0][1]


def test_sigterm_stops_the_load_and_the_same_load_id_finishes_it(
    pg_url: str, db: sa.Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    paths = make_files(data, 6, 50)
    slow = data / "z-slow.csv"
    slow.write_text("file_no,row_no\n" + "".join(f"999,{r}\n" for r in range(2000)))
    paths.append(slow)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    args = ["load", *[str(p) for p in paths], "--table", "events", "--into", pg_url,
            "--schema", "schema.json", "--workers", "2", "--batch-rows", "10",
            "--load-id", "resumable", "-p", "tests.postgres.tc_slow_plugin", "--json"]
    proc = start(args, tmp_path)
    wait_for("a worker to start the slow file", lambda: sorted(data.glob("z-slow.csv.started.*")))
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    report = json.loads(out)
    assert report["status"] == "cancelled"
    entry = {Path(f["path"]).name: f for f in report["files"]}["z-slow.csv"]
    assert entry["status"] == "failed" and "--load-id resumable" in entry["error"]
    assert rows(db, "SELECT count(*) FROM events WHERE file_no = 999") == [(0,)]

    code, out, err = finish(start(args, tmp_path, TC_SLOW_S="0"))
    assert code == 0, err[-3000:]
    assert {f["status"] for f in json.loads(out)["files"]} == {"loaded"}
    counts = {p.name: 50 for p in paths[:-1]}
    counts[slow.name] = 2000
    assert_exactly_once(db, paths, counts)


def test_on_error_abort_stops_the_whole_load(pg_url: str, db: sa.Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-bad.csv").write_text("file_no,row_no\noops,1\n")  # first in line: a bad row
    paths = [data / "a-bad.csv"]
    for n in range(1, 30):  # slow files, so the abort lands while most are still waiting
        path = data / f"z-slow-{n:02d}.csv"
        path.write_text("file_no,row_no\n" + "".join(f"{n},{r}\n" for r in range(20)))
        paths.append(path)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    code, out, err = finish(start(
        ["load", *map(str, paths), "--table", "events", "--into", pg_url, "--schema",
         "schema.json", "--workers", "2", "--on-error", "abort", "--batch-rows", "5",
         "-p", "tests.postgres.tc_slow_plugin", "--json"], tmp_path, TC_SLOW_S="0.05"))
    assert code == 1, err[-3000:]
    files = {Path(f["path"]).name: f for f in json.loads(out)["files"]}
    assert files.pop("a-bad.csv")["status"] == "failed"
    stopped = [f for f in files.values() if f["status"] == "failed"]
    assert stopped and all("not attempted" in f["error"] for f in stopped), err[-3000:]
    loaded = sorted(name for name, f in files.items() if f["status"] == "loaded")
    assert len(loaded) + len(stopped) == 29
    got = rows(db, "SELECT file_no, count(*) FROM events GROUP BY 1 ORDER BY 1")
    assert got == [(int(name[7:9]), 20) for name in loaded]  # loaded files once, nothing else
