"""The audit store's tables: batches, the file manifest, rejects, events, and the schema version.

One declarative base, typed ``Mapped[]`` columns, every table prefixed ``tallyclerk_``. The
models are dialect-neutral (SQLite and PostgreSQL):

* timestamps are timezone-aware UTC datetimes in Python (:class:`UTCDateTime`): PostgreSQL
  stores ``timestamptz``; SQLite stores integer microseconds since the Unix epoch (sortable,
  exact, cheap to write in bulk; ``datetime(col / 1e6, 'unixepoch')`` shows one in the shell);
* JSON (batch options, event payloads) is text serialized with orjson (:class:`JSONText`).

``tallyclerk_schemas`` keeps every version of each target table's Table Schema (the one it was
first loaded with, then each evolution); a manifest row names the version its file was checked
against (``schema_version``) and what the column contract did to its columns
(``column_changes``: ``{"added": [...], "dropped": [...], "missing": [...]}``).

Manifest statuses (``FileManifest.status``):

``pending``   registered, not yet claimed (reserved for work lists of many workers);
``loading``   claimed by a worker (``owner``, ``claim_token``, ``lease_expires_at``);
``loaded``    its rows are in the target table, tagged ``_tc_file_id = id``;
``failed``    the load failed or was interrupted; its rows, if any survived, are deleted by the
              next claim of the same content (``cleaned_by`` then names that claim);
``skipped``   the content was already loaded (or was being loaded) by ``earlier_batch_id``;
``replaced``  was ``loaded``, then superseded by a forced reload (``cleaned_by`` names it).

At most one row per (target table, fingerprint) is ``loaded`` and at most one is ``loading``:
two partial unique indexes enforce it, so two processes racing for one file cannot both
claim or both commit it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.base import _DialectArgDict
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.types import TypeEngine

__all__ = [
    "BATCH_STATUSES",
    "FILE_STATUSES",
    "SCHEMA_VERSION",
    "AuditEvent",
    "Base",
    "Batch",
    "ChainHead",
    "FileManifest",
    "JSONText",
    "PartialIndex",
    "RejectRecord",
    "SchemaVersion",
    "Sealed",
    "TableSchemaVersion",
    "UTCDateTime",
    "from_epoch_us",
    "to_epoch_us",
]

SCHEMA_VERSION: Final = 2
"""The schema version this code writes; stored in ``tallyclerk_schema_version``.

2 (0.2.0): additive only (new columns, tables and indexes); see ``engine.add_missing``."""

BATCH_STATUSES: Final = ("running", "succeeded", "partial", "failed", "cancelled", "timed_out")
FILE_STATUSES: Final = ("pending", "loading", "loaded", "failed", "skipped", "replaced")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL: ``TIMESTAMP WITH TIME ZONE``. SQLite: ``BIGINT`` microseconds since the epoch.
    Naive datetimes are refused (``ValueError``): their zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: audit timestamps must be timezone-aware")
        if dialect.name == "sqlite":
            return to_epoch_us(value)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=timezone.utc)
            return value.astimezone(timezone.utc)
        return from_epoch_us(value)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as text, serialized with orjson (same on every dialect)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)


class Base(DeclarativeBase):
    """The one declarative base of the audit store."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONText()}


class Sealed:
    """A ledger row's link in the hash chain (:mod:`tallyclerk.audit.chain`), NULL until the
    row is final and sealed: ``chain_hash = sha256(predecessor's hash, table, id, content)``,
    ``chain_seq`` its position in the one chain over every ledger table."""

    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    chain_hash: Mapped[str | None] = mapped_column(String(64))


class PartialIndex(Index):
    """An index of the rows matching ``where``, on SQLite and on PostgreSQL.

    The predicate reaches each dialect as its ``where`` option when that dialect's compiler
    asks for it, instead of as ``sqlite_where=`` / ``postgresql_where=`` keywords: SQLAlchemy
    validates such keywords by importing the dialect's package, and PostgreSQL's (with its
    asyncpg driver and asyncio) cost about 35 ms of every SQLite process's start-up.
    """

    _partial_dialects = frozenset({"sqlite", "postgresql"})

    def __init__(self, name: str, *columns: str, where: ColumnElement[bool] | TextClause,
                 unique: bool = False) -> None:
        self.partial_where = where
        super().__init__(name, *columns, unique=unique)

    def _kw_reg_for_dialect_cls(  # type: ignore[override]
        self, dialect_name: str
    ) -> _DialectArgDict:
        options = super()._kw_reg_for_dialect_cls(dialect_name)
        if dialect_name in self._partial_dialects:
            options["where"] = self.partial_where
        return options


def _unsealed(table: str) -> Index:
    """A partial index of the rows not sealed yet: the sealer finds them without a scan."""
    return PartialIndex(f"ix_{table}_unsealed", "id", where=text("chain_hash IS NULL"))


class ChainHead(Base):
    """One row: the last link of the hash chain (its position and hash). Sealers lock it, so
    links are appended one transaction at a time (``SELECT ... FOR UPDATE`` on PostgreSQL)."""

    __tablename__ = "tallyclerk_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class SchemaVersion(Base):
    """One row: the schema version of this audit store (checked at start-up)."""

    __tablename__ = "tallyclerk_schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int]
    updated_at: Mapped[datetime]


class Batch(Sealed, Base):
    """One run of the loader over a set of files into one table."""

    __tablename__ = "tallyclerk_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """uuid4 hex."""
    target_table: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    """One of :data:`BATCH_STATUSES`."""
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    files_started: Mapped[int] = mapped_column(default=0)
    files_loaded: Mapped[int] = mapped_column(default=0)
    files_skipped: Mapped[int] = mapped_column(default=0)
    files_failed: Mapped[int] = mapped_column(default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rolled_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Rows read by files that failed and were rolled back, less their rejected rows."""
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    """The counts above come from the accumulator's final snapshot."""
    error_class: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    timeout_kind: Mapped[str | None] = mapped_column(String(16))
    """``operation`` or ``idle`` when the watchdog timed the batch out."""
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    user: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[dict[str, Any]]

    __table_args__ = (
        # the next batch on a host looks for its dead running batches: a partial index stays
        # as small as the running batches however long the ledger grows (queried with the
        # literal 'running', which is what lets SQLite's planner use it)
        PartialIndex("ix_tallyclerk_batches_running", "host", where=text("status = 'running'")),
        _unsealed("tallyclerk_batches"),
    )


class FileManifest(Sealed, Base):
    """One attempt to load one file into one table (see the module docstring for statuses)."""

    __tablename__ = "tallyclerk_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    """Also the ``_tc_file_id`` of the rows this attempt writes."""
    batch_id: Mapped[str] = mapped_column(ForeignKey("tallyclerk_batches.id"), index=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    """As given to the loader."""
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """``xxh3-128:<hex>``: with ``target_table``, the identity of a file."""
    target_table: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    """One of :data:`FILE_STATUSES`."""
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    """Rows that failed validation (each has a ``tallyclerk_rejects`` row, up to 10,000 for
    a failed file)."""
    rows_rolled_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Rows of a ``failed`` file that were read, not rejected, and rolled back:
    ``rows_read = rows_written + rows_rejected + rows_rolled_back``."""
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    first_error_line: Mapped[int | None]
    rows_inserted: Mapped[int | None] = mapped_column(BigInteger)
    """Of ``rows_written``: rows new to the table (NULL for files loaded before 0.2.0)."""
    rows_updated: Mapped[int | None] = mapped_column(BigInteger)
    """Of ``rows_written``: existing rows a ``--mode merge`` updated (0 in other modes)."""
    attempt: Mapped[int] = mapped_column(default=1)
    """1 + the earlier claims of the same identity."""
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(255))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    """Fencing token: the commit of a claim must present it."""
    owner: Mapped[str | None] = mapped_column(String(255))
    """``host:pid`` of the claiming process."""
    lease_expires_at: Mapped[datetime | None]
    earlier_batch_id: Mapped[str | None] = mapped_column(String(32))
    """For ``skipped`` rows: the batch that loaded (or is loading) the same content."""
    earlier_file_id: Mapped[int | None]
    cleaned_by: Mapped[int | None]
    """For ``failed``/``replaced`` rows: the claim whose committed load deleted this one's rows."""
    object_url: Mapped[str | None] = mapped_column(Text)
    """Object-store/HTTP sources: the object's URL (``s3://bucket/key``); NULL for local files."""
    object_etag: Mapped[str | None] = mapped_column(String(255))
    """The object's ETag (quotes removed) when the store gives one."""
    object_version: Mapped[str | None] = mapped_column(String(255))
    """The object's version (S3 ``VersionId``, GCS generation, Azure version id), if any."""
    schema_version: Mapped[int | None]
    """The version of the table's schema (``tallyclerk_schemas``) this file was checked against."""
    column_changes: Mapped[dict[str, Any] | None]
    """What the column contract did: ``{"added", "dropped", "missing"}`` lists of column names
    (``added`` under ``evolve``, ``dropped`` under ``discard``, ``missing``: schema fields absent
    from the file, NULL in every row); None when the file matched the table."""

    __table_args__ = (
        Index("ix_tallyclerk_files_identity", "target_table", "fingerprint"),
        PartialIndex(
            "uq_tallyclerk_files_loaded",
            "target_table",
            "fingerprint",
            unique=True,
            where=status == "loaded",
        ),
        PartialIndex(
            "uq_tallyclerk_files_loading",
            "target_table",
            "fingerprint",
            unique=True,
            where=status == "loading",
        ),
        _unsealed("tallyclerk_files"),
        # never reuse an id: target rows carry it as _tc_file_id
        {"sqlite_autoincrement": True},
    )


class RejectRecord(Sealed, Base):
    """One rejected record of one file."""

    __tablename__ = "tallyclerk_rejects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("tallyclerk_files.id"), index=True)
    batch_id: Mapped[str] = mapped_column(String(32), index=True)
    record_number: Mapped[int] = mapped_column(BigInteger)
    """1-based data record number within the file."""
    line: Mapped[int] = mapped_column(BigInteger)
    """1-based physical line where the record starts."""
    column_name: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    masked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Sensitive values were masked in ``raw`` and ``reason``: ``raw`` is not the record as
    read, so the row cannot be replayed from it (schema version 2)."""
    replayed_by_batch: Mapped[str | None] = mapped_column(String(32))
    """``tallyclerk replay``: the batch that replayed this record (NULL: not replayed)."""
    replayed_at: Mapped[datetime | None]
    replay_file_id: Mapped[int | None]
    """The replay's file claim: the rows it loaded carry ``_tc_file_id = replay_file_id``."""
    replay_record_number: Mapped[int | None] = mapped_column(BigInteger)
    """The record's number within the replay (its new reject, if it failed again, is the
    reject of ``replay_file_id`` with this ``record_number``)."""
    replay_outcome: Mapped[str | None] = mapped_column(String(16))
    """``loaded`` (now in the table) or ``rejected`` (failed again: see its new reject)."""

    __table_args__ = (_unsealed("tallyclerk_rejects"),)


class AuditEvent(Sealed, Base):
    """One audit event, written behind the caller. ``created_at`` is when it was recorded."""

    __tablename__ = "tallyclerk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(String(32))
    """Not indexed on purpose: the event log is written in bulk, read rarely."""
    file_id: Mapped[int | None]
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    correlation_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (_unsealed("tallyclerk_events"),)


class TableSchemaVersion(Sealed, Base):
    """One version of a target table's Table Schema: the first load's (given, inferred, or the
    header's text columns), then one per evolution (``--columns evolve``, a wider ``--schema``).
    Written in the transaction of the file that introduced it (when the audit store shares the
    data's database), so a rolled-back file leaves no version behind."""

    __tablename__ = "tallyclerk_schemas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_table: Mapped[str] = mapped_column(String(255))
    version: Mapped[int]
    """1, 2, ... per table."""
    schema_json: Mapped[str] = mapped_column(Text)
    """The Table Schema, as JSON text."""
    fingerprint: Mapped[str] = mapped_column(String(80))
    """``sha256:<hex>`` of the canonical JSON (sorted keys): equal schemas, equal fingerprints."""
    created_at: Mapped[datetime]
    batch_id: Mapped[str | None] = mapped_column(String(32))
    file_id: Mapped[int | None]
    """The manifest row of the file whose load introduced this version."""
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("uq_tallyclerk_schemas_version", "target_table", "version", unique=True),
        _unsealed("tallyclerk_schemas"),
    )
