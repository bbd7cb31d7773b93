"""Running ``tallyclerk watch`` as a real subprocess and waiting on what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import cli_argv, env_for

DEADLINE_S = 180.0


def start_watch(*args: str, cwd: Path, **extra_env: str) -> subprocess.Popen[str]:
    """``tallyclerk watch ARGS`` in its own process group, logging JSON to a file."""
    log = (cwd / "watch.log").open("a")
    return subprocess.Popen(
        cli_argv("watch", *args, "--log-format", "json"), cwd=cwd,
        env=env_for(**extra_env), stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("watcher did not stop")
    return proc.returncode, out


def wait_for(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S,
             proc: subprocess.Popen[str] | None = None, log: Path | None = None) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"watcher exited with {proc.returncode} waiting for {what}:\n{tail}")
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}:\n{tail}")


def drop(path: Path, text: str) -> Path:
    """Write a file as producers should: a temporary name, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def csv_file(path: Path, first: int, count: int) -> Path:
    rows = "".join(f"{i},n{i},{i % 50}\n" for i in range(first, first + count))
    return drop(path, "id,name,amount\n" + rows)
