"""The values the audit service exchanges with the loader (the brief's contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tallyclerk.audit.skiptypes import FileSkip, RejectRow

__all__ = ["FileClaim", "FileResult", "FileSkip", "RejectRow", "StoredSchema"]


@dataclass(frozen=True)
class FileClaim:
    """The right to load one file, fenced by ``token`` and bounded by a lease.

    ``replaces`` lists manifest ids whose rows must be deleted from the target table (rows
    tagged ``_tc_file_id IN replaces``) inside the transaction that writes this file's rows:
    an interrupted load's leftovers, or the earlier load a ``force`` reload supersedes.
    """

    file_id: int
    batch_id: str
    path: str
    table: str
    fingerprint: str
    size: int
    mtime: float
    attempt: int
    token: str
    replaces: tuple[int, ...] = ()



@dataclass(frozen=True)
class FileResult:
    """What loading one file did: ``rows_read == rows_written + rows_rejected +
    rows_rolled_back``.

    A loaded file has no rolled-back rows. A failed file wrote nothing: its rows that failed
    validation are ``rows_rejected`` and the others it read are ``rows_rolled_back``.
    """

    rows_read: int
    rows_written: int
    rows_rejected: int
    bytes_read: int
    first_error_line: int | None = None
    error: str | None = None
    error_class: str | None = None
    rows_rolled_back: int = 0
    rows_inserted: int | None = None
    """Of ``rows_written``, the rows new to the table (None: the sink did not say)."""
    rows_updated: int | None = None
    """Of ``rows_written``, the existing rows a merge updated."""
    schema_version: int | None = None
    """The version of the table's schema the file was checked against (None: no schema)."""
    column_changes: dict[str, list[str]] | None = field(default=None, compare=False)
    """What the column contract did: ``added`` / ``dropped`` / ``missing`` column names."""



@dataclass(frozen=True)
class StoredSchema:
    """One version of a target table's schema, as kept in ``tallyclerk_schemas``."""

    table: str
    version: int
    schema_json: str
    fingerprint: str
    reason: str
    created_at: datetime | None = None
    batch_id: str | None = None
    file_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the schema as an object, timestamps as ISO 8601."""
        import json

        return {
            "table": self.table,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "reason": self.reason,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "batch_id": self.batch_id,
            "file_id": self.file_id,
            "schema": json.loads(self.schema_json),
        }


def stored_schema(row: Any) -> StoredSchema:
    """A :class:`StoredSchema` from a ``tallyclerk_schemas`` row
    (:class:`~tallyclerk.audit.rows.TableSchemaVersion`)."""
    return StoredSchema(
        table=row.target_table, version=row.version, schema_json=row.schema_json,
        fingerprint=row.fingerprint, reason=row.reason, created_at=row.created_at,
        batch_id=row.batch_id, file_id=row.file_id,
    )


def __getattr__(name: str) -> Any:
    """:class:`FileSkip` and :class:`RejectRow` are defined in
    :mod:`tallyclerk.audit.skiptypes` and imported when first asked for: a load of a new file
    with no rejected row builds neither, and the two dataclasses cost ~1.2 ms of every start
    (issue 16.1)."""
    if name in ("FileSkip", "RejectRow"):
        from tallyclerk.audit import skiptypes

        return getattr(skiptypes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
