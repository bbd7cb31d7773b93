"""``tallyclerk watch`` over a bucket prefix (and a folder beside it), end to end: real watcher
subprocesses against moto's S3 server, objects and files dropped while they run, a SIGKILL in
the middle of an object, an endpoint that goes down and comes back, an object deleted between
the listing and the read, SIGTERM while a listing hangs. Waits poll the databases and the
health endpoint with deadlines that fail the test; the one time bound (SIGTERM) is ten times
the promise and a tenth of the timeouts it must not wait for."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests import s3server
from tests.clirun import query
from tests.watch.helpers import drop, start_watch, stop, wait_for

FAST = ("--interval", "0.2", "--settle", "0.3")


def rows(first: int, count: int, bad: int = 0) -> str:
    """``count`` valid rows with ids from ``first``, then ``bad`` rows the schema rejects."""
    good = "".join(f"{i},n{i},{i % 50}\n" for i in range(first, first + count))
    return "id,name,amount\n" + good + "".join(f"x{k},bad,1\n" for k in range(bad))


def loaded(db: Path, path: str | None = None) -> int:
    try:
        if path is None:
            sql, args = "SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded'", ()
        else:
            sql = "SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded' AND path = ?"
            args = (path,)
        return int(query(db, sql, args)[0][0])
    except Exception:  # noqa: BLE001 - the store does not exist yet
        return 0


def taken(db: Path, path: str) -> bool:
    try:
        return bool(query(db, "SELECT 1 FROM tallyclerk_files WHERE path = ?", (path,)))
    except Exception:  # noqa: BLE001 - the store does not exist yet
        return False


def table_ids(db: Path) -> list[int]:
    try:
        return [int(r[0]) for r in query(db, 'SELECT id FROM "t"')]
    except Exception:  # noqa: BLE001 - the table does not exist yet
        return []


def log_lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


def file_lines(log: Path, name: str, status: str) -> list[dict[str, Any]]:
    return [x["file"] for x in log_lines(log) if "file" in x
            and x["file"]["path"].rsplit("/", 1)[1] == name and x["file"]["status"] == status]


def health_url(log: Path, proc: subprocess.Popen[str]) -> str:
    found: str = wait_for("the health URL", lambda: next(
        (x["health_url"] for x in log_lines(log) if "health_url" in x), None),
        proc=proc, log=log)
    return found


def health(url: str) -> tuple[int, dict[str, Any], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
            return resp.status, json.loads(text), text
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text), text


def test_folder_and_bucket_sigkill_restart_every_row_once(
        work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server) -> None:
    inbox = work / "in"
    inbox.mkdir()
    db, log = work / "w.db", work / "watch.log"
    src = f"s3://{bucket}/in/"
    expected: dict[str, set[int]] = {}  # path -> the ids it holds

    def put(name: str, first: int, count: int, bad: int = 0) -> None:
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=rows(first, count, bad).encode())
        expected[src + name] = set(range(first, first + count))

    def local(name: str, first: int, count: int, bad: int = 0) -> None:
        drop(inbox / name, rows(first, count, bad))
        expected[str(inbox / name)] = set(range(first, first + count))

    args = (src, str(inbox), "--table", "t", "--into", f"sqlite:///{db}", "--schema",
            "schema.json", "--batch-rows", "100", *FAST)
    put("o0.csv", 0, 2000, bad=3)
    put("o1.csv", 2000, 2000)
    # the first batch is o0 (batches 1-21), then o1, in flight at batch 30 when the first
    # watcher SIGKILLs itself
    first = start_watch(*args, cwd=work, TALLYCLERK_FAULT="batch-written:kill@30",
                        **s3_server.env())
    wait_for("o0 claimed", lambda: taken(db, src + "o0.csv"), log=log)
    local("f0.csv", 4000, 2000, bad=2)  # dropped while it runs
    local("f1.csv", 6000, 2000)
    put("o2.csv", 8000, 1500)
    local("f2.csv", 9500, 1500)
    first.wait(timeout=180)
    code, _ = stop(first)
    assert code == -signal.SIGKILL, code
    assert loaded(db) == 1 and sorted(table_ids(db)) == sorted(expected[src + "o0.csv"])
    assert query(db, "SELECT path FROM tallyclerk_files WHERE status = 'loading'") == [
        (src + "o1.csv",)]  # left by the kill, rolled back

    second = start_watch(*args, "--health-port", "0", cwd=work, **s3_server.env())
    url = health_url(log, second)
    wait_for("six files", lambda: loaded(db) >= 6, proc=second, log=log)
    put("o3.csv", 11000, 500)
    local("f3.csv", 11500, 500)
    s3.put_object(Bucket=bucket, Key="in/o1.csv", Body=rows(2000, 2000).encode())  # same bytes
    put("o0.csv", 12000, 10)  # rewritten with new content: a new file
    expected[src + "o0.csv"] |= set(range(0, 2000))
    wait_for("the rewritten o0 and two new files", lambda: loaded(db) >= 9, proc=second, log=log)
    wait_for("o1 rewritten with the same bytes, skipped",
             lambda: file_lines(log, "o1.csv", "skipped"), proc=second, log=log)
    status, body, text = health(url)
    assert status == 200 and body["status"] == "ok", text
    assert body["sources"] == [
        {"source": src, "state": "ok", "failures": 0, "error": None},
        {"source": str(inbox), "state": "ok", "failures": 0, "error": None}]
    code, out = stop(second)
    assert code == 143, out

    ids = table_ids(db)
    assert len(ids) == len(set(ids)), "a row was loaded twice"
    assert set(ids) == set().union(*expected.values())
    assert query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == [(0,)]
    manifest = query(db, "SELECT path, fingerprint, rows_read, rows_written, rows_rejected, "
                         "rows_rolled_back FROM tallyclerk_files WHERE status = 'loaded'")
    assert len({(m[0], m[1]) for m in manifest}) == len(manifest)  # each content once
    assert sorted(m[0] for m in manifest) == sorted([*expected, src + "o0.csv"])
    for path, _, read, written, rejected, rolled_back in manifest:
        assert read == written + rejected and rolled_back == 0, path
    rejected = {m[0]: m[4] for m in manifest if m[4]}
    assert rejected == {src + "o0.csv": 3, str(inbox / "f0.csv"): 2}
    for line in (x["file"] for x in log_lines(log) if "file" in x):
        assert line["rows_read"] == (line["rows_written"] + line["rows_rejected"]
                                     + line["rows_rolled_back"]), line
    everything = log.read_text() + out + text
    assert s3server.SECRET_KEY not in everything and s3server.ACCESS_KEY not in everything


def test_listing_endpoint_down_then_up(work: Path, bucket: str, s3: Any,
                                       s3_server: s3server.S3Server) -> None:
    """Down: the bucket's source backs off (logged once), the folder keeps loading, /health
    says 503 with the source's error; up: logged once more, the objects that arrived meanwhile
    load."""
    inbox = work / "in"
    inbox.mkdir()
    db, log = work / "w.db", work / "watch.log"
    src = f"s3://{bucket}/in/"
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.SwitchProxy(port)
    try:
        s3.put_object(Bucket=bucket, Key="in/o0.csv", Body=rows(0, 10).encode())
        proc = start_watch(src, str(inbox), "--table", "t", "--into", f"sqlite:///{db}",
                           "--health-port", "0", *FAST, cwd=work,
                           TALLYCLERK_MAX_RETRIES="1", **s3_server.env(proxy.endpoint))
        url = health_url(log, proc)
        wait_for("o0", lambda: loaded(db) >= 1, proc=proc, log=log)
        proxy.down()
        s3.put_object(Bucket=bucket, Key="in/o1.csv", Body=rows(10, 10).encode())

        def failing() -> tuple[int, dict[str, Any], str] | None:
            got = health(url)
            return got if got[1]["sources"][0]["failures"] >= 3 else None

        status, body, text = wait_for("three failed listings", failing, proc=proc, log=log)
        assert status == 503 and body["status"] == "unavailable", text
        assert body["sources"][0]["state"] == "failing" and src in body["sources"][0]["error"]
        drop(inbox / "f0.csv", rows(20, 10))
        wait_for("the folder's file during the outage", lambda: loaded(db) >= 2,
                 proc=proc, log=log)
        assert loaded(db, src + "o1.csv") == 0
        proxy.up()
        wait_for("o1 once the endpoint is back", lambda: loaded(db, src + "o1.csv"),
                 proc=proc, log=log)
        wait_for("health ok", lambda: health(url)[0] == 200, proc=proc, log=log)
        code, out = stop(proc)
    finally:
        proxy.close()
    assert code == 143, out
    errors = [x for x in log_lines(log) if x.get("source") == src]
    assert [x["level"].lower() for x in errors] == ["error", "warning"], errors
    assert "failed" in errors[0]["msg"] and "works again" in errors[1]["msg"]
    ids = table_ids(db)
    assert sorted(ids) == list(range(30))
    everything = log.read_text() + out + text
    assert s3server.SECRET_KEY not in everything


def test_object_deleted_between_listing_and_read(work: Path, bucket: str, s3: Any,
                                                 s3_server: s3server.S3Server) -> None:
    """It fails once ("no such object"), the batch's other object loads, it is not tried
    again while gone, and loads when it is put back."""
    db, log = work / "w.db", work / "watch.log"
    src = f"s3://{bucket}/in/"
    s3.put_object(Bucket=bucket, Key="in/keep.csv", Body=rows(0, 5).encode())
    s3.put_object(Bucket=bucket, Key="in/vanish.csv", Body=rows(5, 5).encode())
    proc = start_watch(src, "--table", "t", "--into", f"sqlite:///{db}", "-p", "tc_vanish",
                       "--health-port", "0", *FAST, cwd=work, TC_VANISH_BUCKET=bucket,
                       TC_VANISH_KEY="in/vanish.csv",
                       PYTHONPATH=_pythonpath(Path(__file__).parent), **s3_server.env())
    url = health_url(log, proc)
    wait_for("keep.csv", lambda: loaded(db) >= 1, proc=proc, log=log)
    failed = wait_for("vanish.csv failed", lambda: file_lines(log, "vanish.csv", "failed"),
                      proc=proc, log=log)
    assert "no such object" in failed[0]["error"], failed
    cycles = health(url)[1]["cycles"]
    wait_for("five more listings", lambda: health(url)[1]["cycles"] >= cycles + 5,
             proc=proc, log=log)
    assert len(file_lines(log, "vanish.csv", "failed")) == 1  # gone: not tried again
    s3.put_object(Bucket=bucket, Key="in/vanish.csv", Body=rows(5, 5).encode())
    wait_for("vanish.csv put back", lambda: loaded(db) >= 2, proc=proc, log=log)
    code, out = stop(proc)
    assert code == 143, out
    assert sorted(table_ids(db)) == list(range(10))


def test_an_object_that_cannot_be_read_is_tried_again_at_the_next_listing(
        work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server) -> None:
    """Listings work, every read of the object is cut: the file fails (nothing of it loaded),
    and is tried again at the next listing (not remembered as bad, as a corrupt local file
    is) until the store serves it."""
    db, log = work / "w.db", work / "watch.log"
    src = f"s3://{bucket}/in/"
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=100_000, cuts=-1)
    try:
        s3.put_object(Bucket=bucket, Key="in/big.csv", Body=rows(0, 30_000).encode())
        proc = start_watch(src, "--table", "t", "--into", f"sqlite:///{db}", *FAST, cwd=work,
                           TALLYCLERK_MAX_RETRIES="1", **s3_server.env(proxy.endpoint))
        wait_for("two failed reads", lambda: len(file_lines(log, "big.csv", "failed")) >= 2,
                 proc=proc, log=log)
        assert table_ids(db) == []
        proxy.cuts = 0  # the store recovers
        wait_for("big.csv", lambda: loaded(db) >= 1, proc=proc, log=log)
        code, out = stop(proc)
    finally:
        proxy.close()
    assert code == 143, out
    assert sorted(table_ids(db)) == list(range(30_000))


def _pythonpath(extra: Path) -> str:
    from tests.clirun import env_for

    return f"{extra}:{env_for()['PYTHONPATH']}"


def test_a_hanging_listing_delays_neither_the_folder_nor_sigterm(
        work: Path, bucket: str, s3_server: s3server.S3Server) -> None:
    """An endpoint that accepts connections and never answers: the bucket's listing waits for
    the read timeout (600 s here); the folder beside it keeps loading, and SIGTERM stops the
    watcher at once."""
    inbox = work / "in"
    inbox.mkdir()
    db, log = work / "w.db", work / "watch.log"
    with contextlib.closing(socket.socket()) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)  # connections complete in the backlog; nothing ever answers
        endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
        proc = start_watch(f"s3://{bucket}/in/", str(inbox), "--table", "t", "--into",
                           f"sqlite:///{db}", *FAST, cwd=work,
                           TALLYCLERK_READ_TIMEOUT_S="600", TALLYCLERK_CONNECT_TIMEOUT_S="600",
                           **s3_server.env(endpoint))
        wait_for("the watch to start", lambda: any(
            str(x.get("msg", "")).startswith("watching") for x in log_lines(log)),
            proc=proc, log=log)
        drop(inbox / "f0.csv", rows(0, 10))
        wait_for("the folder's file", lambda: loaded(db) >= 1, proc=proc, log=log)
        drop(inbox / "f1.csv", rows(10, 10))
        wait_for("another", lambda: loaded(db) >= 2, proc=proc, log=log)
        began = time.monotonic()
        code, out = stop(proc)
        took = time.monotonic() - began
    assert code == 143, out
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert sorted(table_ids(db)) == list(range(20))


def test_once_loads_what_is_there_and_exits_1_when_the_bucket_cannot_be_listed(
        work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server) -> None:
    from tests.clirun import env_for, run_cli

    db = work / "w.db"
    src = f"s3://{bucket}/in/"
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=rows(0, 3).encode())
    s3.put_object(Bucket=bucket, Key="in/a.csv.done", Body=b"")
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=rows(3, 3).encode())  # no marker yet
    args = ("watch", src, "--table", "t", "--into", f"sqlite:///{db}", "--once",
            "--marker", "{name}.done", "--json")
    ok = run_cli(*args, cwd=work, env=env_for(**s3_server.env()))
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["files_loaded"] == 1 and sorted(table_ids(db)) == [0, 1, 2]

    down = run_cli(*args, cwd=work, env=env_for(
        TALLYCLERK_MAX_RETRIES="0", **s3_server.env(f"http://127.0.0.1:{s3server.free_port()}")))
    assert down.code == 1, down.err
    summary = json.loads(down.out)
    assert summary["sources_failing"] == 1 and summary["outages"] == 1
    assert down.err.count(f"listing {src} failed") == 1, down.err
    assert "Traceback" not in down.err
    assert s3server.SECRET_KEY not in down.err + down.out
