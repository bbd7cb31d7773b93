"""Adaptive batch size: tune rows per batch from measured write latency and batch bytes.

Used when ``batch_rows`` is 0. The writer reports each batch it wrote
(:meth:`AdaptiveBatchSize.observe`: rows, seconds, bytes); the reader asks :attr:`rows` before
its next batch. The controller aims for a write latency inside ``[target_low_s, target_high_s]``:

- faster than ``target_low_s``: grow by ``growth`` (x2), or less when that would overshoot
  the middle of the target by the measured rate;
- slower than ``target_high_s``: shrink proportionally to the overshoot (at most / 4);
- always capped so one batch holds at most ``max_bytes`` of source data (memory bound) and
  within ``[min_rows, max_rows]``.

Why 5-20 ms (measured, ``benches/bench_batch_size.py``, 1,000,000 rows into SQLite): a batch
costs a fixed overhead (hook calls, a queue hand-off, statement set-up: a fraction of a
millisecond) plus a per-row cost; the reader and the writer overlap except for the first
batch read and the last batch written, which cost a whole batch each. Batches of about 10,000
to 30,000 rows (a few milliseconds of writing) keep both below a few percent; 100,000-row
batches lost 7% to the unoverlapped ends and held 50 MB more in memory (four batches queued,
one being read, one being written). ``max_bytes`` (512 KiB of source text a batch) bounds that
memory whatever the row width.

Latency is smoothed with an exponential moving average so one slow fsync does not halve the
batch. Thread-safe (observe on the writer thread, read on the reader thread).
"""

from __future__ import annotations

import threading

__all__ = ["AdaptiveBatchSize", "FixedBatchSize"]


class FixedBatchSize:
    """A constant batch size (``batch_rows`` > 0): same interface, never changes."""

    def __init__(self, rows: int) -> None:
        if rows < 1:
            raise ValueError("batch_rows must be positive")
        self.rows = rows

    def observe(self, rows: int, seconds: float, nbytes: int) -> int:
        return self.rows


class AdaptiveBatchSize:
    """See the module docstring."""

    def __init__(
        self,
        *,
        initial_rows: int = 5_000,
        min_rows: int = 500,
        max_rows: int = 100_000,
        target_low_s: float = 0.005,
        target_high_s: float = 0.02,
        max_bytes: int = 512 * 1024,
        growth: float = 2.0,
        smoothing: float = 0.5,
    ) -> None:
        if not 0 < min_rows <= initial_rows <= max_rows:
            raise ValueError("need 0 < min_rows <= initial_rows <= max_rows")
        if not 0 < target_low_s < target_high_s:
            raise ValueError("need 0 < target_low_s < target_high_s")
        self.min_rows = min_rows
        self.max_rows = max_rows
        self.target_low_s = target_low_s
        self.target_high_s = target_high_s
        self.max_bytes = max_bytes
        self.growth = growth
        self.smoothing = smoothing
        self._rows = initial_rows
        self._sec_per_row: float | None = None
        self._bytes_per_row: float | None = None
        self._lock = threading.Lock()
        self.history: list[int] = [initial_rows]

    @property
    def rows(self) -> int:
        """Rows the next batch should hold."""
        return self._rows

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.smoothing * (new - old)

    def observe(self, rows: int, seconds: float, nbytes: int) -> int:
        """Record a written batch; returns the new batch size."""
        if rows <= 0:
            return self._rows
        with self._lock:
            self._sec_per_row = self._ema(self._sec_per_row, max(seconds, 0.0) / rows)
            if nbytes > 0:
                self._bytes_per_row = self._ema(self._bytes_per_row, nbytes / rows)
            current = self._rows
            latency = self._sec_per_row * current
            target = (self.target_low_s + self.target_high_s) / 2.0
            if latency < self.target_low_s:
                want = current * self.growth
                if self._sec_per_row > 0:
                    want = min(want, target / self._sec_per_row)
                new = max(current, int(want))
            elif latency > self.target_high_s:
                new = int(current * max(0.25, target / latency))
            else:
                new = current
            if self._bytes_per_row:
                new = min(new, int(self.max_bytes / self._bytes_per_row))
            new = max(self.min_rows, min(self.max_rows, new))
            if new != current:
                self.history.append(new)
            self._rows = new
            return new
