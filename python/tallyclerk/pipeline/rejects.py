"""The reject policy: what a rejected row does to its file and to the batch.

``--on-error continue`` (default) quarantines bad rows and loads the rest; ``skip-file``
fails (rolls back) a file at its first rejected row and goes on with the next; ``abort`` does
the same and then stops the batch. ``--max-rejects N`` fails a file with more than N
rejected rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tallyclerk.errors import ConfigError, RejectLimit

if TYPE_CHECKING:
    from tallyclerk.audit.types import RejectRow

__all__ = ["KEEP_REJECTS", "ON_ERROR", "RejectPolicy", "reject_row"]

ON_ERROR = ("continue", "skip-file", "abort")
KEEP_REJECTS = 10_000  # rejects kept in memory for a store that is not the sink's database


class RejectPolicy:
    # A plain class, not a dataclass (generated methods cost import time; issue 16.1).
    __slots__ = ("on_error", "max_rejects")

    def __init__(self, on_error: str = "continue", max_rejects: int | None = None) -> None:
        self.on_error = on_error
        self.max_rejects = max_rejects
        if self.on_error not in ON_ERROR:
            raise ConfigError(
                f"--on-error must be one of {', '.join(ON_ERROR)}, got {self.on_error!r}")
        if self.max_rejects is not None and self.max_rejects < 0:
            raise ConfigError("--max-rejects must be 0 or more")

    @property
    def aborts(self) -> bool:
        """A failed file stops the batch (``--on-error abort``)."""
        return self.on_error == "abort"

    def check(self, rows_rejected: int, first: RejectRow) -> None:
        """Raise :class:`RejectLimit` when the rejects so far fail the file."""
        where = f"record {first.record_number} (line {first.line})"
        why = f"{first.column + ': ' if first.column else ''}{first.reason}"
        if self.on_error == "abort":
            raise RejectLimit(f"{where} rejected: {why}; --on-error abort stops the load",
                              stop_batch=True)
        if self.on_error == "skip-file":
            raise RejectLimit(f"{where} rejected: {why}; --on-error skip-file rolled the file back")
        if self.max_rejects is not None and rows_rejected > self.max_rejects:
            raise RejectLimit(
                f"{rows_rejected} rows rejected, more than --max-rejects {self.max_rejects}; "
                "the file was rolled back"
            )


def reject_row(r: Any) -> RejectRow:
    """The audit store's row of one of the Rust batch's rejects."""
    from tallyclerk.audit.skiptypes import RejectRow  # not created on a load with no reject

    return RejectRow(
        record_number=r.record_number, line=r.line, column=r.column,
        rule=r.rule, reason=r.reason, raw=r.raw, masked=r.masked,
    )
