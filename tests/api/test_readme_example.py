"""The README's "Using tallyclerk from Python" example runs as written (a fresh interpreter in an
empty directory), and what it records is what ``tallyclerk status --events`` shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.clirun import env_for, run_cli
from tests.test_docs import section


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", section("Using tallyclerk from Python"), re.S)
    assert blocks, "the section has no python example"
    return str(blocks[0])


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example(), encoding="utf-8")
    env = env_for()
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "TOTAL" in done.stdout and "orders.csv" in done.stdout
    status = run_cli("status", "--events", "--json", "--into", "sqlite:///shop.db",
                     cwd=tmp_path, env=env)
    assert status.code == 0, status.err
    events = status.json()["events"]
    assert events[0]["type"] == "invoice_sent"
    assert events[0]["payload"] == {"order": 1, "channel": "email"}
