"""Queue, retry and breaker figures of a batch, and the accumulator's snapshot of its files and
rows, sampled for ``tallyclerk_pipeline_stats`` (the metrics plugin reads its counts there)."""

from __future__ import annotations

from typing import Any

import pluggy

from tallyclerk import WriteBehindQueue
from tallyclerk._core import BatchAccumulator
from tallyclerk.audit import AuditService
from tallyclerk.retry import CircuitBreaker

__all__ = ["PipelineStats"]


def _wants(plugin: object) -> bool:
    """Whether a plugin implementing ``tallyclerk_pipeline_stats`` wants a sample now: yes,
    unless it defines ``pipeline_stats_wanted()`` and that says no (the built-in metrics
    plugin before anything asked for metrics). Samples are taken three times a file: with
    nobody to read them, building them was ~0.07 ms of a small file's overhead."""
    wanted = getattr(plugin, "pipeline_stats_wanted", None)
    return not callable(wanted) or bool(wanted())


class PipelineStats:
    """The sink queues' totals over a batch's files, the file retries, and the hook call."""

    def __init__(self, hook: Any, audit: AuditService, breaker: CircuitBreaker) -> None:
        self._hook = hook
        self._audit = audit
        self._breaker = breaker
        self.file_retries = 0
        self._sink = {"retried": 0, "dead_lettered": 0, "high_water": 0}

    def add_queue(self, queue: WriteBehindQueue) -> None:
        """Count a file's closed queue in the batch's totals."""
        q = queue.stats()
        totals = self._sink
        totals["retried"] += q.retried
        totals["dead_lettered"] += q.dead_lettered
        totals["high_water"] = max(totals["high_water"], q.high_water)

    def sample(self, batch_id: str, queue: WriteBehindQueue | None,
               acc: BatchAccumulator) -> None:
        """Report the figures to ``tallyclerk_pipeline_stats`` (when a plugin listens);
        ``stats["metrics"]`` is the accumulator's snapshot (files and rows)."""
        hook: pluggy.HookCaller = self._hook.tallyclerk_pipeline_stats
        if not any(_wants(impl.plugin) for impl in hook.get_hookimpls()):
            return
        sink = dict(self._sink)
        if queue is not None:
            q = queue.stats()
            sink["retried"] += q.retried
            sink["dead_lettered"] += q.dead_lettered
            sink["high_water"] = max(sink["high_water"], q.high_water)
            depth = q.depth
        else:
            depth = 0
        audit = self._audit.events.stats()
        stats: dict[str, Any] = {
            "sink_queue_depth": depth,
            "sink_queue_high_water": sink["high_water"],
            "sink_retries": sink["retried"],
            "sink_dead_letters": sink["dead_lettered"],
            "file_retries": self.file_retries,
            "breaker_state": self._breaker.state,
            "breaker_opened": self._breaker.opened_count,
            "metrics": acc.snapshot(),
        }
        if audit:
            stats.update(
                audit_queue_depth=audit.get("depth", 0),
                audit_queue_high_water=audit.get("high_water", 0),
                audit_retries=audit.get("retried", 0),
                audit_dead_letters=audit.get("dead_lettered", 0),
            )
        hook(batch_id=batch_id, stats=stats)
