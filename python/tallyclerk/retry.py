"""Retrying transient failures: exponential backoff with jitter, and a circuit breaker.

The pipeline retries a whole file (rolled back, then loaded again from its first byte) when the
sink or the audit store fails transiently (:class:`~tallyclerk.errors.SinkError` with
``transient=True``, :class:`~tallyclerk.errors.TransientRepositoryError`). A
:class:`CircuitBreaker` shared by the files of a batch stops the retrying when the target keeps
failing: after ``threshold`` consecutive failures it opens and attempts fail fast, after
``cooldown_s`` it lets one trial attempt through (half-open), and a success closes it again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from tallyclerk.errors import CircuitOpen, TallyclerkError, TransientRepositoryError

__all__ = ["Backoff", "CircuitBreaker", "CircuitOpen", "is_transient"]


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same work may succeed."""
    if isinstance(exc, CircuitOpen):
        return False
    if isinstance(exc, TransientRepositoryError):
        return True
    return isinstance(exc, TallyclerkError) and bool(getattr(exc, "transient", False))


class Backoff:
    """Exponential backoff with "equal jitter": delay n is uniform in [d/2, d], d = initial*2^n.

    :param initial_ms: the first delay's upper bound.
    :param max_ms: cap on any delay.
    :param max_retries: retries after the first attempt (0: never retry).
    """

    # A plain class, not a dataclass (generated methods cost import time; issue 16.1).
    __slots__ = ("initial_ms", "max_ms", "max_retries", "rng")

    def __init__(self, initial_ms: float = 50.0, max_ms: float = 5000.0, max_retries: int = 3,
                 rng: random.Random | None = None) -> None:
        self.initial_ms = initial_ms
        self.max_ms = max_ms
        self.max_retries = max_retries
        self.rng = random.Random() if rng is None else rng

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self.max_ms, self.initial_ms * (2.0 ** max(0, retry - 1)))
        return (cap / 2.0 + self.rng.uniform(0.0, cap / 2.0)) / 1000.0

    def should_retry(self, retry: int) -> bool:
        """Whether retry number ``retry`` (1-based) is allowed."""
        return retry <= self.max_retries


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open after ``cooldown_s``.

    Thread-safe. ``clock`` is injectable for tests (``time.monotonic`` by default).
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("breaker threshold must be at least 1")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.cooldown_s:
            return self.HALF_OPEN
        return self.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """Whether an attempt may go ahead now (half-open: only one trial at a time)."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return True
            if state == self.HALF_OPEN and not self._trial:
                self._trial = True
                return True
            return False

    def check(self) -> None:
        """Raise :class:`CircuitOpen` unless an attempt may go ahead now."""
        if not self.allow():
            raise CircuitOpen(
                f"circuit breaker open after {self._failures} consecutive failures "
                f"(retrying after {self.cooldown_s:g} s)"
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial = self._trial
            self._trial = False
            if was_trial or (self._opened_at is None and self._failures >= self.threshold):
                if self._opened_at is None:
                    self.opened_count += 1
                self._opened_at = self._clock()
