"""What :func:`tallyclerk.audit.chain.verify` finds: :class:`VerifyReport` and its first
:class:`Break`. Re-exported by :mod:`tallyclerk.audit.chain` (and ``VerifyReport`` by
:mod:`tallyclerk`), which imports this module only when they are asked for: a load seals the
chain and never verifies it (issue 16.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Break", "VerifyReport"]

_GENESIS = "0" * 64  # tallyclerk.audit.chain.GENESIS (this module imports nothing of it)


@dataclass(frozen=True)
class Break:
    """The first broken link: where, and what changed."""

    table: str
    row_id: int | str | None
    seq: int | None
    what: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row_id, "chain_seq": self.seq, "what": self.what}


@dataclass
class VerifyReport:
    """What :func:`verify` found. ``ok`` when the chain is whole (and holds the anchor)."""

    links: int = 0
    head_seq: int = 0
    head_hash: str = _GENESIS
    unsealed: dict[str, int] = field(default_factory=dict)
    broken: Break | None = None
    anchor: str | None = None
    anchor_found: bool | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None and self.anchor_found is not False

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "links": self.links,
            "head": {"chain_seq": self.head_seq, "hash": self.head_hash},
            "unsealed": self.unsealed,
            "broken": None if self.broken is None else self.broken.as_dict(),
            "anchor": self.anchor,
            "anchor_found": self.anchor_found,
        }
