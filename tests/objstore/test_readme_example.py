"""The README's object-storage example works as written: its shell block is run line by line
(only the ``pip install`` line is left out, the port is a free one, and ``tallyclerk`` is this
checkout's), starting its own moto server."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

from tests import s3server
from tests.clirun import env_for
from tests.test_docs import section


def example() -> list[str]:
    text = section("Object storage and HTTP: `s3://`, `gs://`, `az://`, `https://`")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "the section has no sh example"
    return block.group(1).strip().splitlines()


def test_readme_s3_example_runs_as_written(tmp_path: Path) -> None:
    lines = example()
    assert any(line.startswith("tallyclerk load 's3://") for line in lines)
    port = str(s3server.free_port())
    script = ["set -e", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    for line in lines:
        if line.startswith("pip install"):
            continue
        line = line.replace("9000", port)
        if line.startswith("tallyclerk "):
            line = "python3 -m tallyclerk.cli " + line[len("tallyclerk "):]
        script.append(line)
    env = {k: v for k, v in env_for().items() if not k.startswith("AWS_")}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180, check=False)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "s3://landing/2026/orders-1.csv" in proc.stdout
    con = sqlite3.connect(tmp_path / "tallyclerk.db")
    try:
        assert con.execute("SELECT id, amount FROM orders ORDER BY id").fetchall() == [
            (1, 9.5), (2, 9.5)]  # typed: inferred from the first object
    finally:
        con.close()


def test_readme_watch_bucket_example_runs_as_written(tmp_path: Path) -> None:
    """The watch section's bucket example, the same way: the watcher runs in the background,
    the example waits for the object through ``tallyclerk status`` and stops it with SIGTERM."""
    text = section("Watching a bucket: `s3://`, `gs://`, `az://` prefixes")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "the section has no sh example"
    lines = block.group(1).strip().splitlines()
    assert any(line.startswith("tallyclerk watch 's3://") for line in lines)
    port = str(s3server.free_port())
    script = ["set -e", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    for line in lines:
        if line.startswith("pip install"):
            continue
        line = line.replace("9000", port)
        line = re.sub(r"(^|until |; )tallyclerk ", r"\1python3 -m tallyclerk.cli ", line)
        if line.startswith("kill %2"):  # then wait for it, to see its exit status
            line = "kill %2; wait %2 || echo watcher exit $?"
        script.append(line)
    env = {k: v for k, v in env_for().items() if not k.startswith("AWS_")}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "watcher exit 143" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    con = sqlite3.connect(tmp_path / "tallyclerk.db")
    try:
        assert sorted(con.execute("SELECT id, amount FROM orders").fetchall()) == [
            (1, 9.5), (2, 3.0)]  # typed: inferred from the first object watched
    finally:
        con.close()
