"""``tallyclerk.AuditLog`` for applications (issue 12), each a ratio against a baseline in the
same run, like ``bench_audit.py`` (whose baselines this reuses):

- ``record()`` while the writer runs: median under 1 us, against a no-op Python function with
  the same signature, called the same way (four keyword fields), measured call by call in the
  same run (about 200 ns here, so 1 us ~ 5x);
- events from ``record()`` to committed rows (``flush``), against an ORM insert and commit per
  event on a background thread: at least 50x.

Run: ``python3 -m pytest benches/bench_auditlog.py`` (``TALLYCLERK_BENCH=full`` for full sizes).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The benches' harness is their conftest.py; this works from any rootdir or invocation.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
from bench_audit import _count, _orm_per_record, _Paths
from tallyclerk import AuditLog


@pytest.fixture()
def stores(tmp_path: Path) -> Iterator[_Paths]:
    yield _Paths(tmp_path)


PATH = "/data/incoming/people-2026-11-22.csv"
FIELDS = {"path": PATH, "rows": 12345, "attempt": 1}


def _noop(kind: str, /, **fields: Any) -> None:
    return None


def _median_costs_ns(record: Any, calls: int) -> tuple[float, float]:
    """Median cost (ns) of one record() call and of one no-op call, interleaved so both see the
    same writer activity; the timer's own cost is subtracted."""
    clock = time.perf_counter_ns
    rec, nop, empty = [], [], []
    for i in range(calls):
        t0 = clock()
        record("file_loaded", path=PATH, rows=12345, attempt=1, i=i)
        t1 = clock()
        _noop("file_loaded", path=PATH, rows=12345, attempt=1, i=i)
        t2 = clock()
        t3 = clock()
        rec.append(t1 - t0)
        nop.append(t2 - t1)
        empty.append(t3 - t2)
    timer = statistics.median(empty)
    return statistics.median(rec) - timer, max(statistics.median(nop) - timer, 1.0)


def test_auditlog_record_cost_while_the_writer_runs(stores: _Paths) -> None:
    calls = harness.size(100_000, 500_000)
    settings = {"queue_max_items": calls + 50_000}  # never full: no back-pressure here
    with AuditLog(f"sqlite:///{stores.fresh('record')}", settings=settings) as log:
        for i in range(20_000):  # the writer is busy for the whole measurement
            log.record("warmup", i=i, **FIELDS)
        record_ns, noop_ns = _median_costs_ns(log.record, calls)
        batches = log.stats()["batches"]
        log.flush()
    assert batches > 0
    harness.check_ratio(
        "auditlog: record() median cost / no-op call (1 us ~ 5x)",
        record_ns / noop_ns,
        at_most=5.0,
        detail=f"record() {record_ns:.0f} ns, no-op call {noop_ns:.0f} ns, "
        f"{batches} writer batches during the run",
    )


def _ours(path: str, n: int) -> float:
    """Seconds from the first record() to all n events committed (flush)."""
    with AuditLog(f"sqlite:///{path}") as log:
        record = log.record
        t0 = time.perf_counter()
        for i in range(n):
            record("file_loaded", i=i, **FIELDS)
        log.flush()
        elapsed = time.perf_counter() - t0
    assert _count(path) == n
    return elapsed


def test_auditlog_events_to_committed_rows_vs_orm_per_event(benchmark: Any,
                                                            stores: _Paths) -> None:
    n = harness.size(100_000, 500_000)
    benchmark.pedantic(lambda: _ours(stores.fresh("ours"), n), rounds=harness.size(3, 5),
                       iterations=1, warmup_rounds=1)
    ours_rate = n / harness.benchmark_median(benchmark)
    n_orm = harness.size(300, 3_000)
    orm_rate = n_orm / harness.measure(lambda: _orm_per_record(stores.fresh("orm"), n_orm),
                                       repeat=3)
    harness.check_ratio(
        "auditlog: events/s vs ORM insert+commit per event", ours_rate / orm_rate,
        at_least=50.0,
        detail=f"AuditLog record()->committed {ours_rate:,.0f}/s, "
        f"ORM per record {orm_rate:,.0f}/s",
    )
