"""Benchmark harness: every target is a ratio against a baseline measured in the same run.

``TALLYCLERK_BENCH=quick`` (the default, what CI runs) uses small sizes and fails only below
half of each target; ``TALLYCLERK_BENCH=full`` uses the issue's sizes and enforces the targets.
Each benchmark measures tallyclerk with pytest-benchmark's ``benchmark`` fixture and its baseline
with :func:`measure`; :func:`check_ratio` records the ratio, prints the table at the end of the
session and asserts the floor.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

MODE = os.environ.get("TALLYCLERK_BENCH", "quick")
if MODE not in {"quick", "full"}:
    raise pytest.UsageError(f"TALLYCLERK_BENCH must be quick or full, not {MODE!r}")
QUICK = MODE == "quick"


def size(quick: int, full: int) -> int:
    """Pick the workload size for the current mode."""
    return quick if QUICK else full


def measure(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def benchmark_median(benchmark: Any) -> float:
    """Median seconds of what the ``benchmark`` fixture measured."""
    return float(benchmark.stats.stats.median)


@dataclass
class Ratio:
    name: str
    value: float
    target: float
    floor: float
    direction: str  # "at least", "at most" or "report" (no target: shown, never asserted)
    detail: str

    @property
    def ok(self) -> bool:
        if self.direction == "report":
            return True
        if self.direction == "at least":
            return self.value >= self.floor
        return self.value <= self.floor


RESULTS: list[Ratio] = []


def check_ratio(name: str, value: float, *, at_least: float | None = None,
                at_most: float | None = None, detail: str = "") -> None:
    """Record a ratio and assert it against its floor (half the target in quick mode).

    ``at_least``: higher is better (speed-up over a baseline). ``at_most``: lower is better
    (cost relative to a baseline); in quick mode the allowed ceiling is doubled.
    """
    if (at_least is None) == (at_most is None):
        raise ValueError("give exactly one of at_least / at_most")
    if at_least is not None:
        r = Ratio(name, value, at_least, at_least / 2 if QUICK else at_least, "at least", detail)
    else:
        assert at_most is not None
        r = Ratio(name, value, at_most, at_most * 2 if QUICK else at_most, "at most", detail)
    RESULTS.append(r)
    assert r.ok, (
        f"{name}: ratio {value:.2f} is not {r.direction} {r.floor:.2f} "
        f"(target {r.target:.2f}, mode {MODE}) {detail}"
    )


def report_ratio(name: str, value: float, *, target: str = "", detail: str = "") -> None:
    """Record a figure for the table without asserting it (a moonshot, a quick-mode memory
    ratio that only means something at full size, a peer without a target)."""
    RESULTS.append(Ratio(name, value, 0.0, 0.0, "report", f"{target} {detail}".strip()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section(f"tallyclerk ratios (mode {MODE})")
    tr.write_line(f"{'benchmark':58} {'ratio':>8} {'target':>12} {'floor':>8}  ok  detail")
    for r in RESULTS:
        if r.direction == "report":
            tr.write_line(f"{r.name:58} {r.value:8.2f} {'(report)':>12} {'':8}  --  {r.detail}")
            continue
        sign = ">=" if r.direction == "at least" else "<="
        tr.write_line(
            f"{r.name:58} {r.value:8.2f} {sign + format(r.target, '.2f'):>12} "
            f"{r.floor:8.2f}  {'yes' if r.ok else 'NO '} {r.detail}"
        )
