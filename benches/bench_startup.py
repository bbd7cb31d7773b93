"""Start-up (issue 16.1): a one-row CSV load into SQLite, as a scheduler runs it, whole process.

Targets: at most 8x a bare ``python3 -c "import sqlite3"`` process (asserted, as a ratio in the
same run; quick mode's ceiling is 16x) and at most 0.12 s (reported beside it: an absolute
time depends on the machine). Both commands run in alternating rounds; medians.

What the time goes to: ``python3 -X importtime -m tallyclerk.cli load one.csv --table t --into
sqlite:///x.db`` (the figures before and after are in ``benches/README.md``).
Run: ``python3 -m pytest benches/bench_startup.py -s``.

The tree under test is byte-compiled first (``compileall``): an installed wheel has its
``.pyc`` files (pip compiles at install), while this repository's shell sets
``PYTHONDONTWRITEBYTECODE=1``, so without it every start would compile tallyclerk's ~100
modules from source (about 0.1 s of CPU) -- a cost users do not pay. The baseline's standard
library is byte-compiled too.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

import conftest as harness
import loadrun

ROUNDS = harness.size(7, 15)
TARGET_RATIO = 8.0
TARGET_S = 0.12


def _timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=loadrun.cli_env(), capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[2:5]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def test_one_row_load_start_up(tmp_path: Path) -> None:
    src = tmp_path / "one.csv"
    src.write_text("id,name,amount\n1,a,1.5\n", encoding="utf-8")
    db = tmp_path / "x.db"
    assert compileall.compile_dir(loadrun.ROOT / "python" / "tallyclerk", quiet=1)
    bare = [sys.executable, "-c", "import sqlite3"]
    load = [sys.executable, "-m", "tallyclerk.cli", "load", str(src), "--table", "t",
            "--into", f"sqlite:///{db}"]
    bare_s: list[float] = []
    load_s: list[float] = []
    for i in range(ROUNDS):
        loadrun.fresh(db)
        first, second = (bare, load) if i % 2 == 0 else (load, bare)
        for argv in (first, second):
            (bare_s if argv is bare else load_s).append(_timed(argv, tmp_path))
            loadrun.fresh(db)
    b, t = statistics.median(bare_s), statistics.median(load_s)
    harness.report_ratio("start-up: one-row load (s) / 0.12 s", t / TARGET_S,
                         target="<=1.00", detail=f"{t * 1000:.0f} ms")
    harness.check_ratio("start-up: one-row load / python3 -c 'import sqlite3'", t / b,
                        at_most=TARGET_RATIO,
                        detail=f"{t * 1000:.0f} ms vs {b * 1000:.0f} ms, medians of {ROUNDS}")
