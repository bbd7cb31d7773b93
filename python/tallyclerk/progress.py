"""What a ``progress`` callback receives: :class:`LoadProgress`. Re-exported by
:mod:`tallyclerk.report` and :mod:`tallyclerk`, which import this module only when it is asked
for: only a load with a ``progress`` callback builds one (issue 16.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tallyclerk._core import MetricsSnapshot

__all__ = ["LoadProgress"]


@dataclass(frozen=True)
class LoadProgress:
    """What a ``progress`` callback receives, after each record batch and each file.

    ``rows_read`` includes the file being read; ``metrics`` is the batch accumulator's snapshot
    (files and rows counted as files finish; None for a load shared by worker processes, whose
    progress is read from the audit store).
    """

    files_done: int
    files_total: int
    rows_read: int
    metrics: MetricsSnapshot | None = None
