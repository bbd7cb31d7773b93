"""What :func:`tallyclerk.load` returns: :class:`LoadReport` (one per batch or shared load) with
one :class:`FileReport` per path, and :class:`LoadProgress` (what a ``progress`` callback gets).

``LoadReport.to_dict()`` is exactly the object ``tallyclerk load --json`` prints;
``str(report)`` is the summary table the CLI prints without ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tallyclerk.textfmt import format_table

if TYPE_CHECKING:
    from tallyclerk.progress import LoadProgress

__all__ = ["FileReport", "LoadProgress", "LoadReport"]


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class FileReport:
    """One path of a load: ``status`` is ``loaded``, ``skipped`` or ``failed``.

    For a loaded or failed file ``rows_read == rows_written + rows_rejected + rows_rolled_back``;
    a failed file was rolled back (``rows_written`` 0, its rows that were not rejected are
    ``rows_rolled_back``) and ``error`` says why.
    """

    path: str
    status: str
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_rolled_back: int = 0
    error: str | None = None
    rows_inserted: int | None = None
    """Of ``rows_written``, the rows new to the table (None for a file not loaded)."""
    rows_updated: int | None = None
    """Of ``rows_written``, the existing rows ``mode="merge"`` updated (0 in other modes)."""
    schema_version: int | None = None
    """The version of the table's schema the file was checked against (``tallyclerk schema``)."""
    columns_added: tuple[str, ...] = ()
    """Columns the file added to the table (``--columns evolve``)."""
    columns_dropped: tuple[str, ...] = ()
    """Columns of the file not loaded (``--columns discard``)."""
    columns_missing: tuple[str, ...] = ()
    """Schema fields the file lacks (NULL in every row of it)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileReport:
        return cls(
            path=str(data.get("path")),
            status=str(data.get("status")),
            rows_read=int(data.get("rows_read") or 0),
            rows_written=int(data.get("rows_written") or 0),
            rows_rejected=int(data.get("rows_rejected") or 0),
            rows_rolled_back=int(data.get("rows_rolled_back") or 0),
            error=None if data.get("error") is None else str(data.get("error")),
            rows_inserted=_opt_int(data.get("rows_inserted")),
            rows_updated=_opt_int(data.get("rows_updated")),
            schema_version=None if data.get("schema_version") is None
            else int(data["schema_version"]),
            columns_added=tuple(str(c) for c in data.get("columns_added") or ()),
            columns_dropped=tuple(str(c) for c in data.get("columns_dropped") or ()),
            columns_missing=tuple(str(c) for c in data.get("columns_missing") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rows_rolled_back": self.rows_rolled_back,
            "rows_inserted": self.rows_inserted,
            "rows_updated": self.rows_updated,
            "error": self.error,
            "schema_version": self.schema_version,
            "columns_added": list(self.columns_added),
            "columns_dropped": list(self.columns_dropped),
            "columns_missing": list(self.columns_missing),
        }

    @property
    def columns_note(self) -> str:
        """What the column contract did: ``added a, b; dropped c; missing (NULL) d``."""
        parts = [f"{word} {', '.join(names)}" for word, names in (
            ("added", self.columns_added), ("dropped", self.columns_dropped),
            ("missing (NULL)", self.columns_missing)) if names]
        return "; ".join(parts)


@dataclass(frozen=True)
class LoadReport:
    """The outcome of one load.

    ``status``: ``succeeded`` (no file failed), ``partial`` (some failed), ``failed``,
    ``cancelled`` (stopped by a signal or a :class:`~tallyclerk.StopToken`) or ``timed_out``.
    A load with ``workers``/``load_id`` has ``batch_id`` = ``load_id`` and lists the worker
    ``batches``. ``into`` (the sink's URL, password masked), ``signal`` (the signal that stopped
    the load, if any) and ``worker_exit_codes`` are not part of :meth:`to_dict`.
    """

    batch_id: str
    status: str
    table: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_rolled_back: int
    files: tuple[FileReport, ...]
    load_id: str | None = None
    batches: tuple[str, ...] | None = None
    into: str = ""
    signal: int | None = None
    worker_exit_codes: tuple[int, ...] = field(default=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, into: str = "", signal: int | None = None,
                  worker_exit_codes: Sequence[int] = ()) -> LoadReport:
        files: Sequence[Mapping[str, Any]] = data.get("files") or []
        batches = data.get("batches")
        return cls(
            batch_id=str(data.get("batch_id")),
            status=str(data.get("status")),
            table=str(data.get("table")),
            rows_read=int(data.get("rows_read") or 0),
            rows_written=int(data.get("rows_written") or 0),
            rows_rejected=int(data.get("rows_rejected") or 0),
            rows_rolled_back=int(data.get("rows_rolled_back") or 0),
            files=tuple(FileReport.from_dict(f) for f in files),
            load_id=None if data.get("load_id") is None else str(data.get("load_id")),
            batches=None if batches is None else tuple(str(b) for b in batches),
            into=into,
            signal=signal,
            worker_exit_codes=tuple(worker_exit_codes),
        )

    @property
    def ok(self) -> bool:
        """No file failed and the load was neither stopped nor timed out."""
        return self.exit_status == 0

    @property
    def exit_status(self) -> int:
        """The CLI's exit status for this report: 0, 1, or 128 + the stopping signal."""
        if self.signal is not None:
            return 128 + self.signal
        if any(f.status == "failed" for f in self.files):
            return 1
        if self.status in ("failed", "timed_out", "cancelled"):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object."""
        out: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status,
            "table": self.table,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rows_rolled_back": self.rows_rolled_back,
            "files": [f.to_dict() for f in self.files],
        }
        if self.load_id is not None:
            out["load_id"] = self.load_id
        if self.batches is not None:
            out["batches"] = list(self.batches)
        return out

    def lines(self, *, target: str | None = None) -> list[str]:
        """The summary table: a heading, one line per file and a total."""
        head = f"batch {self.batch_id}  {self.status}  table {self.table!r}"
        if target:
            head += f"  into {target}"
        rows: list[list[Any]] = [
            [f.path, f.status, f.rows_read, f.rows_written, f.rows_rejected, f.rows_rolled_back,
             "" if f.schema_version is None else f"v{f.schema_version}", f.columns_note,
             f.error or ""]
            for f in self.files
        ]
        rows.append(["TOTAL", "", self.rows_read, self.rows_written, self.rows_rejected,
                     self.rows_rolled_back, "", "", ""])
        table = format_table(
            ["FILE", "STATUS", "READ", "WRITTEN", "REJECTED", "ROLLED BACK", "SCHEMA", "COLUMNS",
             "ERROR"], rows,
            right=(2, 3, 4, 5),
        )
        return [head, *table]

    def __str__(self) -> str:
        return "\n".join(self.lines(target=self.into or None))


def __getattr__(name: str) -> Any:
    """:class:`LoadProgress` is defined in :mod:`tallyclerk.progress` and imported when first
    asked for: only a load with a ``progress`` callback builds one, and the dataclass costs
    ~0.6 ms of every start (issue 16.1)."""
    if name == "LoadProgress":
        from tallyclerk.progress import LoadProgress

        return LoadProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
