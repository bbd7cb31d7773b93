"""What one attempt at one file has counted so far, and the :class:`FileResult` it ends with.

The rows are counted in the batch accumulator, through the attempt's
:class:`~tallyclerk._core.FileTally` (its per-file view is what the manifest row records, its
live counters what progress shows); nothing here counts them a second time. The attempt
settles its tally once: ``loaded``, ``failed`` (rolled back), or ``retried`` (rolled back to be
attempted again: its rows leave the batch's counts).

Row accounting, for every loaded or failed file:
``rows_read = rows_written + rows_rejected + rows_rolled_back``. A *loaded* file rolls nothing
back. A *failed* file is rolled back, so ``rows_written`` is 0 and the rows it read that were
not rejected are ``rows_rolled_back`` (never judged bad: the file's ``error`` says why they
were not written).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tallyclerk._core import FileTally
from tallyclerk.audit import FileResult
from tallyclerk.contract import FilePlan
from tallyclerk.errors import SourceError
from tallyclerk.pipeline.entries import message

if TYPE_CHECKING:
    from tallyclerk.audit.types import RejectRow

__all__ = ["FileState"]


class FileState:
    # A plain class, not a dataclass (generated methods cost import time; issue 16.1).
    __slots__ = ("tally", "first_error_line", "rows_inserted", "rows_updated", "rejects",
                 "writer_error", "abandon", "plan", "writing", "counting")

    def __init__(self, tally: FileTally) -> None:
        self.tally = tally  # this attempt's rows, counted in the batch accumulator
        self.first_error_line: int | None = None
        self.rows_inserted: int | None = None
        self.rows_updated: int | None = None
        self.rejects: list[RejectRow] = []
        self.writer_error: BaseException | None = None
        self.abandon = False
        self.plan: FilePlan | None = None  # the schema contract's decisions for this file
        # held by the writer thread around each write: the reader thread takes it before
        # rolling back, so a write still in flight (after a timed-out close) never overlaps
        # the rollback
        self.writing = threading.Lock()
        # guards rejects and first_error_line: the reader thread keeps validation rejects,
        # the writer thread the rows a sink rejects while writing (a key already in the table)
        self.counting = threading.Lock()

    @property
    def rows_read(self) -> int:
        return self.tally.rows_read

    @property
    def rows_written(self) -> int:
        return self.tally.rows_written

    @property
    def rows_rejected(self) -> int:
        return self.tally.rows_rejected

    @property
    def bytes_read(self) -> int:
        return self.tally.bytes_read

    def result(self, error: BaseException | None = None) -> FileResult:
        plan = self.plan
        version = None if plan is None else plan.version
        changes = None if plan is None else plan.changes
        t = self.tally
        read, rejected, nbytes = t.rows_read, t.rows_rejected, t.bytes_read
        if error is None:
            return FileResult(
                rows_read=read,
                rows_written=t.rows_written,
                rows_rejected=rejected,
                bytes_read=nbytes,
                first_error_line=self.first_error_line,
                rows_inserted=self.rows_inserted,
                rows_updated=self.rows_updated,
                schema_version=version,
                column_changes=changes,
            )
        line = self.first_error_line
        if isinstance(error, SourceError) and error.line is not None:
            line = error.line
        return FileResult(
            rows_read=read,
            rows_written=0,
            rows_rejected=rejected,
            rows_rolled_back=read - rejected,
            bytes_read=nbytes,
            first_error_line=line,
            error=message(error),
            error_class=type(error).__name__,
            schema_version=version,
            column_changes=changes,
        )
