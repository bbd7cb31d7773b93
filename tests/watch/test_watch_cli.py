"""``tallyclerk watch`` end to end on SQLite: real subprocesses, files dropped while it runs,
SIGKILL, SIGTERM, settle time and marker files, the health endpoint. Waits poll the database
with generous deadlines; nothing asserts wall-clock time."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.clirun import query
from tests.watch.helpers import csv_file, drop, start_watch, stop, wait_for

FAST = ("--interval", "0.2", "--settle", "0.3")


def loaded_files(db: Path) -> int:
    try:
        return query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded'")[0][0]
    except Exception:  # noqa: BLE001 - the store does not exist yet
        return 0


def taken(db: Path, path: Path) -> bool:
    try:
        return bool(query(db, "SELECT 1 FROM tallyclerk_files WHERE path = ?", (str(path),)))
    except Exception:  # noqa: BLE001 - the store does not exist yet
        return False


def ids(db: Path) -> tuple[int, int]:
    try:
        return query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"')[0]
    except Exception:  # noqa: BLE001 - the table does not exist yet
        return (0, 0)


def test_files_dropped_while_running_sigkill_restart_every_row_once(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    log = tmp_path / "watch.log"
    args = (str(inbox), "--table", "t", "--into", f"sqlite:///{db}", "--batch-rows", "100",
            *FAST)
    for k in range(3):
        csv_file(inbox / f"f{k}.csv", k * 2000, 2000)
    # the first watcher SIGKILLs itself in the middle of its third file (batch 45 of 20 a file)
    first = start_watch(*args, cwd=tmp_path, TALLYCLERK_FAULT="batch-written:kill@45")
    for k in range(3, 6):
        csv_file(inbox / f"f{k}.csv", k * 2000, 2000)
    first.wait(timeout=180)
    code, _ = stop(first)
    assert code == -signal.SIGKILL, code
    assert loaded_files(db) == 2 and ids(db) == (4000, 4000)  # the third rolled back
    second = start_watch(*args, cwd=tmp_path)
    wait_for("6 files", lambda: loaded_files(db) >= 6, proc=second, log=log)
    with gzip.open(inbox / "f6.csv.gz.tmp", "wt") as fh:  # a compressed one, renamed in place
        fh.write("id,name,amount\n" + "".join(f"{i},n,1\n" for i in range(12000, 14000)))
    (inbox / "f6.csv.gz.tmp").replace(inbox / "f6.csv.gz")
    csv_file(inbox / "f7.csv", 14000, 2000)
    wait_for("8 files", lambda: loaded_files(db) >= 8, proc=second, log=log)
    code, out = stop(second)
    assert code == 143, out
    assert ids(db) == (16000, 16000)
    assert query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == [(0,)]
    per_file = query(db, "SELECT path, count(*) FROM tallyclerk_files WHERE status = 'loaded' "
                         "GROUP BY path HAVING count(*) > 1")
    assert per_file == []
    # one JSON line per file, with its outcome
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    done = [x["file"] for x in lines if "file" in x and x["file"]["status"] == "loaded"]
    assert sorted(f["path"].rsplit("/", 1)[1] for f in done) == [
        "f0.csv", "f1.csv", "f2.csv", "f3.csv", "f4.csv", "f5.csv", "f6.csv.gz", "f7.csv"]
    assert all(f["rows_read"] == f["rows_written"] + f["rows_rejected"] + f["rows_rolled_back"]
               for f in done)


def test_a_file_still_being_written_waits_for_the_settle_time(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    log = tmp_path / "watch.log"
    growing = inbox / "growing.csv"
    growing.write_text("id,name,amount\n" + "".join(f"{i},g,1\n" for i in range(100, 150)))
    old = csv_file(inbox / "old.csv", 0, 10)
    os.utime(old, (time.time() - 60, time.time() - 60))  # unchanged for a minute: ready at once
    proc = start_watch(str(inbox), "--table", "t", "--into", f"sqlite:///{db}",
                       "--interval", "0.2", "--settle", "4", cwd=tmp_path)
    for k in range(4):  # the producer keeps writing, less than --settle apart
        time.sleep(1.0)
        with growing.open("a") as fh:
            fh.write("".join(f"{i},g,1\n" for i in range(150 + k * 50, 200 + k * 50)))
        assert not taken(db, growing), "a file was taken while it was being written"
    wait_for("both files", lambda: loaded_files(db) >= 2, proc=proc, log=log)
    stop(proc)
    assert ids(db) == (260, 260)  # all of it, once


def test_marker_files_and_health_endpoint(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    log = tmp_path / "watch.log"
    proc = start_watch(str(inbox), "--table", "t", "--into", f"sqlite:///{db}",
                       "--interval", "0.2", "--marker", "{name}.done", "--health-port", "0",
                       cwd=tmp_path)
    url = wait_for("the health URL", lambda: next(
        (json.loads(x).get("health_url") for x in log.read_text().splitlines()
         if "health_url" in x), None) if log.exists() else None, proc=proc, log=log)
    csv_file(inbox / "a.csv", 0, 5)
    csv_file(inbox / "b.csv", 5, 5)
    drop(inbox / "b.csv.done", "")
    wait_for("b.csv", lambda: loaded_files(db) >= 1, proc=proc, log=log)
    def health() -> dict | None:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            body: dict = json.loads(resp.read())
        return body if body["files_loaded"] == 1 else None

    body = wait_for("the health endpoint to count b.csv", health, proc=proc, log=log)
    assert body["status"] == "ok" and body["breaker"] == "closed"
    assert query(db, "SELECT path FROM tallyclerk_files") == [(str(inbox / "b.csv"),)]
    drop(inbox / "a.csv.done", "")
    wait_for("a.csv", lambda: loaded_files(db) >= 2, proc=proc, log=log)
    code, _ = stop(proc, signal.SIGINT)
    assert code == 130
    assert ids(db) == (10, 10)
    try:
        urllib.request.urlopen(url, timeout=2)
        served_after_exit = True
    except (urllib.error.URLError, OSError):
        served_after_exit = False
    assert not served_after_exit


def test_sigterm_mid_file_rolls_it_back_and_the_next_watch_loads_it(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    log = tmp_path / "watch.log"
    csv_file(inbox / "big.csv", 0, 400_000)
    proc = start_watch(str(inbox), "--table", "t", "--into", f"sqlite:///{db}",
                       "--batch-rows", "1000", *FAST, cwd=tmp_path)
    wait_for("the claim", lambda: taken(db, inbox / "big.csv"), proc=proc, log=log)
    code, _ = stop(proc)
    assert code == 143
    assert ids(db)[0] in (0, 400_000)  # never half a file
    rest = start_watch(str(inbox), "--table", "t", "--into", f"sqlite:///{db}", "--once",
                       "--settle", "0", cwd=tmp_path)
    rest.wait(timeout=180)
    code, _ = stop(rest)
    assert code == 0
    assert ids(db) == (400_000, 400_000)


def test_corrupt_archive_fails_once_and_is_not_retried_until_it_changes(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    log = tmp_path / "watch.log"
    whole = gzip.compress(("id,name,amount\n" + "1,a,1\n" * 20000).encode())
    (inbox / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    proc = start_watch(str(inbox), "--table", "t", "--into", f"sqlite:///{db}", *FAST,
                       cwd=tmp_path)
    csv_file(inbox / "ok.csv", 0, 3)
    wait_for("ok.csv", lambda: loaded_files(db) >= 1, proc=proc, log=log)
    time.sleep(1.0)  # several listings
    (inbox / "cut.csv.gz").write_bytes(whole)  # the producer re-sends it whole
    wait_for("the repaired archive", lambda: loaded_files(db) >= 2, proc=proc, log=log)
    stop(proc)
    lines = [json.loads(x)["file"] for x in log.read_text().splitlines() if '"file"' in x]
    cut = [f for f in lines if f["path"].endswith("cut.csv.gz")]
    assert [f["status"] for f in cut] == ["failed", "loaded"]
    assert "gzip data is corrupt or truncated" in cut[0]["error"]
