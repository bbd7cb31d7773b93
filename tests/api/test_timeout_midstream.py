"""The watchdog's timeout stops a file mid-stream, even while its source produces nothing.

A plugin source yields its first record batch and then stops producing (like a pipe whose
writer went quiet). With ``idle_timeout_s`` 0.5 the load must end on its own: the file
failed and rolled back with the timeout as its error, the batch ``timed_out``, nothing in the
table, and the process returns (a real subprocess, bounded generously: before the fix it
never returned).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import count_rows, write_csv

STALLED_PLUGIN = '''
import threading
from tallyclerk.builtins.csv_loader import tallyclerk_open_source as open_csv
from tallyclerk.hookspecs import hookimpl


class Stalled:
    """The first batch of a CSV file, then nothing until closed."""

    def __init__(self, inner):
        self._inner = inner
        self.path = inner.path
        self.batch_rows = 2
        self.closed = threading.Event()

    @property
    def columns(self):
        return self._inner.columns

    @property
    def bytes_read(self):
        return self._inner.bytes_read

    def __iter__(self):
        it = iter(self._inner)
        yield next(it)
        with open("stalled", "w"):
            pass
        self.closed.wait()
        yield from it

    def close(self):
        self.closed.set()
        self._inner.close()


@hookimpl(tryfirst=True)
def tallyclerk_open_source(path, options):
    src = open_csv(path=path, options={**options, "format": "csv"})
    return None if src is None else Stalled(src)
'''

LOAD = '''
import json, sys
import stalled_plugin, tallyclerk

report = tallyclerk.load(["a.csv"], table="t", into="sqlite:///t.db", plugins=[stalled_plugin],
                         settings={"idle_timeout_s": 0.5, "watchdog_interval_s": 0.05,
                                   "batch_rows": 2})
print(json.dumps(report.to_dict()))
'''


def test_idle_timeout_fails_a_stalled_file_and_the_load_returns(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [(i, f"n{i}", i) for i in range(1, 41)])
    (tmp_path / "stalled_plugin.py").write_text(STALLED_PLUGIN, encoding="utf-8")
    (tmp_path / "load.py").write_text(LOAD, encoding="utf-8")
    python = str(Path(__file__).resolve().parents[2] / "python")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([python, str(tmp_path)])}
    proc = subprocess.Popen([sys.executable, "load.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the load did not return after its idle timeout: {err}") from None
    assert proc.returncode == 0, err
    assert (tmp_path / "stalled").exists()  # the source did stop mid-file
    report = json.loads(out)
    assert report["status"] == "timed_out"
    [entry] = report["files"]
    assert entry["status"] == "failed"
    # the pipeline's words, or the watchdog's when it released the claim first
    assert entry["error"] in ("batch timed out (idle timeout)", "batch timed out (idle)")
    # nothing written; what was read (the first batch, or nothing when the watchdog's release
    # is the row kept) was rolled back
    assert entry["rows_written"] == 0
    assert entry["rows_read"] in (0, 2) and entry["rows_rolled_back"] == entry["rows_read"]
    assert count_rows(tmp_path / "t.db", "t") == 0
