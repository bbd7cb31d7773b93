"""The adaptive batch-size controller (python/tallyclerk/batch_size.py), fed synthetic timings."""

from __future__ import annotations

import pytest

from tallyclerk.batch_size import AdaptiveBatchSize, FixedBatchSize


def run(ctl: AdaptiveBatchSize, sec_per_row: float, bytes_per_row: int, steps: int = 30) -> int:
    for _ in range(steps):
        n = ctl.rows
        ctl.observe(n, n * sec_per_row, n * bytes_per_row)
    return ctl.rows


def test_fast_writes_grow_the_batch_toward_the_latency_target() -> None:
    ctl = AdaptiveBatchSize(initial_rows=1000, max_rows=1_000_000)
    rows = run(ctl, sec_per_row=1e-6, bytes_per_row=50)  # 1 us per row
    latency = rows * 1e-6
    assert ctl.target_low_s <= latency <= ctl.target_high_s
    assert ctl.history[0] == 1000 and len(ctl.history) > 2


def test_slow_writes_shrink_the_batch() -> None:
    ctl = AdaptiveBatchSize(initial_rows=50_000)
    rows = run(ctl, sec_per_row=1e-5, bytes_per_row=20)  # 10 us per row: 0.5 s per batch
    assert rows < 50_000
    assert ctl.target_low_s <= rows * 1e-5 <= ctl.target_high_s


def test_batch_bytes_cap_bounds_memory() -> None:
    ctl = AdaptiveBatchSize(initial_rows=1000, max_bytes=1_000_000, max_rows=10**7)
    rows = run(ctl, sec_per_row=1e-8, bytes_per_row=1000)  # very fast, wide rows
    assert rows * 1000 <= 1_000_000


def test_stays_within_min_and_max() -> None:
    ctl = AdaptiveBatchSize(initial_rows=1000, min_rows=500, max_rows=2000)
    assert run(ctl, 1e-9, 1) == 2000
    ctl = AdaptiveBatchSize(initial_rows=1000, min_rows=500, max_rows=2000)
    assert run(ctl, 1.0, 1) == 500


def test_one_slow_batch_does_not_collapse_the_size() -> None:
    ctl = AdaptiveBatchSize(initial_rows=1000, max_rows=1_000_000)
    rows = run(ctl, sec_per_row=1e-6, bytes_per_row=50)
    ctl.observe(rows, rows * 1e-6 * 3, rows * 50)  # one hiccup at 3x
    assert ctl.rows >= rows // 2


def test_ignores_empty_batches_and_rejects_bad_config() -> None:
    ctl = AdaptiveBatchSize(initial_rows=1000)
    assert ctl.observe(0, 1.0, 0) == 1000
    with pytest.raises(ValueError):
        AdaptiveBatchSize(initial_rows=10, min_rows=100)
    with pytest.raises(ValueError):
        AdaptiveBatchSize(target_low_s=1.0, target_high_s=0.5)


def test_fixed_batch_size_never_changes() -> None:
    f = FixedBatchSize(123)
    assert f.observe(123, 100.0, 10**9) == 123 and f.rows == 123
    with pytest.raises(ValueError):
        FixedBatchSize(0)
