"""What :func:`tallyclerk.repair` found and did: :class:`RepairReport`. Re-exported by
:mod:`tallyclerk.settle` and :mod:`tallyclerk`, which import this module only when it is asked
for: a load settles without building one (issue 16.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RepairReport"]

OUTCOMES = ("committed", "rolled_back", "not_committed", "unsettled")
"""tallyclerk.settle.OUTCOMES (this module imports nothing of it)."""


@dataclass
class RepairReport:
    """What :func:`repair` found and did; :meth:`as_dict` is the CLI's ``--json``. ``files``
    has one entry per uncertain file: ``outcome`` (one of ``committed``, ``rolled_back``,
    ``not_committed``, ``unsettled``), ``reason``, and the counts recorded."""

    dry_run: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f["outcome"] == outcome)

    @property
    def exit_code(self) -> int:
        """0 when every uncertain file was settled (or there was none), else 1."""
        return 1 if self.count("unsettled") else 0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dry_run": self.dry_run, "uncertain": len(self.files)}
        data.update({o: self.count(o) for o in OUTCOMES})
        data["files"] = self.files
        return data
