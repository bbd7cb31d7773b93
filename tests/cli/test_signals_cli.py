"""SIGTERM / SIGINT in the middle of a load: the file rolls back, nothing is half-committed,
and a re-run loads every row exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import count_rows, env_for, query, tallyclerk

ROWS = 20_000

# Announces (by creating a file) that the load is in progress, then keeps it slow.
SLOW_PLUGIN = '''
import os, time
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_validate_batch(batch, context):
    marker = os.environ["TC_TEST_MARKER"]
    if batch.first_record_number > 300 and not os.path.exists(marker):
        open(marker, "w").close()
    time.sleep(0.01)
'''


def wait_for(path: Path, proc: subprocess.Popen[str], limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"load ended early ({proc.returncode}): {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the load never reached the marker")
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_load_rolls_back_and_rerun_loads_exactly_once(
    tmp_path: Path, signum: int, code: int
) -> None:
    data = tmp_path / "big.csv"
    with data.open("w", encoding="utf-8") as f:
        f.write("id,name\n")
        for i in range(ROWS):
            f.write(f"{i},name-{i}\n")
    (tmp_path / "slow_plugin.py").write_text(SLOW_PLUGIN, encoding="utf-8")
    marker = tmp_path / "marker"
    env = env_for(TC_TEST_MARKER=str(marker), TALLYCLERK_BATCH_ROWS="100")
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tallyclerk.cli", "load", "big.csv", "--table", "t", "--json",
         "-p", "slow_plugin"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(marker, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["status"] == "cancelled"
    f = report["files"][0]
    assert f["status"] == "failed" and "interrupted" in f["error"]
    assert 0 < f["rows_read"] < ROWS and f["rows_written"] == 0
    # interrupted rows were never judged bad: rolled back, not rejected
    assert f["rows_rejected"] == 0 and f["rows_read"] == f["rows_rolled_back"]
    assert report["rows_rolled_back"] == f["rows_read"] and report["rows_rejected"] == 0
    manifest = query(db_path := tmp_path / "tallyclerk.db",
                     "SELECT rows_read, rows_rejected, rows_rolled_back FROM tallyclerk_files")
    assert manifest == [(f["rows_read"], 0, f["rows_read"])]
    batch = query(db_path, "SELECT rows_rejected, rows_rolled_back FROM tallyclerk_batches")
    assert batch == [(0, f["rows_read"])]
    db = tmp_path / "tallyclerk.db"
    assert count_rows(db, "t") == 0  # nothing half-committed
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    again = tallyclerk("load", "big.csv", "--table", "t", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    assert again.json()["files"][0]["status"] == "loaded"
    assert query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"') == [(ROWS, ROWS)]
