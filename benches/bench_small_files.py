"""Many small files (issue 16.4): 10,000 files of 100 rows in one command.

* ``overhead``: the per-file cost beyond the file's rows: (one command loading the N small files
  - one command loading the same N x 100 rows as one file) / N. Target at most 1 ms a file.
* ``skip``: the same command run again, every file skipped: (that re-run - a re-run of the one
  big file) / N. Target at most 0.3 ms a file.

Each is measured as wall time and as CPU time (user + system of the command, from
``getrusage(RUSAGE_CHILDREN)``): on the shared 2-core machine wall time runs several times the
CPU time, so both targets are asserted on CPU time (quick mode: 1,000 files, ceilings doubled)
and the wall figures are reported beside them (0.92 ms of CPU a file and 0.240 ms a skipped
file on a quiet machine, 10,000 files; see benches/README.md). Whole processes into SQLite,
the audit store in the same file, fresh database per round; the commands alternate so load
from other processes falls on each alike; medians.
Run: ``python3 -m pytest benches/bench_small_files.py -s`` (``TALLYCLERK_BENCH=full``: 10,000).
"""

from __future__ import annotations

import resource
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


def _load(paths: list[str], db: Path, cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole command."""
    argv = [sys.executable, "-m", "tallyclerk.cli", "load", *paths, "--table", "t",
            "--into", f"sqlite:///{db}", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=loadrun.cli_env(), capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"load failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


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
    t: dict[str, list[tuple[float, float]]] = {
        "small": [], "big": [], "small again": [], "big again": []}
    for i in range(ROUNDS):
        loadrun.fresh(db_small)
        loadrun.fresh(db_big)
        order = [("small", small, db_small), ("big", [str(big)], db_big)]
        for name, paths, db in order if i % 2 == 0 else order[::-1]:
            t[name].append(_load(paths, db, tmp_path))
        for name, paths, db in order[::-1] if i % 2 == 0 else order:
            t[name + " again"].append(_load(paths, db, tmp_path))
    wall = {k: statistics.median(w for w, _ in v) for k, v in t.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in t.items()}

    def per_file_ms(m: dict[str, float], many: str, one: str) -> float:
        return (m[many] - m[one]) / FILES * 1000

    detail = ", ".join(f"{k} {wall[k]:.2f} s ({cpu[k]:.2f} s CPU)" for k in t)
    over_wall, over_cpu = per_file_ms(wall, "small", "big"), per_file_ms(cpu, "small", "big")
    skip_wall = per_file_ms(wall, "small again", "big again")
    skip_cpu = per_file_ms(cpu, "small again", "big again")
    harness.check_ratio(f"small files: overhead a file (CPU) / {OVERHEAD_MS:g} ms "
                        f"({FILES} x {ROWS})", over_cpu / OVERHEAD_MS, at_most=1.0,
                        detail=f"{over_cpu:.2f} ms CPU, {over_wall:.2f} ms wall; {detail}")
    harness.report_ratio(f"small files: skipping re-run a file (wall) / {SKIP_MS:g} ms",
                         skip_wall / SKIP_MS, target="<=1.00", detail=f"{skip_wall:.3f} ms")
    harness.check_ratio(f"small files: skipping re-run a file (CPU) / {SKIP_MS:g} ms",
                        skip_cpu / SKIP_MS, at_most=1.0, detail=f"{skip_cpu:.3f} ms a file")
