"""``load --workers N`` on SQLite: the work list serializes under ``BEGIN IMMEDIATE``; the report
covers every path given (a missing one fails, the others load once); ``--load-id`` resumes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    env.update(extra)
    return subprocess.run([sys.executable, "-m", "tallyclerk.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def test_workers_on_sqlite(tmp_path: Path) -> None:
    names = []
    for n in range(30):
        (tmp_path / f"f{n:02d}.csv").write_text(
            "n,r\n" + "".join(f"{n},{r}\n" for r in range(40)))
        names.append(f"f{n:02d}.csv")
    (tmp_path / "twin.csv").write_text((tmp_path / "f00.csv").read_text())  # same content
    paths = [*names, "missing.csv", "twin.csv"]
    r = cli("load", *paths, "--table", "t", "--workers", "3", "--load-id", "day-1", "--json",
            cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the missing path failed
    report = json.loads(r.stdout)
    assert report["batch_id"] == "day-1"
    assert [f["path"] for f in report["files"]] == paths
    status = {f["path"]: f["status"] for f in report["files"]}
    assert status.pop("missing.csv") == "failed"
    assert {status.pop("f00.csv"), status.pop("twin.csv")} == {"loaded", "skipped"}
    assert set(status.values()) == {"loaded"}
    assert report["status"] == "partial" and report["rows_written"] == 30 * 40
    for f in report["files"]:
        assert f["rows_read"] == f["rows_written"] + f["rows_rejected"] + f["rows_rolled_back"]
    with sqlite3.connect(tmp_path / "tallyclerk.db") as conn:
        per_file = conn.execute("SELECT count(*) FROM t GROUP BY _tc_file_id").fetchall()
        dupes = conn.execute("SELECT n, r FROM t GROUP BY n, r HAVING count(*) > 1").fetchall()
    assert sorted(per_file) == [(40,)] * 30 and dupes == []

    # the same load again: nothing is taken twice; the report is the load's
    again = cli("load", *paths, "--table", "t", "--workers", "2", "--load-id", "day-1",
                "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["files"] == report["files"]
    # a usage error is found before any worker starts
    bad = cli("load", "f01.csv", "--table", "t", "--workers", "2", "--load-id", "no spaces",
              cwd=tmp_path)
    assert bad.returncode == 2 and "--load-id" in bad.stderr and "Traceback" not in bad.stderr



def test_a_worker_opens_its_sqlite_file_at_most_twice(tmp_path: Path) -> None:
    """Each worker process: the sink's connection and the audit store's one (its work list
    shares the audit service's), counted inside each file's transaction."""
    names = []
    for n in range(6):
        (tmp_path / f"f{n}.csv").write_text("n,r\n" + "".join(f"{n},{r}\n" for r in range(20)))
        names.append(f"f{n}.csv")
    out = tmp_path / "fds.txt"
    r = cli("load", *names, "--table", "t", "--workers", "2", "-p", "tests.workers.fdcount",
            cwd=tmp_path, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "python")]),
            TC_FDCOUNT_DB=str(tmp_path / "tallyclerk.db"), TC_FDCOUNT_OUT=str(out))
    assert r.returncode == 0, r.stderr
    counts = [int(line.split()[1]) for line in out.read_text().splitlines()]
    assert len(counts) == 6
    assert max(counts) <= 2, counts
