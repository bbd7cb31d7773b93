"""Ledger growth (issue 16): what a load and ``status`` cost once the ledger holds a year of feeds.

The manifest never expires, so a store that has loaded hourly feeds for a year holds millions
of ``tallyclerk_files`` rows. Every figure here is a ratio of the same whole-process command run
against a *large* ledger over a *small* one, in the same run; the target is flat cost (at most
1.2x) from 1,000 to 1,000,000 manifest rows (quick mode: 1,000 to 100,000, ceiling doubled);
each ratio is the median of the ratios of rounds run back to back on the two stores.

* ``new file``: ``tallyclerk load`` of a new 20-row file (a fingerprint lookup that finds
  nothing, a claim, the file's transaction, the batch row): the per-file overhead.
* ``skip``: the same load run again (the lookup finds the loaded file and skips it).
* ``force``: the same load with ``--force`` (the earlier attempt's rows deleted by
  ``_tc_file_id`` from a target table holding a row of every generated file, then reloaded).
* ``status``: ``tallyclerk status --json`` (the latest batch and its files).

The ledger rows are generated directly in SQL (copies of a real batch's rows with new ids,
paths and fingerprints, older ``started_at``; ``tests/ledger_rows.py``), and the target table
gets one row per generated file, on SQLite and on PostgreSQL. After the timed rounds, the
statements of a new-file load, a skip, a ``--force`` load and ``status`` on the large store are
traced and explained (``tests/ledger_plans.py``, as ``tests/audit/test_query_plans.py`` does
on 20,000 files): a plan scanning a ledger table whole, or a delete by ``_tc_file_id`` without
an index, fails the benchmark.
Run: ``TALLYCLERK_BENCH=full python3 -m pytest benches/bench_ledger_growth.py -s``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import ledger_plans, ledger_rows

import conftest as harness
import loadrun

SMALL = 1_000
LARGE = harness.size(100_000, 1_000_000)
ROUNDS = harness.size(3, 7)
TARGET = 1.2


def _csv(path: Path, seed: int) -> Path:
    path.write_text("id,name,amount\n" + "".join(
        f"{seed * 100 + i},name {seed}-{i},{i}.5\n" for i in range(20)), encoding="utf-8")
    return path


def _cli(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()  # a whole process, like a scheduler's one-file job
    proc = subprocess.run([sys.executable, "-m", "tallyclerk.cli", *args], cwd=cwd,
               env=loadrun.cli_env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"tallyclerk {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return elapsed


def _store(workdir: Path, url: str, files: int) -> None:
    """A store holding one real load plus ``files`` generated manifest rows, and a target-table
    row of each generated file."""
    seed_file = _csv(workdir / f"seed-{files}.csv", 0)
    _cli("load", str(seed_file), "--table", "feed", "--into", url, "--json", cwd=workdir)
    ledger_rows.grow(url, files)
    ledger_rows.grow_target(url, "feed", files)


def _round(workdir: Path, url: str, seed: int) -> dict[str, float]:
    """Seconds of a new-file load, the same load again (skipped), again with ``--force``
    (replaced) and ``status`` on ``url``."""
    f = _csv(workdir / f"new-{seed}.csv", seed)
    load = ("load", str(f), "--table", "feed", "--into", url, "--json")
    return {"new file": _cli(*load, cwd=workdir), "skip": _cli(*load, cwd=workdir),
            "force": _cli(*load, "--force", cwd=workdir),
            "status": _cli("status", "--json", "--into", url, cwd=workdir)}


def _compare(label: str, workdir: Path, small_url: str, large_url: str) -> None:
    """Run the two stores' rounds back to back (the order alternating), so a pair shares the
    machine's load of the moment, and check the median of the pairs' ratios, large over small
    (as the audit-events pairs in ``bench_e2e.py``)."""
    small: list[dict[str, float]] = []
    large: list[dict[str, float]] = []
    for r in range(ROUNDS):
        if r % 2 == 0:
            small.append(_round(workdir, small_url, 1000 + r))
            large.append(_round(workdir, large_url, 2000 + r))
        else:
            large.append(_round(workdir, large_url, 2000 + r))
            small.append(_round(workdir, small_url, 1000 + r))
    for what in ("new file", "skip", "force", "status"):
        s = statistics.median(row[what] for row in small)
        big = statistics.median(row[what] for row in large)
        ratio = statistics.median(b[what] / a[what] for a, b in zip(small, large, strict=True))
        harness.check_ratio(
            f"ledger {LARGE:,} vs {SMALL:,} rows: {what} ({label})", ratio,
            at_most=TARGET, detail=f"medians {big * 1000:.0f} ms vs {s * 1000:.0f} ms, "
            f"{ROUNDS} pairs; {loadrun.load_average()}",
        )
    _check_plans(label, workdir, large_url)


def _check_plans(label: str, workdir: Path, url: str) -> None:
    """Every ledger statement of a load, a skip, a ``--force`` load and ``status`` on the large
    store uses an index, and so does the delete by ``_tc_file_id``."""
    f = _csv(workdir / "plans.csv", 9000)
    load = ("load", str(f), "--table", "feed", "--into", url)
    env = loadrun.cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(loadrun.ROOT), env["PYTHONPATH"]])
    statements = ledger_plans.traced([load, load, (*load, "--force"), ("status", "--into", url)],
                                     cwd=workdir, env=env, trace=workdir / "trace.jsonl")
    assert statements, "no ledger statement traced: the plan check would prove nothing"
    scans = ledger_plans.full_scans(url, statements, "feed")
    assert not scans, f"full scans of a {LARGE:,}-file ledger ({label}):\n" + "\n".join(scans)
    harness.report_ratio(f"ledger {LARGE:,} rows: statements scanning a ledger table ({label})",
                         float(len(scans)), target="0",
                         detail=f"{len(statements)} ledger statements explained, "
                         "delete by _tc_file_id uses an index")


def test_ledger_growth_sqlite(tmp_path: Path) -> None:
    small_url = f"sqlite:///{tmp_path / 'small.db'}"
    large_url = f"sqlite:///{tmp_path / 'large.db'}"
    _store(tmp_path, small_url, SMALL)
    _store(tmp_path, large_url, LARGE)
    _compare("SQLite", tmp_path, small_url, large_url)


@pytest.fixture(scope="module")
def pg_bench() -> Iterator[Any]:
    from tests import pgserver

    try:
        with pgserver.server_for_tests() as server:
            yield server
    except pgserver.PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.postgres
def test_ledger_growth_postgres(tmp_path: Path, pg_bench: Any) -> None:
    import uuid

    import sqlalchemy as sa

    names = {k: "tc_ledger_" + uuid.uuid4().hex[:8] for k in ("small", "large")}
    admin = sa.create_engine(pg_bench.url(), isolation_level="AUTOCOMMIT")
    make: Callable[[str], str] = pg_bench.url
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        small_url, large_url = make(names["small"]), make(names["large"])
        _store(tmp_path, small_url, SMALL)
        _store(tmp_path, large_url, LARGE)
        _compare("PostgreSQL", tmp_path, small_url, large_url)
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
