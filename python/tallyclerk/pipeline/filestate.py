"""What one attempt at one file has counted so far, and the :class:`FileResult` it ends with.

Row accounting, for every loaded or failed file:
``rows_read = rows_written + rows_rejected + rows_rolled_back``. A *loaded* file rolls nothing
back. A *failed* file is rolled back, so ``rows_written`` is 0 and the rows it read that were
not rejected are ``rows_rolled_back`` (never judged bad: the file's ``error`` says why they
were not written).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tallyclerk.audit import FileResult, RejectRow
from tallyclerk.contract import FilePlan
from tallyclerk.errors import SourceError
from tallyclerk.pipeline.entries import message

__all__ = ["FileState"]


@dataclass
class FileState:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    bytes_read: int = 0
    first_error_line: int | None = None
    rows_inserted: int | None = None
    rows_updated: int | None = None
    rejects: list[RejectRow] = field(default_factory=list)
    writer_error: BaseException | None = None
    abandon: bool = False
    plan: FilePlan | None = None  # the schema contract's decisions for this file
    # held by the writer thread around each write: the reader thread takes it before rolling
    # back, so a write still in flight (after a timed-out close) never overlaps the rollback
    writing: threading.Lock = field(default_factory=threading.Lock)
    # guards rows_rejected and rejects: the reader thread counts validation rejects, the
    # writer thread the rows a sink rejects while writing (a key already in the table)
    counting: threading.Lock = field(default_factory=threading.Lock)

    def result(self, error: BaseException | None = None) -> FileResult:
        plan = self.plan
        version = None if plan is None else plan.version
        changes = None if plan is None else plan.changes
        if error is None:
            return FileResult(
                rows_read=self.rows_read,
                rows_written=self.rows_written,
                rows_rejected=self.rows_rejected,
                bytes_read=self.bytes_read,
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
            rows_read=self.rows_read,
            rows_written=0,
            rows_rejected=self.rows_rejected,
            rows_rolled_back=self.rows_read - self.rows_rejected,
            bytes_read=self.bytes_read,
            first_error_line=line,
            error=message(error),
            error_class=type(error).__name__,
            schema_version=version,
            column_changes=changes,
        )
