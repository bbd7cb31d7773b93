"""The ``tallyclerk`` process's exit (issue 16.1): exit handlers run, the streams are flushed and
threads still running are waited for, as at any exit; the interpreter's teardown (clearing
every module, freeing every object) is skipped once the main thread is the only one left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import env_for, write_csv

EXIT_PROBE = '''
import atexit
import os
import sys
import threading
import time

from tallyclerk.hookspecs import hookimpl


class Teardown:
    def __del__(self, _write=os.write):
        _write(2, b"teardown ran\\n")


KEPT = Teardown()


def _late(write=os.write):
    time.sleep(0.3)
    write(2, b"thread finished\\n")


@hookimpl
def tallyclerk_file_start(context):
    atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
    sys.stderr.write("buffered " * 2000 + "end\\n")
    if os.environ.get("EXIT_PROBE_THREAD"):
        threading.Thread(target=_late, daemon=False).start()
'''


def _load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "exit_probe.py").write_text(EXIT_PROBE, encoding="utf-8")
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    return subprocess.run(
        [sys.executable, "-m", "tallyclerk.cli", "load", str(src), "--table", "t",
         "--into", f"sqlite:///{tmp_path / 'x.db'}", "-p", "exit_probe", "--json"],
        cwd=tmp_path, env=env_for(tmp_path, TALLYCLERK_LOAD_PLUGINS="", **env),
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_exit_runs_handlers_flushes_and_skips_the_teardown(tmp_path: Path) -> None:
    proc = _load(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"][0]["status"] == "loaded"  # stdout flushed whole
    err = proc.stderr.splitlines()
    assert "atexit ran" in err and "buffered " * 2000 + "end" in err
    assert "teardown ran" not in err  # no module teardown: the process just ended


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    proc = _load(tmp_path, EXIT_PROBE_THREAD="1")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert "thread finished" in err and "atexit ran" in err
    assert json.loads(proc.stdout)["files"][0]["status"] == "loaded"
