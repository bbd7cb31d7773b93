"""The audit store's rows as read back: small frozen dataclasses, one per ledger table.

Their fields are the table's columns, in the table's order (:mod:`tallyclerk.audit.models`
defines the tables; ``tests/audit/test_rows.py`` checks the two agree), so a row is built from
a result row by position, in one place:

* :meth:`_Row.from_row` from a SQLAlchemy Core result of ``select(table)`` (the column types
  already turned timestamps into aware datetimes and JSON text into values);
* :meth:`_Row.from_storage` from the same columns in their *storage* form, as a plain DB-API
  cursor returns them (SQLite: timestamps as integer microseconds since the epoch, JSON as
  text), for readers that do not go through SQLAlchemy.

This module imports no SQLAlchemy. The timestamp conversions (:func:`to_epoch_us`,
:func:`from_epoch_us`) live here and are re-exported by :mod:`tallyclerk.audit.models`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

import orjson

__all__ = [
    "AuditEvent",
    "Batch",
    "FileManifest",
    "RejectRecord",
    "TableSchemaVersion",
    "from_epoch_us",
    "to_epoch_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

T = TypeVar("T", bound="_Row")


def to_epoch_us(value: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the Unix epoch."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: audit timestamps must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    """Integer microseconds since the Unix epoch as an aware UTC datetime."""
    seconds, micros = divmod(int(value), 1_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=micros)


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
            value.astimezone(timezone.utc)
    return from_epoch_us(value)


def _json(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


class _Row:
    """What every row type shares: its table, its columns, and how it is built."""

    __slots__ = ()
    TABLE: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]
    """The table's columns, in order (the dataclass's fields)."""
    DATETIMES: ClassVar[frozenset[str]] = frozenset()
    """Columns stored as timestamps (SQLite: integer microseconds since the epoch)."""
    JSON: ClassVar[frozenset[str]] = frozenset()
    """Columns stored as JSON text."""
    BOOLEANS: ClassVar[frozenset[str]] = frozenset()
    """Columns stored as booleans (SQLite: 0 or 1)."""

    @classmethod
    def from_row(cls: type[T], row: Sequence[Any]) -> T:
        """From a SQLAlchemy Core result row of ``select(table)`` (values already typed)."""
        return cls(*row)

    @classmethod
    def from_storage(cls: type[T], values: Sequence[Any]) -> T:
        """From the table's columns in storage form (a plain DB-API row, in column order)."""
        decoded = list(values)
        for i, name in enumerate(cls.COLUMNS):
            if name in cls.DATETIMES:
                decoded[i] = _datetime(decoded[i])
            elif name in cls.JSON:
                decoded[i] = _json(decoded[i])
            elif name in cls.BOOLEANS and decoded[i] is not None:
                decoded[i] = bool(decoded[i])
        return cls(*decoded)


def _finish(cls: type[T], table: str, datetimes: tuple[str, ...] = (),
            json: tuple[str, ...] = (), booleans: tuple[str, ...] = ()) -> type[T]:
    cls.TABLE = table
    cls.COLUMNS = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    cls.DATETIMES = frozenset(datetimes)
    cls.JSON = frozenset(json)
    cls.BOOLEANS = frozenset(booleans)
    assert cls.DATETIMES | cls.JSON | cls.BOOLEANS <= set(cls.COLUMNS)
    return cls


@dataclass(frozen=True, slots=True)
class Batch(_Row):
    """A row of ``tallyclerk_batches``: one run of the loader over files into one table."""

    id: str
    target_table: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    files_started: int
    files_loaded: int
    files_skipped: int
    files_failed: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_rolled_back: int
    bytes_read: int
    error_class: str | None
    error_message: str | None
    timeout_kind: str | None
    host: str
    pid: int
    user: str | None
    options: dict[str, Any]
    chain_seq: int | None
    chain_hash: str | None


@dataclass(frozen=True, slots=True)
class FileManifest(_Row):
    """A row of ``tallyclerk_files``: one attempt to load one file into one table."""

    id: int
    batch_id: str
    path: str
    size: int
    mtime: float
    fingerprint: str
    target_table: str
    status: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_rolled_back: int
    bytes_read: int
    first_error_line: int | None
    rows_inserted: int | None
    rows_updated: int | None
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    error_class: str | None
    claim_token: str | None
    owner: str | None
    lease_expires_at: datetime | None
    earlier_batch_id: str | None
    earlier_file_id: int | None
    cleaned_by: int | None
    object_url: str | None
    object_etag: str | None
    object_version: str | None
    schema_version: int | None
    column_changes: dict[str, Any] | None
    chain_seq: int | None
    chain_hash: str | None


@dataclass(frozen=True, slots=True)
class RejectRecord(_Row):
    """A row of ``tallyclerk_rejects``: one rejected record of one file."""

    id: int
    file_id: int
    batch_id: str
    record_number: int
    line: int
    column_name: str | None
    rule: str
    reason: str
    raw: str
    masked: bool
    replayed_by_batch: str | None
    replayed_at: datetime | None
    replay_file_id: int | None
    replay_record_number: int | None
    replay_outcome: str | None
    chain_seq: int | None
    chain_hash: str | None


@dataclass(frozen=True, slots=True)
class AuditEvent(_Row):
    """A row of ``tallyclerk_events``: one audit event."""

    id: int
    type: str
    batch_id: str | None
    file_id: int | None
    payload: Any
    created_at: datetime
    correlation_id: str | None
    chain_seq: int | None
    chain_hash: str | None


@dataclass(frozen=True, slots=True)
class TableSchemaVersion(_Row):
    """A row of ``tallyclerk_schemas``: one version of a target table's Table Schema."""

    id: int
    target_table: str
    version: int
    schema_json: str
    fingerprint: str
    created_at: datetime
    batch_id: str | None
    file_id: int | None
    reason: str
    chain_seq: int | None
    chain_hash: str | None


_finish(Batch, "tallyclerk_batches", ("started_at", "finished_at"), ("options",))
_finish(FileManifest, "tallyclerk_files", ("started_at", "finished_at", "lease_expires_at"),
        ("column_changes",))
_finish(RejectRecord, "tallyclerk_rejects", ("replayed_at",), booleans=("masked",))
_finish(AuditEvent, "tallyclerk_events", ("created_at",), ("payload",))
_finish(TableSchemaVersion, "tallyclerk_schemas", ("created_at",))
