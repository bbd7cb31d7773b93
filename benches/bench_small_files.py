"""Many small files (issue 16.4): 10,000 files of 100 rows in one command.

* ``overhead``: the per-file cost beyond the file's rows: (one command loading the N small files
  - one command loading the same N x 100 rows as one file) / N. Target at most 1 ms a file.
* ``skip``: the same command run again, every file skipped: (that re-run - a re-run of the one
  big file) / N. Target at most 0.3 ms a file.

Both are divided by their target and checked as ratios (quick mode: 1,000 files, ceiling
doubled). Whole processes into SQLite, the audit store in the same file, fresh database per
round; the commands alternate so load from other processes falls on each alike; medians.
Run: ``python3 -m pytest benches/bench_small_files.py -s`` (``TALLYCLERK_BENCH=full``: 10,000).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import conftest as harness
import loadrun

FILES = harness.size(1_000, 10_000)
ROWS = 100
ROUNDS = harness.size(3, 3)
OVERHEAD_MS = 1.0
SKIP_MS = 0.3


def _write(path: Path, first: int, rows: int) -> None:
    path.write_text("id,name,amount\n" + "".join(
        f"{i},name {i},{i % 1000}.5\n" for i in range(first, first + rows)), encoding="utf-8")


def _load(paths: list[str], db: Path, cwd: Path) -> float:
    argv = [sys.executable, "-m", "tallyclerk.cli", "load", *paths, "--table", "t",
            "--into", f"sqlite:///{db}", "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=loadrun.cli_env(), capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"load failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def test_many_small_files(tmp_path: Path) -> None:
    small_dir = tmp_path / "small"
    small_dir.mkdir()
    small = []
    for f in range(FILES):
        p = small_dir / f"f{f:05d}.csv"
        _write(p, f * ROWS, ROWS)
        small.append(str(p))
    big = tmp_path / "all.csv"
    _write(big, 0, FILES * ROWS)
    db_small, db_big = tmp_path / "small.db", tmp_path / "big.db"
    t: dict[str, list[float]] = {"small": [], "big": [], "small again": [], "big again": []}
    for i in range(ROUNDS):
        loadrun.fresh(db_small)
        loadrun.fresh(db_big)
        order = [("small", small, db_small), ("big", [str(big)], db_big)]
        for name, paths, db in order if i % 2 == 0 else order[::-1]:
            t[name].append(_load(paths, db, tmp_path))
        for name, paths, db in order[::-1] if i % 2 == 0 else order:
            t[name + " again"].append(_load(paths, db, tmp_path))
    med = {k: statistics.median(v) for k, v in t.items()}
    overhead_ms = (med["small"] - med["big"]) / FILES * 1000
    skip_ms = (med["small again"] - med["big again"]) / FILES * 1000
    detail = ", ".join(f"{k} {v:.2f} s" for k, v in med.items())
    failures = []
    for name, value, note in (
        (f"small files: overhead a file / {OVERHEAD_MS:g} ms ({FILES} x {ROWS})",
         overhead_ms / OVERHEAD_MS, f"{overhead_ms:.2f} ms a file; {detail}"),
        (f"small files: skipping re-run a file / {SKIP_MS:g} ms", skip_ms / SKIP_MS,
         f"{skip_ms:.3f} ms a file"),
    ):
        try:  # both figures reach the table before either fails the test
            harness.check_ratio(name, value, at_most=1.0, detail=note)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, failures
