"""Backoff and circuit breaker (python/tallyclerk/retry.py), with an injected clock."""

from __future__ import annotations

import random

import pytest

from tallyclerk.errors import SinkError, SourceError, TransientRepositoryError
from tallyclerk.retry import Backoff, CircuitBreaker, CircuitOpen, is_transient


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_exponentially_within_jitter_bounds_and_is_capped() -> None:
    b = Backoff(initial_ms=100, max_ms=1000, max_retries=10, rng=random.Random(1))
    for retry, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        for _ in range(50):
            d = b.delay_s(retry)
            assert cap / 2 <= d <= cap + 1e-12


def test_backoff_jitter_spreads_delays() -> None:
    b = Backoff(initial_ms=100, max_ms=1000, rng=random.Random(7))
    assert len({round(b.delay_s(3), 6) for _ in range(20)}) > 10


def test_backoff_retry_budget() -> None:
    b = Backoff(max_retries=2)
    assert [b.should_retry(n) for n in (1, 2, 3)] == [True, True, False]
    assert not Backoff(max_retries=0).should_retry(1)


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    br = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        br.record_failure()
        assert br.state == "closed" and br.allow()
    br.record_failure()
    assert br.state == "open"
    assert not br.allow()
    with pytest.raises(CircuitOpen, match="3 consecutive failures"):
        br.check()


def test_breaker_success_resets_the_count() -> None:
    br = CircuitBreaker(threshold=2, clock=Clock())
    br.record_failure()
    br.record_success()
    br.record_failure()
    assert br.state == "closed"


def test_breaker_half_opens_after_cooldown_allowing_one_trial() -> None:
    clock = Clock()
    br = CircuitBreaker(threshold=1, cooldown_s=5, clock=clock)
    br.record_failure()
    assert br.state == "open"
    clock.now += 5
    assert br.state == "half_open"
    assert br.allow()
    assert not br.allow()  # only one trial at a time


def test_breaker_trial_failure_reopens_and_success_closes() -> None:
    clock = Clock()
    br = CircuitBreaker(threshold=1, cooldown_s=5, clock=clock)
    br.record_failure()
    clock.now += 6
    assert br.allow()
    br.record_failure()
    assert br.state == "open"
    clock.now += 6
    assert br.allow()
    br.record_success()
    assert br.state == "closed" and br.allow() and br.allow()


def test_transient_classification() -> None:
    assert is_transient(SinkError("locked", transient=True))
    assert not is_transient(SinkError("no such column"))
    assert is_transient(TransientRepositoryError("deadlock"))
    assert not is_transient(SourceError("bad quote"))
    assert not is_transient(CircuitOpen("open", transient=True))
    assert not is_transient(OSError("disk"))
