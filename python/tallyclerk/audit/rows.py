"""The audit store's rows as read back: small immutable named tuples, one type per ledger table.

Their fields are the table's columns, in the table's order (:mod:`tallyclerk.audit.models`
defines the tables; ``tests/audit/test_models.py`` checks the two agree), so a row is built from
a result row by position, in one place:

* ``Batch._make(row)`` (any row type) from a SQLAlchemy Core result of ``select(table)`` (the
  column types already turned timestamps into aware datetimes and JSON text into values);
* :func:`from_storage` from the same columns in their *storage* form, as a plain DB-API
  cursor returns them (SQLite: timestamps as integer microseconds since the epoch, JSON as
  text, booleans as 0/1), for readers that do not go through SQLAlchemy.

Named tuples rather than frozen dataclasses: the same attribute access, immutability and
``__slots__``, built in a quarter of the time (five 35-column frozen dataclasses cost ~7 ms
of every start-up). This module imports no SQLAlchemy. The timestamp conversions
(:func:`to_epoch_us`, :func:`from_epoch_us`) live here and are re-exported by
:mod:`tallyclerk.audit.models`.
"""

# No ``from __future__ import annotations`` here: ``typing.NamedTuple`` turns each string
# annotation into a ``typing.ForwardRef``, compiling it, ~0.7 ms of every start for the ~100
# fields below (issue 16.1); evaluated annotations are plain types (``get_type_hints`` is the
# same either way).

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeVar

import orjson

__all__ = [
    "SPECS",
    "AuditEvent",
    "Batch",
    "FileManifest",
    "RejectRecord",
    "RowSpec",
    "TableSchemaVersion",
    "from_epoch_us",
    "from_storage",
    "to_epoch_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

T = TypeVar("T", bound=tuple[Any, ...])


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


class Batch(NamedTuple):
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


class FileManifest(NamedTuple):
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


class RejectRecord(NamedTuple):
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


class AuditEvent(NamedTuple):
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


class TableSchemaVersion(NamedTuple):
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


class RowSpec(NamedTuple):
    """What a row type's columns hold in storage form, besides plain values."""

    table: str
    datetimes: frozenset[str] = frozenset()
    """Timestamps (SQLite: integer microseconds since the epoch)."""
    json: frozenset[str] = frozenset()
    """JSON documents stored as text."""
    booleans: frozenset[str] = frozenset()
    """Booleans (SQLite: 0 or 1)."""


SPECS: dict[type[Any], RowSpec] = {
    Batch: RowSpec("tallyclerk_batches", frozenset({"started_at", "finished_at"}),
                   frozenset({"options"})),
    FileManifest: RowSpec("tallyclerk_files",
                          frozenset({"started_at", "finished_at", "lease_expires_at"}),
                          frozenset({"column_changes"})),
    RejectRecord: RowSpec("tallyclerk_rejects", frozenset({"replayed_at"}),
                          booleans=frozenset({"masked"})),
    AuditEvent: RowSpec("tallyclerk_events", frozenset({"created_at"}), frozenset({"payload"})),
    TableSchemaVersion: RowSpec("tallyclerk_schemas", frozenset({"created_at"})),
}
"""Each row type's table and storage conversions."""

_DECODERS: dict[type[Any], tuple[tuple[int, Any], ...]] = {}


def from_storage(row_type: type[T], values: Sequence[Any]) -> T:
    """A row of ``row_type`` from its table's columns in storage form (a plain DB-API row,
    in column order)."""
    decoders = _DECODERS.get(row_type)
    if decoders is None:
        spec = SPECS[row_type]
        fields: tuple[str, ...] = row_type._fields  # type: ignore[attr-defined]
        decoders = _DECODERS[row_type] = tuple(
            (i, _datetime if name in spec.datetimes else _json if name in spec.json else _bool)
            for i, name in enumerate(fields)
            if name in spec.datetimes | spec.json | spec.booleans
        )
    decoded = list(values)
    for i, decode in decoders:
        decoded[i] = decode(decoded[i])
    return row_type(*decoded)


def _json(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)
