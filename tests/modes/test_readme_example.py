"""The README's daily-snapshot merge example runs as written and prints what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.clirun import ROOT, env_for


def test_the_daily_snapshot_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Write modes: append, replace, merge", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    expected = [line.removeprefix("# ") for line in script.splitlines() if line.startswith("# ")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "tallyclerk"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m tallyclerk.cli "$@"\n',
                    encoding="utf-8")
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = env_for()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    proc = subprocess.run(["bash", "-ec", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-len(expected):] == expected == [
        "1|Ada|gold", "2|Bob|gold", "3|Cy|bronze"]
