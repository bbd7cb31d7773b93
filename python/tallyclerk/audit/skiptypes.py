"""Two of the values the audit service exchanges with the loader: :class:`FileSkip` (a file
not loaded: its content is loaded elsewhere) and :class:`RejectRow` (one rejected record).
Re-exported by :mod:`tallyclerk.audit.types` and :mod:`tallyclerk.audit`, which import this
module only when they are asked for: a load of a new file with no rejected row builds neither
(issue 16.1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FileSkip", "RejectRow"]


@dataclass(frozen=True)
class FileSkip:
    """A file not loaded in this batch: its content is loaded, or being loaded, elsewhere.

    ``file_id`` is this batch's ``skipped`` manifest row; ``earlier_batch_id`` the batch that
    loaded (or is loading) the same content into the same table.
    """

    path: str
    table: str
    fingerprint: str
    file_id: int
    earlier_batch_id: str
    reason: str


@dataclass(frozen=True)
class RejectRow:
    """One rejected record, as stored in ``tallyclerk_rejects``."""

    record_number: int
    line: int
    column: str | None
    rule: str
    reason: str
    raw: str
    masked: bool = False
    """Sensitive values were masked in ``raw`` and ``reason`` (``raw`` cannot be replayed)."""
