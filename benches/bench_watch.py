"""Watch latency: how soon a file dropped into a watched folder (or an object put under a
watched bucket prefix) is loaded.

``python3 -m tallyclerk.cli watch IN --table orders --into sqlite:///DB --interval I --settle S``
runs in a child process; files (1,000 generated rows each) are dropped one at a time (written
under a temporary name, then renamed, as producers should) and the time from the rename to the
file's ``loaded`` manifest row is taken by polling the database every 10 ms.

Target (issue 14): a new file is loaded within ``interval + settle`` seconds: the median of the
latencies divided by ``interval + settle`` at most 1.0 (the worst is reported). Quick mode: 3
files, interval 0.5 s, settle 0.5 s; full mode (``TALLYCLERK_BENCH=full``): 10 files, 1 s and
1 s. The bucket case puts objects on moto's S3 server (``tests/s3server.py``) under
``s3://watched/in/``; each object is also copied to a spool before it is loaded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import s3server

import conftest as harness
import loadrun

FILES = harness.size(3, 10)
INTERVAL_S = 0.5 if harness.QUICK else 1.0
SETTLE_S = 0.5 if harness.QUICK else 1.0
DEADLINE_S = 120.0


def _loaded(db: Path, path: Path) -> bool:
    if not db.exists():
        return False
    con = sqlite3.connect(db, timeout=5)
    try:
        return bool(con.execute("SELECT 1 FROM tallyclerk_files WHERE path = ? AND "
                                "status = 'loaded'", (str(path),)).fetchall())
    except sqlite3.OperationalError:  # the audit tables are not created yet
        return False
    finally:
        con.close()


def _wait(what: str, check: object, proc: subprocess.Popen[bytes]) -> float:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if callable(check) and check():
            return time.monotonic()
        assert proc.poll() is None, f"the watcher exited ({proc.returncode}) waiting for {what}"
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _latencies(source: str, tmp_path: Path, env: dict[str, str],
               put: Callable[[str, str], str]) -> tuple[list[float], float]:
    """Start ``watch SOURCE``, drop a warm-up file then FILES files with ``put(name, text)``
    (returns the path the manifest names) and time each from the drop to its ``loaded`` row.
    Returns the latencies and ``interval + settle``."""
    src, _, schema = loadrun.data(1000)
    text = src.read_text()
    header, body = text.split("\n", 1)
    db = tmp_path / "w.db"
    argv = [sys.executable, "-m", "tallyclerk.cli", "watch", source, "--table", "orders",
            "--schema", str(schema), "--into", f"sqlite:///{db}",
            "--interval", str(INTERVAL_S), "--settle", str(SETTLE_S)]
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    latencies: list[float] = []
    try:
        # warm up: the first file also pays the start-up (imports, the audit schema)
        warm = put("warm.csv", text)
        _wait("the warm-up file", lambda: _loaded(db, warm), proc)
        for k in range(FILES):
            # distinct content: the same bytes would be skipped as already loaded
            content = header + "\n" + body.replace(",", f",{k}", 1)
            t0 = time.monotonic()
            path = put(f"f{k}.csv", content)
            latencies.append(_wait(path, lambda p=path: _loaded(db, p), proc) - t0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return latencies, INTERVAL_S + SETTLE_S


def _check(name: str, latencies: list[float], bound: float) -> None:
    harness.check_ratio(
        name, statistics.median(latencies) / bound, at_most=1.0,
        detail=f"{FILES} files, interval {INTERVAL_S:g} s + settle {SETTLE_S:g} s; latencies "
        f"{', '.join(f'{x:.2f}' for x in latencies)} s (worst {max(latencies) / bound:.2f}x); "
        f"{loadrun.load_average()}",
    )


def test_new_file_loaded_within_interval_plus_settle(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()

    def put(name: str, text: str) -> str:
        tmp = inbox / f"{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, inbox / name)  # written under a temporary name, then renamed
        return str(inbox / name)

    latencies, bound = _latencies(str(inbox), tmp_path, loadrun.cli_env(), put)
    _check("watch: new-file latency / (interval + settle), median", latencies, bound)


def test_new_object_loaded_within_interval_plus_settle(tmp_path: Path) -> None:
    """The same for a bucket prefix on moto's server (one PUT per object: it appears whole)."""
    with s3server.server_for_tests() as server:
        client = server.client()
        client.create_bucket(Bucket="watched")

        def put(name: str, text: str) -> str:
            client.put_object(Bucket="watched", Key=f"in/{name}", Body=text.encode())
            return f"s3://watched/in/{name}"

        latencies, bound = _latencies("s3://watched/in/", tmp_path,
                                      loadrun.cli_env(**server.env()), put)
    _check("watch: new-object latency (s3://) / (interval + settle), median", latencies, bound)
